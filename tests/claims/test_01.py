"""Claim tests for notebook 01_sae_theory.ipynb: each result sentence, checked against the executed notebook (offline).

Runs natively and on a second CPU code path with another seed offset (see the Makefile's `claims-second-path`).
"""
from __future__ import annotations

import pytest

from tests.claims.harness import notebook_values, register

NOTEBOOK = "01_sae_theory.ipynb"
VALUES = {
        "active_per_sample": "(codes > 0).sum(1).float().mean().item()",
        "features_per_neuron": "toy.n_features_per_neuron(features).tolist()", "others_f0": "others",
        "untrained_on": "(sae(x[:256])[1] != 0).float().mean().item()", "expansion": "sae.n_latents / sae.d_model",
        "rec_relu": "rec_relu['mean_best_cos']", "rec_topk": "rec_topk['mean_best_cos']",
        "relu_sweep": "[[a, r.l0, r.fvu, r.recovery['mean_best_cos']] for a, r in zip(alphas, relu_runs)]",
        "topk_sweep": "[[k, r.l0, r.fvu, r.recovery['mean_best_cos']] for k, r in zip(ks, topk_runs)]",
        "dead_at_end": "{str(k): v for k, v in dead_at_end.items()}",
        "recovery_at_end": "{str(k): v for k, v in recovery_at_end.items()}",
        "n_resampled": "sum(n for _, n in runs['high_loss'].resampled)",
        "ortho_relu": "metrics.decoder_orthogonality(sae_relu.W_dec)",
    }
register(NOTEBOOK, VALUES)


@pytest.fixture(scope="session")
def nb01() -> dict:
    return notebook_values(NOTEBOOK)


def test_01_superposition_about_1_6_features_active(nb01):
    """'TopK with k = 2 (about the 1.6 features active per sample)'."""
    assert abs(nb01["active_per_sample"] - 1.6) < 0.1


def test_01_superposition_neuron0_responds_to_many(nb01):
    """'A monosemantic neuron would respond to one feature. This one responds to many.' (neuron 0)"""
    assert nb01["features_per_neuron"][0] >= 3


def test_01_superposition_every_neuron_mixes_several(nb01):
    """'with more sparse features than dimensions, every neuron ... mixes several features'."""
    assert min(nb01["features_per_neuron"]) >= 2


def test_01_superposition_f0_direction_picks_up_others(nb01):
    """'Even reading along feature 0's own true direction picks up other features'."""
    assert len(nb01["others_f0"]) >= 2


def test_01_sae_untrained_half_the_latents_on(nb01):
    """'untrained: about half the latents are on'."""
    assert 0.35 <= nb01["untrained_on"] <= 0.65


def test_01_sae_expansion_factor_4(nb01):
    """'Expansion factor n/d: how many more latents than dimensions (4 here ...)'."""
    assert nb01["expansion"] == 4


def test_01_training_both_saes_recover_the_features(nb01):
    """'both ReLU + L1 and TopK SAEs recover the true features almost perfectly (mean best cosine > 0.9)'."""
    assert nb01["rec_relu"] > 0.9 and nb01["rec_topk"] > 0.9


def test_01_tradeoff_larger_alpha_sparser_and_worse_reconstruction(nb01):
    """'Larger α ... buys sparsity with reconstruction error'."""
    l0s, fvus = [r[1] for r in nb01["relu_sweep"]], [r[2] for r in nb01["relu_sweep"]]
    assert l0s == sorted(l0s, reverse=True) and fvus == sorted(fvus)


def test_01_tradeoff_smaller_k_sparser_and_worse_reconstruction(nb01):
    """'(or smaller k) buys sparsity with reconstruction error'."""
    l0s, fvus = [r[1] for r in nb01["topk_sweep"]], [r[2] for r in nb01["topk_sweep"]]
    assert l0s == sorted(l0s) and fvus == sorted(fvus, reverse=True)


def test_01_tradeoff_best_reconstruction_is_not_best_recovery(nb01):
    """'the best reconstruction is not the best recovery: with small α the SAE reconstructs well using many latents
    per input, which blends features together'."""
    runs = nb01["relu_sweep"]
    best_fvu, best_rec = min(runs, key=lambda r: r[2]), max(runs, key=lambda r: r[3])
    assert best_fvu is not best_rec and best_fvu[3] < best_rec[3]
    assert best_fvu[0] == min(r[0] for r in runs) and best_fvu[1] == max(r[1] for r in runs)


def test_01_dead_latents_resampling_revives_some(nb01):
    """'Resampling revives the dead latents (the resampled counts above)'."""
    assert nb01["n_resampled"] > 0


def test_01_dead_latents_same_fraction_with_and_without(nb01):
    """'the run ends with about the same dead fraction with and without it'."""
    dead = nb01["dead_at_end"]
    assert abs(dead["high_loss"] - dead["None"]) <= 0.05


def test_01_dead_latents_more_than_half(nb01):
    """'... with and without it, more than half of the latents'."""
    assert min(nb01["dead_at_end"].values()) > 0.5


def test_01_dead_latents_recovery_does_not_change(nb01):
    """'and recovery does not change'."""
    rec = nb01["recovery_at_end"]
    assert abs(rec["high_loss"] - rec["None"]) <= 0.01


def test_01_orthogonality_64_directions_must_overlap(nb01):
    """'In 16 dimensions 64 directions *must* overlap'."""
    assert nb01["ortho_relu"] > 0.1
