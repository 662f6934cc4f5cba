"""Exercise checks for notebook 07 (circuits): one edge of the attribution graph, derived by hand."""
from __future__ import annotations

from typing import Any, Callable

import torch

from saelab.checks.report import as_float, call, check

NAME = "check_logit_edge"


def logit_edge(decoder_column: torch.Tensor, activation: float, final_scale: float, ln_f_weight: torch.Tensor,
               W_U: torch.Tensor, token: int) -> float:
    """Reference: the direct effect of a last-layer feature on a (demeaned) logit, with ln_f's scale frozen."""
    centred = decoder_column - decoder_column.mean()             # LayerNorm subtracts the mean ...
    read = centred / final_scale * ln_f_weight                   # ... divides by its (frozen) scale, multiplies by w
    return float(activation * read @ (W_U[token] - W_U.mean(0)))  # demeaned logit; the bias b is not an edge


def _cases(seed: int = 0) -> list[tuple]:
    g = torch.Generator().manual_seed(seed)
    cases = []
    for d, vocab, act, scale in ((16, 20, 2.5, 3.0), (8, 5, 0.7, 0.4), (32, 50, 4.0, 11.0)):
        column = torch.randn(d, generator=g) + 0.5  # a clear mean, so forgetting to centre shows
        cases.append((column, act, scale, torch.rand(d, generator=g) + 0.5, torch.randn(vocab, d, generator=g) + 0.3,
                      int(torch.randint(vocab, (1,), generator=g))))
    return cases


def _diagnose(got: float, case: tuple) -> str:
    """Name the usual mistake behind a wrong edge."""
    column, act, scale, w, W_U, tok = case
    want = logit_edge(*case)
    near = lambda x: abs(got - x) <= 1e-4 * max(1.0, abs(x))  # noqa: E731
    if near(want / act):
        return "you left out the feature's activation: an edge is (d target / d source) x the source's activation."
    if near(want * scale):
        return "divide by the final LayerNorm's frozen scale (final_scale): ln_f(x) = (x - mean) / scale * w + b."
    if near(-want):
        return "the sign is flipped: the edge is activation x (what the column adds to the logit), not minus it."
    if near(float(act * ((column - column.mean()) / scale * w) @ W_U[tok])):
        return "demean the unembedding: logits are read minus their mean (W_U[token] - W_U.mean(0)), as the graph does."
    if near(float(act * (column / scale * w) @ (W_U[tok] - W_U.mean(0)))):
        return "centre the decoder column first: LayerNorm subtracts each vector's mean over d_model."
    return (f"expected {want:.4f}, got {got:.4f}. Follow the column through ln_f (centre, / final_scale, * w) to the "
            "demeaned unembedding row, then multiply by the activation.")


def check_logit_edge(fn: Callable[..., Any], graph: Any = None, weights: Any = None, source: int | None = None,
                     target: int | None = None) -> bool:
    """Check `fn(decoder_column, activation, final_scale, ln_f_weight, W_U, token) -> float` on random cases and,
    if given, on the edge `graph.adjacency[target, source]` (a last-layer feature -> a logit)."""
    def body() -> str | None:
        for case in _cases():
            got = as_float(call(fn, *case))
            if abs(got - logit_edge(*case)) > 1e-4 * max(1.0, abs(logit_edge(*case))):
                return _diagnose(got, case)
        if graph is not None:
            node, logit = graph.nodes[source], graph.nodes[target]
            sae = graph_site_sae(graph, weights, node.layer)
            got = as_float(call(fn, sae.W_dec[:, node.index].detach(), node.activation,
                                float(graph.run.scales["ln_f"][-1]), weights.ln_f[0], weights.W_U, logit.index))
            want = float(graph.adjacency[target, source])
            if abs(got - want) > 1e-3 * max(1.0, abs(want)):
                return f"right on the random cases but {got:.4f} on the graph's edge, which is {want:.4f}."
        return None
    return check(NAME, body)


def graph_site_sae(graph: Any, weights: Any, layer: int) -> Any:
    """The SAE (transcoder encoder/decoder) of `layer` that the graph was built with."""
    sites = getattr(graph, "sites", None)
    if sites is None or layer not in sites:
        raise ValueError(f"the graph has no site at layer {layer}")
    return sites[layer].sae


# --- influence as the sum of the adjacency matrix's powers -------------------------------------------------------
INFLUENCE = "check_total_influence"


def _dags(seed: int = 1) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Random acyclic graphs: A[t, s] > 0 only for s < t (sources before targets), rows summing to 1; weights on
    the last nodes (the 'logits'). Deep enough that paths of length 3+ matter."""
    g = torch.Generator().manual_seed(seed)
    cases = []
    for n, n_out in ((7, 2), (10, 3), (14, 4)):
        A = torch.rand(n, n, generator=g).tril(-1) * (torch.rand(n, n, generator=g) < 0.6)
        A[1:, 0] += 0.05  # every node reads node 0 (a token), so no row is empty
        A = A / A.sum(1, keepdim=True).clamp_min(1e-12)
        w = torch.zeros(n)
        w[-n_out:] = torch.rand(n_out, generator=g) + 0.1
        cases.append((A, w / w.sum()))
    return cases


def reference_influence(A_norm: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """w^T (A + A^2 + ...) = w^T ((I - A)^-1 - I), by one linear solve (A is nilpotent for an acyclic graph)."""
    eye = torch.eye(len(weights), dtype=torch.float64)
    x = torch.linalg.solve((eye - A_norm.double()).T, weights.double())
    return (x - weights.double()).float()


def _as_vector(value: Any, n: int) -> torch.Tensor:
    v = torch.as_tensor(value, dtype=torch.float32) if not torch.is_tensor(value) else value.detach().float()
    if v.shape != (n,):
        raise ValueError(f"return one influence per node, shape ({n},); got shape {tuple(v.shape)}")
    return v


def _diagnose_influence(got: torch.Tensor, A: torch.Tensor, w: torch.Tensor) -> str:
    want = reference_influence(A, w)
    near = lambda x: torch.allclose(got, x, atol=1e-4, rtol=1e-3)  # noqa: E731
    if near(w @ A):
        return ("you counted only direct edges (paths of length 1): a node also reaches the targets through the "
                "nodes it writes to. Keep going to paths of length 2, 3, ... until nothing is left.")
    if near(want + w):
        return "you included the targets' own weights (A^0 = I): influence counts paths of length 1 or more."
    if near(A @ w) or near(reference_influence(A.T, w)):
        return ("the direction is flipped: A[t, s] is target t's edge from source s, so influence flows from the "
                "targets' rows back to the sources: multiply w from the left (w @ A), not A @ w.")
    if near(w @ A + w @ A @ A):
        return ("you stopped after paths of length 2: keep multiplying by A until the product is zero (an acyclic "
                "graph gets there within n steps).")
    return f"expected {want[:4].tolist()} ... for the first nodes, got {got[:4].tolist()} ..."


def check_total_influence(fn: Callable[..., Any], graph: Any = None) -> bool:
    """Check `fn(A_norm [n, n], weights [n]) -> [n]` (each node's influence on the weighted targets through paths
    of every length) on random acyclic graphs and, if given, on the attribution graph."""
    def body() -> str | None:
        cases = _dags()
        if graph is not None:
            from saelab.graphs import logit_weights, normalize_rows
            cases.append((normalize_rows(graph.adjacency), logit_weights(graph)))
        for A, w in cases:
            got = _as_vector(call(fn, A, w), len(w))
            if not torch.allclose(got, reference_influence(A, w), atol=1e-4, rtol=1e-3):
                return _diagnose_influence(got, A, w)
        return None
    return check(INFLUENCE, body)


# --- pruning: keep the most influential nodes until they hold a share of the total -------------------------------
KEEP = "check_keep_by_influence"


def reference_keep(scores: torch.Tensor, share: float) -> torch.Tensor:
    """Keep node i when the nodes strictly more influential than i hold less than `share` of the total (so the
    node that takes the running total past `share` is kept too; ties are kept together)."""
    total = float(scores.sum())
    return torch.tensor([float(scores[scores > s].sum()) < share * total for s in scores.tolist()])


def _diagnose_keep(got: torch.Tensor, scores: torch.Tensor, share: float) -> str:
    want = reference_keep(scores, share)
    total, values = float(scores.sum()), scores.tolist()
    before = scores.cumsum(0) - scores  # running total in the given order, before each node
    if torch.equal(got, scores >= share):
        return ("the threshold is a share of the total influence, not a cutoff on each node's own score: rank "
                "the nodes, add their scores up, and stop once the running total reaches that share of the sum.")
    if torch.equal(got, torch.tensor([float(scores[scores < v].sum()) < share * total for v in values])):
        return "you kept the least influential nodes: rank from the largest score down."
    if torch.equal(got, torch.tensor([float(scores[scores > v].sum()) < share for v in values])):
        return "divide the running total by the sum of all scores: the threshold is a share of the total."
    if torch.equal(got, before < share * total):
        return "rank the nodes by score (largest first) before adding them up; their order in the graph is arbitrary."
    if int(got.sum()) == int(want.sum()) - 1 and bool((got <= want).all()):
        return "you stopped one node short: keep the node that takes the running total past the threshold too."
    return (f"kept {int(got.sum())} of {len(scores)} nodes; {int(want.sum())} are needed to hold {share:.0%} of the "
            "total influence (counting the one that crosses the threshold).")


def check_keep_by_influence(fn: Callable[..., Any], scores: torch.Tensor | None = None, share: float = 0.8) -> bool:
    """Check `fn(scores [n], share) -> bool [n]` (the most influential nodes that together hold `share` of the
    total) on random scores and, if given, on the graph's node influences."""
    def body() -> str | None:
        g = torch.Generator().manual_seed(3)
        cases = [(torch.rand(n, generator=g) * 3 + 0.01, s) for n, s in ((12, 0.5), (20, 0.8), (30, 0.95))]
        cases.append((torch.rand(25, generator=g).pow(4) * 5, 0.8))  # a few big scores, many small ones
        if scores is not None:
            cases.append((scores.detach().float(), share))
        for sc, s in cases:
            out = call(fn, sc, s)
            got = torch.as_tensor(out).reshape(-1) if not torch.is_tensor(out) else out.reshape(-1)
            if got.shape != sc.shape:
                return f"return one True/False per node, shape ({len(sc)},); got shape {tuple(got.shape)}"
            if got.dtype != torch.bool:
                return "return a boolean mask (True = keep), e.g. a comparison, not scores or indices"
            if not torch.equal(got, reference_keep(sc, s)):
                return _diagnose_keep(got, sc, s)
        return None
    return check(KEEP, body)
