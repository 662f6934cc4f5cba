"""Probing for known concepts: a full linear probe (the ceiling) and k-sparse probes on SAE latents (SAEBench).

    linear probe     logistic regression on the raw activations: is the concept linearly there at all?
    k-sparse probe   pick the k latents whose class means differ most (on the training split), then fit a
                     logistic regression on those k latents only; accuracy on held-out data
    per story        pool each story's rows (the mean over its tokens) before probing: one example per story
    per token        every token is an example (for concepts that change within a story)

Every probe is fitted on a training split and scored on a held-out split; inputs are standardised with the
training split's mean and std. The fit is full-batch L-BFGS with a small L2 penalty, so it is deterministic.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch


def binary_labels(labels: Sequence[str] | torch.Tensor, n_rows: int, positive: str | None = None,
                  what: str = "labels") -> torch.Tensor:
    """Labels -> a bool tensor [n_rows]; clear errors for a length mismatch or a single class."""
    if len(labels) != n_rows:
        raise ValueError(f"{what} has {len(labels)} entries but the activations have {n_rows} rows; pass one "
                         "label per row (per token, or per story after pooling)")
    if torch.is_tensor(labels):
        y = labels.bool()
    else:
        if positive is None:
            raise ValueError("string labels need `positive`: the label value that counts as the class")
        y = torch.tensor([v == positive for v in labels])
    if y.all() or not y.any():
        which = "positive" if y.all() else "negative"
        raise ValueError(f"{what} has only one class (every row is {which}); a probe needs examples of both. "
                         "Pick a concept value that some rows have and others lack, or use more data")
    return y


def pool_by_story(x: torch.Tensor, story_ids: torch.Tensor) -> torch.Tensor:
    """Mean of each story's rows: [n_stories, ...] in story-id order (ids 0..n_stories-1)."""
    if len(story_ids) != len(x):
        raise ValueError(f"story_ids has {len(story_ids)} entries for {len(x)} rows; pass one id per row")
    n = int(story_ids.max()) + 1
    sums = torch.zeros(n, *x.shape[1:], dtype=torch.float32).index_add_(0, story_ids, x.float())
    return sums / torch.bincount(story_ids, minlength=n).clamp_min(1).unsqueeze(-1).float()


@dataclass
class Probe:
    """A fitted logistic-regression probe: p(class) = sigmoid(w . (x - mean) / std + b)."""
    mean: torch.Tensor
    std: torch.Tensor
    w: torch.Tensor
    b: torch.Tensor

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return ((x.float() - self.mean) / self.std) @ self.w + self.b

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x) > 0

    def direction(self) -> torch.Tensor:
        """The probe's direction in the input space (unit norm): w / std."""
        d = self.w / self.std
        return d / d.norm().clamp_min(1e-12)


def fit_probe(x: torch.Tensor, y: torch.Tensor, l2: float = 1e-3, steps: int = 50) -> Probe:
    """Logistic regression of bool y [n] on x [n, d] (standardised), balanced classes, L-BFGS."""
    y = binary_labels(y, len(x), what="y")
    x = x.float()
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    z = (x - mean) / std
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros((), requires_grad=True)
    target = y.float()
    weight = torch.where(y, 0.5 / target.mean(), 0.5 / (1 - target.mean()))  # balance the two classes
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = (torch.nn.functional.binary_cross_entropy_with_logits(z @ w + b, target, weight=weight)
                + l2 * w.pow(2).sum())
        loss.backward()
        return loss

    opt.step(closure)
    return Probe(mean, std, w.detach(), b.detach())


def accuracy(probe: Probe, x: torch.Tensor, y: torch.Tensor) -> float:
    """Balanced accuracy of a probe on held-out rows: the mean of the two classes' accuracies."""
    y = binary_labels(y, len(x), what="y")
    pred = probe.predict(x)
    return 0.5 * ((pred[y]).float().mean() + (~pred[~y]).float().mean()).item()


def class_mean_difference(latents: torch.Tensor, y: torch.Tensor, signed: bool = False) -> torch.Tensor:
    """|mean over positives - mean over negatives| per latent: [n_latents] (the k-sparse probe's ranking).
    With `signed=True` the difference itself: latents that fire more on the positives rank first."""
    y = binary_labels(y, len(latents), what="y").float()
    # class means as matrix products: no copy of the (possibly huge) latents for each class
    diff = (y @ latents.float()) / y.sum() - ((1 - y) @ latents.float()) / (1 - y).sum()
    return diff if signed else diff.abs()


def k_sparse_probe(train_latents: torch.Tensor, train_y: torch.Tensor, test_latents: torch.Tensor,
                   test_y: torch.Tensor, k: int) -> dict[str, float | list[int]]:
    """Probe on the k latents with the largest class-mean difference: {"latents", "accuracy"} (held out)."""
    if train_latents.shape[1] != test_latents.shape[1]:
        raise ValueError(f"train has {train_latents.shape[1]} latents, test {test_latents.shape[1]}; use one SAE")
    if not 1 <= k <= train_latents.shape[1]:
        raise ValueError(f"k must be in 1..{train_latents.shape[1]}; got {k}")
    top = class_mean_difference(train_latents, train_y).topk(k).indices
    probe = fit_probe(train_latents[:, top], train_y)
    return {"latents": top.tolist(), "accuracy": accuracy(probe, test_latents[:, top], test_y)}


def linear_probe_accuracy(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor,
                          test_y: torch.Tensor) -> float:
    """Held-out balanced accuracy of a logistic regression on the raw activations: the ceiling."""
    return accuracy(fit_probe(train_x, train_y), test_x, test_y)


def sparse_probing(train_latents: torch.Tensor, train_x: torch.Tensor, train_y: torch.Tensor,
                   test_latents: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                   ks: Sequence[int] = (1, 2, 5)) -> dict[str, float]:
    """k-sparse probe accuracies for each k and the full linear probe on the activations:
    {"k=1": .., "k=2": .., "k=5": .., "linear probe": ..}."""
    if len(train_latents) != len(train_x) or len(test_latents) != len(test_x):
        raise ValueError("latents and activations must have the same rows (the same tokens or stories)")
    out = {f"k={k}": k_sparse_probe(train_latents, train_y, test_latents, test_y, k)["accuracy"] for k in ks}
    out["linear probe"] = linear_probe_accuracy(train_x, train_y, test_x, test_y)
    return out
