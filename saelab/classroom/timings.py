"""Measured minutes per section, from the cell timestamps of an executed notebook.

`make course` executes every notebook with nbconvert, which records each code cell's start and end in its metadata
(`execution`: `iopub.status.busy` ... `shell.execute_reply`). Summed over the cells of each `## ` section, that is
the time a section's cells take to run; the guide and the speaker notes read it from `timings.json` beside this file.

Re-measure (on a quiet machine, nothing else running) and store the table:

    make course && .venv/bin/python -m saelab.classroom.timings build/notebooks/*.ipynb
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
from pathlib import Path

import nbformat

from saelab.classroom import outline

TIMINGS = Path(__file__).with_name("timings.json")
COMMAND = "make course && .venv/bin/python -m saelab.classroom.timings build/notebooks/*.ipynb"


def _stamp(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def cell_seconds(cell: nbformat.NotebookNode) -> float | None:
    """Wall time of one executed code cell, from its recorded timestamps (None when it has none)."""
    times = cell.get("metadata", {}).get("execution", {})
    start = times.get("iopub.status.busy") or times.get("iopub.execute_input")
    end = times.get("shell.execute_reply") or times.get("iopub.status.idle")
    if not (start and end):
        return None
    return max(0.0, (_stamp(end) - _stamp(start)).total_seconds())


def section_seconds(nb: nbformat.NotebookNode) -> dict[str, float]:
    """Seconds of cell execution per section key, in notebook order (a ValueError when nothing was timed)."""
    timed = [cell_seconds(c) if c.cell_type == "code" else None for c in nb.cells]
    if not any(t is not None for t in timed):
        raise ValueError("this notebook has no execution timestamps: time an executed copy (make course writes "
                         "them to build/notebooks/)")
    return {s.key: round(sum(timed[i] or 0.0 for i in s.cells), 1) for s in outline.sections(nb)}


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def measure(paths: list[Path], note: str = "") -> dict:
    """The timing table of these executed notebooks, with the machine and the date."""
    notebooks = {}
    for path in sorted(paths):
        nb = nbformat.read(path, as_version=4)
        sections = section_seconds(nb)
        notebooks[Path(path).stem] = {"total_s": round(sum(sections.values()), 1), "sections_s": sections}
    return {"machine": f"{cpu_model()}, {os.cpu_count()} cores", "date": dt.date.today().isoformat(),
            "run": "make course: nbconvert executes each notebook offline (tiny world), one kernel at a time",
            "note": note, "remeasure": COMMAND, "notebooks": notebooks}


def load(path: Path = TIMINGS) -> dict:
    """The stored table ({} when none was measured yet)."""
    return json.loads(path.read_text()) if path.exists() else {}


def minutes(seconds: float | None) -> str:
    """A run time for people: '4 s', '2.3 min' ('not measured' for None)."""
    if seconds is None:
        return "not measured"
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", type=Path, help="executed notebooks (build/notebooks/*.ipynb)")
    parser.add_argument("--note", default="", help="how quiet the machine was, what else ran")
    parser.add_argument("--out", type=Path, default=TIMINGS)
    args = parser.parse_args(argv)
    table = measure(args.notebooks, args.note)
    args.out.write_text(json.dumps(table, indent=1, ensure_ascii=False) + "\n")
    for name, row in table["notebooks"].items():
        print(f"{name}: {minutes(row['total_s'])}")
        for key, seconds in row["sections_s"].items():
            print(f"    {seconds:7.1f} s  {key}")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
