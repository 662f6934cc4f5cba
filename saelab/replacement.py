"""GPT-2's forward pass written out from its weights, so that parts of it can be *frozen* or *replaced*.

    resid_0 = W_E[token] + W_pos[position]
    resid  += attn(ln1(resid))        pattern = softmax(q k^T / sqrt(d_head)) ; out = pattern v W_O
    resid  += mlp(ln2(resid))         mlp = W_out gelu(W_in x)     <- a transcoder may stand in for it
    logits  = ln_f(resid) W_U^T

`clean_run` runs the real model (the same numbers as the TransformerBridge) and records the attention patterns
and LayerNorm scales. `frozen_run` reuses those: with patterns and scales fixed, attention and LayerNorm are
linear maps, so a model whose MLPs are all replaced by transcoders is *linear in its feature activations*. That
is what makes attribution graphs exact (`saelab.graphs`).

A *site* is where features sit: `TranscoderSite` (reads the MLP input, writes the MLP output) or `ResidSite`
(an SAE on `blocks.L.hook_resid_post` that replaces the residual stream). Each site's *error* (true minus
reconstruction, from the clean run) is kept, so the clean run's numbers are reproduced exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from saelab.sae import EPS as SAE_EPS


@dataclass
class GPT2Weights:
    """The weights of a GPT-2-architecture model, as plain tensors (Conv1D layout: x @ W)."""
    wte: torch.Tensor            # [d_vocab, d_model]
    wpe: torch.Tensor            # [n_ctx, d_model]
    blocks: list[dict[str, torch.Tensor]]
    ln_f: tuple[torch.Tensor, torch.Tensor]
    W_U: torch.Tensor            # [d_vocab, d_model]
    b_U: torch.Tensor | None
    n_heads: int
    eps: float = 1e-5

    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    @property
    def n_ctx(self) -> int:
        return self.wpe.shape[0]


def gpt2_weights(model: Any) -> GPT2Weights:
    """Read the weights out of a TransformerBridge (or a Hugging Face GPT2LMHeadModel) holding a GPT-2."""
    hf = getattr(model, "original_model", model)
    sd = {k.replace("._original_component", ""): v.detach() for k, v in hf.state_dict().items()}
    cfg = hf.config
    if getattr(cfg, "model_type", "") != "gpt2":
        raise ValueError(f"saelab's replacement model needs a GPT-2-architecture model; got {cfg.model_type!r}")
    blocks = []
    for L in range(cfg.n_layer):
        p = f"transformer.h.{L}."
        blocks.append({name: sd[p + key] for name, key in (
            ("ln1_w", "ln_1.weight"), ("ln1_b", "ln_1.bias"), ("W_qkv", "attn.c_attn.weight"),
            ("b_qkv", "attn.c_attn.bias"), ("W_O", "attn.c_proj.weight"), ("b_O", "attn.c_proj.bias"),
            ("ln2_w", "ln_2.weight"), ("ln2_b", "ln_2.bias"), ("W_in", "mlp.c_fc.weight"),
            ("b_in", "mlp.c_fc.bias"), ("W_out", "mlp.c_proj.weight"), ("b_out", "mlp.c_proj.bias"))})
    return GPT2Weights(sd["transformer.wte.weight"], sd["transformer.wpe.weight"], blocks,
                       (sd["transformer.ln_f.weight"], sd["transformer.ln_f.bias"]), sd["lm_head.weight"],
                       sd.get("lm_head.bias"), cfg.n_head, cfg.layer_norm_epsilon)


# --- sites: where features are read and written -----------------------------------------------------
class Site(Protocol):
    """Features at one layer: `read` -> pre-activations -> activations -> `write` (see the two classes)."""
    layer: int
    kind: str  # "mlp" (a transcoder) or "resid" (a residual-stream SAE)

    def pre_acts(self, x: torch.Tensor) -> torch.Tensor: ...
    def activate(self, pre: torch.Tensor) -> torch.Tensor: ...


@dataclass
class TranscoderSite:
    """A transcoder standing in for block `layer`'s MLP: reads ln2's output, writes the MLP output."""
    transcoder: Any  # saelab.transcoders.Transcoder
    layer: int
    kind: str = "mlp"

    def pre_acts(self, x: torch.Tensor) -> torch.Tensor:
        return self.transcoder.sae.encode_pre_act(x)

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        return self.transcoder.sae.activate(pre)

    @property
    def sae(self) -> Any:
        """The transcoder's encoder/decoder (an saelab.SAE whose output bias is pre_bias)."""
        return self.transcoder.sae

    def write_rest(self, x: torch.Tensor) -> torch.Tensor:
        """The part of the output that is not features: output bias + skip term W_skip x."""
        return self.transcoder.output_without_features(x)


@dataclass
class ResidSite:
    """An SAE on `blocks.{layer}.hook_resid_post` (OpenAI v5 standardises its input per token)."""
    sae: Any  # saelab.SAE
    layer: int
    kind: str = "resid"

    def pre_acts(self, x: torch.Tensor) -> torch.Tensor:
        return self.sae.encode_pre_act(x)

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        return self.sae.activate(pre)


@dataclass
class CleanRun:
    """What the real model computed: logits, frozen patterns and scales, and each site's features and error."""
    tokens: torch.Tensor                              # [pos]
    logits: torch.Tensor                              # [pos, d_vocab]
    embed: torch.Tensor                               # [pos, d_model]
    patterns: list[torch.Tensor] = field(default_factory=list)   # [n_heads, pos, pos] per layer
    scales: dict[str, torch.Tensor] = field(default_factory=dict)  # "ln1.L", "ln2.L", "ln_f", "sae.L": [pos, 1]
    means: dict[str, torch.Tensor] = field(default_factory=dict)   # "sae.L": [pos, 1] (standardised SAEs)
    acts: dict[int, torch.Tensor] = field(default_factory=dict)    # site layer -> [pos, n_latents]
    errors: dict[int, torch.Tensor] = field(default_factory=dict)  # site layer -> [pos, d_model]


def layer_norm(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """LayerNorm with a given scale sqrt(var + eps): linear in x when the scale is frozen."""
    return (x - x.mean(-1, keepdim=True)) / scale * w + b


def ln_scale(x: torch.Tensor, eps: float) -> torch.Tensor:
    """The scale LayerNorm divides by: sqrt(biased variance + eps), [..., 1]."""
    return (x.var(-1, keepdim=True, unbiased=False) + eps).sqrt()


def attention_pattern(w: dict[str, torch.Tensor], h: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Causal attention pattern [..., n_heads, pos, pos] from the normalised input h [..., pos, d_model]."""
    d = h.shape[-1]
    q, k, _ = (h @ w["W_qkv"] + w["b_qkv"]).split(d, dim=-1)
    q, k = (t.unflatten(-1, (n_heads, d // n_heads)).transpose(-2, -3) for t in (q, k))
    scores = q @ k.transpose(-1, -2) / math.sqrt(d // n_heads)
    n = h.shape[-2]
    causal = torch.ones(n, n, dtype=torch.bool, device=h.device).tril()
    return scores.masked_fill(~causal, float("-inf")).softmax(-1)


def attention_out(w: dict[str, torch.Tensor], h: torch.Tensor, pattern: torch.Tensor, n_heads: int) -> torch.Tensor:
    """pattern @ v @ W_O + b_O: [..., pos, d_model] (linear in h for a fixed pattern)."""
    d = h.shape[-1]
    v = (h @ w["W_qkv"][:, 2 * d:] + w["b_qkv"][2 * d:]).unflatten(-1, (n_heads, d // n_heads)).transpose(-2, -3)
    z = (pattern @ v).transpose(-2, -3).flatten(-2)
    return z @ w["W_O"] + w["b_O"]


def mlp(w: dict[str, torch.Tensor], h: torch.Tensor) -> torch.Tensor:
    """GPT-2's MLP: W_out gelu_new(W_in h + b_in) + b_out."""
    return F.gelu(h @ w["W_in"] + w["b_in"], approximate="tanh") @ w["W_out"] + w["b_out"]


def check_sites(weights: GPT2Weights, sites: dict[int, Any]) -> None:
    """Raise a ValueError naming a site whose layer does not exist."""
    bad = [L for L in sites if not 0 <= L < weights.n_layers]
    if bad:
        raise ValueError(f"layers {bad} do not exist: the model has layers 0..{weights.n_layers - 1}")


def check_length(weights: GPT2Weights, n_tokens: int) -> None:
    """A prompt longer than the model's context cannot be run: say so."""
    if n_tokens > weights.n_ctx:
        raise ValueError(f"the prompt is {n_tokens} tokens long but the model reads at most {weights.n_ctx}; "
                         "shorten it")


@torch.no_grad()
def clean_run(weights: GPT2Weights, tokens: torch.Tensor, sites: dict[int, Any]) -> CleanRun:
    """Run the real model on tokens [pos]; record patterns, LayerNorm scales, site activations and errors."""
    return run_model(weights, tokens, sites)


@torch.no_grad()
def run_model(weights: GPT2Weights, tokens: torch.Tensor, sites: dict[int, Any],
              errors: dict[int, torch.Tensor] | None = None,
              scale: dict[tuple[int, int, int], float] | None = None, frozen: CleanRun | None = None,
              freeze: tuple[str, ...] = ("attention", "layernorm"), keep_mlps: bool = False) -> CleanRun:
    """The real model on tokens [pos] (patterns and LayerNorm recomputed, every nonlinearity kept).

    Without `errors`: the clean run, each site's error = true output - reconstruction. With `errors` (from a
    clean run) each site writes its reconstruction + that kept error, and `scale` {(layer, pos, latent): factor}
    multiplies chosen feature activations first (0 switches a feature off): an intervention on features in the
    *local replacement model*. With `frozen` (a clean run) what `freeze` names ("attention": the patterns,
    "layernorm": the LayerNorm scales) is taken from it instead. With `keep_mlps=True` every MLP runs as usual
    and a scaled feature only changes its MLP's output by (factor - 1) x activation x decoder column: an
    intervention in the *real model* (no errors are kept, no other feature is involved).
    """
    check_sites(weights, sites)
    tokens = tokens.reshape(-1)
    check_length(weights, len(tokens))
    eps, P = weights.eps, len(tokens)
    embed = weights.wte[tokens] + weights.wpe[:P]
    run = CleanRun(tokens, torch.empty(0), embed)
    resid = embed
    bad = set(freeze) - {"attention", "layernorm"}
    if bad:
        raise ValueError(f"freeze may name 'attention' and 'layernorm'; got {sorted(bad)}")
    fixed_ln = frozen if frozen is not None and "layernorm" in freeze else None
    fixed_attn = frozen if frozen is not None and "attention" in freeze else None
    for L, w in enumerate(weights.blocks):
        run.scales[f"ln1.{L}"] = s1 = ln_scale(resid, eps) if fixed_ln is None else fixed_ln.scales[f"ln1.{L}"]
        h = layer_norm(resid, w["ln1_w"], w["ln1_b"], s1)
        run.patterns.append(attention_pattern(w, h, weights.n_heads) if fixed_attn is None else fixed_attn.patterns[L])
        resid = resid + attention_out(w, h, run.patterns[-1], weights.n_heads)
        run.scales[f"ln2.{L}"] = s2 = ln_scale(resid, eps) if fixed_ln is None else fixed_ln.scales[f"ln2.{L}"]
        h2 = layer_norm(resid, w["ln2_w"], w["ln2_b"], s2)
        out = mlp(w, h2)
        site = sites.get(L)
        if site is not None and site.kind == "mlp" and keep_mlps:
            acts = site.activate(site.pre_acts(h2))
            run.acts[L] = _scaled(acts.clone(), L, scale)
            out = out + (run.acts[L] - acts) @ site.sae.W_dec.T
        elif site is not None and site.kind == "mlp":
            acts = _scaled(site.activate(site.pre_acts(h2)), L, scale)
            recon = acts @ site.sae.W_dec.T + site.write_rest(h2)
            run.acts[L] = acts
            run.errors[L] = out - recon if errors is None else errors[L]
            out = recon + run.errors[L]
        resid = resid + out
        if site is not None and site.kind == "resid":
            x, mu, std = _standardise(site.sae, resid)
            run.scales[f"sae.{L}"], run.means[f"sae.{L}"] = std, mu
            acts = _scaled(site.activate(site.pre_acts(x)), L, scale)
            recon = (acts @ site.sae.W_dec.T + site.sae.pre_bias) * std + mu
            run.acts[L] = acts
            run.errors[L] = resid - recon if errors is None else errors[L]
            resid = recon + run.errors[L]
    run.scales["ln_f"] = sf = ln_scale(resid, eps) if fixed_ln is None else fixed_ln.scales["ln_f"]
    run.logits = layer_norm(resid, *weights.ln_f, sf) @ weights.W_U.T
    if weights.b_U is not None:
        run.logits = run.logits + weights.b_U
    return run


def _scaled(acts: torch.Tensor, layer: int, scale: dict[tuple[int, int, int], float] | None) -> torch.Tensor:
    """acts [pos, n_latents] with the chosen (layer, pos, latent) entries multiplied by their factor."""
    for (L, p, i), factor in (scale or {}).items():
        if L == layer:
            acts[p, i] = acts[p, i] * factor
    return acts


def frozen_forward(weights: GPT2Weights, run: CleanRun, sites: dict[int, Any], embed: torch.Tensor,
                   writes: dict[int, torch.Tensor], errors: dict[int, torch.Tensor], stop_after: int | None = None,
                   start_after: int | None = None) -> tuple[dict[int, torch.Tensor], torch.Tensor | None]:
    """The replacement model with the clean run's attention patterns and LayerNorm scales frozen.

    embed [batch, pos, d_model]; writes[L] [batch, pos, d_model]: what site L's features write (decoder x
    activations); errors[L] [batch, pos, d_model]. Returns (reads: site layer -> what its encoder reads, before
    that site writes; the final LayerNorm's output [batch, pos, d_model], or None with `stop_after` a layer).
    With every MLP replaced by a transcoder this function is linear in embed, writes and errors; a layer without
    a site keeps its real MLP. A residual-stream site S replaces the whole stream, so nothing before it reaches
    later layers: `start_after=S` starts the run from S's output (embed and earlier sites are then unused).
    """
    reads, resid = {}, embed
    if start_after is not None:
        resid = _resid_site_output(sites[start_after], run, writes, errors, start_after)
    first = 0 if start_after is None else start_after + 1
    last = weights.n_layers - 1 if stop_after is None else stop_after
    for L in range(first, last + 1):
        w, site = weights.blocks[L], sites.get(L)
        h = layer_norm(resid, w["ln1_w"], w["ln1_b"], run.scales[f"ln1.{L}"])
        resid = resid + attention_out(w, h, run.patterns[L], weights.n_heads)
        h2 = layer_norm(resid, w["ln2_w"], w["ln2_b"], run.scales[f"ln2.{L}"])
        if site is not None and site.kind == "mlp":
            reads[L] = h2
            resid = resid + writes[L] + site.write_rest(h2) + errors[L]
        else:
            resid = resid + mlp(w, h2)
        if site is not None and site.kind == "resid":
            std = run.scales[f"sae.{L}"]
            reads[L] = (resid - resid.mean(-1, keepdim=True)) / (std + SAE_EPS) if site.sae.normalize else resid
            resid = _resid_site_output(site, run, writes, errors, L)
    if stop_after is not None:
        return reads, None
    return reads, layer_norm(resid, *weights.ln_f, run.scales["ln_f"])


def _resid_site_output(site: Any, run: CleanRun, writes: dict, errors: dict, L: int) -> torch.Tensor:
    """A residual-stream site's replacement of the stream: (features + b) * frozen std + frozen mean + error."""
    std = run.scales[f"sae.{L}"]
    return writes[L] * std + site.sae.pre_bias * std + run.means[f"sae.{L}"] + errors[L]


def _standardise(sae: Any, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x as the SAE reads it, mean, std) per token; for SAEs without normalisation mean 0 and std 1."""
    x_in, info = sae.preprocess(x)
    if not info:
        return x_in, torch.zeros_like(x[..., :1]), torch.ones_like(x[..., :1])
    return x_in, info["mu"], info["std"]


@torch.no_grad()
def mlp_inputs_outputs(weights: GPT2Weights, tokens: torch.Tensor) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """Every block's MLP input (ln2's output) and output for tokens [batch, pos]: layer -> ([b, pos, d], [b, pos, d])."""
    check_length(weights, tokens.shape[-1])
    resid = weights.wte[tokens] + weights.wpe[:tokens.shape[-1]]
    out = {}
    for L, w in enumerate(weights.blocks):
        h = layer_norm(resid, w["ln1_w"], w["ln1_b"], ln_scale(resid, weights.eps))
        resid = resid + attention_out(w, h, attention_pattern(w, h, weights.n_heads), weights.n_heads)
        h2 = layer_norm(resid, w["ln2_w"], w["ln2_b"], ln_scale(resid, weights.eps))
        out[L] = (h2, mlp(w, h2))
        resid = resid + out[L][1]
    return out
