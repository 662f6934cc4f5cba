"""Superposition in miniature: more sparse features than dimensions, and an SAE that untangles them.

    x = sum_i c_i * f_i        f_i: unit feature directions [n_features, d], c_i >= 0 sparse codes

With n_features > d the directions cannot all be orthogonal, so every coordinate ("neuron") of x
responds to several features: it is polysemantic. An SAE should find the f_i again.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F

from saelab import metrics
from saelab.sae import SAE
from saelab.training import History, train_sae


def make_toy_features(n_features: int, d: int, seed: int = 0) -> torch.Tensor:
    """Random unit-norm true feature directions: [n_features, d]."""
    if n_features < 1 or d < 1:
        raise ValueError(f"need n_features >= 1 and d >= 1; got n_features={n_features}, d={d}")
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n_features, d, generator=g), dim=-1)


def sample_toy_data(features: torch.Tensor, n_samples: int, sparsity: float = 0.05,
                    seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample (x [n_samples, d], codes [n_samples, n_features]).

    `sparsity` is the probability that each feature is active in a sample (small = sparse);
    an active feature has a magnitude drawn uniformly from [0, 1].
    """
    if not 0.0 < sparsity <= 1.0:
        raise ValueError(f"sparsity is the probability a feature is active, in (0, 1]; got {sparsity}")
    g = torch.Generator().manual_seed(seed)
    n_features = features.shape[0]
    active = torch.rand(n_samples, n_features, generator=g) < sparsity
    codes = active * torch.rand(n_samples, n_features, generator=g)
    return codes @ features, codes


def neuron_responses(features: torch.Tensor) -> torch.Tensor:
    """How strongly each neuron (coordinate of x) responds to each feature alone: [d, n_features].

    Feature i on its own gives x = f_i, so neuron j reads f_i[j]: the responses are the transposed features.
    """
    return features.T.clone()


def n_features_per_neuron(features: torch.Tensor, threshold: float = 0.3) -> torch.Tensor:
    """For each neuron, how many features move it by more than `threshold` (|f_i[j]| > t): [d]."""
    return (neuron_responses(features).abs() > threshold).sum(dim=1)


def interference(features: torch.Tensor) -> float:
    """Mean |cos| between distinct true features: 0 if they fit orthogonally (n_features <= d)."""
    return metrics.decoder_orthogonality(features.T)


def best_linear_readout(features: torch.Tensor) -> tuple[float, float]:
    """How well the best linear readout separates the features: (own, leak).

    The readout is the least-squares one, codes_hat = x @ pinv(features). With feature j alone on (x = f_j),
    readout i gives (features @ pinv(features))[j, i]. `own` is the mean of what each readout gives for its own
    feature (1 = perfect), `leak` the largest |value| any readout gives for another feature (0 = no crosstalk).
    Computed in float64, so an exact separation shows as a leak of ~1e-12.
    """
    f = features.detach().double()
    response = f @ torch.linalg.pinv(f)  # [n_features, n_features]
    own = response.diagonal()
    leak = (response - torch.diag(own)).abs().max()
    return own.mean().item(), leak.item()


def collapsed_decoder(W_dec: torch.Tensor, n_directions: int) -> torch.Tensor:
    """A deliberately broken decoder: column i becomes a copy of column i % n_directions. [d_model, n_latents]."""
    if not 1 <= n_directions <= W_dec.shape[1]:
        raise ValueError(f"n_directions must be in 1..{W_dec.shape[1]} (the number of columns); got {n_directions}")
    return W_dec.detach()[:, torch.arange(W_dec.shape[1]) % n_directions].clone()


@dataclass(frozen=True)
class Spread:
    """Several seeds' values of one result: the mean and the range (min-max) they span."""
    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.values)

    @property
    def lo(self) -> float:
        return min(self.values)

    @property
    def hi(self) -> float:
        return max(self.values)

    def clearly_below(self, other: "Spread") -> bool:
        """True when every value here is below every value of `other`: a difference larger than the spread."""
        return self.hi < other.lo

    def overlaps(self, other: "Spread") -> bool:
        """True when the two ranges overlap: no clear difference."""
        return not (self.clearly_below(other) or other.clearly_below(self))

    def format(self, digits: int = 3) -> str:
        """'mean (min-max)', e.g. '0.985 (0.983-0.986)'."""
        return f"{self.mean:.{digits}f} ({self.lo:.{digits}f}-{self.hi:.{digits}f})"


def spread(values: Sequence[float]) -> Spread:
    """The `Spread` of one result over seeds (at least one value)."""
    if len(values) == 0:
        raise ValueError("spread needs at least one value (one per seed)")
    return Spread(tuple(float(v) for v in values))


@dataclass
class ToyResult:
    """One toy experiment: the true features, the data, the trained SAE and how well it did."""
    features: torch.Tensor      # [n_features, d]
    x: torch.Tensor             # [n_samples, d]
    sae: SAE
    history: History
    recovery: dict              # metrics.feature_recovery(...)
    l0: float
    fvu: float
    dead_fraction: float


def train_toy_sae(n_features: int = 32, d: int = 16, sparsity: float = 0.05, activation: str = "relu",
                  l1_coef: float = 0.3, k: int = 2, expansion: int = 4, n_steps: int = 1000,
                  n_samples: int = 16384, batch_size: int = 256, lr: float = 1e-2, seed: int = 0,
                  progress: bool = False, log_every: int = 50, ortho_every: int | None = 250,
                  **train_kwargs) -> ToyResult:
    """Make toy data, train an SAE with `expansion * d` latents on it and measure it (a few seconds).

    One seed draws everything: the features (`seed`), the training data (`seed + 1`), the held-out data the
    result is measured on (`seed + 2`), and the SAE's initial weights and batch order (`seed`).
    """
    features = make_toy_features(n_features, d, seed)
    x, _ = sample_toy_data(features, n_samples, sparsity, seed + 1)
    n_latents = expansion * d
    sae = SAE(d, n_latents, activation, k=k if activation == "topk" else None, normalize=False)
    history = train_sae(sae, x, n_steps=n_steps, batch_size=batch_size, lr=lr, l1_coef=l1_coef, seed=seed,
                        log_every=log_every, ortho_every=ortho_every, progress=progress, **train_kwargs)
    x_test, _ = sample_toy_data(features, 4096, sparsity, seed + 2)
    with torch.no_grad():
        _, latents, x_hat = sae(x_test)
    return ToyResult(features, x, sae, history, metrics.feature_recovery(sae.W_dec, features),
                     metrics.l0(latents), metrics.fraction_variance_unexplained(x_test, x_hat),
                     metrics.dead_fraction(latents))


def train_toy_saes(seeds: Sequence[int], **settings) -> list[ToyResult]:
    """One `train_toy_sae(seed=s, **settings)` per seed: the runs of one arm of a comparison."""
    return [train_toy_sae(seed=s, **settings) for s in seeds]
