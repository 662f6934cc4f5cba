"""How every exercise check in the course reports: one line, one style, and a strict mode for the test runs.

    ✓ check_topk: correct
    … check_topk: not done yet — replace `raise NotImplementedError` with your code, then run this cell again.
    ✗ check_topk: you kept the k SMALLEST values. Use pre_acts.topk(k, dim=-1) ...

A check never raises for a student: a crash in the student's code becomes a one-line story. In the test runs
`SAELAB_CHECKS_STRICT=1` makes anything but "correct" raise `CheckFailed`, so a reference solution that stops
passing fails CI instead of printing a quiet "not yet".

Strict mode and the stub: every notebook calls each check twice, first on the exercise's stub (which raises
NotImplementedError) and then, in the folded solution cell, on the reference solution. So in strict mode the FIRST
"not done yet" of each check name in a process (one notebook kernel) is the stub and only prints; a second "not done
yet" from the same check is a solution cell that still raises NotImplementedError, and raises `CheckFailed`.
`STUBS_SEEN` holds the check names whose stub has been seen (tests reset it).
"""
from __future__ import annotations

import os
import traceback
from typing import Any, Callable

import torch

STRICT_ENV = "SAELAB_CHECKS_STRICT"
STUBS_SEEN: set[str] = set()  # strict mode: checks that already printed "not done yet" once (their stub)
NOT_DONE = "not done yet — replace `raise NotImplementedError` (or the TODO) with your code, then run this cell again."


class NotDone(Exception):
    """The student's function is still the stub."""


class CheckFailed(AssertionError):
    """Raised in strict mode (`SAELAB_CHECKS_STRICT=1`) when a check does not print success."""


def strict() -> bool:
    """Whether checks raise instead of printing a problem (the test runs set SAELAB_CHECKS_STRICT=1)."""
    return os.environ.get(STRICT_ENV, "").strip() not in ("", "0", "false", "False")


def call(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Call the student's function on copies of tensor inputs; NotImplementedError -> NotDone, crashes -> one line."""
    try:
        return fn(*[a.clone() if torch.is_tensor(a) else a for a in args], **kwargs)
    except NotImplementedError:
        raise NotDone() from None
    except (NotDone, CheckFailed):
        raise
    except Exception as err:  # the student's bug, told in one line with where it happened
        frames = [f for f in traceback.extract_tb(err.__traceback__)[1:]
                  if "site-packages" not in f.filename and "saelab" not in f.filename]
        where = f" (line {frames[-1].lineno}: `{(frames[-1].line or '').strip()}`)" if frames else ""
        raise RuntimeError(f"your function raised {type(err).__name__}: {err}{where}") from None


STANDS_IN = ("the reference solution passes this check, and from here on it stands in for your function "
             "(run your own cell again to use yours)")


def in_solution_cell() -> bool:
    """Whether the cell running now is a folded reference solution (its first line is `# @title Solution`), so its
    success is the reference's, not the student's: IPython keeps the running cell's text as the last of `_ih`."""
    try:
        from IPython import get_ipython
        shell = get_ipython()
        source = shell.user_ns.get("_ih", [""])[-1] if shell is not None else ""
    except (ImportError, AttributeError, IndexError):
        return False
    return isinstance(source, str) and source.lstrip().startswith("# @title Solution")


def report(name: str, problem: str | None, not_done: bool = False) -> bool:
    """Print the one-line verdict; return True when correct. In strict mode a wrong answer raises CheckFailed, and so
    does a check's second "not done yet" (its first is the notebook's stub; the second, a solution still unwritten)."""
    if problem is None and not not_done:
        print(f"✓ {name}: {STANDS_IN if in_solution_cell() else 'correct'}")
        return True
    line = f"… {name}: {NOT_DONE}" if not_done else f"✗ {name}: {problem}"
    print(line)
    if not strict():
        return False
    if not not_done:
        raise CheckFailed(f"{line}  ({STRICT_ENV}=1: a reference solution must pass its check)")
    if name in STUBS_SEEN:
        raise CheckFailed(f"{line}  ({STRICT_ENV}=1: {name} already saw its stub; this second call is the solution "
                          f"cell, and it still raises NotImplementedError)")
    STUBS_SEEN.add(name)
    return False


def check(name: str, body: Callable[[], str | None]) -> bool:
    """Run a check body (returns None when right, else the hint) and report it; never raises unless strict."""
    try:
        problem = body()
    except NotDone:
        return report(name, None, not_done=True)
    except (RuntimeError, ValueError, TypeError, IndexError, KeyError, AttributeError) as err:
        problem = str(err)
    return report(name, problem)


def as_float(value: Any) -> float:
    """A Python float from a number or a one-element tensor; a bigger tensor is the student's mistake."""
    if torch.is_tensor(value):
        if value.numel() != 1:
            raise ValueError(f"expected one number, got a tensor of shape {tuple(value.shape)}; "
                             f"reduce it to a single value")
        return value.item()
    return float(value)
