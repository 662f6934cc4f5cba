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


def _columns(graph: Graph, keep: torch.Tensor, n_layers: int) -> tuple[dict, list[float], list[float]]:
    """The kept nodes per (row, column), each column's width (as much as its most crowded row needs) and left x."""
    cells: dict[tuple[int, int], list[int]] = {}
    for i in keep.nonzero().flatten().tolist():
        n = graph.nodes[i]
        col = len(graph.str_tokens) - 1 if n.kind == "logit" else n.pos
        cells.setdefault((_row(graph, i, n_layers), col), []).append(i)
    width = [max([1.0] + [0.9 * len(m) for (_, c), m in cells.items() if c == col])
             for col in range(len(graph.str_tokens))]
    return cells, width, [sum(width[:col]) for col in range(len(width))]


def layout(graph: Graph, keep: torch.Tensor, n_layers: int) -> dict[int, tuple[float, float]]:
    """(x, y) of each kept node: row = layer, column = position; a crowded column is widened so that nodes
    sharing a (layer, position) sit side by side (logits spread under the last position)."""
    cells, width, left = _columns(graph, keep, n_layers)
    xy = {}
    for (row, col), members in cells.items():
        members.sort(key=lambda j: (graph.nodes[j].kind == "error", graph.nodes[j].index))
        for k, j in enumerate(members):
            xy[j] = (left[col] + width[col] * (k + 0.5) / len(members), row)
    return xy


def column_centres(graph: Graph, keep: torch.Tensor, n_layers: int) -> list[float]:
    """The x of each position's column centre in `layout`."""
    _, width, left = _columns(graph, keep, n_layers)
    return [lo + w / 2 for lo, w in zip(left, width)]


def draw_graph(graph: Graph, pruned: Pruned, n_layers: int, title: str = "Pruned attribution graph",
               describe: Any = None, max_edges: int | None = 80) -> plt.Figure:
    """The pruned graph: rows are hook points, columns positions (shaded bands); the `max_edges` strongest kept
    edges, blue (excite) / red (inhibit), width by |weight|; features sized by influence and labelled
    `describe(layer, latent)` (e.g. the token they fire on and the word they promote)."""
    from matplotlib.lines import Line2D

    xy = layout(graph, pruned.node_mask, n_layers)
    _, width, left = _columns(graph, pruned.node_mask, n_layers)
    centres = [lo + w / 2 for lo, w in zip(left, width)]
    infl = node_influence(graph)
    fig, ax = plt.subplots(figsize=(min(18, max(9, 0.9 * sum(width))), 1.6 * (n_layers + 2) + 1.5))
    for col in range(0, len(width), 2):  # shade every other column, so a widened column's extent shows
        ax.axvspan(left[col], left[col] + width[col], color="0.95", zorder=0)
    A = graph.adjacency * pruned.edge_mask
    n_kept = int(pruned.edge_mask.sum())
    if max_edges is not None and n_kept > max_edges:
        floor = A.abs().flatten().topk(max_edges).values[-1]
        A = A * (A.abs() >= floor)
        title = f"{title}\n(the {max_edges} strongest of {n_kept} kept edges)"
    biggest = A.abs().max().clamp_min(1e-12)
    for t, s in A.nonzero().tolist():
        if s in xy and t in xy:
            w = float(A[t, s])
            ax.plot(*zip(xy[s], xy[t]), color="tab:blue" if w > 0 else "tab:red", alpha=0.45,
                    linewidth=0.3 + 3 * abs(w) / float(biggest), zorder=1)
    for i, (x, y) in xy.items():
        n = graph.nodes[i]
        size = 60 + 500 * float(infl[i] / infl.max().clamp_min(1e-12)) if n.kind in ("feature", "error") else 200
        ax.scatter([x], [y], s=size, color=KIND_COLOURS[n.kind], edgecolor="k", zorder=2,
                   marker="s" if n.kind == "error" else "o")
        if n.kind == "feature":
            text = f"f{n.index}" + (f"\n{describe(n.layer, n.index)}" if describe is not None else "")
            ax.annotate(text, (x, y), xytext=(0, -10), textcoords="offset points", ha="center", va="top", fontsize=7,
                        bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7}, zorder=3)
        elif n.kind == "logit":
            ax.annotate(graph.logit_words[n.pos], (x, y), xytext=(0, 9), textcoords="offset points", ha="center",
                        va="bottom", fontsize=7, rotation=45)
    ax.set_xticks(centres, [repr(t) for t in graph.str_tokens], rotation=30)
    ax.set_yticks(range(n_layers + 2), ["tokens", *[f"MLP {L} features" for L in range(n_layers)], "logits"])
    ax.set(title=title, xlabel="position (token)", ylabel="hook point", ylim=(-0.6, n_layers + 2.2),
           xlim=(0, sum(width)))
    ax.legend(handles=[Line2D([], [], color="tab:blue", label="edge excites (positive)"),
                       Line2D([], [], color="tab:red", label="edge inhibits (negative)"),
                       *[Line2D([], [], marker="s" if k == "error" else "o", color=c, markeredgecolor="k", linestyle="",
                                label=f"{k} node") for k, c in KIND_COLOURS.items()]],
              loc="upper left", fontsize=7, ncol=2, framealpha=0.9)
    fig.tight_layout()
    return fig


def plot_side_by_side(graph_cells: torch.Tensor, patching: torch.Tensor, str_tokens: list[str],
                      target_name: str = "the target") -> plt.Figure:
    """The graph's signed contributions per (hook point, position) next to residual patching with the same target:
    graph rows are the input tokens then MLP L's features + error; patching rows are resid_pre L."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 3.8))
    n_layers = patching.shape[0]
    panels = ((graph_cells, f"Graph: signed contribution to {target_name}",
               ["tokens (embedding)", *[f"MLP {L} features + error" for L in range(graph_cells.shape[0] - 1)]]),
              (patching, "Patching the residual stream (share of the answer restored)",
               ["resid_pre 0 (embedding)", *[f"resid_pre {L}" for L in range(1, n_layers)]]))
    for ax, (grid, title, rows) in zip(axes, panels):
        lim = float(grid.abs().max())
        im = ax.imshow(grid.numpy(), cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto", origin="lower")
        ax.set_xticks(range(len(str_tokens)), [repr(t) for t in str_tokens], rotation=40)
        ax.set_yticks(range(len(rows)), rows)
        ax.set(title=title, xlabel="position (token)", ylabel="hook point")
        fig.colorbar(im, ax=ax)
    fig.tight_layout()
    return fig


def plot_validation(predicted: list[float], measured: dict[str, list[float]], r: dict[str, float]) -> plt.Figure:
    """Graph prediction vs the measured change of the target when one feature is switched off, one panel per way
    of running the model (one point per feature)."""
    n = len(measured)
    cols = min(3, n)
    fig, axes = plt.subplots((n + cols - 1) // cols, cols, figsize=(4.2 * cols, 3.6 * ((n + cols - 1) // cols)),
                             squeeze=False)
    lim = max(max(map(abs, predicted)), *(max(map(abs, v)) for v in measured.values())) * 1.1
    for ax, (name, values) in zip(axes.flat, measured.items()):
        ax.scatter(predicted, values, s=18, color="tab:purple")
        ax.plot([-lim, lim], [-lim, lim], color="0.6", linestyle="--", linewidth=1, label="measured = predicted")
        ax.set(title=f"{name}\nr = {r[name]:.2f}", xlabel="predicted change (graph)", ylabel="measured change",
               xlim=(-lim, lim), ylim=(-lim, lim))
        ax.title.set_fontsize(9)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="upper left")
    fig.suptitle("Switching one feature off: the graph's prediction vs the measured change of the target")
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
