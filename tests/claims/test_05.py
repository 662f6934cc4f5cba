"""Claim tests for notebook 05_training_saes.ipynb: each result sentence, checked against the executed notebook (offline).

Runs natively and on a second CPU code path with another seed offset (see the Makefile's `claims-second-path`).
"""
from __future__ import annotations

import pytest

from tests.claims.harness import notebook_values, register

NOTEBOOK = "05_training_saes.ipynb"
VALUES = {
        "bos_ratio": "bos_ratio", "bos_spread": "bos_spread",
        "loss_first_last": "[history.loss[0], history.loss[-1]]", "l0_first_last": "[history.l0[0], history.l0[-1]]",
        "ortho_vs_random": "[history.ortho[-1], random_level]",
        "dead_8x": "dead_8x", "dead_1x": "dead_1x", "fvu_1x": "fvu_1x",
        "dead_topk": "dead_topk", "fvu_topk": "fvu_topk", "precision": "history.precision",
        "sweep": "{r['expansion']: [r['fvu'], r['dead_fraction'], r['live']] for r in sweep}",
        "sweep_gains": "[r['fvu_gain_last_fifth'] for r in sweep]",
        "concepts": "[[r['concept'], r['value'], r['ranked'], r['auroc_per_story'], r['auroc_per_token']] "
                    "for r in matches]",
        "l1_x10": "(lambda h: [h.l0[-1], h.fvu[-1], history.l0[-1], history.fvu[-1]])(train_sae(SAE(D_MODEL, "
                  "8 * D_MODEL), train_acts, **dict(CFG, l1_coef=10 * CFG['l1_coef']), seed=0, ortho_every=None))",
        "topk8_l0": "sae_metrics(SAE(D_MODEL, 8 * D_MODEL, 'topk', k=8), eval_acts)['l0']",
    }
register(NOTEBOOK, VALUES)


@pytest.fixture(scope="session")
def nb05() -> dict:
    return notebook_values(NOTEBOOK)


def test_05_activations_bos_is_no_outlier_in_the_tiny_world(nb05):
    """Printed: 'here BOS is 0.9x the other positions (no outlier; in GPT-2 it is many times larger)'."""
    assert nb05["bos_ratio"] < 2


def test_05_activations_bos_is_the_same_vector_in_every_text(nb05):
    """'its activation is the same vector in every text'."""
    assert nb05["bos_spread"] < 1e-4


def test_05_training_loss_falls(nb05):
    """'The curves: the loss falls fast'."""
    first, last = nb05["loss_first_last"]
    assert last < 0.5 * first


def test_05_training_l0_falls(nb05):
    """'L0 (active latents per token) falls as L1 pushes latents to zero'."""
    first, last = nb05["l0_first_last"]
    assert last < first


def test_05_training_decoder_stays_close_to_orthogonal(nb05):
    """'The decoder's columns stay close to orthogonal on average even though there are 8x more of them'."""
    trained, random_level = nb05["ortho_vs_random"]
    assert trained < 2 * random_level


def test_05_resampling_more_die_under_l1(nb05):
    """'under L1 pressure more die as training goes on' (from the few percent of section 2 to well over half)."""
    dead = nb05["dead_8x"]
    assert dead["before"] < 0.1 and dead["no resampling"] > 0.5


def test_05_resampling_does_not_help_at_8x(nb05):
    """'In the tiny world resampling does not lower the dead fraction of the 8x SAE'."""
    dead = nb05["dead_8x"]
    assert min(dead["reinit"], dead["high_loss"]) >= dead["no resampling"] - 0.01


def test_05_resampling_high_loss_about_the_same_dead_fraction_at_1x(nb05):
    """'"high_loss" ends with about the same dead fraction ... as no resampling' (1x)."""
    dead = nb05["dead_1x"]
    assert abs(dead["high_loss"] - dead["no resampling"]) <= 0.02


def test_05_resampling_high_loss_about_the_same_fvu_at_1x(nb05):
    """'... about the same dead fraction and FVU as no resampling' (1x)."""
    fvu = nb05["fvu_1x"]
    assert abs(fvu["high_loss"] / fvu["no resampling"] - 1) <= 0.1


def test_05_resampling_reinit_does_no_better_at_1x(nb05):
    """'and "reinit" does no better'."""
    dead = nb05["dead_1x"]
    assert dead["reinit"] >= dead["no resampling"]


def test_05_resampling_topk_high_loss_leaves_fewer_dead_latents(nb05):
    """'Take the price away and resampling works in the tiny world too: the TopK SAE with "high_loss" resampling
    ends with fewer dead latents than the same run without it' (and the summary: 'a TopK SAE ... ends with fewer
    dead latents when resampled')."""
    dead = nb05["dead_topk"]
    assert dead["high_loss"] <= dead["no resampling"] - 0.02


def test_05_resampling_topk_about_the_same_fvu(nb05):
    """'... at about the same FVU' (TopK, with and without resampling)."""
    fvu = nb05["fvu_topk"]
    assert abs(fvu["high_loss"] / fvu["no resampling"] - 1) <= 0.1


def test_05_training_offline_runs_in_float32(nb05):
    """'offline we ask for float32, so these numbers are the same on every machine'."""
    assert nb05["precision"] == "fp32"


def test_05_sweep_2x_beats_1x(nb05):
    """'in the tiny world, going from 1x to 2x lowers FVU'."""
    sweep = nb05["sweep"]
    assert sweep["2"][0] < sweep["1"][0]


def test_05_sweep_no_gain_beyond_2x(nb05):
    """'beyond 2x FVU does not improve (4x and 8x are a little worse)'."""
    sweep = nb05["sweep"]
    assert all(sweep["2"][0] <= sweep[e][0] < 1.3 * sweep["2"][0] for e in ("4", "8"))


def test_05_sweep_all_sizes_still_improving_at_a_similar_rate(nb05):
    """'All sizes were still improving at a similar rate at the end (last column)'."""
    gains = nb05["sweep_gains"]
    assert min(gains) > 0 and max(gains) < 1.5 * min(gains)


def test_05_sweep_dead_fraction_climbs(nb05):
    """'... while the dead fraction climbs'."""
    dead = [nb05["sweep"][e][1] for e in ("1", "2", "4", "8")]
    assert dead == sorted(dead) and dead[-1] > dead[0]


def test_05_sweep_live_latents_grow_far_more_slowly(nb05):
    """'the number of live latents grows far more slowly than the SAE' (8x the latents of 1x)."""
    sweep = nb05["sweep"]
    assert sweep["8"][2] < 4 * sweep["1"][2]


def test_05_sweep_a_few_hundred_features(nb05):
    """'The tiny world has only a few hundred features worth a latent at this sparsity'."""
    assert 100 <= max(row[2] for row in nb05["sweep"].values()) < 1000


def test_05_concepts_best_story_latent_at_least_0_9(nb05):
    """'the best latent for each value has AUROC of at least 0.9 per story' (sentiment, certainty; held out)."""
    best = {}
    for concept, value, ranked, story, _ in nb05["concepts"]:
        if ranked == "per story":
            best[(concept, value)] = max(best.get((concept, value), 0.0), story)
    assert len(best) == 4 and min(best.values()) >= 0.9


def test_05_concepts_same_latents_far_lower_per_token(nb05):
    """'The same latents score far lower per token'."""
    rows = [r for r in nb05["concepts"] if r[2] == "per story"]
    assert all(token < story - 0.15 for *_, story, token in rows)


def test_05_concepts_subject_latents_tell_it_per_story(nb05):
    """'though the same latents tell the subject story by story'."""
    rows = [r for r in nb05["concepts"] if r[0] == "subject"]
    assert {r[1] for r in rows} == {"he", "she"} and all(
        max(r[3] for r in rows if r[1] == v) >= 0.9 for v in ("he", "she"))


def test_05_concepts_no_per_token_subject_latent(nb05):
    """'No latent holds the subject at every token (its best per-token AUROC is far from 1)'."""
    rows = [r for r in nb05["concepts"] if r[0] == "subject"]
    assert rows and max(r[4] for r in rows) < 0.8


def test_05_widget_larger_l1_lowers_l0_and_raises_fvu(nb05):
    """'a 10x larger L1 coefficient (L0 drops, FVU rises)'."""
    l0_big, fvu_big, l0, fvu = nb05["l1_x10"]
    assert l0_big < l0 and fvu_big > fvu


def test_05_widget_topk_l0_at_most_k(nb05):
    """'TopK with k = 8 (L0 is at most k ...)'."""
    assert nb05["topk8_l0"] <= 8
