"""Small matplotlib helpers for the notebooks. Each returns its Figure (assign it: `fig = plot_...(...)`)."""
from __future__ import annotations

from typing import Any, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Rectangle

from saelab.training import History


def plot_history(history: History, title: str = "SAE training", fig: Figure | None = None) -> Figure:
    """Loss (and its MSE part), L0, FVU and dead fraction against the training step.

    Pass a `fig` made without pyplot (matplotlib.figure.Figure) to draw from a background thread.
    """
    fig = fig if fig is not None else plt.figure(figsize=(14, 3.2))
    fig.clear()
    axes = fig.subplots(1, 4)
    axes[0].plot(history.step, history.loss, label="loss")
    axes[0].plot(history.step, history.mse, label="MSE part", linestyle="--")
    if history.loss and min(history.loss + history.mse) > 0:
        axes[0].set_yscale("log")
    axes[0].legend()
    axes[0].set_ylabel("loss per input")
    panels = ((history.l0, "L0 (active latents per input)", "C2"), (history.fvu, "FVU (unexplained variance)", "C3"),
              (history.dead_fraction, "dead fraction", "C4"))
    for ax, (values, name, color) in zip(axes[1:], panels):
        ax.plot(history.step, values, color=color)
        ax.set_ylabel(name)
    for ax in axes:
        ax.set_xlabel("training step")
        ax.grid(alpha=0.3)
        for step, _ in history.resampled:  # where dead latents were resampled
            ax.axvline(step, color="tab:red", alpha=0.3, lw=1)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_cosine_heatmap(cos: torch.Tensor, title: str = "Learned decoder vs true features",
                        sort: bool = True) -> Figure:
    """Heatmap of cos [n_features, n_latents]; with `sort` each feature's best latent is moved to the diagonal."""
    cos = cos.detach().cpu()
    if sort:
        best = cos.argmax(dim=1).tolist()
        first = list(dict.fromkeys(best))  # best matches in feature order, without repeats
        order = first + [i for i in range(cos.shape[1]) if i not in set(first)]
        cos = cos[:, order]
    fig, ax = plt.subplots(figsize=(min(12, 2 + cos.shape[1] * 0.12), min(6, 1.5 + cos.shape[0] * 0.12)))
    im = ax.imshow(cos, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    fig.colorbar(im, ax=ax, label="cosine similarity")
    ax.set_xlabel("SAE latent (decoder column)" + (", best matches first" if sort else ""))
    ax.set_ylabel("true feature")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_best_match(best_cos: torch.Tensor, title: str = "How well each true feature was found") -> Figure:
    """Bar chart of the best cosine per true feature [n_features]."""
    fig, ax = plt.subplots(figsize=(8, 2.8))
    ax.bar(range(len(best_cos)), best_cos.detach().cpu(), color="C0")
    ax.axhline(0.9, color="gray", linestyle="--", linewidth=1, label="0.9")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("true feature")
    ax.set_ylabel("best cosine with a latent")
    ax.set_title(title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def plot_tradeoff(l0s: Sequence[float], fvus: Sequence[float], labels: Sequence[str] | None = None,
                  title: str | None = None, series: str | None = None,
                  ax: plt.Axes | None = None) -> Figure:
    """FVU against L0 for a sweep of SAEs (one point per SAE, labelled e.g. by alpha or k).

    Pass `ax` (e.g. `fig.axes[0]`) to add a second series to an existing plot.
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        title = title or "Sparsity vs reconstruction"
    fig = ax.figure
    ax.plot(l0s, fvus, marker="o", label=series)
    for x, y, label in zip(l0s, fvus, labels or []):
        ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("L0 (active latents per input)  ← sparser")
    ax.set_ylabel("FVU (unexplained variance)  ← better")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.margins(0.12)
    if series:
        ax.legend()
    fig.tight_layout()
    return fig


def plot_neuron_responses(responses: torch.Tensor, neuron: int = 0, threshold: float = 0.3) -> Figure:
    """Bar chart: how much one neuron moves when each feature is on alone. responses [d, n_features]."""
    r = responses[neuron].detach().cpu()
    fig, ax = plt.subplots(figsize=(8, 2.8))
    colors = ["C3" if abs(v) > threshold else "lightgray" for v in r.tolist()]
    ax.bar(range(len(r)), r, color=colors)
    for y in (threshold, -threshold):
        ax.axhline(y, color="gray", linestyle="--", linewidth=1)
    ax.set_xlabel("true feature (switched on alone)")
    ax.set_ylabel(f"neuron {neuron}'s activation")
    ax.set_title(f"Neuron {neuron} responds to {int((r.abs() > threshold).sum())} of {len(r)} features "
                 f"(|response| > {threshold}): polysemantic")
    fig.tight_layout()
    return fig


def plot_toy_result(result, title: str = "") -> Figure:
    """Widget view of a `saelab.toy.ToyResult`: cosine heatmap and training curve side by side."""
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(12, 3.6), gridspec_kw={"width_ratios": [2, 1]})
    cos = result.recovery["cos"]
    order = list(dict.fromkeys(cos.argmax(dim=1).tolist()))
    order += [i for i in range(cos.shape[1]) if i not in set(order)]
    im = ax0.imshow(cos[:, order], cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
    fig.colorbar(im, ax=ax0, label="cosine")
    ax0.set_xlabel("SAE latent (best matches first)")
    ax0.set_ylabel("true feature")
    ax0.set_title(f"recovery {result.recovery['mean_best_cos']:.2f} · L0 {result.l0:.1f} · "
                  f"FVU {result.fvu:.3f} · dead {result.dead_fraction:.0%}")
    ax1.plot(result.history.step, result.history.loss)
    ax1.set_yscale("log")
    ax1.set_xlabel("training step")
    ax1.set_ylabel("loss")
    ax1.set_title("training loss")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def draw_sae_diagram(d: int = 4, n_latents: int = 12, active: Sequence[int] = (2, 7, 9)) -> Figure:
    """The SAE as a picture: x -> (subtract pre_bias, encoder) -> sparse latents -> decoder (+ pre_bias) -> x_hat."""
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.set_xlim(0, 10)
    ax.set_ylim(-0.8, n_latents + 0.3)
    ax.axis("off")

    def column(x: float, n: int, label: str, on: Sequence[int] | None = None, color: str = "C0") -> None:
        top = (n_latents - n) / 2
        for i in range(n):
            lit = on is None or i in on
            ax.add_patch(Rectangle((x - 0.3, top + i), 0.6, 0.85, facecolor=color if lit else "white",
                                   edgecolor="black", alpha=0.8 if lit else 1.0))
        ax.text(x, -0.6, label, ha="center", va="center", fontsize=10)

    def arrow(x0: float, x1: float, label: str) -> None:
        y = n_latents / 2
        ax.add_patch(FancyArrowPatch((x0, y), (x1, y), arrowstyle="-|>", mutation_scale=20, linewidth=1.5))
        ax.text((x0 + x1) / 2, y + 0.8, label, ha="center", va="bottom", fontsize=9)

    column(1, d, f"x  [d_model={d}]")
    arrow(1.5, 4.3, "x - pre_bias\nW_enc, + latent_bias\nReLU or TopK")
    column(5, n_latents, f"latents c  [n_latents={n_latents}]\nsparse: few are non-zero", on=active, color="C1")
    arrow(5.7, 8.5, "W_dec (unit-norm columns)\n+ pre_bias")
    column(9, d, f"x_hat  [d_model={d}]", color="C2")
    ax.set_title("A sparse autoencoder: expand, keep few, rebuild.  "
                 "loss = ||x - x_hat||² + α·||c||₁", fontsize=11)
    fig.tight_layout()
    return fig


def format_table(rows: list[dict[str, Any]], digits: int = 3) -> str:
    """Rows of dicts as an aligned text table (floats rounded to `digits`), for printing in a notebook."""
    if not rows:
        return "(no rows)"
    keys = list(dict.fromkeys(k for r in rows for k in r))  # every key, in first-seen order
    cell = lambda v: f"{v:.{digits}f}" if isinstance(v, float) else str(v)  # noqa: E731
    cols = [[k] + [cell(r.get(k, "")) for r in rows] for k in keys]
    widths = [max(map(len, c)) for c in cols]
    lines = ["  ".join(c[i].rjust(w) for c, w in zip(cols, widths)) for i in range(len(rows) + 1)]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])
