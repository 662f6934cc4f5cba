"""Claim tests for notebook 05_training_saes.ipynb: each result sentence, checked against the executed notebook (offline).

Runs natively and on a second CPU code path with another seed offset (see the Makefile's `claims-second-path`).
Every comparison in the notebook runs N_SEEDS seeds per arm; a sentence that claims a difference is checked
against the notebook's own verdict (notebook 01's rule: the arms' ranges do not overlap), never against one run's
value, and stands only if it passes in every run of the claims sweep (tests/claims/SWEEP.md).
"""
from __future__ import annotations

import pytest

from tests.claims.harness import notebook_values, register

NOTEBOOK = "05_training_saes.ipynb"
ROW_KEYS = "('seed', 'dead_fraction', 'fvu', 'l0')"
VALUES = {
    "n_seeds": "N_SEEDS", "seeds": "seeds(N_SEEDS)",
    "bos_ratio": "bos_ratio", "bos_spread": "bos_spread",
    "loss_first_last": "[history.loss[0], history.loss[-1]]", "l0_first_last": "[history.l0[0], history.l0[-1]]",
    "main": "{'fvu_four_fifths': four_fifths['fvu'], 'fvu_end': before['fvu'], 'gain': fvu_gain, "
            "'l0_end': before['l0'], 'dead': before['dead_fraction'], 'steps': CFG['n_steps']}",
    "ortho_vs_random": "[history.ortho[-1], random_level]",
    "rows_8x": f"[[r['run']] + [r[k] for k in {ROW_KEYS}] for r in rows_8x]",
    "rows_1x": f"[[r['run (1x)']] + [r[k] for k in {ROW_KEYS}] for r in rows_1x]",
    "rows_topk": f"[[r['run (TopK 8x)']] + [r[k] for k in {ROW_KEYS}] for r in rows_topk]",
    "verdict_8x": "verdict_8x", "verdict_1x": "verdict_1x",
    "verdict_topk": "verdict_topk",
    "costs": "result",
    "sweep": "[[r['expansion'], r['seed'], r['fvu'], r['loss_recovered'], r['live'], r['dead_fraction'], "
             "r['fvu_gain_last_fifth'], r['l0'], r['loss_sae'] - r['loss_clean']] for r in sweep]",
    "concepts": "[[r['concept'], r['value'], r['ranked'], r['auroc_per_story'], r['auroc_per_token']] "
                "for r in matches]",
    "probe": "probe", "same": "same",
    "sweep_k": "SWEEP_K", "sweep_seeds": "seeds(SWEEP_SEEDS)", "fvu_ratio": "fvu_ratio",
    "sparse": "[h_sparse.decoder, h_sparse.decoder_note, history.decoder, history.decoder_note] if h_sparse else None",
}
register(NOTEBOOK, VALUES)


@pytest.fixture(scope="session")
def nb05() -> dict:
    return notebook_values(NOTEBOOK)




# --- helpers: rows are [arm, seed, dead_fraction, fvu, l0]; sweep rows [expansion, seed, fvu, loss_recovered,
# live, dead_fraction, fvu_gain_last_fifth, l0, ce_increase] ----------------------------------------------------------
COLUMN = {"dead_fraction": 2, "fvu": 3, "l0": 4}


def arm(rows, name, key):
    """One arm's values of `key`, in seed order."""
    return [r[COLUMN[key]] for r in sorted(rows, key=lambda r: r[1]) if r[0] == name]


def size(nb05, expansion, column):
    return [r[column] for r in nb05["sweep"] if r[0] == expansion]


# --- setup and section 1 ---------------------------------------------------------------------------------------
def test_05_every_comparison_runs_at_least_3_seeds_through_saelab_seeds(nb05):
    """'N_SEEDS is how many seeds each arm of a comparison runs: 3 offline'; seeds come from saelab.seeds."""
    assert nb05["n_seeds"] == 3 and len(set(nb05["seeds"])) == 3
    for key in ("rows_8x", "rows_1x", "rows_topk"):
        for name in {r[0] for r in nb05[key]}:
            assert sorted(r[1] for r in nb05[key] if r[0] == name) == sorted(nb05["seeds"])
    assert len(set(nb05["sweep_seeds"])) == 5  # 'each size runs SWEEP_SEEDS seeds (5 offline ...)'
    for expansion in (1, 2, 4, 8):
        assert sorted(r[1] for r in nb05["sweep"] if r[0] == expansion) == sorted(nb05["sweep_seeds"])


def test_05_activations_bos_is_the_same_vector_in_every_text(nb05):
    """'its activation is the same vector in every text'."""
    assert nb05["bos_spread"] < 1e-4


# --- section 2 ---------------------------------------------------------------------------------------------------
def test_05_training_loss_falls(nb05):
    """'The curves: the loss falls fast'."""
    first, last = nb05["loss_first_last"]
    assert last < 0.5 * first


def test_05_training_l0_falls(nb05):
    """'L0 (active latents per token) falls as L1 pushes latents to zero'."""
    first, last = nb05["l0_first_last"]
    assert last < first


def test_05_training_not_converged_fvu_still_falling_slowly(nb05):
    """'This run is not converged: FVU is still falling at the end, slowly (the printed gain over the last fifth)'."""
    main = nb05["main"]
    assert main["fvu_end"] < main["fvu_four_fifths"] and 0 < main["gain"] < 0.3


def test_05_training_decoder_orthogonality_near_the_random_level(nb05):
    """'Its decoder's mean |cos| stays near the random level: no columns collapsed'."""
    trained, random_level = nb05["ortho_vs_random"]
    assert abs(trained / random_level - 1) < 0.25


# --- section 3 ---------------------------------------------------------------------------------------------------
def test_05_resampling_more_die_under_l1(nb05):
    """'L1 keeps pruning (from the end of section 2 to well over half dead)' and 'under L1 pressure more die'."""
    none = arm(nb05["rows_8x"], "no resampling", "dead_fraction")
    assert min(none) > 0.5 and min(none) > nb05["main"]["dead"]


def test_05_resampling_8x_fewer_dead_in_every_seed(nb05):
    """'every seed of "high_loss" ends with far fewer dead latents than any seed without resampling' (8x)."""
    assert nb05["verdict_8x"]["dead_fraction"] == "lower"
    rows = nb05["rows_8x"]
    assert max(arm(rows, "high_loss", "dead_fraction")) < min(arm(rows, "no resampling", "dead_fraction")) - 0.2


def test_05_resampling_8x_l0_higher_and_fvu_clearly_worse_soon_after(nb05):
    """'the revived latents still fire on many tokens (L0 several times higher) and FVU is clearly worse'."""
    assert nb05["verdict_8x"]["fvu"] == "higher"
    rows = nb05["rows_8x"]
    assert min(arm(rows, "high_loss", "l0")) > 3 * max(arm(rows, "no resampling", "l0"))


def test_05_resampling_1x_never_leaves_more_dead(nb05):
    """'At 1x the difference sits near the seed spread ... in none of our runs did resampling leave more latents dead
    there' (the verdict is printed, not named: on an AVX-512 CPU's second path it was 'no clear difference')."""
    assert nb05["verdict_1x"]["dead_fraction"] in ("lower", "no clear difference")


def test_05_resampling_1x_and_topk_fvu_within_a_fifth_seed_for_seed(nb05):
    """'at 1x and for TopK, FVU with "high_loss" stays within a fifth of FVU without it, seed for seed'."""
    for key, name in (("rows_1x", "1x"), ("rows_topk", "TopK")):
        rows = nb05[key]
        ratios = [o / b for o, b in zip(arm(rows, "high_loss", "fvu"), arm(rows, "no resampling", "fvu"))]
        assert len(ratios) == nb05["n_seeds"] and all(0.8 < r < 1.2 for r in ratios), (name, ratios)


def test_05_resampling_topk_clearly_fewer_dead(nb05):
    """'"high_loss" resampling clearly lowered the dead fraction at 8x and for TopK'."""
    assert nb05["verdict_topk"]["dead_fraction"] == "lower"


# --- section 4 ---------------------------------------------------------------------------------------------------
def test_05_loss_zero_ablation_costs_only_hundredths_of_a_nat(nb05):
    """'Zero-ablating blocks.3.hook_mlp_out costs the tiny world only a few hundredths of a nat per token'."""
    assert 0.005 < nb05["costs"]["ce_increase_zero"] < 0.1


def test_05_loss_sae_costs_thousandths_and_several_percent_of_the_gap(nb05):
    """'a splice that costs only a few thousandths of a nat (ce_increase_sae) already gives away several percent'."""
    costs = nb05["costs"]
    assert 0 < costs["ce_increase_sae"] < 0.01 and 0.02 < 1 - costs["loss_recovered"] < 0.3


def test_05_loss_sae_ce_and_kl_over_five_times_smaller_than_zero_ablation(nb05):
    """'the SAE's CE-loss increase and KL are over five times smaller than zero-ablation's'."""
    costs = nb05["costs"]
    assert costs["ce_increase_sae"] * 5 < costs["ce_increase_zero"] and costs["kl_sae"] * 5 < costs["kl_zero"]


# --- section 5 ---------------------------------------------------------------------------------------------------
def test_05_sweep_matched_l0(nb05):
    """'every size is a TopK SAE with the same k: L0 is k for all of them', 'Offline k = 4' (a token can have fewer
    than k positive pre-activations, so measured L0 is at most k and close to it)."""
    k = nb05["sweep_k"]
    assert k == 4 and all(k - 0.5 <= r[7] <= k for r in nb05["sweep"])


def test_05_sweep_8x_mean_fvu_about_a_fifth_lower_than_1x(nb05):
    """'the mean FVU at 8x is about a fifth lower than at 1x (the ratio printed above; 0.75-0.84 in the 12 runs of our
    claims sweep)': that sweep gave 0.752-0.836 (k = 4, five seeds per size; at k = 16 and three seeds an AVX-512 CPU
    saw 8x 0.0055-0.0074 vs 1x 0.0073-0.0076, so the section moved to a regime where size matters and to more seeds).
    'About a fifth': between 0.1 and 0.33."""
    one, eight = size(nb05, 1, 2), size(nb05, 8, 2)
    ratio = sum(eight) / sum(one)
    assert abs(ratio - nb05["fvu_ratio"]) < 1e-9
    assert 0.67 < ratio < 0.9


def test_05_sweep_dead_fraction_climbs_in_every_seed(nb05):
    """'the dead fraction climbs with size in every seed'."""
    for seed in nb05["seeds"]:
        dead = [r[5] for r in sorted(nb05["sweep"]) if r[1] == seed]
        assert dead == sorted(dead) and dead[-1] > dead[0] + 0.3


def test_05_sweep_8x_less_than_three_times_the_live_latents_of_1x(nb05):
    """'8x has eight times the latents of 1x but less than three times as many live ones' (1.7 at k = 4)."""
    ratio = sum(size(nb05, 8, 4)) / sum(size(nb05, 1, 4))
    assert 1 < ratio < 3


def test_05_sweep_fewer_than_400_live_latents(nb05):
    """'even 8x keeps fewer than 400 alive' (about 150 at k = 4)."""
    assert max(r[4] for r in nb05["sweep"]) < 400


def test_05_sweep_splice_costs_under_a_hundredth_of_a_nat(nb05):
    """'Splicing in any of these SAEs costs the model less than a hundredth of a nat per token ...; zero-ablation costs a
    few hundredths' (at k = 4 loss recovered itself ranged 0.93-1.01: a ratio of two small numbers)."""
    assert all(r[8] < 0.01 for r in nb05["sweep"])
    assert 0.01 < nb05["costs"]["ce_increase_zero"] < 0.1


def test_05_sweep_last_column_too_noisy_to_show_convergence(nb05):
    """'its change over the last fifth swings by more than 0.05 between the seeds of one size'."""
    spreads = [max(size(nb05, e, 6)) - min(size(nb05, e, 6)) for e in (1, 2, 4, 8)]
    assert max(spreads) > 0.05


def test_05_sparse_step_is_timed_against_dense_on_this_machine(nb05):
    """'The next cell measures both on your machine' (the printed note holds both timings and their ratio) and
    'smaller SAEs, like the tiny world's here, stay dense'."""
    assert nb05["sparse"] is not None, "the timing was skipped offline (memory thought short)"
    decoder, note, main_decoder, main_note = nb05["sparse"]
    assert decoder in ("dense", "sparse") and note.startswith("auto: timed") and "ms sparse vs" in note, note
    assert note.endswith(f"kept {decoder}"), note
    assert main_decoder == "dense" and "dense without timing" in main_note, main_note


# --- section 6 ---------------------------------------------------------------------------------------------------
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


def test_05_concepts_probe_reads_the_concept_from_most_tokens(nb05):
    """'the linear probe reads sentiment and certainty from most held-out tokens', far above the best single latent."""
    best_token_auroc = max(r[4] for r in nb05["concepts"] if r[0] in ("sentiment", "certainty"))
    assert min(nb05["probe"].values()) > 0.75 and best_token_auroc < 0.75


def test_05_concepts_subject_latents_tell_it_per_story(nb05):
    """'though the same latents tell the subject story by story'."""
    rows = [r for r in nb05["concepts"] if r[0] == "subject"]
    assert {r[1] for r in rows} == {"he", "she"} and all(
        max(r[3] for r in rows if r[1] == v) >= 0.9 for v in ("he", "she"))


def test_05_concepts_no_per_token_subject_latent(nb05):
    """'No latent holds the subject at every token (its best per-token AUROC is far from 1)'."""
    rows = [r for r in nb05["concepts"] if r[0] == "subject"]
    assert rows and max(r[4] for r in rows) < 0.8


# --- section 7 ---------------------------------------------------------------------------------------------------
def test_05_save_and_load_give_the_same_outputs(nb05):
    """'loaded back ...; same outputs: True' (a trained SAE is just its state dict)."""
    assert nb05["same"] is True
