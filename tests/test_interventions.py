"""Checking a graph: the signed target's edges and contributions, predictions, and interventions in the local
replacement model (four frozen/free arms) and in the real model. Small random transcoders on the tiny world."""
from __future__ import annotations

import pytest
import torch

from saelab import interventions as iv
from saelab.graphs import build_graph, top_feature_nodes
from saelab.patching import logit_diff_metric
from saelab.replacement import TranscoderSite, run_model
from tests.test_graphs import PROMPT, model, random_transcoder, weights  # noqa: F401  (model, weights: fixtures)


@pytest.fixture(scope="module")
def graph(model, weights):
    sites = {L: TranscoderSite(random_transcoder(L, L, skip=L % 2 == 0), L) for L in range(4)}
    return build_graph(model, weights, sites, PROMPT, batch_size=32)


@pytest.fixture(scope="module")
def target(model):
    return iv.contrast_metric(logit_diff_metric(model))


@pytest.fixture(scope="module")
def edges(weights, graph, target):
    return iv.target_edges(weights, graph, target)


def test_the_contrast_is_linear_in_the_logits():
    logits = torch.randn(3, 5, 50)
    t = iv.ContrastMetric((1, 2), (7,))
    assert torch.allclose(t(logits), logits[:, -1] @ t.direction(50))
    assert torch.allclose(t(2 * logits), 2 * t(logits))
    with pytest.raises(ValueError, match="disjoint"):
        iv.contrast_metric(iv.ContrastMetric((1, 2), (2,)))


def test_direct_edges_and_bias_add_up_to_the_target(graph, target, edges):
    g, value, bias = edges
    assert abs(value - float(target(graph.run.logits[None]))) < 1e-4
    assert abs(float(g.sum()) + bias - value) < 1e-3


def test_contributions_of_the_sources_and_biases_add_up(weights, graph, edges):
    g, value, bias = edges
    C = iv.signed_contributions(graph, g)
    sources = graph.mask("token") | graph.mask("error")
    assert abs(float(C[sources].sum()) + iv.bias_contribution(weights, graph, C, bias) - value) < 1e-3
    assert torch.equal(C[graph.mask("logit")], g[graph.mask("logit")])  # nothing flows out of a logit node


def test_frozen_replacement_model_matches_the_prediction_for_a_small_push(weights, graph, target, edges):
    g = edges[0]
    for node in top_feature_nodes(graph, 3):
        predicted = iv.predicted_change(graph, g, [node], 0.99)
        measured = iv.measured_change(weights, graph, target, [node], 0.99, freeze=("attention", "layernorm"))
        assert abs(predicted - measured) < 1e-3 * max(1.0, abs(predicted)), node


def test_factor_one_changes_nothing_in_every_system(weights, graph, target):
    node = top_feature_nodes(graph, 1)[0]
    for freeze in iv.FREEZE_ARMS.values():
        assert abs(iv.measured_change(weights, graph, target, [node], 1.0, freeze=freeze)) < 1e-4
    assert abs(iv.measured_change(weights, graph, target, [node], 1.0, model="real")) < 1e-4


def test_the_real_model_runs_its_mlps_and_removes_only_the_decoded_contribution(model, weights, graph):
    node = top_feature_nodes(graph, 1)[0]
    n = graph.nodes[node]
    run = run_model(weights, graph.run.tokens, graph.sites, scale={(n.layer, n.pos, n.index): 0.0}, keep_mlps=True)
    # the same intervention on the TransformerBridge: subtract activation x decoder column from that MLP's output
    removed = n.activation * graph.sites[n.layer].sae.W_dec[:, n.index].detach()

    def hook(act, hook):
        act = act.clone()
        act[:, n.pos] -= removed
        return act
    with torch.no_grad(), model.hooks(fwd_hooks=[(f"blocks.{n.layer}.hook_mlp_out", hook)]):
        expected = model(graph.run.tokens[None])[0]
    assert torch.allclose(run.logits, expected, atol=1e-4)
    assert not torch.allclose(run.logits, graph.run.logits, atol=1e-3)


def test_freeze_arms_differ_only_where_they_say(weights, graph):
    tokens, run = graph.run.tokens, graph.run
    node = top_feature_nodes(graph, 1)[0]
    n = graph.nodes[node]
    scale = {(n.layer, n.pos, n.index): 0.0}
    attn_only = run_model(weights, tokens, graph.sites, errors=run.errors, scale=scale, frozen=run, freeze=("attention",))
    assert all(torch.equal(a, b) for a, b in zip(attn_only.patterns, run.patterns))
    ln_only = run_model(weights, tokens, graph.sites, errors=run.errors, scale=scale, frozen=run, freeze=("layernorm",))
    assert all(torch.equal(ln_only.scales[k], run.scales[k]) for k in run.scales if k.startswith(("ln1", "ln2", "ln_f")))
    with pytest.raises(ValueError, match="freeze may name"):
        run_model(weights, tokens, graph.sites, frozen=run, freeze=("attn",))


def test_bad_input_is_explained(weights, graph, target, edges):
    token = int(graph.mask("token").nonzero()[0])
    with pytest.raises(ValueError, match="feature nodes"):
        iv.predicted_change(graph, edges[0], [token])
    with pytest.raises(ValueError, match="feature nodes"):
        iv.measured_change(weights, graph, target, [token])
    with pytest.raises(ValueError, match="'replacement' or 'real'"):
        iv.measured_change(weights, graph, target, top_feature_nodes(graph, 1), model="frozen")


def test_contributions_by_cell_puts_tokens_in_row_0(graph, edges):
    C = iv.signed_contributions(graph, edges[0])
    cells = iv.contributions_by_cell(graph, C, 4)
    assert cells.shape == (5, len(graph.str_tokens))
    tokens = graph.mask("token")
    assert torch.allclose(cells[0], C[tokens])
