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
