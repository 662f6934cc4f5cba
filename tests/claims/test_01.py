"""Claim tests for notebook 01_sae_theory.ipynb: each result sentence, checked against the executed notebook (offline).

Runs natively and on a second CPU code path with another seed offset (see the Makefile's `claims-second-path`).
Comparisons of trained SAEs are judged by their seed spread (min-max over the notebook's seeds), never by one run.
"""
from __future__ import annotations

import pytest

from tests.claims.harness import notebook_values, register

NOTEBOOK = "01_sae_theory.ipynb"
VALUES = {
    "active_per_sample": "(codes > 0).sum(1).float().mean().item()",
    "features_per_neuron": "toy.n_features_per_neuron(features).tolist()",
    "others_f0": "others",
    "readout": "{str(n): list(toy.best_linear_readout(toy.make_toy_features(n, 16, seed=seed(0)))) + "
               "[toy.n_features_per_neuron(toy.make_toy_features(n, 16, seed=seed(0))).float().mean().item()] "
               "for n in (16, 32)}",
    "untrained_on": "untrained_on",
    "recovery": "{name: list(s.values) for name, s in recovery.items()}",
    "sweep": "{label: [list(l0[label].values), list(fvu[label].values), list(rec[label].values)] for label in sweep}",
    "dead_at_end": "{str(k): list(v.values) for k, v in dead_at_end.items()}",
    "recovery_at_end": "{str(k): list(v.values) for k, v in recovery_at_end.items()}",
    "n_resampled": "[sum(n for _, n in r.history.resampled) for r in runs['high_loss']]",
    "n_seeds": "{'relu': len(relu_runs), 'topk': len(topk_runs), 'sweep': [len(r) for r in sweep.values()], "
               "'resampling': [len(r) for r in runs.values()]}",
    "aa": "{str(n): r for n, r in aa.items()}", "aa_values": "aa_values",
    "ortho": "{name: list(s.values) for name, s in ortho.items()}",
}
register(NOTEBOOK, VALUES)


@pytest.fixture(scope="session")
def nb01() -> dict:
    return notebook_values(NOTEBOOK)


def apart(below: list[float], above: list[float]) -> bool:
    """Every value of `below` is under every value of `above`: a difference larger than the seed spread."""
    return max(below) < min(above)


def overlap(a: list[float], b: list[float]) -> bool:
    """The two seed ranges overlap: 'no clear difference'."""
    return not (apart(a, b) or apart(b, a))


# --- 1. superposition -----------------------------------------------------------------------------------
def test_01_superposition_about_1_6_features_active(nb01):
    """'a TopK SAE (k = 2, about the 1.6 features active per sample)'."""
    assert abs(nb01["active_per_sample"] - 1.6) < 0.1


def test_01_superposition_neuron0_and_most_others_respond_to_several(nb01):
    """'This one responds to several, and so do most of the others (the counts below).'"""
    counts = nb01["features_per_neuron"]
    assert counts[0] >= 2
    assert sum(c >= 2 for c in counts) >= 0.75 * len(counts)


def test_01_superposition_f0_direction_picks_up_others(nb01):
    """'Even reading along feature 0's own true direction picks up other features'."""
    assert len(nb01["others_f0"]) >= 2


def test_01_polysemantic_without_superposition_yet_linearly_separable(nb01):
    """'With 16 features the neurons are polysemantic too (several features per neuron on average), yet a linear
    readout separates the features exactly (leak 0.00).'"""
    own, leak, per_neuron = nb01["readout"]["16"]
    assert per_neuron >= 2
    assert own > 0.99 and leak < 0.005


def test_01_superposition_no_linear_readout_separates_32_features(nb01):
    """'With 32 it cannot: the best readout gets back half of each feature and picks up large pieces of others.'"""
    own, leak, per_neuron = nb01["readout"]["32"]
    assert abs(own - 0.5) < 0.02
    assert leak > 0.15


# --- 2. the SAE -------------------------------------------------------------------------------------------
def test_01_sae_untrained_roughly_half_the_latents_on(nb01):
    """'An untrained one already turns on roughly half its latents for an input that has a feature active'."""
    assert 0.4 <= nb01["untrained_on"] <= 0.6


# --- 3. training ------------------------------------------------------------------------------------------
def test_01_training_every_comparison_has_at_least_3_seeds(nb01):
    """'we train each one with at least three seeds'; 'this comparison gets five seeds per arm'."""
    seeds = nb01["n_seeds"]
    assert seeds["relu"] >= 3 and seeds["topk"] >= 3 and min(seeds["sweep"]) >= 3
    assert seeds["resampling"] == [5, 5]


def test_01_training_both_saes_recover_the_features_every_seed(nb01):
    """'Both SAEs recover the true features almost perfectly: every seed of both has a mean best cosine above 0.9.'"""
    assert min(nb01["recovery"]["ReLU + L1"]) > 0.9 and min(nb01["recovery"]["TopK k=2"]) > 0.9


def test_01_training_relu_topk_gap_is_a_few_hundredths_at_most(nb01):
    """'TopK minus ReLU, seed by seed: a gap of a few hundredths at most, small next to what α and k do in section 4'.
    (No ranking is claimed: the seed-by-seed gap was +0.005 to +0.035 over the offsets tried.)"""
    rec = nb01["recovery"]
    gaps = [t - r for t, r in zip(rec["TopK k=2"], rec["ReLU + L1"])]
    assert max(abs(g) for g in gaps) < 0.06
    means = [sum(v[2]) / len(v[2]) for v in nb01["sweep"].values()]
    assert max(abs(g) for g in gaps) < 0.25 * (max(means) - min(means))


def test_01_rule_fires_about_one_time_in_ten_with_three_seeds_and_under_one_in_a_hundred_with_five(nb01):
    """'With three seeds per arm, ranges that do not overlap turn up about one time in ten between identical arms;
    with five, under one time in a hundred' (measured on ten real runs of one setting)."""
    assert len(nb01["aa_values"]) == 10 and len(set(nb01["aa_values"])) >= 9
    assert 0.08 <= nb01["aa"]["3"] <= 0.1 + 1e-9
    assert nb01["aa"]["5"] < 0.01


def test_01_tradeoff_recovery_ranges_from_about_0_75_to_0_99(nb01):
    """'where recovery ranges from about 0.75 to 0.99' (the mean over seeds of each α and k setting)."""
    means = [sum(v[2]) / len(v[2]) for v in nb01["sweep"].values()]
    assert 0.65 <= min(means) <= 0.85 and max(means) >= 0.97


# --- 4. trade-off -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("labels", [["α=0.03", "α=0.1", "α=0.3", "α=1.0"], ["k=8", "k=4", "k=2", "k=1"]])
def test_01_tradeoff_each_step_sparser_and_worse_beyond_the_spread(nb01, labels):
    """'Each step up in α (or down in k) lowers L0 and raises FVU by more than the spread over seeds'."""
    sweep = nb01["sweep"]
    for denser, sparser in zip(labels, labels[1:]):
        l0_dense, fvu_dense = sweep[denser][0], sweep[denser][1]
        l0_sparse, fvu_sparse = sweep[sparser][0], sweep[sparser][1]
        # k=1 is L0 = 1 exactly in every seed; "lower" still has to beat the spread of the denser setting
        assert apart(l0_sparse, l0_dense), (denser, sparser, l0_dense, l0_sparse)
        assert apart(fvu_dense, fvu_sparse), (denser, sparser, fvu_dense, fvu_sparse)


@pytest.mark.parametrize("dense, sparse, family", [("α=0.03", "α=0.3", "α"), ("k=8", "k=2", "k")])
def test_01_tradeoff_best_reconstruction_is_not_best_recovery(nb01, dense, sparse, family):
    """'α = 0.03 and k = 8 reconstruct best (lowest FVU) and recover the features clearly worse than α = 0.3 and
    k = 2'."""
    sweep = nb01["sweep"]
    family_fvu = {label: sum(v[1]) / len(v[1]) for label, v in sweep.items() if label.startswith(family)}
    assert min(family_fvu, key=family_fvu.get) == dense
    assert apart(sweep[dense][2], sweep[sparse][2])


# --- 5. dead latents --------------------------------------------------------------------------------------
def test_01_dead_latents_resampling_revives_some_every_run(nb01):
    """'Resampling revives dead latents (the resampled counts above ...)'."""
    assert min(nb01["n_resampled"]) > 0


def test_01_dead_latents_no_clear_difference_with_and_without(nb01):
    """'at the end there is no clear difference in the dead fraction with and without it (the two ranges
    overlap)'. (One seed's 'within 0.05' failed for 3 of 10 seeds; the claim is now about the seed ranges.)"""
    dead = nb01["dead_at_end"]
    assert overlap(dead["None"], dead["high_loss"]), dead


def test_01_dead_latents_more_than_a_third_in_every_run(nb01):
    """'every run ends with more than a third of its latents dead'."""
    assert min(min(v) for v in nb01["dead_at_end"].values()) > 1 / 3


def test_01_dead_latents_recovery_no_clear_difference(nb01):
    """'and recovery shows no clear difference either'."""
    rec = nb01["recovery_at_end"]
    assert overlap(rec["None"], rec["high_loss"]), rec


# --- 6. orthogonality -------------------------------------------------------------------------------------
def test_01_orthogonality_64_directions_must_overlap(nb01):
    """'In 16 dimensions 64 directions *must* overlap, and for directions drawn at random the value is about 0.20.'"""
    random = nb01["ortho"]["random directions (64)"]
    assert all(0.17 < v < 0.23 for v in random)


@pytest.mark.parametrize("name", ["ReLU SAE decoders (64)", "TopK SAE decoders (64)", "ReLU α=0.03 (worse recovery)",
                                  "true features (32)"])
def test_01_orthogonality_trained_decoders_sit_at_the_random_level(nb01, name):
    """'Every trained decoder sits within a few hundredths of random directions, the α = 0.03 SAEs that recover the
    features clearly worse included, and so do the true features'."""
    random = nb01["ortho"]["random directions (64)"]
    values = nb01["ortho"][name]
    assert min(random) - 0.05 <= min(values) and max(values) <= max(random) + 0.05, (name, values, random)


def test_01_orthogonality_jumps_when_columns_collapse(nb01):
    """'The collapse moves the number far above that, by much more than the spread of all the others'."""
    ortho = nb01["ortho"]
    collapsed = ortho["collapsed onto 2 directions"]
    others = [v for name, values in ortho.items() if name != "collapsed onto 2 directions" for v in values]
    spread = max(others) - min(others)
    assert min(collapsed) - max(others) > 3 * spread, (collapsed, min(others), max(others))
