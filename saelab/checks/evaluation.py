"""Notebook 06's exercise check, in the course's one-line style (`saelab.checks.report`).

    check_mcc   match each true feature to its own latent (Hungarian algorithm on |cos|) and average the matched
                |cos|: returns (mcc, latent per feature)

It runs the student's function and `saelab.ground_truth.mcc` on several cases (a permuted identity, a flipped
sign, a case where greedy matching picks one latent twice, unnormalised columns, more latents than features) and
names the usual mistake when they differ.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from saelab import ground_truth as gt
from saelab.checks import report


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


def _diagnose(name: str, W_dec: torch.Tensor, feats: torch.Tensor, got_mcc: float, got_latent: Any) -> str | None:
    want = gt.mcc(W_dec, feats)
    latent = torch.as_tensor(got_latent).long().reshape(-1)
    if latent.shape[0] != feats.shape[0]:
        return (f"on {name}: return one matched latent per true feature ({feats.shape[0]}), got {latent.shape[0]}. "
                "linear_sum_assignment returns (rows, cols); cols[i] is the latent matched to feature rows[i].")
    if len(set(latent.tolist())) < len(latent):
        return (f"on {name}: two features got the same latent {latent.tolist()}. That is greedy matching (argmax "
                "per feature); use scipy.optimize.linear_sum_assignment(cos, maximize=True) for a one-to-one match.")
    cos = W_dec.T @ feats.T  # unnormalised, signed: recognise the two usual mistakes
    if abs(got_mcc - want["mcc"]) > 1e-4:
        unit = torch.nn.functional.normalize
        signed = (unit(feats, dim=-1) @ unit(W_dec, dim=0))[torch.arange(len(latent)), latent].mean().item()
        if abs(got_mcc - signed) < 1e-4:
            return (f"on {name}: your MCC is {got_mcc:.3f}, expected {want['mcc']:.3f}. A latent may point at -f: "
                    "take the absolute value of the cosine.")
        raw = cos.T.abs()[torch.arange(len(latent)), latent].mean().item()
        if abs(got_mcc - raw) < 1e-4:
            return (f"on {name}: your MCC is {got_mcc:.3f}, expected {want['mcc']:.3f}. Normalise the decoder "
                    "columns and the features before taking dot products (cosine, not dot product).")
        return f"on {name}: your MCC is {got_mcc:.3f}, expected {want['mcc']:.3f} (the mean matched |cos|)."
    return None


def check_mcc(fn: Callable[[torch.Tensor, torch.Tensor], tuple[float, Any]]) -> bool:
    """Check the student's `fn(W_dec, true_features) -> (mcc, latent_per_feature)` against `ground_truth.mcc`."""
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
