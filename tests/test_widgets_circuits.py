"""Notebook 07's drawings: the graph's layout spreads a crowded column, labels features, and says what edges mean."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import torch  # noqa: E402

from saelab.graphs import build_graph, prune  # noqa: E402
from saelab.models import load_model  # noqa: E402
from saelab.replacement import TranscoderSite, gpt2_weights  # noqa: E402
from saelab.widgets.circuits import column_centres, draw_graph, layout, plot_side_by_side  # noqa: E402
from tests.test_graphs import PROMPT, random_transcoder  # noqa: E402


def _graph():
    model = load_model("tiny-world")
    sites = {L: TranscoderSite(random_transcoder(L, L), L) for L in range(4)}
    return build_graph(model, gpt2_weights(model), sites, PROMPT, batch_size=32)


def test_layout_spreads_a_crowded_column_and_keeps_columns_apart():
    graph = _graph()
    keep = torch.ones(len(graph.nodes), dtype=torch.bool)
    xy = layout(graph, keep, 4)
    points = list(xy.values())
    assert len(set(points)) == len(points)  # no two nodes on top of each other
    centres = column_centres(graph, keep, 4)
    assert all(a < b for a, b in zip(centres, centres[1:]))
    edges = [0.0]  # the columns are contiguous bands: each centre lies midway between its band's edges
    for c in centres:
        edges.append(2 * c - edges[-1])
    for i, (x, _) in xy.items():  # every node sits inside its own column's band
        n = graph.nodes[i]
        col = len(graph.str_tokens) - 1 if n.kind == "logit" else n.pos
        assert edges[col] < x < edges[col + 1]


def test_draw_graph_labels_features_limits_edges_and_has_a_legend():
    graph = _graph()
    pruned = prune(graph, 0.8, 0.98)
    fig = draw_graph(graph, pruned, 4, title="t", describe=lambda layer, latent: f"L{layer}:{latent}", max_edges=10)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    kept = [graph.nodes[i] for i in pruned.node_mask.nonzero().flatten().tolist() if graph.nodes[i].kind == "feature"]
    assert all(any(f"L{n.layer}:{n.index}" in t for t in texts) for n in kept)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "edge excites (positive)" in labels and "edge inhibits (negative)" in labels
    assert len(ax.lines) <= 10 and "strongest" in ax.get_title()
    assert [t.get_text() for t in ax.get_yticklabels()][1] == "MLP 0 features"


def test_side_by_side_names_the_hook_points():
    fig = plot_side_by_side(torch.randn(5, 4), torch.rand(4, 4), ["a", "b", "c", "d"])
    graph_rows = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    patch_rows = [t.get_text() for t in fig.axes[1].get_yticklabels()]  # the colorbars come after both panels
    assert graph_rows[0] == "tokens (embedding)" and graph_rows[1] == "MLP 0 features + error"
    assert patch_rows[0] == "resid_pre 0 (embedding)" and patch_rows[1] == "resid_pre 1"
