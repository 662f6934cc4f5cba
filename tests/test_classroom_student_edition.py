"""The student edition of every notebook, run top to bottom offline, as a student who wrote nothing would run it.

Every check must print "not done yet" (never "correct": no solution is left in this edition), no cell may fail,
each stand-in cell says what stands in, and every later cell that calls a function the library cannot stand in
for must say so instead of raising. About as long as executing the course once (`make course`): 05 and 06 are the
slow ones. The solutions edition is the notebook itself (tests/test_classroom_editions.py); tests/claims runs it
strictly (SAELAB_CHECKS_STRICT=1) in both claim runs.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from saelab.classroom import editions, outline, standin
from saelab.course import NOTEBOOKS

ROOT = Path(__file__).resolve().parents[1]


def _text(cell: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def run_student_edition(name: str) -> tuple[nbformat.NotebookNode, nbformat.NotebookNode]:
    """(the notebook, its student edition executed offline in a fresh kernel, as a student runs it: not strict)."""
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    student = editions.student_edition(nb)
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "SAELAB_CHECKS_STRICT")}
    env["SAELAB_OFFLINE"] = "1"
    NotebookClient(student, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute(env=env)
    return nb, student


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_student_edition_runs_and_every_check_is_not_done_yet(name):
    nb, student = run_student_edition(name)
    found = outline.exercises(nb)
    assert found, f"{name} has no exercise"
    everything = "\n".join(_text(c) for c in student.cells if c.cell_type == "code")
    assert not re.search(r"✓ check_\w+: correct", everything), "a check passed in the student edition"
    assert "✗ check_" not in everything, "a check called something wrong in the student edition"
    for exercise in found:
        stub = student.cells[exercise.solution_cell - 1]
        assert "not done yet" in _text(stub), f"{exercise.check}: the stub cell did not print 'not done yet'"
        said = _text(student.cells[exercise.solution_cell])
        for function in exercise.functions:
            assert f"{function} is not written yet" in said, f"{exercise.check}: the stand-in cell says {said!r}"
            if function in standin.NO_REFERENCE:  # every later cell that calls it says it needs it
                later = [c for c in student.cells[exercise.solution_cell + 1:]
                         if c.cell_type == "code" and re.search(rf"\b{function}\b", c.source)]
                for cell in later:
                    assert f"needs your `{function}`" in _text(cell), cell.source
