"""Notebook 02's exercise check, in the course's one-line style (`saelab.checks.report`).

    ✓ check_auroc_by_hand: correct
    ✗ check_auroc_by_hand: on case 'a latent that never fires' ... ties must count half ...

The reference counts the pairs here (`reference_auroc`), independently of `saelab.metrics.auroc`.
"""
from __future__ import annotations

from typing import Callable

import torch

from saelab.checks import report

NAME = "check_auroc_by_hand"


def _cases() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(name, scores [n], labels [n] bool): the cases every answer must get right, edge cases included."""
    g = torch.Generator().manual_seed(0)
    sparse = torch.where(torch.rand(30, generator=g) < 0.7, torch.zeros(30), torch.rand(30, generator=g) * 5)
    sparse_labels = torch.arange(30) % 3 == 0  # 10 labelled, 20 not: groups of different sizes
    return [
        ("labelled prompts score higher", torch.tensor([3.0, 0.0, 4.0, 1.0, 5.0]),
         torch.tensor([True, False, True, False, True])),
        ("labelled prompts score lower", torch.tensor([0.0, 2.0, 0.5, 3.0, 4.0]),
         torch.tensor([True, False, True, False, False])),
        ("one prompt per group", torch.tensor([1.0, 2.0]), torch.tensor([False, True])),
        ("a latent that never fires", torch.zeros(7), torch.tensor([True, False, True, False, False, True, False])),
        ("some ties", torch.tensor([0.0, 2.0, 2.0, 0.0, 2.0, 1.0, 0.0]),
         torch.tensor([True, True, True, False, False, False, False])),
        ("a sparse latent, 10 vs 20 prompts", sparse, sparse_labels),
    ]


def _pairs(scores: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(labelled > unlabelled, labelled == unlabelled) for every pair: two [n_labelled, n_other] bool tensors."""
    a, b = scores[labels], scores[~labels]
    return a[:, None] > b[None, :], a[:, None] == b[None, :]


def reference_auroc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """The fraction of (labelled, unlabelled) pairs where the labelled score is larger, ties counting half."""
    wins, ties = (t.double() for t in _pairs(scores, labels))
    return (wins + 0.5 * ties).mean().item()


def _mistakes(scores: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """What each usual mistake returns on one case, keyed by its hint."""
    wins, ties = (t.float() for t in _pairs(scores, labels))
    every = (scores[:, None] > scores[None, :]).float() + 0.5 * (scores[:, None] == scores[None, :]).float()
    return {
        "ties must count half: add 0.5 * (the fraction of pairs with equal scores); you counted them as 0.":
            wins.mean().item(),
        "ties must count half, not as wins: you compared with >=; use > plus 0.5 * (==).": (wins + ties).mean().item(),
        "wrong direction: you got 1 - AUROC. Count the pairs where the LABELLED prompt's score is larger "
        "(scores[labels] against scores[~labels]).": 1 - reference_auroc(scores, labels),
        "you returned a count of pairs; an AUROC is a fraction between 0 and 1: divide by n_labelled * n_other.":
            (wins + 0.5 * ties).sum().item(),
        "you compared every score with every score; compare only labelled prompts with unlabelled ones.":
            every.mean().item(),
        "you compared the two means; AUROC compares every (labelled, unlabelled) PAIR of prompts.":
            float(scores[labels].mean() > scores[~labels].mean()),
    }


GENERIC = ("compare every labelled score with every unlabelled one (broadcast a[:, None] against b[None, :]): the "
           "fraction of pairs where a is larger, plus half the fraction of ties.")


def check_auroc_by_hand(fn: Callable[[torch.Tensor, torch.Tensor], float]) -> bool:
    """Check `fn(scores [n], labels [n] bool) -> float`: the chance that a random labelled prompt's score beats a
    random unlabelled one's, ties counting half (what saelab.metrics.auroc computes), against `reference_auroc`."""

    def body() -> str | None:
        answers = []
        for _, scores, labels in _cases():
            got = report.call(fn, scores, labels)
            if got is None:
                return "your function returned None: did you forget to `return` the AUROC?"
            answers.append(report.as_float(got))
        close = lambda a, b: abs(a - b) <= 1e-4  # noqa: E731  (False for NaN)
        wrong = [(case, got) for case, got in zip(_cases(), answers) if not close(got, reference_auroc(*case[1:]))]
        if not wrong:
            return None
        # the mistake whose formula gives every one of the student's answers names the hint
        named = [hint for hint in _mistakes(*_cases()[0][1:])
                 if all(close(got, _mistakes(s, l)[hint]) for (_, s, l), got in zip(_cases(), answers))]
        (name, scores, labels), got = wrong[0]
        return (f"on case '{name}' expected {reference_auroc(scores, labels):.3f}, got {got:.3f}; "
                f"{named[0] if named else GENERIC}")

    return report.check(NAME, body)
