"""Claim tests for notebook 03_activation_patching.ipynb: each result sentence, checked against the executed notebook (offline).

Runs natively and on a second CPU code path with another seed offset (see the Makefile's `claims-second-path`).
"""
from __future__ import annotations

import pytest

from tests.claims.harness import notebook_values, register

NOTEBOOK = "03_activation_patching.ipynb"
VALUES = {
        "love": "float(heat[0, 2])", "love_token": "str_tokens[2]",
        "block0_others": "float(torch.cat([heat[0, :2], heat[0, 3:]]).abs().max())",
        "last_from_block1": "[round(float(v), 2) for v in heat[1:, -1]]",
        "rest_from_block1": "float(heat[1:, :-1].abs().max())",
        "tl_gap": "float((tl_result - by_hand).abs().max())",
        "same_as_tl": "bool(torch.allclose(heat, tl_result, atol=1e-4))",
        "attn0_last": "float(components['attn_out'][0, -1])", "mlp0_last": "float(components['mlp_out'][0, -1])",
        "later_blocks_max": "float(max(v[1:].abs().max() for v in components.values()))",
        "splice_change": "splice_change",
        "top_effect": "float(real.effects.abs().max())", "sum_effects": "float(real.effects.sum())",
        "whole": "float(heat[row, position])", "correlation": "agreement['correlation']",
        "attr_last_max": "float(approx[1:, -1].max())", "real_last_max": "float(heat[1:, -1].max())",
        "reveal": "reveal", "found": "found", "agree": "agree", "n_rows": "len(rows)",
        "best_in_top10": "[i in real.top(10) for i in best]",
        "best_detail": "[{'patch': float(real.effect_of([i])[0]), 'ablation': float(ablated.effect_of([i])[0]), "
                       "'clean': float(real.clean[real.latents == i].sum()), "
                       "'corrupted': float(real.corrupted[real.latents == i].sum())} for i in best]",
        "max_ablation": "float(ablated.effects.abs().max())",
        "colour_limits": "[list(ax.images[0].get_clim()) for ax in axes]", "limit": "limit",
        "approx_max": "float(approx.max())", "heat_max": "float(heat.max())",
        "approx_argmax_column": "int(approx.argmax()) % approx.shape[1]", "n_pos": "len(str_tokens)",
        "top_negative_at_a": "top_at_a", "top_negative_at_stop": "at_stop",
        "ranking_prompts": "[len(ranking), float(au[ranking[0]]), float(au[ranking[-1]])]",
    }
register(NOTEBOOK, VALUES)


@pytest.fixture(scope="session")
def nb03() -> dict:
    return notebook_values(NOTEBOOK)


def test_03_residual_love_restores_everything_before_block_0(nb03):
    """ "before block 0 only the changed word matters: patching *love* in alone restores the clean answer fully
    (1.00), every other position does nothing" """
    assert nb03["love_token"] == " love" and abs(nb03["love"] - 1.0) <= 0.01
    assert nb03["block0_others"] <= 0.05


def test_03_residual_only_the_last_position_from_block_1(nb03):
    """ "From block 1 on ... only the last position restores it (0.98), and the word's own position no longer
    matters" """
    assert all(abs(v - 0.98) <= 0.011 for v in nb03["last_from_block1"])  # printed digits may differ by one
    assert nb03["rest_from_block1"] <= 0.05


def test_03_residual_transformer_lens_gives_the_same_map(nb03):
    """ "It should agree with our loop" / "`patch_residual` gives the same map" """
    assert nb03["tl_gap"] <= 1e-4 and nb03["same_as_tl"]


def test_03_components_block_0_attention_and_mlp(nb03):
    """ "block 0's attention output alone restores 0.98 ... block 0's MLP output there restores 0.94" """
    assert abs(nb03["attn0_last"] - 0.98) <= 0.01 and abs(nb03["mlp0_last"] - 0.94) <= 0.01


def test_03_components_later_blocks_restore_little(nb03):
    """ "The attention and MLP outputs of blocks 1-3 restore little (at most 0.25)" """
    assert nb03["later_blocks_max"] <= 0.25


def test_03_latents_splicing_changes_nothing(nb03):
    """ "With `z` unchanged this gives back `x` exactly, so splicing alone changes nothing" """
    assert nb03["splice_change"] < 1e-4


def test_03_latents_no_single_latent_restores_much(nb03):
    """ "no single latent restores more than a small part of the answer (the strongest about 0.12)" """
    assert abs(nb03["top_effect"] - 0.12) <= 0.01


def test_03_latents_single_effects_add_up_to_most(nb03):
    """ "together their single effects add up to most of what patching the whole residual stream restores" """
    assert 0.5 * nb03["whole"] < nb03["sum_effects"] <= nb03["whole"] + 0.05


def test_03_attribution_latents_close_to_the_diagonal(nb03):
    """ "the latent estimates sit close to the diagonal (correlation above 0.9)" """
    assert nb03["correlation"] > 0.9


def test_03_attribution_overshoots_for_whole_residual_vectors(nb03):
    """ "for whole residual vectors the estimate overshoots where the real effect is large (up to about 1.4 where
    real patching gives 0.98)" """
    assert abs(nb03["attr_last_max"] - 1.4) <= 0.05 and abs(nb03["real_last_max"] - 0.98) <= 0.01


def test_03_truth_patching_finds_the_revealing_word(nb03):
    """ "patching points at the word the generator says reveals the sentiment" """
    assert nb03["reveal"] == nb03["found"] == 2


def test_03_truth_top_patched_latents_lean_the_right_way(nb03):
    """ "every one of the top patched latents leans the way its effect says" """
    assert nb03["n_rows"] == 8 and nb03["agree"] == nb03["n_rows"]


def test_03_truth_five_of_six_auroc_extremes_are_strongly_patched(nb03):
    """ "five of AUROC's six extreme latents are among the strongest patched ones" (the top 10 of 24) """
    assert len(nb03["best_in_top10"]) == 6 and sum(nb03["best_in_top10"]) == 5


def test_03_truth_the_sixth_fires_in_both_and_ablation_shows_it(nb03):
    """ "The sixth fires in both prompts, so copying its clean value changes little; ablating it in the clean run
    shows its weight" """
    sixth = [d for d, top in zip(nb03["best_detail"], nb03["best_in_top10"]) if not top][0]
    assert sixth["clean"] > 0 and sixth["corrupted"] > 0 and abs(sixth["patch"]) < 0.05
    assert abs(sixth["ablation"]) == nb03["max_ablation"]


def test_03_attribution_heatmaps_share_a_scale_that_shows_the_overshoot(nb03):
    """ "Both maps get one colour scale, from minus to plus the largest value in either, so a value above 1 ... looks
    darker than any cell of the real map" / "the estimate's last column is the darkest blue of the figure, darker than
    any cell of the real map" (real patching peaks at 1.00, the estimate at about 1.43)"""
    assert nb03["colour_limits"] == [[-nb03["limit"], nb03["limit"]]] * 2
    assert abs(nb03["limit"] - nb03["approx_max"]) < 1e-6
    assert nb03["approx_max"] > nb03["heat_max"] + 0.2 and nb03["heat_max"] <= 1.01
    assert nb03["approx_argmax_column"] == nb03["n_pos"] - 1


def test_03_truth_rank_sentiment_latents_is_not_notebook_02s_ranking(nb03):
    """ "It is **not** notebook 02's ranking, which scored the full stop ...; the two positions have different top
    latents" """
    assert nb03["top_negative_at_a"] != nb03["top_negative_at_stop"]
    n, best, worst = nb03["ranking_prompts"]
    assert best > 0.9 and worst < 0.1  # both ends of the ranking separate the sentiment at " a"
