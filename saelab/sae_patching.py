"""Activation patching down to SAE latents: which latents, at one position, carry what the model uses?

At the SAE's hook the activation is split exactly into reconstruction + error term,

    x = decode(z, info) + error,    z = encode(x),    error = x - decode(z, info)

where `info` (the per-token mean and std that a normalising SAE such as OpenAI's takes from x) is kept fixed.
Splicing the SAE in therefore changes nothing until a latent is changed; setting z_i to z_i' then moves x by
(z_i' - z_i) * W_dec[:, i] (times std for a normalising SAE) and leaves the error term alone.

    latent_patching     z_i := its clean value, in the corrupted run      one batch row per latent
    latent_ablation     z_i := 0, in the clean run                        one batch row per latent
    latent_attribution  grad_z metric * (z_clean - z_corrupted)           one forward + one backward, all latents
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch

from saelab.features import _hook
from saelab.models import check_position
from saelab.patching import Metric, _metric_values, normaliser, pair_tokens
from saelab.plots import format_table
from saelab.sae import SAE


@dataclass
class LatentEffects:
    """Each latent's effect on the normalised metric (clean = 1, corrupted = 0), strongest |effect| first."""
    latents: torch.Tensor    # [n] latent indices
    effects: torch.Tensor    # [n] change of the normalised metric
    clean: torch.Tensor      # [n] the latent's activation in the clean run at `position`
    corrupted: torch.Tensor  # [n] ... in the corrupted run
    position: int
    token: str
    method: str              # "patching", "ablation" or "attribution"

    def __len__(self) -> int:
        return len(self.latents)

    def top(self, n: int = 10) -> list[int]:
        """The n latents with the largest |effect|."""
        return self.latents[:n].tolist()

    def effect_of(self, latents: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """Effects of the given latents [len(latents)], 0 for latents not listed here (inactive at the position)."""
        lookup = dict(zip(self.latents.tolist(), self.effects.tolist()))
        return torch.tensor([lookup.get(int(i), 0.0) for i in torch.as_tensor(latents).reshape(-1)])

    def rows(self, n: int = 10) -> list[dict[str, Any]]:
        """The top n as table rows (for saelab.plots.format_table)."""
        return [{"latent": int(i), "effect": float(e), "clean act": float(c), "corrupted act": float(k)}
                for i, e, c, k in zip(self.latents[:n], self.effects[:n], self.clean[:n], self.corrupted[:n])]

    def __str__(self) -> str:
        return (f"latent {self.method} at position {self.position} ({self.token!r}), {len(self)} latents, "
                f"strongest first:\n{format_table(self.rows())}")


# --- the splice ---------------------------------------------------------------------------------------
def sae_splice_hook(sae: SAE, edit: Callable[[torch.Tensor], torch.Tensor] | None = None) -> Callable:
    """A hook fn(activation, hook) that writes the activation as decode(edit(z)) + error term; without `edit`
    it gives the activation back unchanged (up to float rounding), also for normalising SAEs."""
    def hook(activation: torch.Tensor, hook: Any) -> torch.Tensor:
        x, info = sae.preprocess(activation.to(sae.pre_bias.dtype))
        latents = sae.activate(sae.encode_pre_act(x))
        error = activation - sae.decode(latents, info)
        if edit is not None:
            latents = edit(latents.clone())
        return (sae.decode(latents, info) + error).to(activation.dtype)
    return hook


@dataclass
class _Run:
    """One prompt's run with the SAE at its hook: metric value, latents [pos, n_latents], per-token scale [pos]."""
    metric: float
    latents: torch.Tensor
    scale: torch.Tensor


@torch.no_grad()
def _run(model: Any, sae: SAE, tokens: torch.Tensor, metric: Metric) -> _Run:
    hook_name = _hook(sae)
    logits, cache = model.run_with_cache(tokens, names_filter=[hook_name])
    x, info = sae.preprocess(cache[hook_name][0].to(sae.pre_bias.dtype))
    latents = sae.activate(sae.encode_pre_act(x))
    scale = info["std"][:, 0] if sae.normalize else torch.ones(len(x), device=x.device)
    return _Run(float(_metric_values(metric, logits)[0]), latents, scale)


def _setup(model: Any, sae: SAE, clean: Any, corrupted: Any, metric: Metric, position: int):
    clean_tokens, corrupted_tokens = pair_tokens(model, clean, corrupted)
    position = check_position(position, clean_tokens.shape[1])
    runs = _run(model, sae, clean_tokens, metric), _run(model, sae, corrupted_tokens, metric)
    token = model.to_str_tokens(clean_tokens[0, position:position + 1])[0]
    return clean_tokens, corrupted_tokens, position, runs, token


def _latents(candidates: torch.Tensor, latents: Sequence[int] | None, n_latents: int) -> torch.Tensor:
    """The latents to test: those given (checked), else the active ones (`candidates`, a bool mask)."""
    if latents is None:
        return candidates.nonzero()[:, 0].cpu()
    latents = torch.as_tensor(latents, dtype=torch.long).reshape(-1)
    if len(latents) == 0 or latents.min() < 0 or latents.max() >= n_latents:
        raise ValueError(f"latents must be a non-empty list of indices from 0 to {n_latents - 1}")
    return latents


@torch.no_grad()
def _patched_metric(model: Any, sae: SAE, tokens: torch.Tensor, position: int, latents: torch.Tensor,
                    deltas: torch.Tensor, scale: float, metric: Metric, batch_size: int) -> torch.Tensor:
    """Metric [n] when row r adds deltas[r] * W_dec[:, latents[r]] * scale at `position`: exactly
    decode(z with latent r changed) + error term, in one batch row per latent."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    out = torch.empty(len(latents))
    for start in range(0, len(latents), batch_size):
        idx = latents[start:start + batch_size].to(sae.W_dec.device)
        moves = (sae.W_dec[:, idx] * deltas[start:start + batch_size].to(sae.W_dec.device) * scale).T  # [b, d]

        def hook(activation: torch.Tensor, hook: Any) -> torch.Tensor:
            activation[:, position] += moves.to(activation.dtype)
            return activation
        logits = model.run_with_hooks(tokens.repeat(len(idx), 1), fwd_hooks=[(_hook(sae), hook)])
        out[start:start + len(idx)] = _metric_values(metric, logits)
    return out


def _sorted(latents: torch.Tensor, effects: torch.Tensor, clean: _Run, corrupted: _Run, position: int,
            token: str, method: str) -> LatentEffects:
    order = effects.abs().argsort(descending=True, stable=True)
    latents = latents[order]
    return LatentEffects(latents, effects[order], clean.latents[position, latents.to(clean.latents.device)].cpu(),
                         corrupted.latents[position, latents.to(clean.latents.device)].cpu(), position, token, method)


# --- the three methods --------------------------------------------------------------------------------
def latent_patching(model: Any, sae: SAE, clean: str | torch.Tensor, corrupted: str | torch.Tensor,
                    metric: Metric, position: int = -1, latents: Sequence[int] | None = None,
                    batch_size: int = 64) -> LatentEffects:
    """Copy each latent's clean value into the corrupted run at `position` (default: every latent active
    there in either run), `batch_size` latents per forward pass; effect = normalised metric after the patch."""
    _, tokens, position, (c, k), token = _setup(model, sae, clean, corrupted, metric, position)
    norm = normaliser(c.metric, k.metric)
    chosen = _latents((c.latents[position] != 0) | (k.latents[position] != 0), latents, sae.n_latents)
    deltas = (c.latents[position] - k.latents[position])[chosen.to(c.latents.device)].cpu()
    values = _patched_metric(model, sae, tokens, position, chosen, deltas, float(k.scale[position]), metric,
                             batch_size)
    return _sorted(chosen, norm(values), c, k, position, token, "patching")


def latent_ablation(model: Any, sae: SAE, clean: str | torch.Tensor, corrupted: str | torch.Tensor,
                    metric: Metric, position: int = -1, latents: Sequence[int] | None = None,
                    batch_size: int = 64) -> LatentEffects:
    """Set each latent active in the clean run at `position` to zero, in the clean run; effect = change of the
    normalised metric (negative: the latent was helping the clean answer)."""
    tokens, _, position, (c, k), token = _setup(model, sae, clean, corrupted, metric, position)
    norm = normaliser(c.metric, k.metric)
    chosen = _latents(c.latents[position] != 0, latents, sae.n_latents)
    deltas = -c.latents[position][chosen.to(c.latents.device)].cpu()
    values = _patched_metric(model, sae, tokens, position, chosen, deltas, float(c.scale[position]), metric,
                             batch_size)
    return _sorted(chosen, norm(values) - 1.0, c, k, position, token, "ablation")


def latent_attribution(model: Any, sae: SAE, clean: str | torch.Tensor, corrupted: str | torch.Tensor,
                       metric: Metric, position: int = -1, latents: Sequence[int] | None = None) -> LatentEffects:
    """Attribution patching: the first-order estimate of `latent_patching` for every latent at once,
    grad of the metric w.r.t. the corrupted run's latents * (z_clean - z_corrupted), normalised.
    One forward and one backward pass of the corrupted run (plus the clean run for z_clean)."""
    _, tokens, position, (c, k), token = _setup(model, sae, clean, corrupted, metric, position)
    norm = normaliser(c.metric, k.metric)
    leaf: list[torch.Tensor] = []

    def as_leaf(z: torch.Tensor) -> torch.Tensor:  # the spliced latents become the leaf we differentiate by
        leaf.append(z.detach().requires_grad_(True))
        return leaf[-1]

    with torch.enable_grad():
        logits = model.run_with_hooks(tokens, fwd_hooks=[(_hook(sae), sae_splice_hook(sae, as_leaf))])
        values = metric(logits)
        if not values.requires_grad:
            raise ValueError("the metric does not depend on the model's logits through autograd; "
                             "compute it with torch operations on `logits`")
        (grad,) = torch.autograd.grad(values.sum(), leaf[0])
    chosen = _latents((c.latents[position] != 0) | (k.latents[position] != 0), latents, sae.n_latents)
    on = chosen.to(grad.device)
    estimate = (grad[0, position, on] * (c.latents[position, on] - k.latents[position, on])).detach().float().cpu()
    return _sorted(chosen, norm(estimate + k.metric), c, k, position, token, "attribution")


# --- comparing them -----------------------------------------------------------------------------------
def attribution_agreement(real: LatentEffects, estimate: LatentEffects, top: int = 20) -> dict[str, Any]:
    """Real patching effects vs attribution estimates on the `top` latents by real |effect|: the latents,
    both effect vectors [top] and their Pearson correlation."""
    latents = torch.as_tensor(real.top(top))
    a, b = real.effect_of(latents), estimate.effect_of(latents)
    if len(latents) < 3 or a.std() == 0 or b.std() == 0:
        raise ValueError("need at least 3 latents with varying effects to correlate; use a larger `top`")
    corr = float(torch.corrcoef(torch.stack([a, b]))[0, 1])
    return {"latents": latents.tolist(), "real": a, "estimate": b, "correlation": corr}


def plot_attribution(agreement: dict[str, Any], ax: Any = None, label: int = 5) -> Any:
    """Scatter of real patching effect vs attribution estimate per latent (the `label` strongest named)."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(5.5, 4.5))[1]
    a, b = agreement["real"], agreement["estimate"]
    ax.scatter(a, b, color="tab:purple")
    lo, hi = float(min(a.min(), b.min())), float(max(a.max(), b.max()))
    ax.plot([lo, hi], [lo, hi], color="gray", linestyle="--", label="estimate = real")
    for i, latent in enumerate(agreement["latents"][:label]):
        ax.annotate(str(latent), (float(a[i]), float(b[i])), fontsize=8, xytext=(3, 3), textcoords="offset points")
    ax.set(title=f"Attribution vs real latent patching (r = {agreement['correlation']:.2f})",
           xlabel="real patching effect (normalised metric)", ylabel="attribution estimate")
    ax.legend(loc="upper left")
    return ax
