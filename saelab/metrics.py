"""How good is an SAE? Sparsity, reconstruction, dead latents, decoder geometry, feature recovery.

Plain functions: tensors in, floats (or small tensors) out. Every formula is one or two lines.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F


def l0(latents: torch.Tensor) -> float:
    """Mean number of non-zero latents per token; latents [..., n_latents]."""
    return (latents != 0).sum(dim=-1).float().mean().item()


def fraction_variance_unexplained(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 over tokens; x, x_hat [..., d_model].

    0 is a perfect reconstruction; 1 is no better than predicting the mean activation.
    """
    if x.shape != x_hat.shape:
        raise ValueError(f"x and x_hat must have the same shape; got {tuple(x.shape)} and {tuple(x_hat.shape)}")
    x, x_hat = x.reshape(-1, x.shape[-1]).float(), x_hat.reshape(-1, x.shape[-1]).float()
    total = (x - x.mean(dim=0)).pow(2).sum()
    return ((x - x_hat).pow(2).sum() / total.clamp_min(1e-12)).item()


def dead_fraction(activity: torch.Tensor) -> float:
    """Fraction of latents that never fired.

    `activity` is either fire counts per latent [n_latents] or latent activations [n_tokens, n_latents].
    """
    if activity.dim() > 1:
        activity = (activity.reshape(-1, activity.shape[-1]) != 0).sum(dim=0)
    return (activity == 0).float().mean().item()


def _unit_columns(W_dec: torch.Tensor) -> torch.Tensor:
    """Decoder columns scaled to unit norm: [d_model, n_latents]."""
    return F.normalize(W_dec.detach().float(), dim=0)


def decoder_orthogonality(W_dec: torch.Tensor) -> float:
    """Mean |cos| between distinct decoder columns (exact; builds the n x n Gram). W_dec [d_model, n_latents].

    0 means the latent directions are orthogonal; larger means they overlap (superposition).
    """
    W = _unit_columns(W_dec)
    n = W.shape[1]
    if n < 2:
        raise ValueError("decoder_orthogonality needs at least 2 latents")
    gram = W.T @ W
    off_diagonal = gram.abs().sum() - gram.diagonal().abs().sum()
    return (off_diagonal / (n * (n - 1))).item()


def decoder_orthogonality_sampled(W_dec: torch.Tensor, n_pairs: int = 16384, seed: int = 0) -> float:
    """Unbiased estimate of `decoder_orthogonality` from `n_pairs` uniformly drawn pairs i != j.

    Memory is O(n_pairs * d_model): it never builds the n x n Gram (nor a normalised copy of W_dec),
    so it works for 131072 latents.
    """
    n = W_dec.shape[1]
    if n < 2:
        raise ValueError("decoder_orthogonality_sampled needs at least 2 latents")
    g = torch.Generator().manual_seed(seed)
    i = torch.randint(0, n, (n_pairs,), generator=g)
    j = torch.randint(0, n - 1, (n_pairs,), generator=g)
    j = j + (j >= i).long()  # uniform over the n - 1 indices that are not i
    W = W_dec.detach()
    a, b = _unit_columns(W[:, i.to(W.device)]), _unit_columns(W[:, j.to(W.device)])
    return (a * b).sum(dim=0).abs().mean().item()


def cosine_matrix(W_dec: torch.Tensor, true_features: torch.Tensor) -> torch.Tensor:
    """Cosine between every true feature and every decoder column: [n_features, n_latents].

    W_dec [d_model, n_latents] (columns are latent directions); true_features [n_features, d_model].
    """
    if true_features.shape[-1] != W_dec.shape[0]:
        raise ValueError(f"true_features are {true_features.shape[-1]}-d but decoder columns are "
                         f"{W_dec.shape[0]}-d; pass W_dec as [d_model, n_latents] (sae.W_dec)")
    return F.normalize(true_features.detach().float(), dim=-1) @ _unit_columns(W_dec)


def feature_recovery(W_dec: torch.Tensor, true_features: torch.Tensor) -> dict[str, torch.Tensor | float]:
    """Match each true feature to its closest decoder column.

    Returns {"cos": [n_features, n_latents], "best_cos": [n_features], "best_latent": [n_features],
    "mean_best_cos": float}; mean_best_cos near 1 means every feature has a latent of its own.
    """
    cos = cosine_matrix(W_dec, true_features)
    best_cos, best_latent = cos.max(dim=1)
    return {"cos": cos, "best_cos": best_cos, "best_latent": best_latent,
            "mean_best_cos": best_cos.mean().item()}


@torch.no_grad()
def auroc(scores: torch.Tensor, labels: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """Area under the ROC curve of each column of scores [n] or [n, m] for boolean labels [n]: the chance
    that a random True row outscores a random False row (ties count half). Returns [] or [m].

    Computed from ranks (Mann-Whitney U), `chunk` columns at a time, so it scales to many latents.
    """
    labels = torch.as_tensor(labels, dtype=torch.bool).to(scores.device)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"AUROC needs both classes; got {n_pos} True and {n_neg} False labels")
    columns = scores.reshape(len(labels), -1)
    out = []
    for c in range(0, columns.shape[1], chunk):
        s = columns[:, c:c + chunk].T.contiguous().float()           # [chunk, n]
        ordered = s.sort(dim=-1).values
        below = torch.searchsorted(ordered, s)                        # how many scores are smaller
        upto = torch.searchsorted(ordered, s, right=True)             # ... smaller or equal
        ranks = (below + upto + 1).double() / 2                       # 1-based ranks, ties averaged
        out.append((ranks[:, labels].sum(-1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    result = torch.cat(out).float()
    return result.reshape(scores.shape[1:]) if scores.dim() > 1 else result[0]


def mean_by_group(scores: torch.Tensor, groups: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Average the rows of scores [n] or [n, m] that share a group id (e.g. the tokens of one story).
    Returns (the group ids, sorted, and their mean scores [n_groups] or [n_groups, m]): the usual way to turn
    per-token latents into one score per text, as sparse probing does for text-level concepts."""
    groups = torch.as_tensor(groups)
    if len(groups) != len(scores):
        raise ValueError(f"need one group id per row of scores ({len(scores)}); got {len(groups)}")
    ids, inverse = groups.unique(return_inverse=True)
    flat = scores.reshape(len(scores), -1).float()
    sums = torch.zeros(len(ids), flat.shape[1]).index_add_(0, inverse, flat)
    counts = torch.bincount(inverse, minlength=len(ids)).unsqueeze(1)
    means = sums / counts
    return ids, means.reshape(len(ids), *scores.shape[1:])


def concept_auroc(scores: torch.Tensor, labels: Sequence[str], value: str,
                  groups: torch.Tensor | None = None) -> torch.Tensor:
    """AUROC of each column of scores [n] or [n, m] for rows labelled `value` against rows with another label;
    rows labelled "none" (concept not known yet) are left out. Returns [] or [m].

    With `groups` (one id per row, e.g. which story a token is from) each group is scored once: by its mean
    over its labelled rows, against the label of its first labelled row (a story keeps one value)."""
    if len(labels) != len(scores):
        raise ValueError(f"need one label per row of scores ({len(scores)}); got {len(labels)}")
    known = torch.tensor([lab != "none" for lab in labels])
    target = torch.tensor([lab == value for lab in labels])[known]
    scores = scores[known]
    if groups is not None:
        groups = torch.as_tensor(groups)[known]
        ids, scores = mean_by_group(scores, groups)
        first: dict[int, bool] = {}
        for group, is_value in zip(groups.tolist(), target.tolist()):
            first.setdefault(group, is_value)
        target = torch.tensor([first[group] for group in ids.tolist()])
    return auroc(scores, target)


def last_rows(groups: torch.Tensor) -> torch.Tensor:
    """Index of the last row of each group [n_groups], groups sorted by id: e.g. each prompt's last token, the
    position where a prompt-level concept ("i hate him." is negative) is fully known."""
    groups = torch.as_tensor(groups)
    if groups.dim() != 1 or len(groups) == 0:
        raise ValueError(f"groups must be a non-empty 1-d tensor of group ids; got shape {tuple(groups.shape)}")
    ids, inverse = groups.unique(return_inverse=True)
    rows = torch.arange(len(groups))
    return torch.full((len(ids),), -1, dtype=torch.long).scatter_reduce(0, inverse, rows, reduce="amax")


def rank_latents(scores: torch.Tensor, labels: Sequence[str], value: str, groups: torch.Tensor | None = None
                 ) -> tuple[list[int], torch.Tensor]:
    """Columns of scores [n, n_latents] sorted by AUROC for `value` where the concept is known (`concept_auroc`:
    rows labelled "none" left out; with `groups`, one score per group), best first, and every AUROC [n_latents].

    Choose the rows where the concept is actually known: per-token labels for token-level concepts, the last
    token of each prompt (`last_rows`) for prompt-level ones, `groups` = story ids for story-level ones."""
    au = concept_auroc(scores, labels, value, groups)
    return au.argsort(descending=True, stable=True).tolist(), au
