"""Claim tests for notebook 07_circuits.ipynb: each result sentence, checked against the executed notebook (offline).

Runs natively and on a second CPU code path with another seed offset (see the Makefile's `claims-second-path`).
The transcoders are bundled, so the seed offset moves the held-out stories (FVU, loss, AUROC) and the feature
cards; the graph of the fixed prompt changes only with the CPU's float32 arithmetic.
"""
from __future__ import annotations

import pytest

from tests.claims.harness import notebook_values, register

NOTEBOOK = "07_circuits.ipynb"
VALUES = {
    "fvu": "list(fvu.values())", "linear_fvu": "list(linear_fvu.values())", "losses": "losses",
    "kinds": "kinds", "gap": "gap", "scores": "scores", "kept": "kept",
    "n_features": "int(graph.mask('feature').sum())", "r_frozen": "r_frozen", "r_free": "r_free", "n_pairs": "len(predicted)",
    "through_word": "through_word", "by_position": "by_position", "through_sentiment": "through_sentiment",
    "n_sentiment_in_graph": "int(is_sentiment.sum())",
    "word_position": "position",
    "patch_layer0_argmax": "int(patching[0].abs().argmax())",
    "patch_last_layer_argmax": "int(patching[-1].abs().argmax())",
    "graph_layer0_argmax": "int(cells[0].argmax())",
    "graph_last_layer_argmax": "int(cells[-1].argmax())",
    "graph_cells_at_word": "cells[:, position].tolist()",
    "patch_at_word_layer0": "float(patching[0, position])",
    "patch_grid": "patching.tolist()", "cells_grid": "cells.tolist()",
    "n_positions": "len(graph.str_tokens)",
    "logit_words": "graph.logit_words",
    "explorer": "{'shown': shown, 'kinds': [o.get('output_type') + ':' + ','.join(sorted(o.get('data', {}))) "
                "for o in explorer.out.outputs], 'text': ''.join(o.get('text', '') for o in explorer.out.outputs), "
                "'message': explorer.message.value, 'label': graph.label(strongest)}",
    # a second explorer, never displayed: clicking a logit in the notebook's own would clear the card it shows
    "explorer_logit": "[(e := GraphExplorer(graph, pruned, weights.n_layers, card=explorer.card))"
                      ".show(int(graph.mask('logit').nonzero()[0])), e.message.value]",
    "logit_match": "float((graph.values[graph.mask('logit')] - (lambda l: l - l.mean())(model(PROMPT)[0, -1])"
                   "[torch.tensor([n.index for n in graph.nodes if n.kind == 'logit'])]).abs().max())",
    "through_token": "through_token",
}
register(NOTEBOOK, VALUES)


@pytest.fixture(scope="session")
def nb07() -> dict:
    return notebook_values(NOTEBOOK)


def test_07_mlps_are_close_to_linear(nb07):
    """'Each MLP of the tiny world is close to linear (a linear map already explains most of its output)'."""
    assert all(f < 0.1 for f in nb07["linear_fvu"])


def test_07_each_transcoder_beats_the_linear_map(nb07):
    """'each transcoder explains more than that linear map does'."""
    assert all(t < 0.75 * lin for t, lin in zip(nb07["fvu"], nb07["linear_fvu"]))


def test_07_replacement_model_loses_a_little(nb07):
    """'the replacement model, four transcoders and no error terms, loses a little against the exact model'."""
    gap = nb07["losses"]["replacement"] - nb07["losses"]["exact"]
    assert 0 < gap < 0.05


def test_07_edges_add_up(nb07):
    """'each feature's incoming edges plus the constant terms add up to its pre-activation exactly (float rounding)'
    (about 2e-6 measured; a wrong edge or a missing bias term is of the order of the values, 0.1 to 10)."""
    assert nb07["gap"] < 1e-4


def test_07_graph_holds_the_exact_models_logits(nb07):
    """'its logit nodes hold the exact model's logits (to float rounding), not the replacement model's'."""
    assert nb07["logit_match"] < 1e-4


def test_07_graph_has_every_kind_of_node(nb07):
    """Nodes: tokens (one per position), features, one error node per (layer, position), answer logits."""
    k = nb07["kinds"]
    assert k["token"] == nb07["n_positions"] and k["error"] == 4 * nb07["n_positions"]
    assert k["feature"] > 0 and 1 <= k["logit"] <= 10
    assert len(nb07["logit_words"]) == k["logit"] and len(set(nb07["logit_words"])) == k["logit"]


def test_07_pruning_keeps_a_small_part(nb07):
    """'pruning by influence keeps a small part of the graph'."""
    assert 0 < nb07["kept"]["feature"] <= nb07["n_features"] / 3


def test_07_panel_shows_the_strongest_features_card(nb07):
    """'the panel turns each kept feature into something to read: its contexts and the words it pushes'."""
    shown = nb07["explorer"]
    assert shown["shown"] is True and "activation" in shown["message"]
    assert any("image/png" in kind for kind in shown["kinds"]), shown["kinds"]  # the histogram
    text = shown["text"]
    assert text.count("[[") >= 3 and "promotes:" in text and "suppresses:" in text, text[:400]  # contexts + words


def test_07_panel_says_a_logit_node_has_no_card(nb07):
    shown, message = nb07["explorer_logit"]
    assert shown is False and "no feature card" in message


def test_07_scores(nb07):
    """Replacement and completeness scores are shares; printed, and the summary reads them as 'most'."""
    assert 0.5 < nb07["scores"]["replacement"] <= 1 and 0.5 < nb07["scores"]["completeness"] <= 1


def test_07_one_prediction_per_feature_and_answer_logit(nb07):
    """The validation pairs: every intervened feature against every answer logit."""
    assert nb07["n_pairs"] > 0 and nb07["n_pairs"] % nb07["kinds"]["logit"] == 0


def test_07_frozen_interventions_follow_the_graph(nb07):
    """'with attention and LayerNorm frozen ... moves the logits as the graph predicts (r close to 1)'."""
    assert nb07["r_frozen"] >= 0.9


def test_07_free_interventions_do_not(nb07):
    """'Once attention and LayerNorm may respond, the agreement is gone (the free r is far lower)'."""
    assert nb07["r_free"] < 0.5 and nb07["r_frozen"] - nb07["r_free"] > 0.4


def test_07_part_of_the_influence_passes_the_sentiment_word(nb07):
    """'the graph routes part of the answer's influence through ... the sentiment word ... most sits at the last
    position'."""
    assert 0.05 < nb07["through_word"] < 0.5
    assert nb07["by_position"][-1] > 0.5 and nb07["by_position"][-1] == max(nb07["by_position"])


def test_07_part_passes_sentiment_features(nb07):
    """'... and through features that the labels call sentiment features'."""
    assert nb07["n_sentiment_in_graph"] > 0 and 0.05 < nb07["through_sentiment"] < 0.9


def test_07_both_maps_end_at_the_last_position(nb07):
    """'from layer 1 on, patching ... there restores the answer, and in every layer the graph's largest influence
    sits there too'."""
    last = nb07["n_positions"] - 1
    assert all(max(range(len(row)), key=lambda p: abs(row[p])) == last for row in nb07["patch_grid"][1:])
    assert all(row[last] > 0.9 for row in nb07["patch_grid"][1:])
    assert all(max(range(len(row)), key=lambda p: row[p]) == last for row in nb07["cells_grid"])
    assert nb07["patch_last_layer_argmax"] == nb07["graph_last_layer_argmax"] == nb07["graph_layer0_argmax"] == last


def test_07_patching_the_word_in_layer_0_restores_all(nb07):
    """'Patching " love" in layer 0 restores all of the answer'."""
    assert nb07["patch_at_word_layer0"] > 0.9 and nb07["patch_layer0_argmax"] == nb07["word_position"]


def test_07_graph_features_at_the_word_carry_almost_nothing(nb07):
    """'In the graph the features and errors at " love" carry almost none of the influence'."""
    assert max(nb07["graph_cells_at_word"]) < 0.05


def test_07_the_words_share_runs_through_its_token(nb07):
    """'the share that passes through " love" runs almost entirely from its token'."""
    assert nb07["through_token"] >= 0.9 * nb07["through_word"]
