"""How well an SAE recovers features we know (the toy data of notebook 01), after SynthSAEBench.

    mcc          match decoder columns to true directions one-to-one (Hungarian algorithm on |cos|);
                 MCC = mean |cos| of the matched pairs (1 = every feature has its own exact latent)
    detection    per matched latent: precision = P(feature present | latent fires),
                 recall = P(latent fires | feature present), and their F1
    uniqueness   each latent close to some feature (|cos| >= min_cos) points at its best feature;
                 uniqueness = distinct features / such latents (1 = no feature is split over several latents)
    shrinkage    feed each true feature alone at a known magnitude; the reconstruction keeps `kept` of it along
                 the feature (1 = no shrinkage); shrinkage = 1 - kept
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from saelab.sae import SAE


def _check_directions(W_dec: torch.Tensor, true_features: torch.Tensor) -> None:
    """Shapes: decoder [d, n_latents], true features [n_features, d], with n_features <= n_latents."""
    if W_dec.ndim != 2 or true_features.ndim != 2:
        raise ValueError("pass W_dec [d, n_latents] and true_features [n_features, d] (two 2-D tensors)")
    if W_dec.shape[0] != true_features.shape[1]:
        raise ValueError(f"W_dec has d={W_dec.shape[0]} rows but true features have d={true_features.shape[1]}; "
                         "pass sae.W_dec ([d, n_latents]) and the features [n_features, d] of the same data")
    if true_features.shape[0] > W_dec.shape[1]:
        raise ValueError(f"{true_features.shape[0]} true features but only {W_dec.shape[1]} latents: one-to-one "
                         "matching needs at least as many latents as features; train a wider SAE")


def cosines(W_dec: torch.Tensor, true_features: torch.Tensor) -> torch.Tensor:
    """|cos| between every true feature and every decoder column: [n_features, n_latents]."""
    return (F.normalize(true_features.detach().float(), dim=-1) @ F.normalize(W_dec.detach().float(), dim=0)).abs()


def mcc(W_dec: torch.Tensor, true_features: torch.Tensor) -> dict[str, torch.Tensor | float]:
    """Hungarian matching of true features to latents: {"mcc", "latent" [n_features], "cos" [n_features]}."""
    _check_directions(W_dec, true_features)
    cos = cosines(W_dec, true_features)
    rows, cols = linear_sum_assignment(cos.numpy(), maximize=True)
    latent = torch.as_tensor(cols, dtype=torch.long)[torch.as_tensor(rows).argsort()]
    matched = cos[torch.arange(len(latent)), latent]
    return {"mcc": matched.mean().item(), "latent": latent, "cos": matched}


def detection(latents: torch.Tensor, codes: torch.Tensor, matched_latent: torch.Tensor,
              threshold: float = 0.0) -> dict[str, torch.Tensor | float]:
    """Precision, recall and F1 of "latent fires" (> threshold) against "feature present" (code > 0), per matched
    pair (feature j, latent matched_latent[j]): per-pair tensors [n_features] and their means."""
    if latents.shape[0] != codes.shape[0]:
        raise ValueError(f"latents have {latents.shape[0]} rows but codes have {codes.shape[0]}; pass both for the "
                         "same samples")
    if matched_latent.shape[0] != codes.shape[1]:
        raise ValueError(f"matched_latent has {matched_latent.shape[0]} entries for {codes.shape[1]} features; pass "
                         "mcc(...)['latent'] of the same features")
    fires = (latents[:, matched_latent] > threshold).float()
    present = (codes > 0).float()
    both = (fires * present).sum(0)
    precision = both / fires.sum(0).clamp_min(1)
    recall = both / present.sum(0).clamp_min(1)
    f1 = 2 * precision * recall / (precision + recall).clamp_min(1e-12)
    return {"precision": precision, "recall": recall, "f1": f1, "mean_precision": precision.mean().item(),
            "mean_recall": recall.mean().item(), "mean_f1": f1.mean().item()}


def uniqueness(W_dec: torch.Tensor, true_features: torch.Tensor, min_cos: float = 0.5,
               alive: torch.Tensor | None = None) -> dict[str, float | torch.Tensor]:
    """How many latents share one feature: {"uniqueness", "latents_per_feature" [n_features], "n_close"}.

    Latents with |cos| >= min_cos to some feature (and alive, if a mask is given) each vote for their best feature.
    """
    _check_directions(W_dec, true_features)
    cos = cosines(W_dec, true_features)
    best_cos, best = cos.max(dim=0)
    close = best_cos >= min_cos
    if alive is not None:
        close &= alive.bool()
    per_feature = torch.bincount(best[close], minlength=true_features.shape[0])
    n_close = int(close.sum())
    value = (per_feature > 0).sum().item() / n_close if n_close else 0.0
    return {"uniqueness": value, "latents_per_feature": per_feature, "n_close": n_close}


@torch.no_grad()
def shrinkage(sae: SAE, true_features: torch.Tensor, magnitude: float = 1.0) -> dict[str, float | torch.Tensor]:
    """Each true feature alone at `magnitude`: the part of it the reconstruction keeps along its direction.

    kept_j = <x_hat(m f_j) - x_hat(0), f_j> / m; returns {"kept" [n_features], "mean_kept", "shrinkage"}.
    """
    if true_features.shape[1] != sae.d_model:
        raise ValueError(f"true features have d={true_features.shape[1]} but the SAE reads d={sae.d_model}")
    f = F.normalize(true_features.float(), dim=-1)
    zero = sae.decode(sae.encode(torch.zeros(1, sae.d_model)), sae.preprocess(torch.zeros(1, sae.d_model))[1])
    x = magnitude * f
    x_hat = sae.decode(sae.encode(x), sae.preprocess(x)[1])
    kept = ((x_hat - zero) * f).sum(-1) / magnitude
    return {"kept": kept, "mean_kept": kept.mean().item(), "shrinkage": 1 - kept.mean().item()}


@torch.no_grad()
def ground_truth_card(sae: SAE, true_features: torch.Tensor, x: torch.Tensor, codes: torch.Tensor
                      ) -> dict[str, float]:
    """Every ground-truth metric of one SAE on samples x [n, d] with known codes [n, n_features]."""
    latents = sae.encode(x)
    match = mcc(sae.W_dec, true_features)
    det = detection(latents, codes, match["latent"])
    alive = (latents > 0).any(0)
    return {"mcc": match["mcc"], "precision": det["mean_precision"], "recall": det["mean_recall"],
            "f1": det["mean_f1"], "uniqueness": uniqueness(sae.W_dec, true_features, alive=alive)["uniqueness"],
            "shrinkage": shrinkage(sae, true_features)["shrinkage"]}


# --- a toy with parents implied by children (where absorption can happen) ---------------------------
def add_hierarchy(codes: torch.Tensor, parents: dict[int, list[int]]) -> torch.Tensor:
    """Make each parent feature present wherever one of its children is: parent code = max(own, children's).

    codes [n, n_features]; parents {parent: [children]} (e.g. {0: [4, 5]}: feature 4 or 5 implies feature 0).
    """
    codes = codes.clone()
    for parent, children in parents.items():
        if parent in children or not children:
            raise ValueError(f"parent {parent} needs children other than itself; got {children}")
        codes[:, parent] = torch.maximum(codes[:, parent], codes[:, children].amax(dim=1))
    return codes


@torch.no_grad()
def toy_absorption(sae: SAE, true_features: torch.Tensor, x: torch.Tensor, codes: torch.Tensor,
                   parents: dict[int, list[int]], min_cos: float = 0.1) -> dict[str, float]:
    """Absorption by the published recipe with the truth in place of the probe: the parent's direction is its true
    feature, its main latents come from k-sparse probing for "the parent is present" (on the first half of the
    samples, `absorption.main_latents`), and on the other half's samples where a child is present, the parent is
    absorbed when no main latent fires and another latent carries >= 40% of <x - b_dec, parent feature>.
    Mean over parents of {"rate", "caught", "missed"}."""
    from saelab.absorption import absorption, main_latents

    latents = sae.encode(x)
    inputs = sae.preprocess(x)[0] - sae.pre_bias
    half = len(x) // 2
    fit, val = slice(0, half // 2), slice(half // 2, half)
    rates = {"rate": 0.0, "caught": 0.0, "missed": 0.0}
    for parent, children in parents.items():
        present = codes[:, parent] > 0
        main, _ = main_latents(latents[fit], present[fit], latents[val], present[val])
        with_child = (codes[half:, children].amax(dim=1) > 0)
        rows = with_child.nonzero().squeeze(1) + half
        direction = true_features[parent]
        out = absorption(latents[rows], sae.W_dec, torch.ones(len(rows), dtype=torch.bool), direction, main,
                         min_cos, projection=inputs[rows] @ (direction / direction.norm()))
        for key in rates:
            rates[key] += out[key] / len(parents)
    return rates
