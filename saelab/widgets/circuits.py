"""Notebook 07's pictures: the pruned attribution graph drawn with layers as rows and positions as columns, and a
panel of the same layout in which clicking a node shows its feature card (top contexts, logit effects).

Controls and drawing only: every number comes from `saelab.graphs` and `saelab.transcoders`.
"""
from __future__ import annotations

import base64
import html
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from IPython.display import Image, display

from saelab.graphs import Graph, Pruned, node_influence

KIND_COLOURS = {"token": "#9e9e9e", "feature": "#f2a65a", "error": "#cfd8dc", "logit": "#7fb3d5"}


def _row(graph: Graph, i: int, n_layers: int) -> int:
    """Drawing row of node i: tokens 0, layer L's nodes L + 1, logits n_layers + 1."""
    n = graph.nodes[i]
    return {"token": 0, "logit": n_layers + 1}.get(n.kind, n.layer + 1)


def layout(graph: Graph, keep: torch.Tensor, n_layers: int) -> dict[int, tuple[float, float]]:
    """(x, y) of each kept node: column = position (logits spread over the last column), row = layer."""
    cells: dict[tuple[int, int], list[int]] = {}
    for i in keep.nonzero().flatten().tolist():
        n = graph.nodes[i]
        col = len(graph.str_tokens) - 1 if n.kind == "logit" else n.pos
        cells.setdefault((_row(graph, i, n_layers), col), []).append(i)
    xy = {}
    for (row, col), members in cells.items():
        members.sort(key=lambda j: (graph.nodes[j].kind == "error", graph.nodes[j].index))
        for k, j in enumerate(members):
            xy[j] = (col + (k - (len(members) - 1) / 2) * 0.8 / max(len(members), 1), row)
    return xy


def draw_graph(graph: Graph, pruned: Pruned, n_layers: int, title: str = "Pruned attribution graph") -> plt.Figure:
    """The pruned graph: edges blue (excite) / red (inhibit), width by |weight|; nodes sized by influence."""
    xy = layout(graph, pruned.node_mask, n_layers)
    infl = node_influence(graph)
    fig, ax = plt.subplots(figsize=(max(8, 1.3 * len(graph.str_tokens)), 1.3 * (n_layers + 2) + 1))
    A = graph.adjacency * pruned.edge_mask
    biggest = A.abs().max().clamp_min(1e-12)
    for t, s in A.nonzero().tolist():
        if s in xy and t in xy:
            w = float(A[t, s])
            ax.plot(*zip(xy[s], xy[t]), color="tab:blue" if w > 0 else "tab:red", alpha=0.5,
                    linewidth=0.3 + 3 * abs(w) / float(biggest), zorder=1)
    for i, (x, y) in xy.items():
        n = graph.nodes[i]
        size = 60 + 900 * float(infl[i] / infl.max().clamp_min(1e-12)) if n.kind in ("feature", "error") else 300
        ax.scatter([x], [y], s=size, color=KIND_COLOURS[n.kind], edgecolor="k", zorder=2,
                   marker="s" if n.kind == "error" else "o")
        text = {"feature": f"{n.index}", "error": "err", "token": "", "logit": graph.logit_words[n.pos]}[n.kind]
        ax.annotate(text, (x, y), ha="center", va="center", fontsize=7, zorder=3)
    ax.set_xticks(range(len(graph.str_tokens)), [repr(t) for t in graph.str_tokens], rotation=30)
    ax.set_yticks(range(n_layers + 2), ["tokens", *[f"layer {L}" for L in range(n_layers)], "logits"])
    ax.set(title=title, xlabel="position (token)", ylabel="layer", xlim=(-0.7, len(graph.str_tokens) - 0.3))
    fig.tight_layout()
    return fig


def plot_side_by_side(graph_cells: torch.Tensor, patching: torch.Tensor, str_tokens: list[str]) -> plt.Figure:
    """The graph's influence per (layer, position) next to notebook 03's residual patching map."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
    panels = ((graph_cells, "Graph: influence of features + errors", "Greens", None),
              (patching, "Patching: residual stream (notebook 03)", "RdBu", float(patching.abs().max())))
    for ax, (grid, title, cmap, lim) in zip(axes, panels):
        kw = {"vmin": -lim, "vmax": lim} if lim else {"vmin": 0}
        im = ax.imshow(grid.numpy(), cmap=cmap, aspect="auto", origin="lower", **kw)
        ax.set_xticks(range(len(str_tokens)), [repr(t) for t in str_tokens], rotation=40)
        ax.set(title=title, xlabel="position (token)", ylabel="layer")
        fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return fig


def plot_validation(predicted: list[float], measured: dict[str, list[float]], r: dict[str, float]) -> plt.Figure:
    """Graph prediction vs the real model's change of each logit when a feature is switched off, one colour per
    way of running the real model (e.g. attention and LayerNorm frozen, or free)."""
    fig, ax = plt.subplots(figsize=(5.4, 4.4))
    for (name, values), colour in zip(measured.items(), ("tab:purple", "tab:orange")):
        ax.scatter(predicted, values, s=14, color=colour, label=f"{name} (r = {r[name]:.2f})")
    lim = max(max(map(abs, predicted)), *(max(map(abs, v)) for v in measured.values())) * 1.05
    ax.plot([-lim, lim], [-lim, lim], color="0.6", linestyle="--", linewidth=1)
    ax.set(title="Switching features off: graph vs real model", xlabel="predicted logit change (graph)",
           ylabel="measured logit change (real model)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


class GraphExplorer(widgets.VBox):
    """The pruned graph as a grid of buttons (rows: layers, columns: positions); a click shows the node's card."""

    def __init__(self, graph: Graph, pruned: Pruned, n_layers: int, card: Any) -> None:
        self.graph, self.card = graph, card
        self.message = widgets.HTML("Click a feature to see where it fires and which words it pushes.")
        self.out = widgets.Output()
        infl = node_influence(graph)
        rows = []
        for row in range(n_layers + 1, -1, -1):
            cells = []
            for pos in range(len(graph.str_tokens)):
                members = [i for i in pruned.node_mask.nonzero().flatten().tolist()
                           if _row(graph, i, n_layers) == row
                           and (graph.nodes[i].pos if graph.nodes[i].kind != "logit" else len(graph.str_tokens) - 1) == pos]
                buttons = [self._button(i, float(infl[i])) for i in members]
                cells.append(widgets.VBox(buttons, layout={"width": "110px"}))
            name = "logits" if row == n_layers + 1 else "tokens" if row == 0 else f"layer {row - 1}"
            rows.append(widgets.HBox([widgets.Label(name, layout={"width": "60px"}), *cells]))
        super().__init__([*rows, self.message, self.out])

    def _button(self, i: int, influence: float) -> widgets.Button:
        b = widgets.Button(description=self.graph.label(i)[:16], tooltip=f"{self.graph.label(i)} (influence "
                           f"{influence:.3f})", layout={"width": "105px"})
        b.style.button_color = KIND_COLOURS[self.graph.nodes[i].kind]
        b.on_click(lambda _, i=i: self.show(i))
        return b

    def show(self, i: int) -> bool:
        """Show node i's card (features) or what it is (other nodes); False for a node without a card."""
        n = self.graph.nodes[i]
        self.out.clear_output()
        if n.kind != "feature":
            self.message.value = html.escape(f"{self.graph.label(i)}: a {n.kind} node has no feature card.")
            return False
        self.message.value = html.escape(f"{self.graph.label(i)}: activation {n.activation:.3f} here.")
        card = self.card(n.layer, n.index)
        with self.out:  # the histogram as an image, the contexts and logit effects as text
            png = card.histogram_png()
            if png:
                display(Image(data=base64.b64decode(png)))
            print(card)
        return True
