"""Checking an attribution graph: one signed target, its contributions, and interventions that test them.

    target       u . logits[-1]: a contrast of answer logits, e.g. mean(positive words) - mean(negative words),
                 the same target notebook 03 patches (`contrast_metric`); linear in the logits, so the frozen
                 replacement model attributes it exactly
    direct edge  g[s] = d target / d a_s * a_s      (as `saelab.graphs` computes for its logit nodes)
    contribution C[s] = g[s] + sum_t C[t] / a_t * A[t, s]   (t: the features s writes to): s's signed share of
                 the target along every path; over tokens and error nodes, plus the bias terms, it sums to the
                 target's value
Interventions switch features off (or scale them) and read the change of the target, in three models:
  "replacement"  the local replacement model: every transcoder's TopK redone, each layer's clean error kept,
                 attention patterns and/or LayerNorm scales frozen at the clean run's or free (`freeze`)
  "real"         the real model: every MLP runs as usual, and the feature's decoded contribution
                 (factor - 1) x activation x decoder column is added to its MLP's output
The graph predicts the change by following its linear paths (`predicted_change`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from saelab.graphs import Graph, constant_terms
from saelab.replacement import GPT2Weights, frozen_forward, run_model

FREEZE_ARMS = {"attention + LayerNorm frozen": ("attention", "layernorm"),
               "attention frozen, LayerNorm free": ("attention",),
               "LayerNorm frozen, attention free": ("layernorm",),
               "attention + LayerNorm free": ()}


@dataclass(frozen=True)
class ContrastMetric:
    """metric(logits [batch, pos, d_vocab]) -> [batch]: mean logit of the positive answers minus mean logit of
    the negative ones at the last position (linear in the logits: a graph can attribute it exactly)."""
    positive_ids: tuple[int, ...]
    negative_ids: tuple[int, ...]

    def direction(self, d_vocab: int) -> torch.Tensor:
        """u [d_vocab] with target = u . logits: +1/n_pos on the positive words, -1/n_neg on the negative ones."""
        u = torch.zeros(d_vocab)
        u[list(self.positive_ids)] += 1 / len(self.positive_ids)
        u[list(self.negative_ids)] -= 1 / len(self.negative_ids)
        return u

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        last = logits[:, -1].float()
        return last[:, list(self.positive_ids)].mean(-1) - last[:, list(self.negative_ids)].mean(-1)


def contrast_metric(logit_diff: Any) -> ContrastMetric:
    """The linear contrast of a `saelab.patching.LogitDiff`'s answer words (notebook 03's sets)."""
    pos, neg = tuple(logit_diff.positive_ids), tuple(logit_diff.negative_ids)
    if not pos or not neg or set(pos) & set(neg):
        raise ValueError("give non-empty, disjoint positive and negative answer sets")
    return ContrastMetric(pos, neg)


def target_edges(weights: GPT2Weights, graph: Graph, metric: ContrastMetric) -> tuple[torch.Tensor, float, float]:
    """(g [n_nodes]: every node's direct edge into the target, the target's value on the clean run, its bias
    terms: the value with every token, feature and error at zero)."""
    run, sites, P = graph.run, graph.sites, len(graph.str_tokens)
    if any(s.kind != "mlp" for s in sites.values()):
        raise ValueError("target_edges needs a graph built from transcoders (TranscoderSite at every site)")
    u = metric.direction(weights.W_U.shape[0])
    embed = run.embed[None].clone().requires_grad_(True)
    vals, writes, errs = {}, {}, {}
    feats = {L: [(i, n) for i, n in enumerate(graph.nodes) if n.kind == "feature" and n.layer == L] for L in sites}
    for L, site in sites.items():
        pos = torch.tensor([n.pos for _, n in feats[L]], dtype=torch.long)
        lat = torch.tensor([n.index for _, n in feats[L]], dtype=torch.long)
        vals[L] = run.acts[L][pos, lat].clone().requires_grad_(True)
        dirs = site.sae.W_dec[:, lat].T.detach()
        writes[L] = torch.zeros(1, P, dirs.shape[-1]).index_add(1, pos, (vals[L][:, None] * dirs)[None])
        errs[L] = run.errors[L][None].clone().requires_grad_(True)
    _, final = frozen_forward(weights, run, sites, embed, writes, errs)
    value = final[0, -1] @ (weights.W_U.T @ u)
    grads = torch.autograd.grad(value, [embed, *vals.values(), *errs.values()], materialize_grads=True)
    g = torch.zeros(len(graph.nodes))
    for i, n in enumerate(graph.nodes):
        if n.kind == "token":
            g[i] = (grads[0][0, n.pos] * run.embed[n.pos]).sum()
    for k, L in enumerate(sites):
        for j, (i, _) in enumerate(feats[L]):
            g[i] = grads[1 + k][j] * vals[L][j].detach()
        ge = grads[1 + len(sites) + k][0]
        for i, n in enumerate(graph.nodes):
            if n.kind == "error" and n.layer == L:
                g[i] = (ge[n.pos] * run.errors[L][n.pos]).sum()
    with torch.no_grad():
        zero = {L: torch.zeros_like(e) for L, e in errs.items()}
        _, at_zero = frozen_forward(weights, run, sites, torch.zeros_like(embed), zero, zero)
    return g, float(value.detach()), float(at_zero[0, -1] @ (weights.W_U.T @ u))


def contributions_by_cell(graph: Graph, C: torch.Tensor, n_layers: int) -> torch.Tensor:
    """Signed contributions summed per cell: row 0 the input tokens, row L + 1 layer L's features and error
    node: [n_layers + 1, pos]. Cells do not add up to the target: a feature's share also counts its inputs'."""
    grid = torch.zeros(n_layers + 1, len(graph.str_tokens))
    for i, n in enumerate(graph.nodes):
        if n.kind != "logit":
            grid[n.layer + 1, n.pos] += C[i]
    return grid


def _activations(graph: Graph) -> torch.Tensor:
    """Each node's activation, 1 for tokens and errors (whose edges already carry their vector)."""
    return torch.tensor([n.activation if n.kind == "feature" else 1.0 for n in graph.nodes])


def signed_contributions(graph: Graph, g: torch.Tensor) -> torch.Tensor:
    """C [n_nodes]: each node's signed contribution to the target along every path of the graph."""
    acts = _activations(graph)
    C = g.clone()
    for _ in range(len(graph.nodes)):  # acyclic: settles after as many rounds as there are layers
        new = g + ((C / acts) * graph.mask("feature")) @ graph.adjacency
        if torch.allclose(new, C, atol=1e-7):
            break
        C = new
    return C


def bias_contribution(weights: GPT2Weights, graph: Graph, C: torch.Tensor, target_bias: float) -> float:
    """What the bias terms contribute to the target: its own (`target_bias`) plus every feature's bias terms
    carried along the paths from that feature. Sources' contributions + this = the target's value."""
    per_unit = (C / _activations(graph)) * graph.mask("feature")  # d target / d feature activation, all paths
    return target_bias + float(per_unit @ constant_terms(weights, graph))


def predicted_change(graph: Graph, g: torch.Tensor, nodes: Sequence[int], factor: float = 0.0) -> float:
    """The graph's prediction of the target's change when the features `nodes` are multiplied by `factor`."""
    acts = _activations(graph)
    J = graph.adjacency / acts  # d target / d source activation
    start = torch.zeros(len(acts))
    for i in nodes:
        if graph.nodes[i].kind != "feature":
            raise ValueError(f"node {i} is a {graph.nodes[i].kind} node; interventions act on feature nodes")
        J[i] = 0  # an intervened feature is clamped
        start[i] = (factor - 1) * acts[i]
    delta = start.clone()
    for _ in range(len(acts)):
        new = start + J @ delta
        if torch.allclose(new, delta):
            break
        delta = new
    return float((g / acts) @ delta)


@torch.no_grad()
def measured_change(weights: GPT2Weights, graph: Graph, metric: ContrastMetric, nodes: Sequence[int],
                    factor: float = 0.0, model: str = "replacement",
                    freeze: tuple[str, ...] = ()) -> float:
    """The target's change when the features `nodes` are multiplied by `factor`, in the local replacement model
    or in the real model (`model="real"`); `freeze` names what stays at the clean run's ("attention",
    "layernorm"; nothing by default)."""
    if model not in ("replacement", "real"):
        raise ValueError(f"model must be 'replacement' or 'real'; got {model!r}")
    scale = {}
    for i in nodes:
        n = graph.nodes[i]
        if n.kind != "feature":
            raise ValueError(f"node {i} is a {n.kind} node; interventions act on feature nodes")
        scale[(n.layer, n.pos, n.index)] = factor
    run, sites = graph.run, graph.sites
    if model == "real":
        new = run_model(weights, run.tokens, sites, scale=scale, frozen=run, freeze=freeze, keep_mlps=True)
    else:
        new = run_model(weights, run.tokens, sites, errors=run.errors, scale=scale, frozen=run, freeze=freeze)
    return float(metric(new.logits[None]) - metric(run.logits[None]))
