"""A pytest plugin for the claims sweep: records every claim test's outcome and the values that decided it.

Loaded by `tests.claims.sweep` as `-p tests.claims.sweep_plugin` with `-o enable_assertion_pass_hook=true`, so the
explanation of every passing `assert` (pytest's own "0.0062 < 0.0073" line) is kept as well as every failure's.
The results go to the JSON file named by `SAELAB_SWEEP_OUT`, written whole or not at all.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

OUT_ENV = "SAELAB_SWEEP_OUT"
NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
COMPARISON = re.compile(rf"({NUMBER})\s*(<=|>=|<|>)\s*({NUMBER})")

_asserts: dict[str, list[dict]] = {}
_outcomes: dict[str, dict] = {}
_current: list[str] = [""]


def margin(first_line: str) -> float | None:
    """How far a passing comparison sits from its line, relative to the larger side (None if not numeric).

    '0.0062 < 0.0073' -> 0.15; a chained '0.08 < 0.2 < 0.35' gives the smaller of its two gaps.
    """
    gaps = []
    text = first_line
    while (m := COMPARISON.search(text)) is not None:
        a, op, b = float(m.group(1)), m.group(2), float(m.group(3))
        gap = (b - a) if op in ("<", "<=") else (a - b)
        gaps.append(gap / max(abs(a), abs(b), 1e-12))
        text = text[m.start(3):]  # a chained comparison shares its middle number
    return min(gaps) if gaps else None


def pytest_runtest_setup(item) -> None:
    _current[0] = item.nodeid


def pytest_assertion_pass(item, lineno: int, orig: str, expl: str) -> None:
    first = expl.splitlines()[0] if expl else orig
    _asserts.setdefault(item.nodeid, []).append(
        {"line": lineno, "assert": orig, "values": first[:300], "margin": margin(first)})


def pytest_runtest_logreport(report) -> None:
    if report.when == "call" or report.outcome != "passed":
        entry = _outcomes.setdefault(report.nodeid, {"outcome": "passed", "message": ""})
        if report.outcome != "passed":
            entry["outcome"] = report.outcome if report.when == "call" else f"{report.outcome} in {report.when}"
            crash = getattr(report.longrepr, "reprcrash", None)
            entry["message"] = (crash.message if crash else str(report.longrepr))[:600]


def pytest_sessionfinish(session, exitstatus) -> None:
    out = os.environ.get(OUT_ENV)
    if not out:
        return
    tests = {}
    for nodeid, entry in _outcomes.items():
        asserts = _asserts.get(nodeid, [])
        margins = [a["margin"] for a in asserts if a["margin"] is not None]
        tests[nodeid] = {**entry, "asserts": asserts, "margin": min(margins) if margins else None}
    path = Path(out)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"exitstatus": int(exitstatus), "tests": tests}, indent=1))
    tmp.replace(path)
