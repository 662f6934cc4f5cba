"""One setting shifts every seed the course uses: `SAELAB_SEED=1000` gives another run, unset gives the default one.

Float32 results differ between CPUs, and a few hundred training steps turn a different last digit into a different
run. So a lesson must hold for other seeds too; the test suite runs every notebook a second time with an offset.
"""
from __future__ import annotations

import os

ENV = "SAELAB_SEED"


def seed_offset() -> int:
    """The offset from `SAELAB_SEED` (0 when unset)."""
    raw = os.environ.get(ENV, "").strip()
    if not raw:
        return 0
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{ENV} must be a whole number (an offset added to every seed); got {raw!r}") from None


def seed(n: int) -> int:
    """Seed `n` of the course, shifted by `SAELAB_SEED`."""
    return int(n) + seed_offset()


def seeds(n_runs: int, start: int = 0) -> list[int]:
    """`n_runs` consecutive seeds from `seed(start)`: one per run of a comparison."""
    if n_runs < 1:
        raise ValueError(f"n_runs must be at least 1; got {n_runs}")
    return [seed(start + i) for i in range(n_runs)]
