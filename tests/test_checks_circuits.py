"""Notebook 07's exercise check: one edge by hand. Each usual mistake gets its hint; the stub is "not done yet"."""
from __future__ import annotations

import pytest

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
