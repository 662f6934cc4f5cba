"""Notebook 06's exercise check, in the course's one-line style (`saelab.checks.report`).

    check_mcc   match each true feature to its own latent (Hungarian algorithm on |cos|) and average the matched
                |cos|: returns (mcc, latent per feature)

The reference is written out here (|cos| of the normalised vectors, then scipy's `linear_sum_assignment`), not taken
from `saelab.ground_truth`. Both halves of the answer are checked: the MCC must be the optimal one, and the returned
latents must be an assignment that gives it (mean over features i of |cos[i, latent[i]]| equals the returned MCC).
Cases: a permuted identity, a flipped sign, a case where greedy matching picks one latent twice, unnormalised
columns, more latents than features.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from saelab.checks import report

TOL = 1e-5


def _cases() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(what it tests, W_dec [d, n_latents], true features [n_features, d])."""
    perm = torch.tensor([2, 0, 3, 1])
    greedy = torch.tensor([[0.6, 0.0, 0.0], [0.8, 1.0, 0.0]])  # feature 1 prefers latent 0, but it is needed by 0
    g = torch.Generator().manual_seed(0)
    wide = torch.randn(6, 10, generator=g)
    return [
        ("a permuted identity", torch.eye(4)[:, perm], torch.eye(4)),
        ("a latent with a flipped sign", torch.diag(torch.tensor([1.0, -1.0, 1.0])), torch.eye(3)),
        ("a case where greedy matching gives one latent to two features", greedy, torch.eye(2)),
        ("unnormalised decoder columns", 3.0 * torch.eye(3)[:, [1, 2, 0]], torch.eye(3)),
        ("more latents than features", wide, torch.randn(4, 6, generator=g)),
    ]


def abs_cos(W_dec: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
    """|cosine| between every true feature and every decoder column, in float64: [n_features, n_latents]."""
    return (F.normalize(feats.double(), dim=-1) @ F.normalize(W_dec.double(), dim=0)).abs()


def optimal_mcc(W_dec: torch.Tensor, feats: torch.Tensor) -> tuple[float, torch.Tensor]:
    """The reference: (the largest mean matched |cos| over one-to-one matchings, the latent of each feature)."""
    cos = abs_cos(W_dec, feats)
    rows, cols = linear_sum_assignment(cos.numpy(), maximize=True)
    latent = torch.empty(len(rows), dtype=torch.long)
    latent[torch.as_tensor(rows)] = torch.as_tensor(cols, dtype=torch.long)
    return cos[torch.arange(len(latent)), latent].mean().item(), latent


def _mcc_hint(name: str, W_dec: torch.Tensor, feats: torch.Tensor, got: float, latent: torch.Tensor,
              want: float) -> str:
    """Name the mistake behind a wrong MCC value."""
    rows = torch.arange(len(latent))
    signed = (F.normalize(feats, dim=-1) @ F.normalize(W_dec, dim=0))[rows, latent].mean().item()
    if abs(got - signed) < 1e-4:
        return (f"on {name}: your MCC is {got:.3f}, expected {want:.3f}. A latent may point at -f: take the absolute "
                "value of the cosine.")
    raw = (feats @ W_dec).abs()[rows, latent].mean().item()
    if abs(got - raw) < 1e-4:
        return (f"on {name}: your MCC is {got:.3f}, expected {want:.3f}. Normalise the decoder columns and the "
                "features before taking dot products (cosine, not dot product).")
    return f"on {name}: your MCC is {got:.3f}, expected {want:.3f} (the mean matched |cos|)."


def _assignment_hint(name: str, cos: torch.Tensor, got: float, latent: torch.Tensor, right: torch.Tensor) -> str:
    """Name the mistake behind latents that do not give the (right) MCC returned with them."""
    n = len(latent)
    given = cos[torch.arange(n), latent].mean().item()
    if torch.equal(latent, torch.arange(n)):
        return (f"on {name}: your latents are 0..{n - 1}, the features' own indices (the `rows` of "
                "linear_sum_assignment). Return `cols`: cols[i] is the latent matched to feature rows[i].")
    if torch.equal(latent, right.flip(0)):
        return (f"on {name}: your latents are the right ones in reverse order. latent_per_feature[i] must be the "
                "latent matched to feature i: return cols in the order of rows.")
    if sorted(latent.tolist()) == sorted(right.tolist()):
        return (f"on {name}: the right latents in the wrong order. latent_per_feature[i] must be the latent matched "
                "to feature i: return cols in the order of rows.")
    return (f"on {name}: your MCC is right ({got:.3f}) but your latents give {given:.3f}: the mean of "
            f"|cos[i, latent[i]]| over your latents must equal it. Return the `cols` of the same matching.")


def _diagnose(name: str, W_dec: torch.Tensor, feats: torch.Tensor, got_mcc: float, got_latent: Any) -> str | None:
    want, right = optimal_mcc(W_dec, feats)
    latent = torch.as_tensor(got_latent).long().reshape(-1)
    n_features, n_latents = feats.shape[0], W_dec.shape[1]
    if latent.shape[0] != n_features:
        return (f"on {name}: return one matched latent per true feature ({n_features}), got {latent.shape[0]}. "
                "linear_sum_assignment returns (rows, cols); cols[i] is the latent matched to feature rows[i].")
    if ((latent < 0) | (latent >= n_latents)).any():
        return f"on {name}: latents must be column indices of W_dec, 0..{n_latents - 1}; got {latent.tolist()}."
    if len(set(latent.tolist())) < len(latent):
        return (f"on {name}: two features got the same latent {latent.tolist()}. That is greedy matching (argmax "
                "per feature); use scipy.optimize.linear_sum_assignment(cos, maximize=True) for a one-to-one match.")
    if abs(got_mcc - want) > TOL:
        return _mcc_hint(name, W_dec, feats, got_mcc, latent, want)
    cos = abs_cos(W_dec, feats)
    if abs(cos[torch.arange(n_features), latent].mean().item() - got_mcc) > TOL:
        return _assignment_hint(name, cos, got_mcc, latent, right)
    return None


def check_mcc(fn: Callable[[torch.Tensor, torch.Tensor], tuple[float, Any]]) -> bool:
    """Check the student's `fn(W_dec [d, n_latents], true_features [n_features, d]) -> (mcc, latent_per_feature)`:
    the optimal mean matched |cos|, and latents whose matched |cos| average to exactly that MCC."""
    def body() -> str | None:
        for name, W_dec, feats in _cases():
            out = report.call(fn, W_dec, feats)
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                return "return two things: (mcc as a float, the matched latent of each feature)."
            problem = _diagnose(name, W_dec, feats, report.as_float(out[0]), out[1])
            if problem:
                return problem
        return None
    return report.check("check_mcc", body)
