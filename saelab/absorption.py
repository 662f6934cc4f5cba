"""Feature absorption by the published recipe (Chanin et al. 2024, "A is for Absorption"; SAEBench, Karvonen et
al. 2025).

A parent concept is implied by its children (a name implies its subject: "mia" is "she"). An SAE that has a
latent for the child can fold the parent's direction into it and leave the parent's own latent off there.

    1. a linear probe for the parent, fitted on the model's activations, gives the parent's direction p
    2. the parent's main latents by k-sparse probing: rank latents by their class-mean difference and grow k
       (1, 2, ..) while each step raises the k-sparse probe's F1 by more than `split_gain` (0.03, tau_fs): a parent spread
       over several latents is *split*, and every one of them counts as the parent's own (a split is not absorption)
    3. on every token where the parent holds and the probe agrees:
         caught    a main latent fires
         absorbed  no main latent fires, and some other active latent carries p: its decoder column has
                   cos >= min_cos with p, its contribution act_i * <W_dec_i, p> is the largest positive one, and
                   it carries at least `min_share` (40% in SAEBench) of the probe's projection <x - b_dec, p>
         missed    neither
    absorption rate = absorbed / tokens where the parent holds and the probe agrees
Left out of SAEBench's version: its first-letter task (here a parent of the tiny world) and its partial-absorption
score (the share of the projection that main latents miss, on tokens where they fire weakly).
"""
from __future__ import annotations

from collections import Counter
from typing import Sequence

import torch
import torch.nn.functional as F

from saelab import probing


SPLIT_GAIN = 0.03  # tau_fs: one more main latent only if the k-sparse probe's F1 rises by more than this
MIN_SHARE = 0.4  # an absorber carries at least this share of the probe's projection (SAEBench)
MAX_MAIN = 5  # at most this many main latents (a split into more is not looked for)


def absorption(latents: torch.Tensor, W_dec: torch.Tensor, parent: torch.Tensor, probe_direction: torch.Tensor,
               main_latents: Sequence[int], min_cos: float = 0.1,
               probe_holds: torch.Tensor | None = None, projection: torch.Tensor | None = None,
               min_share: float = MIN_SHARE) -> dict[str, float | int | torch.Tensor]:
    """Absorption of one parent concept on tokens [n]: the rate and, per token, which latent absorbed it.

    latents [n, n_latents]; W_dec [d, n_latents]; parent [n] bool (ground truth); probe_direction [d];
    probe_holds [n] bool (default: everywhere); projection [n]: <x - b_dec, p> of each token (default: no share
    test). Returns {"rate", "caught", "missed", "n", "absorbed" [n] bool, "absorber" [n] (latent id, -1 where
    none), "cos" [n_latents] (decoder cos with the probe)}.
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
    if projection is not None:  # the absorber must carry a real share of the parent's projection
        if len(projection) != n:
            raise ValueError(f"projection has {len(projection)} entries for {n} tokens; pass one per token")
        absorbed &= (projection > 0) & (best_value >= min_share * projection.float())
    n_holds = int(holds.sum())
    return {"rate": absorbed.sum().item() / n_holds, "caught": caught.sum().item() / n_holds,
            "missed": (holds & ~caught & ~absorbed).sum().item() / n_holds, "n": n_holds, "absorbed": absorbed,
            "absorber": torch.where(absorbed, best, torch.full_like(best, -1)), "cos": cos}


def f1_score(pred: torch.Tensor, y: torch.Tensor) -> float:
    """F1 of bool predictions against bool labels."""
    tp = (pred & y).sum().item()
    return 2 * tp / max(pred.sum().item() + y.sum().item(), 1)


def main_latents(train_latents: torch.Tensor, train_y: torch.Tensor, test_latents: torch.Tensor,
                 test_y: torch.Tensor, max_k: int = MAX_MAIN, split_gain: float = SPLIT_GAIN
                 ) -> tuple[list[int], list[float]]:
    """The parent's main latents by k-sparse probing: the top-k latents by (signed) class-mean difference, k grown
    while each step raises the held-out F1 of a probe on them by more than `split_gain`. Returns (latents, the F1
    of each k tried)."""
    score = probing.class_mean_difference(train_latents, train_y, signed=True)
    order = score.topk(min(max_k, len(score))).indices
    f1s: list[float] = []
    for k in range(1, len(order) + 1):
        top = order[:k]
        probe = probing.fit_probe(train_latents[:, top], train_y)
        f1s.append(f1_score(probe.predict(test_latents[:, top]), test_y.bool()))
        if k > 1 and f1s[-1] <= f1s[-2] + split_gain:
            return order[:k - 1].tolist(), f1s  # the k-th latent adds too little: not part of a split
    return order.tolist(), f1s


def parent_absorption(latents: torch.Tensor, acts: torch.Tensor, W_dec: torch.Tensor, parent: torch.Tensor,
                      other: torch.Tensor, n_main: int | None = None, min_cos: float = 0.1,
                      train_fraction: float = 0.5, sae_inputs: torch.Tensor | None = None,
                      min_share: float = MIN_SHARE) -> dict:
    """The whole recipe on the rows where `parent` or `other` holds (e.g. "she" vs "he" tokens): probe and main
    latents from the first `train_fraction` of them (main latents by k-sparse probing, or the top `n_main` by
    class-mean difference if given), absorption on the rest. `sae_inputs` [n, d]: what the SAE's latents decode
    to, i.e. its (preprocessed) input minus b_dec (`sae_inputs(sae, acts)`); it gives each token's projection on the
    probe for the `min_share` test (skipped without it). Returns `absorption`'s dict plus "main_latents",
    "main_f1" (k-sparse F1 for k = 1..), "probe_accuracy" and "rows" (indices of the test rows)."""
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
    if n_main is None:
        half = cut // 2  # choose k on held-out rows of the training part, never on the test rows
        main, f1s = main_latents(latents[train[:half]], y[:half], latents[train[half:]], y[half:cut])
    else:
        main, f1s = probing.class_mean_difference(latents[train], y[:cut], signed=True).topk(n_main).indices.tolist(), []
    p = probe.direction()
    projection = None if sae_inputs is None else sae_inputs[test].float() @ p
    out = absorption(latents[test], W_dec, y[cut:], p, main, min_cos, probe.predict(acts[test]), projection,
                     min_share)
    out.update(main_latents=main, main_f1=f1s, probe_accuracy=probing.accuracy(probe, acts[test], y[cut:]),
               rows=test)
    return out


@torch.no_grad()
def sae_inputs(sae, acts: torch.Tensor) -> torch.Tensor:
    """What an SAE's latents must reconstruct: its preprocessed input minus its decoder bias, [n, d]."""
    x, _ = sae.preprocess(acts)
    return x - sae.pre_bias


def absorbing_words(result: dict, words: Sequence[str], top: int = 5) -> list[tuple[str, int, int]]:
    """The words of the absorbed tokens with their most frequent absorbing latent: [(word, latent, count)]."""
    rows, absorbed, absorber = result["rows"], result["absorbed"], result["absorber"]
    if len(words) <= int(rows.max()):
        raise ValueError(f"words has {len(words)} entries but the result refers to row {int(rows.max())}; pass "
                         "the words of the same tokens")
    pairs = Counter((words[int(rows[i])], int(absorber[i])) for i in absorbed.nonzero().squeeze(1).tolist())
    return [(w, latent, c) for (w, latent), c in pairs.most_common(top)]
