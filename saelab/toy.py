"""Superposition in miniature: more sparse features than dimensions, and an SAE that untangles them.

    x = sum_i c_i * f_i        f_i: unit feature directions [n_features, d], c_i >= 0 sparse codes

With n_features > d the directions cannot all be orthogonal, so every coordinate ("neuron") of x
responds to several features: it is polysemantic. An SAE should find the f_i again.
"""
from __future__ import annotations

from dataclasses import dataclass

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
                  progress: bool = False, **train_kwargs) -> ToyResult:
    """Make toy data, train an SAE with `expansion * d` latents on it and measure it (a few seconds)."""
    features = make_toy_features(n_features, d, seed)
    x, _ = sample_toy_data(features, n_samples, sparsity, seed + 1)
    n_latents = expansion * d
    sae = SAE(d, n_latents, activation, k=k if activation == "topk" else None, normalize=False)
    history = train_sae(sae, x, n_steps=n_steps, batch_size=batch_size, lr=lr, l1_coef=l1_coef, seed=seed,
                        log_every=50, ortho_every=250, progress=progress, **train_kwargs)
    x_test, _ = sample_toy_data(features, 4096, sparsity, seed + 2)
    with torch.no_grad():
        _, latents, x_hat = sae(x_test)
    return ToyResult(features, x, sae, history, metrics.feature_recovery(sae.W_dec, features),
                     metrics.l0(latents), metrics.fraction_variance_unexplained(x_test, x_hat),
                     metrics.dead_fraction(latents))
