"""Notebook 07's exercise check: one edge by hand. Each usual mistake gets its hint; the stub is "not done yet"."""
from __future__ import annotations

import pytest
import torch

from saelab.checks import report
from saelab.checks.circuits import check_logit_edge


def right(d, a, s, w, W_U, t):
    return float(a * ((d - d.mean()) / s * w) @ (W_U[t] - W_U.mean(0)))


MISTAKES = {
    "left out the feature's activation": lambda d, a, s, w, W_U, t: right(d, a, s, w, W_U, t) / a,
    "divide by the final LayerNorm's frozen scale": lambda d, a, s, w, W_U, t: right(d, a, s, w, W_U, t) * s,
    "sign is flipped": lambda d, a, s, w, W_U, t: -right(d, a, s, w, W_U, t),
    "demean the unembedding": lambda d, a, s, w, W_U, t: float(a * ((d - d.mean()) / s * w) @ W_U[t]),
    "centre the decoder column": lambda d, a, s, w, W_U, t: float(a * (d / s * w) @ (W_U[t] - W_U.mean(0))),
}


@pytest.fixture(autouse=True)
def not_strict(monkeypatch):
    monkeypatch.delenv(report.STRICT_ENV, raising=False)


def test_right_answer_passes(capsys):
    assert check_logit_edge(right) is True
    assert capsys.readouterr().out == "✓ check_logit_edge: correct\n"


@pytest.mark.parametrize("hint", list(MISTAKES))
def test_each_mistake_gets_its_hint(capsys, hint):
    assert check_logit_edge(MISTAKES[hint]) is False
    out = capsys.readouterr().out
    assert out.startswith("✗ check_logit_edge:") and hint in out and out.count("\n") == 1


def test_stub_is_not_done(capsys):
    def stub(*args):
        raise NotImplementedError

    assert check_logit_edge(stub) is False
    assert capsys.readouterr().out.startswith("… check_logit_edge: not done yet")


def test_a_tensor_answer_of_the_wrong_shape_is_explained(capsys):
    import torch
    assert check_logit_edge(lambda d, a, s, w, W_U, t: torch.ones(3)) is False
    assert "single value" in capsys.readouterr().out


# check -> its named mistakes (answer, hint) and at least two wrong answers it has no name for; the census in
# tests/test_checks_report.py requires an entry for every check in saelab.checks.circuits.
WRONG_ANSWERS = {"check_logit_edge": {"named": [(fn, hint) for hint, fn in MISTAKES.items()], "unnamed": [
    lambda d, a, s, w, W_U, t: 2 * right(d, a, s, w, W_U, t),
    lambda d, a, s, w, W_U, t: right(d, a, s, w, W_U, t) + 0.1,
    lambda d, a, s, w, W_U, t: float(a * ((d - d.mean()) / s) @ (W_U[t] - W_U.mean(0))),  # without ln_f's weight
]}}


@pytest.mark.parametrize("i", range(len(WRONG_ANSWERS["check_logit_edge"]["unnamed"])))
def test_unnamed_wrong_answers_are_not_praised(i, capsys):
    assert check_logit_edge(WRONG_ANSWERS["check_logit_edge"]["unnamed"][i]) is False
    assert capsys.readouterr().out.startswith("✗ check_logit_edge:")


# --- influence as the sum of the adjacency matrix's powers ---------------------------------------------------
from saelab.checks.circuits import check_keep_by_influence, check_total_influence  # noqa: E402


def right_influence(A, w):
    total, current = torch.zeros_like(w), w @ A
    while current.abs().sum() > 0:
        total, current = total + current, current @ A
    return total


INFLUENCE_MISTAKES = {
    "only direct edges": lambda A, w: w @ A,
    "included the targets' own weights": lambda A, w: right_influence(A, w) + w,
    "direction is flipped": lambda A, w: A @ w,
    "stopped after paths of length 2": lambda A, w: w @ A + w @ A @ A,
}


def right_keep(scores, share):
    order = scores.argsort(descending=True)
    running = scores[order].cumsum(0) / scores.sum()
    n = int((running < share).sum()) + 1
    keep = torch.zeros(len(scores), dtype=torch.bool)
    keep[order[:n]] = True
    return keep


def _one_short(scores, share):
    keep = right_keep(scores, share)
    keep[scores.masked_fill(~keep, float("inf")).argmin()] = False
    return keep


KEEP_MISTAKES = {
    "not a cutoff on each node's own score": lambda s, share: s >= share,
    "least influential": lambda s, share: torch.tensor([float(s[s < v].sum()) < share * float(s.sum())
                                                        for v in s.tolist()]),
    "divide the running total": lambda s, share: torch.tensor([float(s[s > v].sum()) < share for v in s.tolist()]),
    "rank the nodes by score": lambda s, share: (s.cumsum(0) - s) < share * s.sum(),
    "one node short": _one_short,
}


def test_influence_right_answer_passes(capsys):
    assert check_total_influence(right_influence) is True
    assert capsys.readouterr().out == "✓ check_total_influence: correct\n"


@pytest.mark.parametrize("hint", list(INFLUENCE_MISTAKES))
def test_each_influence_mistake_gets_its_hint(capsys, hint):
    assert check_total_influence(INFLUENCE_MISTAKES[hint]) is False
    out = capsys.readouterr().out
    assert out.startswith("✗ check_total_influence:") and hint in out, out


def test_keep_right_answer_passes(capsys):
    assert check_keep_by_influence(right_keep) is True
    assert capsys.readouterr().out == "✓ check_keep_by_influence: correct\n"


@pytest.mark.parametrize("hint", list(KEEP_MISTAKES))
def test_each_keep_mistake_gets_its_hint(capsys, hint):
    assert check_keep_by_influence(KEEP_MISTAKES[hint]) is False
    out = capsys.readouterr().out
    assert out.startswith("✗ check_keep_by_influence:") and hint in out, out


def test_keep_says_to_return_a_mask(capsys):
    assert check_keep_by_influence(lambda s, share: s.argsort(descending=True)[:3]) is False
    assert "shape" in capsys.readouterr().out


WRONG_ANSWERS["check_total_influence"] = {"named": [(fn, h) for h, fn in INFLUENCE_MISTAKES.items()], "unnamed": [
    lambda A, w: 2 * right_influence(A, w),
    lambda A, w: right_influence(A, w) + 0.01,
    lambda A, w: right_influence(A, w).flip(0),
]}
WRONG_ANSWERS["check_keep_by_influence"] = {"named": [(fn, h) for h, fn in KEEP_MISTAKES.items()], "unnamed": [
    lambda s, share: torch.ones(len(s), dtype=torch.bool),
    lambda s, share: s > s.median(),
    lambda s, share: right_keep(s, min(1.0, share + 0.1)),
]}


@pytest.mark.parametrize("name,i", [(n, i) for n in ("check_total_influence", "check_keep_by_influence")
                                    for i in range(3)])
def test_new_unnamed_wrong_answers_are_not_praised(name, i, capsys):
    fn = {"check_total_influence": check_total_influence, "check_keep_by_influence": check_keep_by_influence}[name]
    assert fn(WRONG_ANSWERS[name]["unnamed"][i]) is False
    assert capsys.readouterr().out.startswith(f"✗ {name}:")
