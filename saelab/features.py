"""Reading text through an SAE: which latents fire, where, how strongly, and what each one writes.

    top_features(model, sae, "he is good guy")           the strongest latents at one token
    collect_latents(model, sae, texts)                   the k strongest latents of every token (sparse)
    contrast_latents(negative, positive)                 latents ranked by AUROC / mean difference
    logit_effects(model, sae, latent)                    W_dec[:, latent] @ W_U: tokens it promotes/suppresses

Per-token statistics leave out the BOS position: in GPT-2 the residual stream there is an outlier (massive
activations only at the starting token: Sun et al. 2024, arXiv:2402.17762), and latents that fire only there would
swamp every ranking.
OpenAI's GPT-2 SAEs were trained on 64-token contexts without BOS: encoding longer text warns once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import warnings

import torch

from saelab.activations import hook_activations, hook_layer
from saelab.metrics import auroc, concept_auroc, last_rows
from saelab.models import check_position, to_tokens
from saelab.plots import format_table
from saelab.sae import SAE

NEURONPEDIA = "https://www.neuronpedia.org/gpt2-small"
# OpenAI location -> Neuronpedia's name for the SAE set, as in SAELens's pretrained_saes.yaml
# ("gpt2-small/8-res_post_128k-oai"). Only res_post is also confirmed by links to live pages.
NEURONPEDIA_SITES = {"resid_post_mlp": "res_post", "resid_post_attn": "res_mid",
                     "resid_delta_mlp": "res_mlp", "resid_delta_attn": "res_att"}
HOOK_TO_LOCATION = {"hook_resid_post": "resid_post_mlp", "hook_resid_mid": "resid_post_attn",
                    "hook_mlp_out": "resid_delta_mlp", "hook_attn_out": "resid_delta_attn"}
OPENAI_SIZES = {2**15: "32k", 2**17: "128k"}


# --- one prompt ---------------------------------------------------------------------------------------
def _hook(sae: SAE) -> str:
    if sae.hook_name is None:
        raise ValueError("this SAE does not know which hook it reads; set sae.hook_name = 'blocks.L.hook_...'")
    return sae.hook_name


_warned_long_context = False


def check_context(sae: SAE, n_tokens: int) -> None:
    """Warn (once per process) when text of more than `sae.context_size` tokens (BOS not counted) is encoded
    with an SAE that knows its training context, as OpenAI's do (64 tokens, no BOS; set by load_openai_sae)."""
    global _warned_long_context
    size = getattr(sae, "context_size", None)
    if size is None or n_tokens <= size or _warned_long_context:
        return
    _warned_long_context = True
    warnings.warn(f"this SAE was trained on {size}-token contexts (OpenAI's GPT-2 SAEs: 64 tokens, no BOS) and this "
                  f"text has {n_tokens} tokens: latents past position {size} are outside its training data and "
                  f"may be less reliable. Split long text into chunks of at most {size} tokens. (Warned once.)",
                  stacklevel=3)


def _as_tokens(model: Any, prompt: str | torch.Tensor) -> torch.Tensor:
    """Token ids [1, pos] for a prompt given as text (BOS prepended) or as ids [pos] / [1, pos]."""
    if isinstance(prompt, str):
        return to_tokens(model, prompt)
    tokens = torch.as_tensor(prompt).reshape(1, -1)
    if tokens.shape[1] == 0 or tokens.shape[1] > model.cfg.n_ctx:
        raise ValueError(f"need 1 to {model.cfg.n_ctx} token ids; got {tokens.shape[1]}")
    return tokens


@torch.no_grad()
def encode_prompt(model: Any, sae: SAE, prompt: str) -> tuple[list[str], torch.Tensor]:
    """The prompt's tokens (as strings, BOS included) and the SAE latents at each: [pos, n_latents]."""
    tokens = to_tokens(model, prompt)
    check_context(sae, tokens.shape[1] - 1)
    acts = hook_activations(model, _hook(sae), tokens)[0]
    latents = sae.encode(acts.to(sae.pre_bias.dtype))
    return model.to_str_tokens(tokens[0]), latents


@dataclass
class TopFeatures:
    """The strongest latents at one token of a prompt (only latents that fire, strongest first)."""
    prompt: str
    token: str
    position: int
    latents: list[int]
    values: list[float]

    def __str__(self) -> str:
        rows = "\n".join(f"  {i:>7}  {v:8.3f}" for i, v in zip(self.latents, self.values))
        return f"{self.prompt!r} at token {self.token!r} (position {self.position}):\n   latent  activation\n{rows}"


@torch.no_grad()
def top_features(model: Any, sae: SAE, prompt: str | torch.Tensor, k: int = 10, position: int = -1,
                 stop_early: bool = True) -> TopFeatures:
    """The k strongest latents at one token (default: the last). Encodes only that position, with
    `sae.encode_topk`, so no dense [pos, n_latents] tensor is built. A TopK SAE fires at most sae.k latents."""
    tokens = _as_tokens(model, prompt)
    n = tokens.shape[1]
    check_context(sae, n - 1)
    check_position(position, n)
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer; got {k!r}")
    x = hook_activations(model, _hook(sae), tokens, stop_early)[0, position]
    values, indices = sae.encode_topk(x.to(sae.pre_bias.dtype), k=min(k, sae.k or k, sae.n_latents))
    keep = values > 0
    text = prompt if isinstance(prompt, str) else model.to_string(tokens[0])
    return TopFeatures(text, model.to_str_tokens(tokens[0, position:position % n + 1])[0], position % n,
                       indices[keep].tolist(), values[keep].tolist())


@torch.no_grad()
def prompt_differences(model: Any, sae: SAE, prompts_a: Sequence[str], prompts_b: Sequence[str], top: int = 8
                       ) -> list[dict[str, float]]:
    """The latents whose activation at the last token differs most between two sets of prompts (mean over each
    set), largest |difference| first. Rows: latent, mean_a, mean_b, diff = mean_a - mean_b."""
    if isinstance(prompts_a, str) or isinstance(prompts_b, str) or not prompts_a or not prompts_b:
        raise ValueError("prompts_a and prompts_b must be non-empty lists of prompts")
    means = [torch.stack([encode_prompt(model, sae, p)[1][-1] for p in ps]).float().mean(0)
             for ps in (prompts_a, prompts_b)]
    diff = means[0] - means[1]
    order = diff.abs().topk(min(top, len(diff))).indices
    return [{"latent": int(i), "mean_a": float(means[0][i]), "mean_b": float(means[1][i]), "diff": float(diff[i])}
            for i in order if diff[i] != 0]


def recurring_latents(tops: Sequence[TopFeatures], min_count: int = 2) -> list[tuple[int, int]]:
    """(latent, number of `tops` it appears in) for latents in at least `min_count` of them, most first."""
    counts: dict[int, int] = {}
    for top in tops:
        for latent in set(top.latents):
            counts[latent] = counts.get(latent, 0) + 1
    return sorted(((i, c) for i, c in counts.items() if c >= min_count), key=lambda ic: (-ic[1], ic[0]))


def check_latent(sae: SAE | int, latent: Any) -> int:
    """`latent` as an int, or a ValueError saying which indices exist (`sae`: an SAE or its n_latents)."""
    n = sae if isinstance(sae, int) else sae.n_latents
    if isinstance(latent, bool) or not isinstance(latent, int) or not 0 <= latent < n:
        raise ValueError(f"latent must be an integer from 0 to {n - 1}; got {latent!r}")
    return latent


@torch.no_grad()
def latent_activations(model: Any, sae: SAE, prompt: str, latent: int) -> tuple[list[str], torch.Tensor]:
    """(tokens as strings, BOS included, activation of `latent` at each token [pos])."""
    latent = check_latent(sae, latent)
    tokens = to_tokens(model, prompt)
    check_context(sae, tokens.shape[1] - 1)
    x, _ = sae.preprocess(hook_activations(model, _hook(sae), tokens)[0].to(sae.pre_bias.dtype))
    if sae.activation == "topk":  # the latent counts only where it is among the k strongest
        values, indices = sae.encode_pre_act(x).topk(sae.k, dim=-1)
        acts = (values.relu() * (indices == latent)).sum(-1)
    else:  # one encoder row is enough
        acts = torch.relu((x - sae.pre_bias) @ sae.encoder.weight[latent] + sae.latent_bias[latent])
    return model.to_str_tokens(tokens[0]), acts


# --- many texts ---------------------------------------------------------------------------------------
@dataclass
class TokenLatents:
    """The k strongest latents of every token of some texts (BOS left out), stored sparsely."""
    str_tokens: list[list[str]]  # per text, BOS included
    text_ids: torch.Tensor       # [n_tokens] which text each row comes from
    positions: torch.Tensor      # [n_tokens] position in that text (>= 1)
    values: torch.Tensor         # [n_tokens, k]
    indices: torch.Tensor        # [n_tokens, k]
    n_latents: int

    def __len__(self) -> int:
        return len(self.positions)

    def dense(self, latents: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """Activations of the chosen latents at every token: [n_tokens, len(latents)]."""
        latents = torch.as_tensor(latents, dtype=torch.long).reshape(-1)
        column = torch.full((self.n_latents,), -1, dtype=torch.long)
        column[latents] = torch.arange(len(latents))
        col = column[self.indices]
        rows = torch.arange(len(self)).unsqueeze(1).expand_as(col)
        hit = col >= 0
        out = torch.zeros(len(self), len(latents))
        return out.index_put_((rows[hit], col[hit]), self.values[hit].float(), accumulate=True)

    def active_latents(self) -> torch.Tensor:
        """Sorted indices of latents that fire on at least one token."""
        return self.indices[self.values > 0].unique()

    def last_tokens(self) -> "TokenLatents":
        """Only each text's last token: where a prompt-level concept ("i hate him.") is fully known."""
        rows = last_rows(self.text_ids)
        return TokenLatents(self.str_tokens, self.text_ids[rows], self.positions[rows], self.values[rows],
                            self.indices[rows], self.n_latents)

    def density(self, latent: int) -> float:
        """Fraction of the tokens on which `latent` fires."""
        return float((self.dense([check_latent(self.n_latents, latent)])[:, 0] > 0).float().mean())

    def token(self, row: int) -> str:
        return self.str_tokens[int(self.text_ids[row])][int(self.positions[row])]

    def context(self, row: int, before: int = 6, after: int = 2) -> str:
        """The text around a row's token, the token itself in [[brackets]]."""
        toks, p = self.str_tokens[int(self.text_ids[row])], int(self.positions[row])
        return ("".join(toks[max(1, p - before):p]) + "[[" + toks[p] + "]]" + "".join(toks[p + 1:p + 1 + after]))


@torch.no_grad()
def collect_latents(model: Any, sae: SAE, texts: Sequence[str], k: int | None = None,
                    batch_size: int = 32) -> TokenLatents:
    """Encode every token of `texts` (BOS left out) and keep its k strongest latents (default sae.k or 32)."""
    if isinstance(texts, str) or len(texts) == 0:
        raise ValueError("texts must be a non-empty list of strings")
    k = min(k or sae.k or 32, sae.n_latents)
    pad = model.tokenizer.pad_token_id or 0
    token_lists = [to_tokens(model, t)[0] for t in texts]
    check_context(sae, max(len(t) for t in token_lists) - 1)
    str_tokens, text_ids, positions, values, indices = [], [], [], [], []
    for start in range(0, len(texts), batch_size):
        chunk = token_lists[start:start + batch_size]
        # Right padding is harmless: causal attention never lets a real token see the padding after it.
        batch = torch.nn.utils.rnn.pad_sequence(chunk, batch_first=True, padding_value=pad)
        acts = hook_activations(model, _hook(sae), batch.to(model.cfg.device))
        for j, toks in enumerate(chunk):
            v, i = sae.encode_topk(acts[j, 1:len(toks)].to(sae.pre_bias.dtype), k=k)
            values.append(v.cpu()), indices.append(i.cpu())
            text_ids.append(torch.full((len(toks) - 1,), start + j)), positions.append(torch.arange(1, len(toks)))
            str_tokens.append(model.to_str_tokens(toks))
    return TokenLatents(str_tokens, torch.cat(text_ids), torch.cat(positions), torch.cat(values),
                        torch.cat(indices), sae.n_latents)


def contrast_latents(group_a: TokenLatents, group_b: TokenLatents, top: int = 10,
                     by: str = "auroc") -> list[dict[str, float]]:
    """Latents that fire more on group_a's tokens than on group_b's, ranked by AUROC or mean difference.
    Each row: latent, mean_a, mean_b, mean_diff, auroc (1.0: every a-token outscores every b-token)."""
    if by not in ("auroc", "mean_diff"):
        raise ValueError(f"by must be 'auroc' or 'mean_diff'; got {by!r}")
    candidates = torch.cat([group_a.active_latents(), group_b.active_latents()]).unique()
    a, b = group_a.dense(candidates), group_b.dense(candidates)  # latents that never fire: AUROC 0.5
    au = auroc(torch.cat([a, b]), torch.cat([torch.ones(len(a)), torch.zeros(len(b))]).bool())
    diff = a.mean(0) - b.mean(0)
    order = _rank(au, diff, by)
    return [{"latent": int(candidates[j]), "mean_a": float(a[:, j].mean()), "mean_b": float(b[:, j].mean()),
             "mean_diff": float(diff[j]), "auroc": float(au[j])} for j in order[:top]]


def separation(group_a: TokenLatents, group_b: TokenLatents, latent: int) -> float:
    """AUROC of one latent for telling group_a's tokens from group_b's (1.0: every a-token outscores every b-token)."""
    latent = check_latent(group_a.n_latents, latent)
    a, b = group_a.dense([latent])[:, 0], group_b.dense([latent])[:, 0]
    return float(auroc(torch.cat([a, b]), torch.cat([torch.ones(len(a)), torch.zeros(len(b))]).bool()))


def _rank(au: torch.Tensor, diff: torch.Tensor, by: str) -> list[int]:
    """Indices sorted by the chosen score, the other one breaking ties."""
    keys = list(zip(au.tolist(), diff.tolist()))
    return sorted(range(len(keys)), key=lambda j: keys[j] if by == "auroc" else keys[j][::-1], reverse=True)


def label_auroc(token_latents: TokenLatents, latent: int, labels: Sequence[str], target: str,
                per: str = "token") -> float:
    """AUROC of one latent for telling tokens labelled `target` from the other labelled tokens ("none"
    labels are left out). `labels` has one entry per row of token_latents.

    per="text" scores each text once instead: the latent's mean over its labelled tokens, against the
    text's label. That asks "does this latent tell negative stories from positive ones?", which a latent
    can do even when it fires on few of a story's tokens (a conjunction latent: "negative sentiment at a full stop")."""
    if len(labels) != len(token_latents):
        raise ValueError(f"need one label per token ({len(token_latents)}); got {len(labels)}")
    if per not in ("token", "text"):
        raise ValueError(f"per must be 'token' or 'text'; got {per!r}")
    scores = token_latents.dense([latent])[:, 0]
    return float(concept_auroc(scores, labels, target, token_latents.text_ids if per == "text" else None))


def top_activating_tokens(token_latents: TokenLatents, latent: int, n: int = 10) -> list[dict[str, Any]]:
    """The n tokens where `latent` fires most: rows of value, token and context."""
    latent = check_latent(token_latents.n_latents, latent)
    acts = token_latents.dense([latent])[:, 0]
    values, rows = acts.topk(min(n, len(acts)))
    return [{"value": float(v), "token": token_latents.token(int(r)), "context": token_latents.context(int(r))}
            for v, r in zip(values, rows) if v > 0]


# --- what a latent writes -----------------------------------------------------------------------------
@torch.no_grad()
def logit_effects(model: Any, sae: SAE, latent: int, n: int = 10
                  ) -> tuple[list[tuple[str, float]], list[tuple[str, float]]]:
    """(tokens the latent's decoder direction promotes most, tokens it suppresses most): W_dec[:, i] @ W_U.
    Direct effect only: it ignores the final LayerNorm and every later block."""
    latent = check_latent(sae, latent)
    logits = sae.W_dec[:, latent].float() @ model.W_U.float().to(sae.W_dec.device)  # [d_vocab]
    up, down = logits.topk(n), (-logits).topk(n)
    decode = model.tokenizer.decode
    return ([(decode([int(i)]), float(v)) for v, i in zip(up.values, up.indices)],
            [(decode([int(i)]), -float(v)) for v, i in zip(down.values, down.indices)])


def neuronpedia_url(latent: int, layer: int = 8, location: str = "resid_post_mlp", size: str = "128k") -> str:
    """Neuronpedia's page for one latent of OpenAI's GPT-2 small v5 SAEs."""
    if location not in NEURONPEDIA_SITES:
        raise ValueError(f"location must be one of {sorted(NEURONPEDIA_SITES)}; got {location!r}")
    if size not in OPENAI_SIZES.values() or not 0 <= layer < 12:
        raise ValueError(f"need size '32k' or '128k' and layer 0-11; got size={size!r}, layer={layer!r}")
    n_latents = {v: k for k, v in OPENAI_SIZES.items()}[size]
    if isinstance(latent, bool) or not isinstance(latent, int) or not 0 <= latent < n_latents:
        raise ValueError(f"latent must be an integer index into the {size} SAE; got {latent!r}")
    return f"{NEURONPEDIA}/{layer}-{NEURONPEDIA_SITES[location]}_{size}-oai/{latent}"


def neuronpedia_url_for(sae: SAE, latent: int) -> str | None:
    """Neuronpedia's page for a latent of this SAE, or None when it is not one of OpenAI's GPT-2 SAEs."""
    latent = check_latent(sae, latent)
    hook = (sae.hook_name or "").split(".")
    if sae.d_model != 768 or sae.n_latents not in OPENAI_SIZES or len(hook) != 3 or hook[2] not in HOOK_TO_LOCATION:
        return None
    return neuronpedia_url(latent, hook_layer(sae.hook_name), HOOK_TO_LOCATION[hook[2]], OPENAI_SIZES[sae.n_latents])
