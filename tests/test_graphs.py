"""Attribution graphs on the tiny world with small random transcoders: exactness, pruning, scores, bad input."""
from __future__ import annotations

import pytest
import torch

from saelab.graphs import (build_graph, check_answer_word, constant_terms, fraction_through, graph_scores, measured_logit_change,
                           node_influence, predicted_logit_change, prune)
from saelab.models import load_model
from saelab.replacement import ResidSite, TranscoderSite, clean_run, frozen_forward, gpt2_weights
from saelab.sae import SAE
from saelab.training import init_sae_
from saelab.transcoders import Transcoder

PROMPT = "i love him. he is such a"


@pytest.fixture(scope="module")
def model():
    return load_model("tiny-world")


@pytest.fixture(scope="module")
def weights(model):
    return gpt2_weights(model)


def random_transcoder(layer: int, seed: int, skip: bool = True) -> Transcoder:
    sae = SAE(160, 64, "topk", k=4, normalize=False)
    init_sae_(sae, seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        sae.latent_bias.copy_(torch.randn(64, generator=g) * 0.1)
        sae.pre_bias.copy_(torch.randn(160, generator=g) * 0.1)
    W_skip = torch.randn(160, 160, generator=g) * 0.02 if skip else None
    return Transcoder(sae, layer, W_skip)


@pytest.fixture(scope="module")
def sites():
    return {L: TranscoderSite(random_transcoder(L, L, skip=L % 2 == 0), L) for L in range(4)}


@pytest.fixture(scope="module")
def graph(model, weights, sites):
    return build_graph(model, weights, sites, PROMPT, batch_size=16)


def test_clean_run_matches_the_bridge(model, weights, sites):
    tokens = model.to_tokens(PROMPT)[0]
    with torch.no_grad():
        expected = model(tokens[None])[0]
    assert torch.allclose(clean_run(weights, tokens, sites).logits, expected, atol=1e-4)


def test_frozen_model_with_clean_sources_reproduces_the_clean_logits(model, weights, sites):
    run = clean_run(weights, model.to_tokens(PROMPT)[0], sites)
    writes = {L: (run.acts[L] @ s.sae.W_dec.T)[None] for L, s in sites.items()}
    _, final = frozen_forward(weights, run, sites, run.embed[None], writes, {L: e[None] for L, e in run.errors.items()})
    logits = final[0] @ weights.W_U.T
    assert torch.allclose(logits, run.logits, atol=1e-4)


def test_edges_plus_biases_add_up_to_each_target(model, weights, sites, graph):
    """Linear replacement model: incoming edges + the value with every source zeroed = the target's value."""
    targets = graph.mask("feature") | graph.mask("logit")
    rebuilt = graph.adjacency.sum(1) + constant_terms(weights, graph)
    assert torch.allclose(rebuilt[targets], graph.values[targets], atol=1e-3)
    # and the values are the clean run's pre-activations / demeaned logits
    run = graph.run
    for t in targets.nonzero().flatten().tolist()[::25]:
        node = graph.nodes[t]
        if node.kind == "feature":
            _, cache = model.run_with_cache(run.tokens[None], names_filter=[f"blocks.{node.layer}.mlp.hook_in"])
            x = cache[f"blocks.{node.layer}.mlp.hook_in"][0, node.pos]
            want = sites[node.layer].sae.encode_pre_act(x)[node.index]
        else:
            want = run.logits[-1, node.index] - run.logits[-1].mean()
        assert torch.allclose(graph.values[t], want, atol=1e-3)


def test_no_edges_from_the_same_or_later_layers(graph):
    for t, target in enumerate(graph.nodes):
        if target.kind != "feature":
            continue
        for s, source in enumerate(graph.nodes):
            if source.kind in ("feature", "error") and source.layer >= target.layer:
                assert graph.adjacency[t, s] == 0
            if source.kind != "logit" and source.pos > target.pos:
                assert graph.adjacency[t, s] == 0  # attention is causal


def test_batch_size_does_not_change_the_graph(model, weights, sites, graph):
    other = build_graph(model, weights, sites, PROMPT, batch_size=7)
    assert torch.allclose(other.adjacency, graph.adjacency, atol=1e-5)


def test_scores_are_shares(graph):
    scores = graph_scores(graph)
    assert 0 < scores["replacement"] < 1 and 0 < scores["completeness"] < 1


def test_fraction_through_everything_is_one_and_nothing_is_zero(graph):
    n = len(graph.nodes)
    assert fraction_through(graph, torch.ones(n, dtype=torch.bool)) == pytest.approx(1.0)
    assert fraction_through(graph, torch.zeros(n, dtype=torch.bool)) == pytest.approx(0.0, abs=1e-6)
    tokens = graph.mask("token") | graph.mask("error")
    assert fraction_through(graph, tokens) == pytest.approx(1.0, abs=1e-5)  # every path starts at a source


def test_pruning_keeps_fewer_nodes_at_lower_thresholds(graph):
    loose, tight = prune(graph, 0.95, 0.99), prune(graph, 0.5, 0.8)
    assert tight.node_mask.sum() < loose.node_mask.sum()
    assert (tight.node_mask | ~graph.mask("feature")).all() or tight.node_mask.sum() <= loose.node_mask.sum()
    assert tight.node_mask[graph.mask("logit")].all() and tight.node_mask[graph.mask("token")].all()
    assert not (tight.edge_mask & ~tight.node_mask[:, None]).any()


@pytest.mark.parametrize("bad", [0, 1.5, -0.1, "0.8", True])
def test_pruning_thresholds_outside_0_1_are_refused(graph, bad):
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        prune(graph, node_threshold=bad)
    with pytest.raises(ValueError, match="edge_threshold"):
        prune(graph, edge_threshold=bad)


def test_intervention_with_factor_one_changes_nothing_and_zero_does(weights, sites, graph):
    node = int(node_influence(graph).masked_fill(~graph.mask("feature"), -1).argmax())
    assert measured_logit_change(weights, graph, sites, node, 1.0).abs().max() < 1e-4
    assert predicted_logit_change(graph, node, 1.0).abs().max() == 0
    assert predicted_logit_change(graph, node, 0.0).abs().max() > 0


def test_prediction_is_exact_in_the_frozen_linear_model(graph):
    """A last-layer feature has only direct edges to the logits: prediction = -edge."""
    last = [i for i, n in enumerate(graph.nodes) if n.kind == "feature" and n.layer == 3][0]
    logits = graph.mask("logit")
    assert torch.allclose(predicted_logit_change(graph, last, 0.0), -graph.adjacency[logits, last], atol=1e-5)


def test_prompt_longer_than_the_context_is_refused(model, weights, sites):
    with pytest.raises(ValueError, match="at most 64"):
        build_graph(model, weights, sites, " he is" * 40)


def test_a_layer_without_a_transcoder_is_refused(model, weights, sites):
    with pytest.raises(ValueError, match="do not exist"):
        build_graph(model, weights, {7: sites[0]}, PROMPT)
    with pytest.raises(ValueError, match="at least one site"):
        build_graph(model, weights, {}, PROMPT)


def test_answer_word_must_be_one_token(model):
    assert check_answer_word(model, "kind") == model.to_single_token(" kind")
    with pytest.raises(ValueError, match="one token"):
        check_answer_word(model, "kind person")


def test_resid_site_graph_is_consistent(model, weights):
    """A residual-stream SAE (OpenAI-style standardised input) as the site: the frozen run reproduces the logits."""
    sae = SAE(160, 64, "topk", k=4, normalize=True)
    init_sae_(sae, 3)
    sites = {1: ResidSite(sae, 1), 2: ResidSite(SAE(160, 64, "topk", k=4), 2)}
    init_sae_(sites[2].sae, 4)
    graph = build_graph(model, weights, sites, PROMPT)
    tokens = model.to_tokens(PROMPT)[0]
    with torch.no_grad():
        expected = model(tokens[None])[0]
    assert torch.allclose(graph.run.logits, expected, atol=1e-4)
    # features at layer 2 read only what layer-1 nodes wrote: no direct token edges into them
    f2 = [i for i, n in enumerate(graph.nodes) if n.kind == "feature" and n.layer == 2]
    assert graph.adjacency[f2][:, graph.mask("token")].abs().max() == 0
    assert 0 < graph_scores(graph)["replacement"] <= 1


def test_every_node_has_a_label(graph):
    labels = [graph.label(i) for i in range(len(graph.nodes))]
    assert labels[-1].startswith("logit") and any(lab.startswith("err L0") for lab in labels)


def test_frozen_intervention_on_a_last_layer_feature_matches_the_prediction(weights, sites, graph):
    """Attention and LayerNorm frozen, nothing nonlinear after layer 3: the real run moves the logits exactly as
    the graph predicts; with them free it does not."""
    candidates = [i for i, n in enumerate(graph.nodes) if n.kind == "feature" and n.layer == 3]
    last = max(candidates, key=lambda i: float(graph.adjacency[graph.mask("logit"), i].abs().sum()))
    predicted = predicted_logit_change(graph, last, 0.0)
    assert predicted.abs().max() > 0
    frozen = measured_logit_change(weights, graph, sites, last, 0.0, freeze=True)
    assert torch.allclose(frozen, predicted, atol=1e-4)
    free = measured_logit_change(weights, graph, sites, last, 0.0)
    assert not torch.allclose(free, predicted, atol=1e-4)
