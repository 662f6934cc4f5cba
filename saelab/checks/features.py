"""Checks for notebook 02's exercises: each prints "Correct!" or what is wrong and how to fix it.

They never raise, so a notebook with an unfinished stub still runs top to bottom.
"""
from __future__ import annotations

from typing import Callable

import torch

from saelab.features import auroc


def _report(ok: bool, message: str) -> None:
    print(("Correct! " if ok else "Not yet: ") + message)


def check_auroc_by_hand(fn: Callable[[torch.Tensor, torch.Tensor], float]) -> None:
    """Check `fn(scores_a [n_a], scores_b [n_b]) -> float`: the chance that a random a-score beats a
    random b-score, ties counting half."""
    cases = [  # (name, a, b)
        ("a separated above b", torch.tensor([3.0, 4.0, 5.0]), torch.tensor([0.0, 1.0])),
        ("a separated below b", torch.tensor([0.0, 0.5]), torch.tensor([2.0, 3.0, 4.0])),
        ("all zeros (a latent that never fires)", torch.zeros(4), torch.zeros(3)),
        ("some ties", torch.tensor([0.0, 2.0, 2.0]), torch.tensor([0.0, 2.0, 1.0, 0.0])),
        ("random", torch.randn(50, generator=torch.Generator().manual_seed(0)),
         torch.randn(40, generator=torch.Generator().manual_seed(1)) - 0.5),
    ]
    for name, a, b in cases:
        want = float(auroc(torch.cat([a, b]), torch.cat([torch.ones(len(a)), torch.zeros(len(b))]).bool()))
        try:
            got = fn(a.clone(), b.clone())
        except NotImplementedError:
            return _report(False, "the function still raises NotImplementedError: replace the stub's body.")
        except Exception as err:  # a student's bug: say what happened instead of a traceback
            return _report(False, f"on case '{name}' your function raised {type(err).__name__}: {err}")
        try:
            got = float(got)
        except (TypeError, ValueError):
            return _report(False, f"return one number (a float); got {type(got).__name__} on case '{name}'.")
        if abs(got - want) < 1e-4:
            continue
        if abs(got - (1 - want)) < 1e-4 and abs(want - 0.5) > 1e-4:
            hint = "you got 1 - AUROC: count the pairs where the score from a is LARGER than the one from b."
        elif "ties" in name or "zeros" in name:
            hint = "ties must count half: add 0.5 * (fraction of pairs with equal scores)."
        elif got > 1 or got < 0:
            hint = "an AUROC is a fraction of pairs, between 0 and 1: divide by len(a) * len(b)."
        else:
            hint = "compare every score in a with every score in b (broadcast a[:, None] against b[None, :])."
        return _report(False, f"on case '{name}' expected {want:.3f}, got {got:.3f}; {hint}")
    return _report(True, "your AUROC matches saelab.features.auroc on every case.")
