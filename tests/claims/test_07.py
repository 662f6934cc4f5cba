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
    "gap_closed": "gap_closed",
    "kinds": "kinds", "gap": "gap", "scores": "scores", "kept": "kept",
    "n_features": "int(graph.mask('feature').sum())",
    "r": "r", "n_points": "len(predicted)", "harder": "harder",
    "through_word": "through_word", "by_position": "by_position", "through_sentiment": "through_sentiment",
    "n_sentiment_in_graph": "int(is_sentiment.sum())", "n_active_auroc": "len(active)", "n_confirmed": "len(confirmed)",
    "word_position": "position",
    "patch_layer0_argmax": "int(patching[0].abs().argmax())",
    "patch_at_word_layer0": "float(patching[0, position])",
    "patch_grid": "patching.tolist()", "cells_grid": "cells.tolist()",
    "n_positions": "len(graph.str_tokens)",
    "logit_words": "graph.logit_words",
    "signed": "{'love': float(C[love_token]), 'sources': {graph.label(j): float(C[j]) for j in "
              "sources.nonzero().flatten().tolist()}, 'sum': float(C[sources].sum()), 'bias': bias, "
              "'value': target_value, 'metric': float(target(graph.run.logits[None])), "
              "'influence': {graph.label(j): float(influence[j]) for j in graph.mask('token').nonzero().flatten().tolist()}}",
    "love_label": "graph.label(love_token)",
    "explained_terms": "{f'L{L} f{i}': [list(t) for t in e.terms] for (L, i), e in explained.items()}",
    "negative_words": "list(target.negative_ids)", "logit_ids": "[n.index for n in graph.nodes if n.kind == 'logit']",
    "n_kept_by_exercise": "int(keep_by_influence(inner_influence, 0.8).sum())",
    "n_kept_by_prune_nodes": "int((graphs.prune(graph, 0.8, 1.0).node_mask & inner).sum())",
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


def test_07_the_baselines(nb07):
    """'zero ablation shows that the MLPs matter (the loss rises by several nats). The linear maps recover almost all
    of that ... the transcoders lose less than the linear maps and close most of the small gap'."""
    loss = nb07["losses"]
    exact, tc, lin, zero = (loss[k] for k in ("exact model", "transcoders (no error terms)", "best linear maps",
                                              "zero ablation"))
    assert zero - exact > 3                                  # several nats
    assert 0 < lin - exact < 0.05 * (zero - exact)           # the linear maps recover almost all of it
    assert 0 < tc - exact < lin - exact                      # the transcoders lose a little, less than linear maps
    assert 0.6 < nb07["gap_closed"] < 1                      # most of the gap
    assert abs(nb07["gap_closed"] - (lin - tc) / (lin - exact)) < 1e-9


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


def test_07_exercises_agree_with_the_library(nb07):
    """The pruning exercise's mask keeps as many feature and error nodes as `prune`'s first step does (before it
    drops nodes left without edges, so prune's count can only be smaller)."""
    assert 0 < nb07["n_kept_by_prune_nodes"] <= nb07["n_kept_by_exercise"]


REPL = "replacement model, "


def test_07_one_point_per_feature(nb07):
    """'agreement over 12 features, one point each'."""
    assert nb07["n_points"] == 12
    assert set(nb07["r"]) == {REPL + "attention + LayerNorm frozen", REPL + "attention frozen, LayerNorm free",
                              REPL + "LayerNorm frozen, attention free", REPL + "attention + LayerNorm free",
                              "real model", "real model, LayerNorm frozen"}


def test_07_frozen_replacement_model_follows_the_graph(nb07):
    """'Replacement model, both frozen: r is close to 1' and 'Attention free, LayerNorm frozen: r stays close to 1'."""
    r = nb07["r"]
    assert r[REPL + "attention + LayerNorm frozen"] >= 0.98
    assert r[REPL + "LayerNorm frozen, attention free"] >= 0.98


def test_07_layernorm_free_breaks_the_agreement(nb07):
    """'LayerNorm free (attention frozen or free): the agreement drops ... LayerNorm, not attention'."""
    r = nb07["r"]
    for arm in ("attention frozen, LayerNorm free", "attention + LayerNorm free"):
        assert r[REPL + arm] < 0.9 and r[REPL + arm] < r[REPL + "LayerNorm frozen, attention free"] - 0.1, arm


def test_07_real_model_agrees_less(nb07):
    """'Real model: it agrees less than the frozen replacement model; holding its LayerNorm scales at the clean
    run's brings it closer'."""
    r = nb07["r"]
    assert r["real model"] < r[REPL + "attention + LayerNorm frozen"] - 0.2
    assert r["real model, LayerNorm frozen"] > r["real model"] + 0.1


def test_07_harder_interventions(nb07):
    """'the graph's linear prediction holds in the frozen replacement model even for larger and joint interventions
    ... switching the two strongest features off together, the graph predicts that the target falls, and the real
    model's target rises instead'. Rows: [graph, frozen repl., free repl., real model]."""
    rows = nb07["harder"]
    assert len(rows) == 6
    for name, (graph, frozen, _, _) in rows.items():
        assert graph * frozen > 0 and 0.5 < frozen / graph < 2, (name, graph, frozen)
    graph, _, _, real = rows["2 strongest together x 0"]
    assert graph < -0.3 and real > 1.0
    assert rows["strongest feature x 0"][0] * rows["strongest feature x 0"][3] < 0  # 'one feature or two together,
    assert graph * real < 0                                                           # even the sign is wrong'


def test_07_signed_contributions_add_up(nb07):
    """'Over the input tokens and error nodes, the contributions plus the bias terms add up to the target exactly',
    and the target is notebook 03's words' mean-logit contrast on the clean run."""
    s = nb07["signed"]
    assert abs(s["sum"] + s["bias"] - s["value"]) < 1e-3
    assert abs(s["value"] - s["metric"]) < 1e-3


def test_07_love_is_the_largest_source(nb07):
    """'the token " love" makes the largest signed contribution of any source (about half of what the sources add
    up to)' and 'the graph also credits tokens that both prompts share (the last token " a" most of all)'."""
    s = nb07["signed"]
    love = s["sources"][nb07["love_label"]]
    others = {k: v for k, v in s["sources"].items() if k != nb07["love_label"]}
    assert love == max(s["sources"].values()) and love > max(abs(v) for v in others.values()) + 0.2
    assert 0.35 < love / s["sum"] < 0.65
    shared = max(others, key=others.get)
    assert shared == "tok ' a'" and others[shared] > 0.5


def test_07_unsigned_influence_ranks_a_above_love(nb07):
    """'the unsigned influence ... ranks the token " a" far above " love"'."""
    infl = nb07["signed"]["influence"]
    assert infl["tok ' a'"] > 2 * infl[nb07["love_label"]]


def test_07_part_of_the_influence_passes_the_sentiment_word(nb07):
    """'the graph routes part of the answer's influence through ... the sentiment word ... most sits at the last
    position'."""
    assert 0.05 < nb07["through_word"] < 0.5
    assert nb07["by_position"][-1] > 0.5 and nb07["by_position"][-1] == max(nb07["by_position"])


def test_07_part_passes_sentiment_features(nb07):
    """'... and part through features whose explanations name the story's sentiment'; the explainer confirms most of
    the AUROC-selected features active in the graph."""
    assert nb07["n_sentiment_in_graph"] >= nb07["n_confirmed"] > 0  # nodes: a feature may fire at several positions
    assert nb07["n_confirmed"] > nb07["n_active_auroc"] / 2
    assert 0.05 < nb07["through_sentiment"] < 0.9


def test_07_auroc_alone_lets_in_full_stops(nb07):
    """'a feature for "." in positive stories separates the stories too' (printed among the explanations)."""
    terms = nb07["explained_terms"].values()
    assert any(["word", "."] in t and any(k == "sentiment" for k, _ in t) for t in terms)


def test_07_influence_aims_at_positive_continuations_only(nb07):
    """'here those [top-10 logits] are all positive continuations, none of the negative answer words': every one is
    a word the generator writes only in positive stories."""
    from saelab.tinyworld.generator import ADJECTIVES, SENTIMENT_NOUNS

    positive = set(ADJECTIVES["positive"]) | set(SENTIMENT_NOUNS["positive"])
    assert len(nb07["logit_ids"]) == 10 and not set(nb07["logit_ids"]) & set(nb07["negative_words"])
    assert all(w.strip() in positive for w in nb07["logit_words"]), nb07["logit_words"]


def test_07_both_maps_end_at_the_last_position(nb07):
    """'from resid_pre 1 on, the difference sits at the last position' and 'the MLP-0 features at the last position
    carry the most' (of the feature rows of the signed map)."""
    last = nb07["n_positions"] - 1
    assert all(max(range(len(row)), key=lambda p: abs(row[p])) == last for row in nb07["patch_grid"][1:])
    assert all(row[last] > 0.9 for row in nb07["patch_grid"][1:])
    feature_rows = nb07["cells_grid"][1:]
    assert feature_rows[0][last] == max(max(row) for row in feature_rows)


def test_07_patching_the_word_in_layer_0_restores_all(nb07):
    """'Patching " love" at resid_pre 0 (the embedding) restores all of the target'."""
    assert nb07["patch_at_word_layer0"] > 0.9 and nb07["patch_layer0_argmax"] == nb07["word_position"]


def test_07_the_words_share_runs_through_its_token(nb07):
    """'almost all of it through its token, via attention'."""
    assert nb07["through_token"] >= 0.9 * nb07["through_word"]
