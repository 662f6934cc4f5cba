"""Attribution graphs: which features, tokens and error terms push which, and on to the answer's logits.

Nodes: input tokens, the active features at each (layer, position), one error node per (layer, position), and
the top output logits. Edge s -> t: the direct effect of s's activation on t's pre-activation in the replacement
model with the clean run's attention patterns and LayerNorm scales frozen (`saelab.replacement.frozen_forward`):

    A[t, s] = d pre_t / d a_s  *  a_s          (a token's or error's "activation" is its vector)

With every MLP replaced by a transcoder the frozen model is linear, so each target's incoming edges plus the
constant bias terms add up exactly to its pre-activation. A batch of targets shares one backward pass: each
batch row computes its own target from its own copy of the sources.
Scores and pruning follow Ameisen et al. 2025 ("Circuit Tracing") and their circuit-tracer library.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from saelab.replacement import CleanRun, GPT2Weights, check_length, check_sites, clean_run, frozen_forward, run_model


@dataclass(frozen=True)
class Node:
    """One node: kind "token" | "feature" | "error" | "logit"; layer (-1 tokens, n_layers logits); pos; index =
    latent (features) or token id (tokens, logits); activation (features; 0 otherwise)."""
    kind: str
    layer: int
    pos: int
    index: int
    activation: float = 0.0


@dataclass
class Graph:
    """An attribution graph: nodes (features, errors, tokens, logits in that order) and A[target, source]."""
    nodes: list[Node]
    adjacency: torch.Tensor          # [n_nodes, n_nodes]
    logit_probs: torch.Tensor        # [n_logits] the answer probabilities of the logit nodes
    str_tokens: list[str]
    logit_words: list[str]
    values: torch.Tensor             # [n_nodes] each target's pre-activation (features) or demeaned logit
    run: CleanRun
    sites: dict[int, Any]

    def mask(self, kind: str) -> torch.Tensor:
        """Boolean [n_nodes]: the nodes of one kind."""
        return torch.tensor([n.kind == kind for n in self.nodes])

    def index_of(self, kind: str, layer: int, pos: int, index: int = 0) -> int:
        """The row/column of a node (KeyError if it is not in the graph)."""
        for i, n in enumerate(self.nodes):
            if (n.kind, n.layer, n.pos) == (kind, layer, pos) and (kind == "error" or n.index == index):
                return i
        raise KeyError(f"no {kind} node at layer {layer}, position {pos}, index {index} in this graph")

    def label(self, i: int) -> str:
        """A short name for node i: 'L2 f417 @" love"', 'err L1 @" he"', 'tok " love"', 'logit " kind"'."""
        n = self.nodes[i]
        if n.kind == "logit":
            return f"logit {self.logit_words[n.pos]!r}"
        at = repr(self.str_tokens[n.pos])
        return {"feature": f"L{n.layer} f{n.index} @{at}", "error": f"err L{n.layer} @{at}", "token": f"tok {at}"}[n.kind]


def answer_logits(logits: torch.Tensor, max_logits: int = 10, cumulative: float = 0.95
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """The most likely next tokens at the last position until `cumulative` probability (at most `max_logits`):
    (token ids, probabilities)."""
    probs = logits[-1].softmax(-1)
    top = probs.topk(max_logits)
    n = int((top.values.cumsum(0) < cumulative).sum()) + 1
    return top.indices[:n], top.values[:n]


def build_graph(model: Any, weights: GPT2Weights, sites: dict[int, Any], prompt: str | torch.Tensor,
                max_logits: int = 10, batch_size: int = 64) -> Graph:
    """The attribution graph of `prompt`'s next-token logits through the features of `sites` {layer: site}."""
    tokens = _tokens(model, weights, prompt)
    check_sites(weights, sites)
    if not sites:
        raise ValueError("give at least one site {layer: TranscoderSite or ResidSite}; a graph needs features")
    run = clean_run(weights, tokens, sites)
    P, layers = len(tokens), sorted(sites)
    logit_ids, probs = answer_logits(run.logits, max_logits)
    nodes = [Node("feature", L, p, i, float(run.acts[L][p, i]))
             for L in layers for p, i in run.acts[L].nonzero().tolist()]
    nodes += [Node("error", L, p, 0) for L in layers for p in range(P)]
    nodes += [Node("token", -1, p, int(tokens[p])) for p in range(P)]
    nodes += [Node("logit", weights.n_layers, j, int(t)) for j, t in enumerate(logit_ids)]
    adjacency, values = _adjacency(weights, run, sites, nodes, batch_size)
    decode = getattr(model, "tokenizer", None)
    word = (lambda t: decode.decode([t])) if decode is not None else str  # noqa: E731
    str_tokens, words = [word(t) for t in tokens.tolist()], [word(t) for t in logit_ids.tolist()]
    return Graph(nodes, adjacency, probs, str_tokens, words, values, run, sites)


def _tokens(model: Any, weights: GPT2Weights, prompt: str | torch.Tensor) -> torch.Tensor:
    """Token ids [pos] of the prompt (BOS first); a clear error for an empty or too-long prompt."""
    if torch.is_tensor(prompt):
        tokens = prompt.reshape(-1)
    else:
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValueError("the prompt is empty: type a sentence, e.g. 'i love him. he is such a'")
        tokens = model.to_tokens(prompt, prepend_bos=True, truncate=False)[0]
    check_length(weights, len(tokens))
    return tokens.cpu()


def _adjacency(weights: GPT2Weights, run: CleanRun, sites: dict[int, Any], nodes: list[Node], batch_size: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """A[target, source] for every feature and logit target, `batch_size` targets per backward pass."""
    n, P = len(nodes), len(run.tokens)
    A, values = torch.zeros(n, n), torch.zeros(n)
    features = {L: [(i, nd) for i, nd in enumerate(nodes) if nd.kind == "feature" and nd.layer == L] for L in sites}
    errors = {L: [i for i, nd in enumerate(nodes) if nd.kind == "error" and nd.layer == L] for L in sites}
    token_cols = [i for i, nd in enumerate(nodes) if nd.kind == "token"]
    targets = [i for i, nd in enumerate(nodes) if nd.kind in ("feature", "logit")]  # in layer order
    resid_layers = sorted(L for L, s in sites.items() if s.kind == "resid")
    W_U = weights.W_U - weights.W_U.mean(0)  # demeaned logits: softmax ignores a shift shared by all tokens
    for first in range(0, len(targets), batch_size):
        rows = targets[first:first + batch_size]
        B = len(rows)
        embed = run.embed.expand(B, P, -1).clone().requires_grad_(True)
        vals, writes, errs = {}, {}, {}
        for L, site in sites.items():
            pos = torch.tensor([nd.pos for _, nd in features[L]], dtype=torch.long)
            lat = torch.tensor([nd.index for _, nd in features[L]], dtype=torch.long)
            vals[L] = run.acts[L][pos, lat].expand(B, -1).clone().requires_grad_(True)
            dirs = site.sae.W_dec[:, lat].T.detach()                      # [n_active, d_model]
            writes[L] = torch.zeros(B, P, dirs.shape[-1]).index_add(1, pos, vals[L][..., None] * dirs)
            errs[L] = run.errors[L].expand(B, P, -1).clone().requires_grad_(True)
        lo, hi = nodes[rows[0]].layer, nodes[rows[-1]].layer  # run only the blocks these targets need
        start = max([L for L in resid_layers if L < lo], default=None)
        reads, final = frozen_forward(weights, run, sites, embed, writes, errs,
                                      stop_after=hi if hi < weights.n_layers else None, start_after=start)
        out = torch.stack([_target_value(nodes[t], b, reads, final, sites, W_U) for b, t in enumerate(rows)])
        leaves = [embed, *vals.values(), *errs.values()]
        grads = dict(zip(["embed", *[("v", L) for L in vals], *[("e", L) for L in errs]],
                         torch.autograd.grad(out.sum(), leaves, allow_unused=True, materialize_grads=True)))
        rows_t = torch.tensor(rows)
        values[rows_t] = out.detach()
        A[rows_t[:, None], torch.tensor(token_cols)] = (grads["embed"] * run.embed).sum(-1)
        for L in sites:
            cols = torch.tensor([i for i, _ in features[L]], dtype=torch.long)
            A[rows_t[:, None], cols] = grads[("v", L)] * vals[L].detach()
            A[rows_t[:, None], torch.tensor(errors[L])] = (grads[("e", L)] * run.errors[L]).sum(-1)
    return A, values


def _target_value(node: Node, b: int, reads: dict[int, torch.Tensor], final: torch.Tensor,
                  sites: dict[int, Any], W_U: torch.Tensor) -> torch.Tensor:
    """Batch row b's target: a feature's pre-activation, or a logit minus the mean logit."""
    if node.kind == "logit":
        return final[b, -1] @ W_U[node.index]
    sae = sites[node.layer].sae
    x = reads[node.layer][b, node.pos]
    return (x - sae.pre_bias) @ sae.encoder.weight[node.index] + sae.latent_bias[node.index]


# --- influence, scores, pruning (as circuit-tracer computes them) -----------------------------------------
def normalize_rows(A: torch.Tensor) -> torch.Tensor:
    """|A| with each target's incoming edges scaled to sum to 1."""
    a = A.abs()
    return a / a.sum(1, keepdim=True).clamp_min(1e-10)


def influence(A_norm: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Influence of every node on the weighted targets: w^T (A + A^2 + ...) [n_nodes]; the graph is acyclic."""
    current, total = weights @ A_norm, torch.zeros_like(weights)
    for _ in range(len(weights)):
        if not current.any():
            break
        total = total + current
        current = current @ A_norm
    return total


def logit_weights(graph: Graph) -> torch.Tensor:
    """[n_nodes]: each logit node's probability, 0 elsewhere."""
    w = torch.zeros(len(graph.nodes))
    w[graph.mask("logit")] = graph.logit_probs
    return w


def node_influence(graph: Graph) -> torch.Tensor:
    """Each node's influence on the answer logits [n_nodes] (normalised graph, weighted by probability)."""
    return influence(normalize_rows(graph.adjacency), logit_weights(graph))


def graph_scores(graph: Graph) -> dict[str, float]:
    """replacement: share of the logits' influence that starts at tokens rather than at error nodes;
    completeness: share of every node's incoming edge weight (weighted by its influence) that is not error."""
    A_norm, w = normalize_rows(graph.adjacency), logit_weights(graph)
    infl = influence(A_norm, w)
    token, error = infl[graph.mask("token")].sum(), infl[graph.mask("error")].sum()
    non_error = 1 - A_norm[:, graph.mask("error")].sum(1)
    out_infl = infl + w
    return {"replacement": float(token / (token + error)),
            "completeness": float((non_error * out_infl).sum() / out_infl.sum())}


def check_threshold(value: float, name: str) -> float:
    """A pruning threshold must be a share of influence in (0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ValueError(f"{name} must be a fraction of influence in (0, 1], e.g. 0.8; got {value!r}")
    return float(value)


def _cutoff(scores: torch.Tensor, keep: float) -> float:
    """The smallest score among the top scores that together hold `keep` of the total."""
    ordered = scores.flatten().sort(descending=True).values
    share = ordered.cumsum(0) / ordered.sum().clamp_min(1e-12)
    return float(ordered[min(int(torch.searchsorted(share, torch.tensor(keep))), len(ordered) - 1)])


def keep_by_influence(scores: torch.Tensor, share: float) -> torch.Tensor:
    """Bool mask [n]: the fewest, highest scores that together hold `share` of the total (ties kept together)."""
    return scores >= _cutoff(scores, check_threshold(share, "share"))


@dataclass
class Pruned:
    """Which nodes and edges survive pruning: node_mask [n_nodes], edge_mask [n_nodes, n_nodes]."""
    node_mask: torch.Tensor
    edge_mask: torch.Tensor


def prune(graph: Graph, node_threshold: float = 0.8, edge_threshold: float = 0.98) -> Pruned:
    """Keep the nodes that carry `node_threshold` of the influence on the logits, then the edges that carry
    `edge_threshold` of it; tokens and logits always stay, and nodes left without edges go."""
    node_threshold, edge_threshold = (check_threshold(node_threshold, "node_threshold"),
                                      check_threshold(edge_threshold, "edge_threshold"))
    w = logit_weights(graph)
    infl = node_influence(graph)
    fixed = graph.mask("token") | graph.mask("logit")
    inner = graph.mask("feature") | graph.mask("error")
    node_mask = fixed.clone()
    node_mask[inner] = keep_by_influence(infl[inner], node_threshold)
    A = graph.adjacency * node_mask[:, None] * node_mask[None, :]
    A_norm = normalize_rows(A)
    edge_scores = A_norm * (influence(A_norm, w) + w)[:, None]
    edge_mask = edge_scores >= _cutoff(edge_scores[edge_scores > 0], edge_threshold)
    feature = graph.mask("feature")
    while True:  # drop features/errors with no outgoing edge, features with no incoming edge, and their edges
        old = node_mask.clone()
        node_mask &= fixed | edge_mask.any(0)
        node_mask &= ~feature | edge_mask.any(1)
        edge_mask &= node_mask[:, None] & node_mask[None, :]
        if torch.equal(old, node_mask):
            return Pruned(node_mask, edge_mask)


def fraction_through(graph: Graph, through: torch.Tensor) -> float:
    """Share of the logits' influence (from tokens and errors) carried by paths that touch a node in `through`."""
    w = logit_weights(graph)
    A_norm = normalize_rows(graph.adjacency)
    sources = graph.mask("token") | graph.mask("error")
    total = influence(A_norm, w)[sources].sum()
    avoid = A_norm * ~through[:, None] * ~through[None, :]
    w_avoid = w * ~through
    return float(1 - influence(avoid, w_avoid)[sources & ~through].sum() / total)


# --- predictions vs interventions in the real model --------------------------------------------------------
def predicted_logit_change(graph: Graph, node: int, factor: float = 0.0) -> torch.Tensor:
    """The graph's prediction for multiplying feature `node`'s activation by `factor`: the change of every logit
    node's (demeaned) logit [n_logits], following the linear paths through the other active features."""
    acts = torch.tensor([n.activation if n.kind == "feature" else 1.0 for n in graph.nodes])
    J = graph.adjacency / acts  # d target / d source activation
    J[node] = 0  # the intervened feature is clamped
    start = torch.zeros(len(acts))
    start[node] = (factor - 1) * graph.nodes[node].activation
    delta = start.clone()
    for _ in range(len(graph.nodes)):  # the graph is acyclic: this settles after as many rounds as layers
        new = start + J @ delta
        if torch.allclose(new, delta):
            break
        delta = new
    return delta[graph.mask("logit")]


@torch.no_grad()
def measured_logit_change(weights: GPT2Weights, graph: Graph, sites: dict[int, Any], node: int,
                          factor: float = 0.0, freeze: bool = False) -> torch.Tensor:
    """The real model's change of each logit node's demeaned logit [n_logits] when feature `node` is multiplied
    by `factor`: patterns, LayerNorms and every later feature recomputed, each site's clean error kept. With
    `freeze=True` patterns and LayerNorm scales stay those of the clean run (only the features' TopK is redone)."""
    n = graph.nodes[node]
    if n.kind != "feature":
        raise ValueError(f"node {node} is a {n.kind} node; interventions act on feature nodes")
    run = run_model(weights, graph.run.tokens, sites, errors=graph.run.errors, scale={(n.layer, n.pos, n.index): factor},
                    frozen=graph.run if freeze else None)
    ids = torch.tensor([nd.index for nd in graph.nodes if nd.kind == "logit"])

    def demeaned(logits: torch.Tensor) -> torch.Tensor:
        return logits[-1, ids] - logits[-1].mean()
    return demeaned(run.logits) - demeaned(graph.run.logits)


def top_feature_nodes(graph: Graph, n: int = 10, among: torch.Tensor | None = None) -> list[int]:
    """The n feature nodes with the most influence on the logits (optionally among a node mask)."""
    infl = node_influence(graph).masked_fill(~graph.mask("feature"), -1)
    if among is not None:
        infl = infl.masked_fill(~among, -1)
    order = infl.argsort(descending=True)[:n]
    return [int(i) for i in order if infl[i] >= 0]


def influence_by_cell(graph: Graph, n_layers: int) -> torch.Tensor:
    """Summed influence of features and errors at each (layer, position): [n_layers, pos]."""
    infl = node_influence(graph)
    grid = torch.zeros(n_layers, len(graph.str_tokens))
    for i, nd in enumerate(graph.nodes):
        if nd.kind in ("feature", "error"):
            grid[nd.layer, nd.pos] += infl[i]
    return grid


def check_answer_word(model: Any, word: str) -> int:
    """The token id of an answer word read after a space; a clear error if it is not exactly one token."""
    ids = model.tokenizer(" " + word.strip(), add_special_tokens=False)["input_ids"]
    if len(ids) != 1 or ids[0] == getattr(model.tokenizer, "unk_token_id", None):
        raise ValueError(f"the answer word {word!r} is {len(ids)} tokens for this model "
                         f"({ids}); pick a word that is one token, e.g. 'good'")
    return ids[0]


def constant_terms(weights: GPT2Weights, graph: Graph) -> torch.Tensor:
    """What each target would be with every source (token, feature, error) at zero: the bias terms [n_nodes].
    In a linear replacement model, incoming edges + this = the target's value."""
    run, sites, P = graph.run, graph.sites, len(graph.str_tokens)
    d = run.embed.shape[-1]
    zero = {L: torch.zeros(1, P, d) for L in sites}
    with torch.no_grad():
        reads, final = frozen_forward(weights, run, sites, torch.zeros(1, P, d), zero, zero)
        W_U = weights.W_U - weights.W_U.mean(0)
        out = torch.zeros(len(graph.nodes))
        for t, node in enumerate(graph.nodes):
            if node.kind in ("feature", "logit"):
                out[t] = _target_value(node, 0, reads, final, sites, W_U)
    return out
