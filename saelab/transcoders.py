"""Transcoders: sparse features that read an MLP's input and write its output.

    latents = TopK(W_enc (x - b_out) + b_lat)          x = the MLP's input (ln2's output)
    mlp_out ~ W_dec latents + b_out + W_skip x          the skip term is optional

An SAE reconstructs its own input; a transcoder predicts *another* activation, so that it can stand in for the
MLP. The encoder/decoder is an `saelab.SAE` trained by `train_sae(..., target=mlp_out)`. The skip term is the
best linear map from input to output (least squares), fitted first; the features then learn what it misses.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from saelab import metrics
from saelab.activations import tokenize_texts
from saelab.files import atomic_path
from saelab.replacement import gpt2_weights, mlp_inputs_outputs
from saelab.sae import SAE
from saelab.training import History, train_sae

TRANSCODERS_PATH = Path(__file__).resolve().parent / "tinyworld" / "files" / "transcoders.pt"


def mlp_hooks(layer: int) -> tuple[str, str]:
    """The TransformerLens hooks of block `layer`'s MLP input (after ln2) and output."""
    return f"blocks.{layer}.mlp.hook_in", f"blocks.{layer}.hook_mlp_out"


@dataclass
class Transcoder:
    """A TopK transcoder for block `layer`'s MLP, with an optional skip term W_skip [d_model, d_model]."""
    sae: SAE
    layer: int
    W_skip: torch.Tensor | None = None

    def output_without_features(self, x: torch.Tensor) -> torch.Tensor:
        """b_out + W_skip x: what the transcoder writes when no feature fires [..., d_model]."""
        out = self.sae.pre_bias.expand_as(x)
        return out + x @ self.W_skip.T if self.W_skip is not None else out

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Feature activations [..., n_latents] for MLP inputs x [..., d_model]."""
        return self.sae.activate(self.sae.encode_pre_act(x))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """The transcoder's guess of the MLP output [..., d_model]."""
        return self.encode(x) @ self.sae.W_dec.T + self.output_without_features(x)


@torch.no_grad()
def mlp_pairs(model: Any, texts: Sequence[str], layers: Sequence[int], batch_size: int = 64
              ) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """For each layer, (MLP inputs, MLP outputs) [n_tokens, d_model] over the texts' tokens (BOS and padding left
    out). Computed from the model's weights (`saelab.replacement`), the same numbers as its hooks
    `blocks.L.mlp.hook_in` and `blocks.L.hook_mlp_out`."""
    weights = gpt2_weights(model)
    pairs: dict[int, tuple[list, list]] = {L: ([], []) for L in layers}
    for b in range(0, len(texts), batch_size):
        tokens, mask = tokenize_texts(model, list(texts[b:b + batch_size]))
        mask[:, 0] = False
        io = mlp_inputs_outputs(weights, tokens)
        for L in layers:
            pairs[L][0].append(io[L][0][mask])
            pairs[L][1].append(io[L][1][mask])
    return {L: (torch.cat(xs), torch.cat(ys)) for L, (xs, ys) in pairs.items()}


def fit_skip(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The least-squares linear map W [d_out, d_in] with y ~ W x + c (the offset c is left to the decoder bias)."""
    xc, yc = x - x.mean(0), y - y.mean(0)
    return torch.linalg.lstsq(xc.double(), yc.double()).solution.T.float()


def train_transcoder(x: torch.Tensor, y: torch.Tensor, layer: int, n_latents: int = 640, k: int = 8,
                     skip: bool = False, n_steps: int = 600, batch_size: int = 1024, lr: float = 2e-3,
                     seed: int = 0) -> tuple[Transcoder, History]:
    """Train a TopK transcoder from MLP inputs x to MLP outputs y [n_tokens, d_model]; return it and its History."""
    if x.shape != y.shape:
        raise ValueError(f"inputs and outputs must have the same shape; got {tuple(x.shape)} and {tuple(y.shape)}")
    W_skip = fit_skip(x, y) if skip else None
    target = y - x @ W_skip.T if skip else y
    sae = SAE(x.shape[1], n_latents, "topk", k=k, normalize=False, hook_name=mlp_hooks(layer)[1])
    history = train_sae(sae, x, target=target, n_steps=n_steps, batch_size=batch_size, lr=lr, seed=seed,
                        aux_k=2 * k, log_every=n_steps, ortho_every=None, precision="fp32")
    return Transcoder(sae.eval(), layer, W_skip), history


def build_transcoders(model: Any, layers: Sequence[int], n_texts: int = 800, seed: int = 0, **kwargs: Any
                      ) -> dict[int, Transcoder]:
    """Train one transcoder per layer on `n_texts` tiny-world stories (what the bundled file holds)."""
    from saelab.activations import tinyworld_texts

    stream = tinyworld_texts(seed=seed + 11)
    pairs = mlp_pairs(model, [next(stream) for _ in range(n_texts)], layers)
    return {L: train_transcoder(*pairs[L], L, seed=seed + L, **kwargs)[0] for L in layers}


def save_transcoders(transcoders: dict[int, Transcoder], path: str | Path) -> Path:
    """Write transcoders {layer: Transcoder} to one file (each in OpenAI's SAE format, plus W_skip)."""
    state = {L: {"sae": tc.sae.state_dict(), "W_skip": tc.W_skip} for L, tc in transcoders.items()}
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load_transcoders(path: str | Path | None = None) -> dict[int, Transcoder]:
    """Load transcoders {layer: Transcoder}: the tiny world's bundled ones by default."""
    path = Path(path) if path is not None else TRANSCODERS_PATH
    if not path.is_file():
        raise FileNotFoundError(f"no transcoder file at {path}; rebuild the tiny world's with "
                                "`python -m saelab.tinyworld.build --transcoders-only`")
    state = torch.load(path, map_location="cpu", weights_only=True)
    out = {}
    for L, s in state.items():
        sae = SAE.from_state_dict(s["sae"], hook_name=mlp_hooks(int(L))[1]).eval()
        sae.normalize = False  # OpenAI's format switches normalisation on for TopK; a transcoder reads raw inputs
        out[int(L)] = Transcoder(sae, int(L), s["W_skip"])
    return out


@torch.no_grad()
def transcoder_fvu(transcoder: Transcoder, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of the MLP output's variance the transcoder does not explain, on held-out pairs."""
    return metrics.fraction_variance_unexplained(y, transcoder(x))


def splice_hooks(stand_ins: dict[int, Callable[[torch.Tensor], torch.Tensor]]) -> list[tuple[str, Any]]:
    """TransformerLens hooks that replace each layer L's MLP output by stand_ins[L](that MLP's input): a
    transcoder's guess (no error term), a linear map, or anything else of that shape."""
    hooks, inputs = [], {}
    for L, fn in stand_ins.items():
        x_name, y_name = mlp_hooks(L)

        def keep_input(act: torch.Tensor, hook: Any, L: int = L) -> None:
            inputs[L] = act

        def replace(act: torch.Tensor, hook: Any, L: int = L, fn: Callable = fn) -> torch.Tensor:
            return fn(inputs[L])

        hooks += [(x_name, keep_input), (y_name, replace)]
    return hooks


def _next_token_loss(logits: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean next-token loss (nats) over the real tokens after BOS."""
    nll = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten(), reduction="none")
    return float(nll[mask[:, 1:].flatten()].mean())


@torch.no_grad()
def replacement_lm_loss(model: Any, transcoders: dict[int, Transcoder], texts: Sequence[str]
                        ) -> dict[str, float]:
    """Next-token loss (nats) of the exact model and of the replacement model (every transcoder spliced in,
    no error terms) on the texts, BOS and padding left out."""
    tokens, mask = tokenize_texts(model, list(texts))
    exact = _next_token_loss(model(tokens), tokens, mask)
    with model.hooks(fwd_hooks=splice_hooks(transcoders)):
        replaced = _next_token_loss(model(tokens), tokens, mask)
    return {"exact": exact, "replacement": replaced}


def linear_stand_in(x: torch.Tensor, y: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The best linear map from MLP inputs x to outputs y [n_tokens, d_model] (least squares), as a function."""
    W, mx, my = fit_skip(x, y), x.mean(0), y.mean(0)
    return lambda a: (a - mx) @ W.T + my


@torch.no_grad()
def spliced_lm_loss(model: Any, texts: Sequence[str], stand_ins: dict[int, Callable[[torch.Tensor], torch.Tensor]]
                    ) -> float:
    """Next-token loss (nats) with each layer's MLP output replaced by stand_ins[L](MLP input), BOS and padding
    left out: a transcoder, a linear map, `lambda x: 0 * x` (zero ablation) or anything else of that shape."""
    tokens, mask = tokenize_texts(model, list(texts))
    with model.hooks(fwd_hooks=splice_hooks(stand_ins)):
        return _next_token_loss(model(tokens), tokens, mask)


# --- what a transcoder feature does: top contexts and logit effects (for the graph's feature card) -------------
@dataclass
class Corpus:
    """Texts with their tokens [n, pos], mask [n, pos] (real tokens after BOS) and MLP inputs per layer."""
    str_tokens: list[list[str]]
    mask: torch.Tensor
    inputs: dict[int, torch.Tensor]  # layer -> [n, pos, d_model]


@torch.no_grad()
def corpus(model: Any, texts: Sequence[str], layers: Sequence[int]) -> Corpus:
    """Run the texts once and keep each layer's MLP input, to look features up later."""
    tokens, mask = tokenize_texts(model, list(texts))
    mask[:, 0] = False
    io = mlp_inputs_outputs(gpt2_weights(model), tokens)
    str_tokens = [[model.tokenizer.decode([t]) for t in row] for row in tokens.tolist()]
    return Corpus(str_tokens, mask, {L: io[L][0] for L in layers})


@torch.no_grad()
def feature_card(model: Any, weights: Any, transcoder: Transcoder, latent: int, data: Corpus, n: int = 6) -> Any:
    """A `saelab.dashboard.FeatureCard` for one transcoder feature: where it fires most in `data`, and which
    next tokens its output direction promotes and suppresses (through ln_f's weight, without the scale)."""
    from saelab.dashboard import FeatureCard

    if not 0 <= latent < transcoder.sae.n_latents:
        raise ValueError(f"latent must be in 0..{transcoder.sae.n_latents - 1}; got {latent}")
    acts = transcoder.encode(data.inputs[transcoder.layer])[..., latent].masked_fill(~data.mask, 0)
    contexts = []
    for value, flat in zip(*acts.flatten().topk(min(n, int((acts > 0).sum())))):
        row, p = divmod(int(flat), acts.shape[1])
        toks = data.str_tokens[row]
        contexts.append((float(value), "".join(toks[max(1, p - 8):p]), toks[p], "".join(toks[p + 1:p + 4])))
    column = transcoder.sae.W_dec[:, latent]
    effect = ((column - column.mean()) * weights.ln_f[0]) @ (weights.W_U - weights.W_U.mean(0)).T
    word = lambda i: model.tokenizer.decode([int(i)])  # noqa: E731
    up, down = effect.topk(5), (-effect).topk(5)
    return FeatureCard(latent, int(data.mask.sum()), acts[acts > 0], contexts,
                       [(word(i), float(v)) for v, i in zip(up.values, up.indices)],
                       [(word(i), float(-v)) for v, i in zip(down.values, down.indices)])


@torch.no_grad()
def top_token(transcoder: Transcoder, latent: int, data: Corpus, n: int = 20) -> str:
    """A short description of a feature: the token it fires on most often among its `n` strongest activations
    in `data` (repr, e.g. "'.'"), or '(silent)' if it never fires there."""
    acts = transcoder.encode(data.inputs[transcoder.layer])[..., latent].masked_fill(~data.mask, 0)
    values, flat = acts.flatten().topk(n)
    words = [data.str_tokens[int(f) // acts.shape[1]][int(f) % acts.shape[1]] for v, f in zip(values, flat) if v > 0]
    return repr(max(set(words), key=words.count)) if words else "(silent)"


@torch.no_grad()
def sentiment_features(transcoders: dict[int, Transcoder], pairs: dict[int, tuple[torch.Tensor, torch.Tensor]],
                       stories: Sequence[Any], threshold: float = 0.9) -> dict[tuple[int, int], str]:
    """{(layer, latent): "positive" | "negative"}: features whose per-story AUROC for the stories' sentiment is at
    least `threshold` (positive) or at most 1 - threshold (negative), on MLP inputs `pairs` of those stories."""
    from saelab.evaluation import story_ids
    from saelab.prompts import token_labels

    labels, ids = token_labels(list(stories), "sentiment"), story_ids(stories)
    found = {}
    for L, (x, _) in pairs.items():
        auroc = metrics.concept_auroc(transcoders[L].encode(x), labels, "positive", ids)
        found |= {(L, int(i)): "positive" for i in (auroc >= threshold).nonzero().flatten()}
        found |= {(L, int(i)): "negative" for i in (auroc <= 1 - threshold).nonzero().flatten()}
    return found


@torch.no_grad()
def explain_features(transcoders: dict[int, Transcoder], pairs: dict[int, tuple[torch.Tensor, torch.Tensor]],
                     stories: Sequence[Any], features: Sequence[tuple[int, int]], seed: int = 0) -> dict:
    """{(layer, latent): the autointerp predicate (`saelab.autointerp.explain`) over the stories' known facts}."""
    from saelab import autointerp as ai
    from saelab.prompts import token_labels

    facts = ai.Facts({"word": [w for s in stories for w in s.words],
                      **{c: token_labels(list(stories), c) for c in stories[0].labels}})
    acts = {L: transcoders[L].encode(pairs[L][0]) for L in {L for L, _ in features}}
    return {(L, i): ai.explain(acts[L][:, i], facts, seed=seed) for L, i in features}


@torch.no_grad()
def promoted_word(model: Any, weights: Any, transcoder: Transcoder, latent: int) -> str:
    """The next token a feature's output direction promotes most (through ln_f's weight and the unembedding)."""
    column = transcoder.sae.W_dec[:, latent]
    effect = ((column - column.mean()) * weights.ln_f[0]) @ (weights.W_U - weights.W_U.mean(0)).T
    return model.tokenizer.decode([int(effect.argmax())])
