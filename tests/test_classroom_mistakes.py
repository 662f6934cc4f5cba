"""saelab.classroom.mistakes: the mistakes the guide lists come from the checks' own code."""
from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat
import pytest

from saelab.classroom import mistakes, outline
from saelab.course import NOTEBOOKS

ROOT = Path(__file__).resolve().parents[1]
CHECKS = sorted({e.check for n in NOTEBOOKS for e in outline.exercises(nbformat.read(ROOT / "notebooks" / n, 4))})

TOY = '''
"""A toy checks module."""
TABLE = {"a": ("you forgot the table's own hint text entirely", None)}
SHORT = "too short"


def _cases():
    return [("a batch of one", 1), ("an all-zero input", 2)]


def _hint(x):
    """Helpers' docstrings are not hints either."""
    if x:
        return f"you returned {x} where one tensor of shape [batch] was expected"
    return "wrong axis: sum over d_model, " + "then average over the batch"


def unused():
    return "this helper is never reached from the check"


def check_toy(fn):
    """Not a hint: a docstring."""
    for name, case in _cases():
        if fn(case):
            return _hint(case) or TABLE["a"][0] or SHORT
    return None
'''


def test_hints_are_read_from_the_code_the_check_reaches(tmp_path):
    path = tmp_path / "toy.py"
    path.write_text(textwrap.dedent(TOY))
    found = mistakes.hints_in(mistakes.reachable("check_toy", path))
    assert found == ["you forgot the table's own hint text entirely",
                     "you returned … where one tensor of shape [batch] was expected",
                     "wrong axis: sum over d_model, then average over the batch"]


@pytest.mark.parametrize("check", CHECKS)
def test_every_listed_mistake_is_in_the_checks_source(check):
    found = mistakes.mistakes(check)
    assert len(found) >= 3, f"{check}: only {found}"
    assert all(mistakes.in_source(hint, check) for hint in found)
    assert not set(found) & set(mistakes.cases(check)), "a case name was listed as a mistake"


def test_known_mistakes_are_listed():
    assert any("k SMALLEST" in h for h in mistakes.mistakes("check_topk"))
    assert any("greedy matching" in h for h in mistakes.mistakes("check_mcc"))
    l0_and_fvu = mistakes.mistakes("check_l0_and_fvu")  # reaches check_l0 and check_fvu
    assert any("rows" in h for h in l0_and_fvu) and any("EXPLAINED" in h for h in l0_and_fvu)
    assert "a batch of one" in mistakes.cases("check_topk")


def test_unknown_check_says_where_it_looked():
    with pytest.raises(KeyError, match="saelab/checks"):
        mistakes.check_module("check_nothing")
