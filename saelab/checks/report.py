"""How every exercise check in the course reports: one line, one style, and a strict mode for the test runs.

    ✓ check_topk: correct
    … check_topk: not done yet — replace `raise NotImplementedError` with your code, then run this cell again.
    ✗ check_topk: you kept the k SMALLEST values. Use pre_acts.topk(k, dim=-1) ...

A check never raises for a student: a crash in the student's code becomes a one-line story. In the test runs
`SAELAB_CHECKS_STRICT=1` makes a wrong answer raise `CheckFailed`, so a reference solution that stops passing fails
CI instead of printing a quiet "not yet". An untouched stub (it raises NotImplementedError) still prints "not done
yet" and goes on in strict mode too: every notebook calls the check on its stub before the folded solution runs.
"""
from __future__ import annotations

import os
import traceback
from typing import Any, Callable

import torch

STRICT_ENV = "SAELAB_CHECKS_STRICT"
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


def report(name: str, problem: str | None, not_done: bool = False) -> bool:
    """Print the one-line verdict; return True when correct. In strict mode a wrong answer raises CheckFailed."""
    if problem is None and not not_done:
        print(f"✓ {name}: correct")
        return True
    line = f"… {name}: {NOT_DONE}" if not_done else f"✗ {name}: {problem}"
    print(line)
    if strict() and not not_done:
        raise CheckFailed(f"{line}  ({STRICT_ENV}=1: a reference solution must pass its check)")
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
