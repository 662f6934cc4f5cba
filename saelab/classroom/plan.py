"""What the notebooks cannot say about themselves: each exercise's markers and each section's teaching plan.

    EXERCISES[check]           difficulty and importance (1-5, ARENA's dots) and the minutes to spend, keyed by the
                               check the exercise's solution calls (`check_topk`)
    discussion.SECTIONS[nb][s] key points and discussion questions of section `s` (its `## ` title without the
                               number) of notebook `nb` (`01_sae_theory`)

A test (tests/test_classroom_plan.py) fails when a notebook has an exercise or a section that is not listed here, or
when an entry here no longer matches any notebook.
"""
from __future__ import annotations

from dataclasses import dataclass

from saelab.classroom.discussion import SECTIONS, Section  # noqa: F401  (re-exported: the plan's other half)


@dataclass(frozen=True)
class Markers:
    """ARENA's three markers: difficulty and importance on a 1-5 scale, and the minutes a student should spend."""

    difficulty: int
    importance: int
    minutes: tuple[int, int]

    @property
    def mid_minutes(self) -> float:
        return sum(self.minutes) / 2


EXERCISES: dict[str, Markers] = {
    # 01: the SAE itself
    "check_topk": Markers(2, 4, (5, 10)),
    "check_sae_forward": Markers(2, 5, (10, 15)),
    "check_sae_loss": Markers(2, 4, (5, 10)),
    "check_l0_and_fvu": Markers(1, 4, (5, 10)),
    # 02: finding features
    "check_auroc_by_hand": Markers(2, 3, (10, 15)),
    # 03: activation patching
    "check_logit_diff": Markers(1, 4, (5, 10)),
    "check_patch_hook": Markers(1, 5, (5, 10)),
    "check_latent_attribution": Markers(4, 3, (20, 30)),
    # 04: steering
    "check_steering_vector": Markers(1, 4, (5, 10)),
    "check_steering_hook": Markers(2, 4, (10, 15)),
    "check_steer": Markers(3, 3, (10, 15)),
    "check_difference_of_means": Markers(2, 4, (10, 15)),
    # 05: training
    "check_training_step": Markers(2, 5, (10, 20)),
    "check_resample_high_loss": Markers(3, 2, (15, 25)),
    "check_splice_hook": Markers(2, 4, (10, 15)),
    # 06: evaluation
    "check_jumprelu": Markers(3, 4, (10, 20)),
    "check_batchtopk": Markers(2, 3, (10, 15)),
    "check_matryoshka_loss": Markers(2, 4, (5, 10)),
    "check_token_absorption": Markers(2, 4, (10, 15)),
    "check_mcc": Markers(2, 4, (10, 15)),
    # 07: circuits
    "check_logit_edge": Markers(3, 3, (15, 20)),
    "check_total_influence": Markers(2, 4, (10, 15)),
    "check_keep_by_influence": Markers(2, 3, (10, 15)),
}


def dots(value: int, out_of: int = 5) -> str:
    """'●●○○○' for 2 of 5 (characters every font has, unlike ARENA's coloured emoji)."""
    return "●" * value + "○" * (out_of - value)


def marker_line(check: str) -> str:
    """The line under an exercise's heading: '**Difficulty:** ●●○○○ · **Importance:** ●●●●○ · **Spend:** 10-15
    minutes'."""
    m = markers(check)
    return (f"**Difficulty:** {dots(m.difficulty)} · **Importance:** {dots(m.importance)} · "
            f"**Spend:** {m.minutes[0]}-{m.minutes[1]} minutes")


def markers(check: str) -> Markers:
    """The exercise's markers (a KeyError that says where to add them)."""
    try:
        return EXERCISES[check]
    except KeyError:
        raise KeyError(f"no markers for the exercise checked by {check}: add it to EXERCISES in "
                       f"saelab/classroom/plan.py") from None


def section(notebook: str, key: str) -> Section:
    """Section `key` of `notebook` (a KeyError that says where to add it)."""
    try:
        return SECTIONS[notebook][key]
    except KeyError:
        raise KeyError(f"no teaching plan for section {key!r} of {notebook}: add it to SECTIONS in "
                       f"saelab/classroom/discussion.py") from None
