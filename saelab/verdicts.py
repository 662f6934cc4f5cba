"""One rule for the whole course: when is a difference between two arms of an experiment clear?

Each arm runs several seeds. A difference is *clear* when every seed of one arm lies beyond every seed of the other
(their ranges do not overlap); anything else is "no clear difference". When both arms are the same experiment,
every way of splitting their values is equally likely, so the rule fires by chance 2 / C(n_a + n_b, n_a) of the
time: 1 in 10 with three seeds per arm, 1 in 126 with five. `aa_rate` measures that on real runs.
"""
from __future__ import annotations

from itertools import combinations
from math import comb
from typing import Sequence


def verdict(a: Sequence[float], b: Sequence[float]) -> str:
    """'lower' / 'higher' when every seed of arm `a` lies below / above every seed of arm `b`, else
    'no clear difference': a difference counts only where it exceeds the spread over seeds."""
    if len(a) == 0 or len(b) == 0:
        raise ValueError("each arm needs at least one seed")
    if max(a) < min(b):
        return "lower"
    if min(a) > max(b):
        return "higher"
    return "no clear difference"


def false_alarm_rate(n_a: int, n_b: int | None = None) -> float:
    """How often `verdict` says 'lower' or 'higher' when both arms are the same (n_a and n_b seeds, distinct values)."""
    n_b = n_a if n_b is None else n_b
    if n_a < 1 or n_b < 1:
        raise ValueError(f"each arm needs at least one seed; got {n_a} and {n_b}")
    return 2 / comb(n_a + n_b, n_a)


def aa_rate(values: Sequence[float], n: int) -> float:
    """An A/A comparison: runs of ONE experiment (`values`, one per seed) split into two arms of `n` seeds in every
    possible way; the share of splits where `verdict` still finds a clear difference."""
    if 2 * n > len(values):
        raise ValueError(f"two arms of {n} seeds need at least {2 * n} runs; got {len(values)}")
    fired = total = 0
    for both in combinations(range(len(values)), 2 * n):
        for first in combinations(both, n):
            second = [i for i in both if i not in first]
            fired += verdict([values[i] for i in first], [values[i] for i in second]) != "no clear difference"
            total += 1
    return fired / total
