"""Notebook 06's experiments in a few calls: the toy with known features (and parents implied by children),
every architecture trained the same way, metric cards, and the comparison table and Pareto plot.

    toy_world(seed)                  the toy of notebook 01 (32 features in 16 dimensions) plus PARENTS
    train_toy_sae(name, toy, seed)   one architecture, trained by `train_sae` with the shared budget TOY_BUDGET
    toy_card(sae, toy)               L0, FVU, dead fraction and every ground-truth metric, absorption included
    label_free_card(model, sae, ..)  what can be measured without labels: L0, FVU, alive fraction, shrinkage,
                                     LM loss recovered and the KL of the splice
    sweep_toy(toys)                  every architecture at each sparsity of TOY_SWEEP and each seed: the curves
    matched(curves, l0)              each seed's curve read at one L0 (linear interpolation): a fair comparison
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from saelab import ground_truth as gt
from saelab import metrics, toy
from saelab.architectures import ARCHITECTURES, NEEDS_K, check_architecture
from saelab.sae import SAE
from saelab.training import init_sae_, train_sae

# Parents implied by children: whenever feature 1, 2 or 3 is present, feature 0 is too (as "mia" implies "she").
PARENTS = {0: [1, 2, 3], 4: [5, 6, 7], 8: [9, 10, 11]}
# One budget for every architecture; each one's sparsity setting aims at an L0 of about 2 (the toy has ~1.9
# features per sample once parents are added).
TOY_BUDGET = dict(n_steps=200, batch_size=256, lr=1e-2, precision="fp32", num_threads=1)
# The TopK family trains with OpenAI's AuxK loss (Gao et al. 2024; Bussmann et al. 2024): the 16 strongest latents
# silent for 50 steps must reconstruct what the live ones missed. ReLU, Gated and JumpReLU follow their papers'
# losses; what the course leaves out of those recipes: resampling, learning-rate warm-up and decay, and the
# sparsity coefficient's warm-up.
AUXK = {"aux_k": 16, "dead_after": 50}
TOY_SETTINGS: dict[str, dict[str, Any]] = {
    "relu": {"l1_coef": 0.5},
    "topk": {"k": 2, **AUXK},
    "batchtopk": {"k": 2, **AUXK},
    "matryoshka": {"k": 2, **AUXK},
    "jumprelu": {"l0_coef": 0.03},
    "gated": {"l1_coef": 0.6},
}
# Three sparsities per architecture (the middle one is TOY_SETTINGS), chosen so every curve spans L0 = 2.
TOY_SWEEP: dict[str, tuple[float, ...]] = {
    "relu": (0.3, 0.5, 1.0), "topk": (1, 2, 4), "batchtopk": (1, 2, 4), "matryoshka": (1, 2, 4),
    "jumprelu": (0.01, 0.03, 0.1), "gated": (0.3, 0.6, 1.0),
}
# JumpReLU's thresholds start here rather than at the library's 0.05: through its straight-through estimator a
# threshold moves by about the learning rate per step, too little in 200 steps to reach L0 = 2 from below 0.05.
TOY_JUMP_INIT = 0.2
MATCHED_L0 = 2.0
LABELS = {"relu": "ReLU + L1", "topk": "TopK", "batchtopk": "BatchTopK", "matryoshka": "Matryoshka",
          "jumprelu": "JumpReLU", "gated": "Gated"}


@dataclass
class Toy:
    """Toy data with known features: training samples and held-out samples with their codes."""
    features: torch.Tensor  # [n_features, d]
    x: torch.Tensor
    codes: torch.Tensor
    x_test: torch.Tensor
    codes_test: torch.Tensor


def toy_world(seed: int = 0, n_features: int = 32, d: int = 16, n_samples: int = 8192, sparsity: float = 0.05,
              parents: dict[int, list[int]] | None = PARENTS) -> Toy:
    """Notebook 01's toy (random unit features, sparse codes), with `parents` implied by their children."""
    features = toy.make_toy_features(n_features, d, seed)
    parts = []
    for offset, n in ((1, n_samples), (2, 4096)):
        _, codes = toy.sample_toy_data(features, n, sparsity, seed + offset)
        codes = gt.add_hierarchy(codes, parents) if parents else codes
        parts += [codes @ features, codes]
    return Toy(features, *parts)


def make_sae(name: str, d: int, n_latents: int, sparsity: float | int | None = None,
             hook_name: str | None = None, settings: dict[str, dict[str, Any]] | None = None,
             normalize: bool = False) -> tuple[SAE, dict[str, float]]:
    """An untrained SAE of architecture `name` and the train_sae keywords of its sparsity setting
    (k for the TopK family, the L1 coefficient for ReLU and Gated, the L0 coefficient for JumpReLU), taken from
    `settings` (default TOY_SETTINGS) unless `sparsity` overrides it."""
    name = check_architecture(name)
    setting = dict((settings or TOY_SETTINGS)[name])
    if sparsity is not None:
        setting[next(iter(setting))] = int(sparsity) if name in NEEDS_K else float(sparsity)
    k = setting.pop("k", None)
    return SAE(d, n_latents, name, k=k, normalize=normalize, hook_name=hook_name), setting


def train_toy_sae(name: str, data: Toy, seed: int = 0, n_latents: int = 64, sparsity: float | int | None = None,
                  **budget: Any) -> SAE:
    """Train one architecture on the toy with the shared budget (override any of TOY_BUDGET by keyword)."""
    sae, setting = make_sae(name, data.x.shape[1], n_latents, sparsity)
    jump = sae.activation == "jumprelu"
    if jump:  # the usual init (pre_bias at the data mean), then JumpReLU's thresholds at TOY_JUMP_INIT
        init_sae_(sae, seed, data.x)
        with torch.no_grad():
            sae.log_threshold.fill_(math.log(TOY_JUMP_INIT))
    train_sae(sae, data.x, seed=seed, init=not jump, log_every=100, ortho_every=None,
              **{**TOY_BUDGET, **budget}, **setting)
    return sae


@torch.no_grad()
def toy_card(sae: SAE, data: Toy, parents: dict[int, list[int]] | None = PARENTS) -> dict[str, float]:
    """Every metric of one toy SAE on the held-out samples."""
    latents = sae.encode(data.x_test)
    x_hat = sae.decode(latents)
    card = {"L0": metrics.l0(latents), "FVU": metrics.fraction_variance_unexplained(data.x_test, x_hat),
            "dead": metrics.dead_fraction((latents > 0).sum(0))}
    card.update(gt.ground_truth_card(sae, data.features, data.x_test, data.codes_test))
    if parents:
        card["absorption"] = gt.toy_absorption(sae, data.features, data.x_test, data.codes_test, parents)["rate"]
    return card


def check_fits(sae: SAE, acts: torch.Tensor, hook_name: str | None = None) -> None:
    """Raise a clear error when the SAE's width does not match the activations (an SAE for another hook)."""
    if acts.shape[-1] != sae.d_model:
        where = f" at {hook_name}" if hook_name else ""
        raise ValueError(f"the activations{where} have width {acts.shape[-1]} but this SAE reads {sae.d_model} "
                         f"(it was trained for {sae.hook_name}): an SAE of the wrong width for the hook; load the "
                         "SAE trained for this hook")


@torch.no_grad()
def label_free_card(model: Any, sae: SAE, acts: torch.Tensor, texts: Sequence[str],
                    progress: bool = True) -> dict[str, float]:
    """What needs no labels: L0, FVU, alive fraction, shrinkage (1 - <x_hat, x> / ||x||^2 on average) on `acts`,
    and LM loss recovered, CE increase and KL of the splice on `texts` (a bar over its forward passes: on GPT-2 and
    a CPU they take a while)."""
    from saelab.evaluation import sae_metrics, splice_costs

    check_fits(sae, acts)
    base = sae_metrics(sae, acts, batch_size=512)
    x = acts[:4096].to(sae.pre_bias)
    x_hat = sae.decode(sae.encode(x), sae.preprocess(x)[1])
    kept = ((x_hat * x).sum(-1) / x.pow(2).sum(-1).clamp_min(1e-12)).mean().item()
    costs = splice_costs(model, sae, list(texts), progress=progress)
    return {"L0": base["l0"], "FVU": base["fvu"], "alive": 1 - base["dead_fraction"], "shrinkage": 1 - kept,
            "loss recovered": costs["loss_recovered"], "CE increase": costs["ce_increase_sae"],
            "KL": costs["kl_sae"]}


def spreads(cards: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, toy.Spread]]:
    """{architecture: [card per seed]} -> {architecture: {metric: Spread over seeds}}."""
    return {name: {m: toy.spread([c[m] for c in runs]) for m in runs[0]} for name, runs in cards.items()}


def format_table(table: dict[str, dict[str, toy.Spread]], digits: int = 2, columns: Sequence[str] | None = None
                 ) -> str:
    """One row per architecture, one column per metric (all, or `columns`), each cell 'mean (min-max)' over seeds."""
    names = list(table)
    cols = list(columns or table[names[0]])
    cells = {n: {c: table[n][c].format(digits) for c in cols} for n in names}
    widths = {c: max(len(c), *(len(cells[n][c]) for n in names)) + 2 for c in cols}
    width = max(len(LABELS.get(n, n)) for n in names) + 2
    head = "".ljust(width) + "".join(c.rjust(widths[c]) for c in cols)
    rows = [LABELS.get(n, n).ljust(width) + "".join(cells[n][c].rjust(widths[c]) for c in cols) for n in names]
    return "\n".join([head, *rows])


def pareto_plot(table: dict[str, dict[str, toy.Spread]], y: str = "FVU", ax: Any = None, title: str | None = None):
    """L0 against `y` for each architecture: the mean with min-max bars over the seeds."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4))
    for name, row in table.items():
        lx, ly = row["L0"], row[y]
        ax.errorbar(lx.mean, ly.mean, xerr=[[lx.mean - lx.lo], [lx.hi - lx.mean]],
                    yerr=[[ly.mean - ly.lo], [ly.hi - ly.mean]], fmt="o", capsize=3, label=LABELS.get(name, name))
    ax.set_xlabel("L0 (latents active per sample)")
    ax.set_ylabel(y)
    ax.set_title(title or f"L0 against {y}: mean and min-max over seeds")
    ax.legend(fontsize=8)
    return ax


def sweep_toy(toys: dict[int, Toy], sweep: dict[str, Sequence[float]] | None = None, progress: bool = True,
              **budget: Any) -> dict[str, list[list[dict[str, float]]]]:
    """Train every architecture at each of its sparsities (TOY_SWEEP) on each seed's toy and card it:
    {architecture: [per sparsity: [card per seed]]}. A tqdm bar counts the runs."""
    from tqdm.auto import tqdm

    sweep = sweep or TOY_SWEEP
    bar = tqdm(total=sum(len(v) for v in sweep.values()) * len(toys), desc="toy SAEs", disable=not progress)
    curves: dict[str, list[list[dict[str, float]]]] = {}
    for name, values in sweep.items():
        curves[name] = []
        for value in values:
            cards = []
            for s, data in toys.items():
                cards.append(toy_card(train_toy_sae(name, data, seed=s, sparsity=value, **budget), data))
                bar.update()
            curves[name].append(cards)
    bar.close()
    return curves


def at_l0(l0s: Sequence[float], values: Sequence[float], l0: float) -> float:
    """One seed's curve (metric against L0 over the sparsities) read at `l0` by linear interpolation."""
    points = sorted(zip(l0s, values))
    if not points[0][0] <= l0 <= points[-1][0]:
        raise ValueError(f"L0 = {l0} lies outside this curve's range {points[0][0]:.2f}-{points[-1][0]:.2f}; "
                         "add a sparsity setting that reaches it")
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x0 <= l0 <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (l0 - x0) / (x1 - x0)
    return points[-1][1]


def matched(curves: dict[str, list[list[dict[str, float]]]], l0: float = MATCHED_L0
            ) -> dict[str, dict[str, toy.Spread]]:
    """Every metric of every architecture at the same L0: each seed's curve interpolated there, then the spread."""
    out = {}
    for name, settings in curves.items():
        n_seeds = len(settings[0])
        metrics_ = [m for m in settings[0][0] if m != "L0"]
        per_seed = [{m: at_l0([c[s]["L0"] for c in settings], [c[s][m] for c in settings], l0) for m in metrics_}
                    for s in range(n_seeds)]
        out[name] = {"L0": toy.spread([l0] * n_seeds), **{m: toy.spread([p[m] for p in per_seed]) for m in metrics_}}
    return out


def curve_plot(curves: dict[str, list[list[dict[str, float]]]], y: str, ax: Any = None, l0: float | None = None,
               ylabel: str | None = None, title: str | None = None):
    """Each architecture as a curve: L0 against `y` at each sparsity (mean, min-max bars over seeds)."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 4))
    for name, settings in curves.items():
        lx = [toy.spread([c["L0"] for c in cards]) for cards in settings]
        ly = [toy.spread([c[y] for c in cards]) for cards in settings]
        ax.errorbar([s.mean for s in lx], [s.mean for s in ly], yerr=[[s.mean - s.lo for s in ly],
                    [s.hi - s.mean for s in ly]], marker="o", capsize=3, label=LABELS.get(name, name))
    if l0 is not None:
        ax.axvline(l0, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("L0 (latents active per sample)")
    ax.set_ylabel(ylabel or y)
    ax.set_title(title or f"L0 against {y}")
    ax.legend(fontsize=7)
    return ax


__all__ = ["ARCHITECTURES", "AUXK", "LABELS", "MATCHED_L0", "PARENTS", "TOY_BUDGET", "TOY_SETTINGS", "TOY_SWEEP",
           "Toy", "at_l0", "check_fits", "curve_plot", "format_table", "last_token_activations", "label_free_card",
           "make_sae", "matched", "pareto_plot", "spreads", "sweep_toy", "toy_card", "toy_world", "train_toy_sae"]


@torch.no_grad()
def last_token_activations(model: Any, hook_name: str, texts: Sequence[str]) -> torch.Tensor:
    """The activation at each text's last real token: [n_texts, d_model] (labelled prompts carry their label there)."""
    from saelab.activations import hook_activations, tokenize_texts

    tokens, mask = tokenize_texts(model, list(texts))
    acts = hook_activations(model, hook_name, tokens).float().cpu()
    last = mask.long().sum(1) - 1
    return acts[torch.arange(len(texts)), last]
