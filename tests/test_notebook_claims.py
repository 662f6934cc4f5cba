"""Every sentence of a notebook that states a result is checked here against what the notebook computes offline.

Each notebook runs once per test session in a fresh kernel (tiny world, `SAELAB_OFFLINE=1`), exactly as a
student runs it; then the expressions listed for it in `VALUES` are evaluated in that kernel. One test per
claim; its name gives the notebook and section, its docstring quotes the claim.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

# notebook -> {name: Python expression evaluated in the executed notebook's kernel; must give JSON}
VALUES: dict[str, dict[str, str]] = {
    # --- notebook 01 ---
    "01_sae_theory.ipynb": {
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
    },
    # --- notebook 02 ---
    "02_finding_features.ipynb": {
        "k": "sae.k", "top_k": "len(tops[0].latents)", "shared": "len(shared)",
        "one_sided": "one_sided", "n_diffs": "len(diffs)",
        "bos_ratio": "bos_ratio", "gpt2_note": "gpt2",
        "n_rank_prompts": "[len(prompts['negative']), len(prompts['positive'])]",
        "best_last_auroc": "ranked[0]['auroc']", "n_perfect": "sum(r['auroc'] == 1.0 for r in ranked)",
        "best_every_auroc": "every[0]['auroc']",
        "n_held_out": "[len(held_negative), len(held_positive)]", "held_auroc": "held_auroc",
        "held_overlap": "len(set(prompts['negative'] + prompts['positive']) & "
                        "set(prompts['held_out_negative'] + prompts['held_out_positive']))",
        "card_contexts": "[(b, t) for _, b, t, _ in card.contexts]",
        "card_promoted": "[t.strip() for t, _ in card.promoted]",
        "per_token": "ours", "per_story": "per_story",
        "best_token_latent_coverage": "float((held_out.dense([int(candidates[best])])[:, 0]"
                                      "[torch.tensor([x == 'negative' for x in labels])] > 0).float().mean())",
    },
    # --- notebook 03 ---
    "03_activation_patching.ipynb": {
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
    },
    # --- notebook 04 ---
    "04_steering.ipynb": {
        "prompt": "PROMPT", "latents": "LATENTS", "latent_aurocs": "[float(auroc[i]) for i in LATENTS]",
        "magnitudes": "mags.tolist()",
        "cos_unit": "float(torch.cosine_similarity(vectors['unit'], vectors['ones'], dim=0))",
        "cos_measured": "float(torch.cosine_similarity(vectors['measured'], vectors['ones'], dim=0))",
        "before_after": "{k.split(' (')[0]: fraction_negative(v, METHOD) for k, v in cols.items()}",
        "hooks_left": "len(model.hook_dict[sae.hook_name].fwd_hooks)",
        "combos": "[(r[0], float(r[1].rstrip('%')) / 100) for r in rows]",
        "curves": "{m: [(p.negative, p.fluency) for p in pts] for m, pts in curves.items()}",
        "sweep": "[(p.scale, p.negative, p.fluency) for p in points]", "spot": "spot", "broken": "broken",
        "panel": "{k.split(' (')[0]: fraction_negative(v, METHOD) for k, v in panel.columns.items()}",
    },
    # --- notebook 05 ---
    "05_training_saes.ipynb": {
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
    },
}
_RESULTS: dict[str, dict] = {}


def notebook_values(name: str) -> dict:
    """Run notebook `name` offline (once per session) and return the values `VALUES[name]` asks for."""
    if name not in _RESULTS:
        wanted = VALUES[name]
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        probe = "import json as _json\nprint('@@VALUES@@' + _json.dumps({%s}))" % ", ".join(
            f"{key!r}: {expr}" for key, expr in wanted.items())
        nb.cells.append(nbformat.v4.new_code_cell(probe))
        os.environ["SAELAB_OFFLINE"] = "1"
        os.environ.setdefault("MPLBACKEND", "Agg")
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
        text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("output_type") == "stream")
        _RESULTS[name] = json.loads(text.split("@@VALUES@@", 1)[1])
    return _RESULTS[name]


@pytest.fixture(scope="session")
def nb01() -> dict:
    return notebook_values("01_sae_theory.ipynb")


@pytest.fixture(scope="session")
def nb02() -> dict:
    return notebook_values("02_finding_features.ipynb")


@pytest.fixture(scope="session")
def nb03() -> dict:
    return notebook_values("03_activation_patching.ipynb")


@pytest.fixture(scope="session")
def nb04() -> dict:
    return notebook_values("04_steering.ipynb")


@pytest.fixture(scope="session")
def nb05() -> dict:
    return notebook_values("05_training_saes.ipynb")


# ================================ notebook 01: SAE theory ================================
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



# ============================ notebook 02: finding features ==============================
def test_02_top_latents_lists_look_alike(nb02):
    """ "In the tiny world the three top-10 lists are the same ten latents in a different order" """
    assert nb02["top_k"] == 10 and nb02["shared"] == 10


def test_02_top_latents_differences_are_one_sided(nb02):
    """ "most of the latents that differ most fire on one side only" """
    assert nb02["n_diffs"] >= 4 and nb02["one_sided"] > nb02["n_diffs"] / 2


def test_02_top_latents_k_per_token(nb02):
    """ "a handful of latents fire at each token (at most k: 32 for OpenAI's SAE, 16 for the tiny world's)" """
    assert nb02["k"] == 16


def test_02_bos_is_only_slightly_larger_in_the_tiny_world(nb02):
    """ "In the tiny world BOS is only slightly larger than the other positions" (the cell labels ~30x as GPT-2's)"""
    assert 1.0 <= nb02["bos_ratio"] < 2.0
    assert "GPT-2" in nb02["gpt2_note"] and "30x" in nb02["gpt2_note"]


def test_02_contrast_single_latents_separate_at_the_last_token(nb02):
    """ "at the last token, where the sentiment is known, single latents separate negative from positive prompts
    perfectly (AUROC 1.0)" """
    assert nb02["best_last_auroc"] == 1.0 and nb02["n_perfect"] >= 2


def test_02_contrast_every_token_is_barely_above_chance(nb02):
    """ "over every token the best AUROC is barely above chance" """
    assert 0.5 < nb02["best_every_auroc"] < 0.65


def test_02_held_out_the_best_latent_separates_unseen_prompts(nb02):
    """ "the best one does so on held-out prompts too" (200 + 200 other generated prompts; issue #14: >= 0.9)"""
    assert nb02["n_rank_prompts"] == [40, 40] and nb02["n_held_out"] == [200, 200] and nb02["held_overlap"] == 0
    assert nb02["held_auroc"] == 1.0


def test_02_card_fires_at_the_end_of_negative_sentences(nb02):
    """ "In the tiny world this latent fires at the full stop that ends a negative sentence" """
    from saelab.tinyworld import continuation_sentiment

    assert len(nb02["card_contexts"]) >= 5
    for before, token in nb02["card_contexts"]:
        assert token == "." and continuation_sentiment(before.split(".")[-1]) == "negative", (before, token)


def test_02_card_promotes_negative_words(nb02):
    """ "the words it promotes most include negative ones (*sadly*, *unfortunately*, *grumpy*)" """
    assert {"sadly", "unfortunately", "grumpy"} <= set(nb02["card_promoted"])


def test_02_truth_absorption_best_latent_covers_part_of_the_negative_tokens(nb02):
    """ "even the best latent fires on only part of the negative tokens" """
    assert nb02["best_token_latent_coverage"] < 0.5


def test_02_truth_per_token_little_above_chance_per_story_clean(nb02):
    """ "per token it scores little above chance, per story it separates the sentiment cleanly" """
    assert 0.5 < nb02["per_token"] < 0.6
    assert nb02["per_story"] >= 0.9



# ========================== notebook 03: activation patching =============================
def test_03_residual_love_restores_everything_before_block_0(nb03):
    """ "before block 0 only the changed word matters: patching *love* in alone restores the clean answer fully
    (1.00), every other position does nothing" """
    assert nb03["love_token"] == " love" and abs(nb03["love"] - 1.0) <= 0.01
    assert nb03["block0_others"] <= 0.05


def test_03_residual_only_the_last_position_from_block_1(nb03):
    """ "From block 1 on ... only the last position restores it (0.98), and the word's own position no longer
    matters" """
    assert nb03["last_from_block1"] == [0.98] * len(nb03["last_from_block1"])
    assert nb03["rest_from_block1"] <= 0.05


def test_03_residual_transformer_lens_gives_the_same_map(nb03):
    """ "It should agree with our loop" / "`patch_residual` gives the same map" """
    assert nb03["tl_gap"] <= 1e-4 and nb03["same_as_tl"]


def test_03_components_block_0_attention_and_mlp(nb03):
    """ "block 0's attention output alone restores 0.98 ... block 0's MLP output there restores 0.94" """
    assert round(nb03["attn0_last"], 2) == 0.98 and round(nb03["mlp0_last"], 2) == 0.94


def test_03_components_later_blocks_restore_little(nb03):
    """ "The attention and MLP outputs of blocks 1-3 restore little (at most 0.25)" """
    assert nb03["later_blocks_max"] <= 0.25


def test_03_latents_splicing_changes_nothing(nb03):
    """ "With `z` unchanged this gives back `x` exactly, so splicing alone changes nothing" """
    assert nb03["splice_change"] < 1e-4


def test_03_latents_no_single_latent_restores_much(nb03):
    """ "no single latent restores more than a small part of the answer (the strongest about 0.12)" """
    assert round(nb03["top_effect"], 2) == 0.12


def test_03_latents_single_effects_add_up_to_most(nb03):
    """ "together their single effects add up to most of what patching the whole residual stream restores" """
    assert 0.5 * nb03["whole"] < nb03["sum_effects"] <= nb03["whole"] + 0.05


def test_03_attribution_latents_close_to_the_diagonal(nb03):
    """ "the latent estimates sit close to the diagonal (correlation above 0.9)" """
    assert nb03["correlation"] > 0.9


def test_03_attribution_overshoots_for_whole_residual_vectors(nb03):
    """ "for whole residual vectors the estimate overshoots where the real effect is large (up to about 1.4 where
    real patching gives 0.98)" """
    assert round(nb03["attr_last_max"], 1) == 1.4 and round(nb03["real_last_max"], 2) == 0.98


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


# ================================= notebook 04: steering =================================
def test_04_settings_the_positive_context_stays_positive_unsteered(nb04):
    """ "it starts from a clearly positive context, "i love him. he is such a": unsteered, the model continues it
    positively" """
    assert nb04["prompt"] == "i love him. he is such a"
    assert nb04["sweep"][0][0] == 0 and nb04["sweep"][0][1] <= 0.1  # 24 samples at scale 0
    assert nb04["before_after"]["sampled, unsteered"] <= 0.25 and nb04["before_after"]["greedy, unsteered"] == 0


def test_04_latents_separate_perfectly_where_sentiment_is_known(nb04):
    """ "single latents of the tiny world's SAE separate negative from positive prompts perfectly (AUROC 1.0 for all
    four we use below)" """
    assert len(nb04["latents"]) == 4 and nb04["latent_aurocs"] == [1.0] * 4


def test_04_latents_fire_on_a_real_negative_sentence(nb04):
    """ "On a real negative sentence they fire with a typical size" """
    assert all(m > 0 for m in nb04["magnitudes"])


def test_04_vector_ones_and_unit_point_the_same_way(nb04):
    """ ""ones" and "unit" point the same way (they differ only in length); "measured" leans toward whichever latent
    fires harder" """
    assert nb04["cos_unit"] > 0.999 and nb04["cos_measured"] < 0.99


def test_04_before_after_steered_samples_turn_negative(nb04):
    """ "In the tiny world, from the positive context, the unsteered samples stay positive and most steered ones turn
    negative [...] The hook lives only inside the `with` block (0 hooks left after it)" """
    ba = nb04["before_after"]
    assert ba["sampled, unsteered"] <= 0.25 and ba["sampled, steered"] > 0.5
    assert nb04["hooks_left"] == 0


def test_04_combining_more_latents_usually_push_harder(nb04):
    """ "each added latent adds its own direction, so at a fixed scale more latents usually push harder" """
    shares = [share for _, share in nb04["combos"]]
    assert len(shares) == 4 and shares[-1] > shares[0]
    assert sum(b >= a for a, b in zip(shares, shares[1:])) >= len(shares) - 2


def test_04_magnitudes_ones_and_unit_coincide(nb04):
    """ "then "ones" and "unit" (same direction) must coincide" (plotted against the length added)"""
    ones, unit = nb04["curves"]["ones"], nb04["curves"]["unit"]
    assert [n for n, _ in ones] == [n for n, _ in unit]
    assert all(abs(a - b) < 0.05 for (_, a), (_, b) in zip(ones, unit))


def test_04_sweep_has_a_window(nb04):
    """ "Below it the effect is partial, inside it the sentiment flips while the text stays fluent (the sweet spot
    printed above), and beyond it fluency collapses even though the "negativity" stays high" """
    sweep, spot, broken = nb04["sweep"], nb04["spot"], nb04["broken"]
    base = sweep[0][2]
    at_spot = next(p for p in sweep if p[0] == spot)
    assert at_spot[1] >= 0.9 and at_spot[2] >= base - 1.0
    assert all(p[1] < at_spot[1] for p in sweep if p[0] < spot)
    assert broken is not None and broken > spot
    beyond = [p for p in sweep if p[0] >= broken]
    assert all(p[2] < base - 1.0 and p[1] >= 0.9 for p in beyond)


def test_04_panel_default_run_shows_the_difference(nb04):
    """ "The panel opens with its default run: the positive prompt of section 1, unsteered and steered side by side"
    (issue #14: the default run should differ visibly)"""
    panel = nb04["panel"]
    assert panel["sampled, unsteered"] <= 0.25 and panel["sampled, steered"] >= panel["sampled, unsteered"] + 0.5



# ============================== notebook 05: training SAEs ===============================
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
