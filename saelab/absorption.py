"""Feature absorption, measured the way SAEBench defines it (after Chanin et al. 2024, "A is for Absorption").

A parent concept is implied by its children (a name implies its subject: "mia" is "she"). An SAE that has a
latent for the child can fold the parent's direction into it and leave the parent's own latent off there.

    1. a linear probe for the parent, fitted on the model's activations, gives the parent's direction p
    2. the parent's main latent(s): the latents that fire most more on the parent than off it
       (the class-mean difference of k-sparse probing, signed)
    3. on every token where the parent holds and the probe agrees:
         caught    a main latent fires
         absorbed  no main latent fires, and some other active latent carries p: its decoder column has
                   cos >= min_cos with p and its contribution act_i * <W_dec_i, p> is the largest positive one
         missed    neither
    absorption rate = absorbed / tokens where the parent holds and the probe agrees
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

import torch
import torch.nn.functional as F

from saelab import probing


def absorption(latents: torch.Tensor, W_dec: torch.Tensor, parent: torch.Tensor, probe_direction: torch.Tensor,
               main_latents: Sequence[int], min_cos: float = 0.1,
               probe_holds: torch.Tensor | None = None) -> dict[str, float | int | torch.Tensor]:
    """Absorption of one parent concept on tokens [n]: the rate and, per token, which latent absorbed it.

    latents [n, n_latents]; W_dec [d, n_latents]; parent [n] bool (ground truth); probe_direction [d];
    probe_holds [n] bool (default: everywhere). Returns {"rate", "caught", "missed", "n", "absorbed" [n] bool,
    "absorber" [n] (latent id, -1 where none), "cos" [n_latents] (decoder cos with the probe)}.
    """
    n, n_latents = latents.shape
    if W_dec.shape[1] != n_latents:
        raise ValueError(f"W_dec has {W_dec.shape[1]} latents but latents have {n_latents}; pass the same SAE's")
    if W_dec.shape[0] != probe_direction.shape[0]:
        raise ValueError(f"the probe direction has d={probe_direction.shape[0]} but W_dec has d={W_dec.shape[0]}")
    if len(parent) != n:
        raise ValueError(f"parent has {len(parent)} entries but latents have {n} rows; pass one label per token")
    parent = parent.bool()
    holds = parent if probe_holds is None else parent & probe_holds.bool()
    if not holds.any():
        raise ValueError("the parent never holds where the probe agrees; check the labels and the probe")
    main = torch.as_tensor(list(main_latents), dtype=torch.long)
    cos = F.normalize(W_dec.float(), dim=0).T @ F.normalize(probe_direction.float(), dim=0)
    caught = (latents[:, main] > 0).any(dim=1) & holds
    contribution = latents.float() * (W_dec.float().T @ F.normalize(probe_direction.float(), dim=0))
    contribution[:, main] = 0.0
    best_value, best = contribution.max(dim=1)
    absorbed = holds & ~caught & (best_value > 0) & (cos[best] >= min_cos)
    n_holds = int(holds.sum())
    return {"rate": absorbed.sum().item() / n_holds, "caught": caught.sum().item() / n_holds,
            "missed": (holds & ~caught & ~absorbed).sum().item() / n_holds, "n": n_holds, "absorbed": absorbed,
            "absorber": torch.where(absorbed, best, torch.full_like(best, -1)), "cos": cos}


def parent_absorption(latents: torch.Tensor, acts: torch.Tensor, W_dec: torch.Tensor, parent: torch.Tensor,
                      other: torch.Tensor, n_main: int = 1, min_cos: float = 0.1, train_fraction: float = 0.5
                      ) -> dict:
    """The whole measurement on the rows where `parent` or `other` holds (e.g. "she" vs "he" tokens):
    probe and main latents from the first `train_fraction` of them, absorption on the rest.
    Returns `absorption`'s dict plus "main_latents", "probe_accuracy" and "rows" (indices of the test rows)."""
    if not (len(latents) == len(acts) == len(parent) == len(other)):
        raise ValueError(f"latents ({len(latents)}), activations ({len(acts)}), parent ({len(parent)}) and other "
                         f"({len(other)}) must have one row per token")
    if acts.shape[-1] != W_dec.shape[0]:
        raise ValueError(f"activations have width {acts.shape[-1]} but the SAE reads {W_dec.shape[0]}: an SAE of "
                         "the wrong width for this hook; load the SAE trained on these activations")
    rows = (parent.bool() | other.bool()).nonzero().squeeze(1)
    y = parent.bool()[rows]
    cut = int(len(rows) * train_fraction)
    train, test = rows[:cut], rows[cut:]
    probe = probing.fit_probe(acts[train], y[:cut])
    main = probing.class_mean_difference(latents[train], y[:cut], signed=True).topk(n_main).indices.tolist()
    out = absorption(latents[test], W_dec, y[cut:], probe.direction(), main, min_cos, probe.predict(acts[test]))
    out.update(main_latents=main, probe_accuracy=probing.accuracy(probe, acts[test], y[cut:]), rows=test)
    return out


def absorbing_words(result: dict, words: Sequence[str], top: int = 5) -> list[tuple[str, int, int]]:
    """The words of the absorbed tokens with their most frequent absorbing latent: [(word, latent, count)]."""
    rows, absorbed, absorber = result["rows"], result["absorbed"], result["absorber"]
    if len(words) <= int(rows.max()):
        raise ValueError(f"words has {len(words)} entries but the result refers to row {int(rows.max())}; pass "
                         "the words of the same tokens")
    pairs = Counter((words[int(rows[i])], int(absorber[i])) for i in absorbed.nonzero().squeeze(1).tolist())
    return [(w, latent, c) for (w, latent), c in pairs.most_common(top)]
