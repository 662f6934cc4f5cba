"""The student edition run top to bottom offline, as a student who wrote nothing would run it.

`saelab.classroom.editions.student_run_problems` says what is wrong with such a run: a check that prints "correct"
(no solution may be left in this edition), a stub that does not print "not done yet", a stand-in cell that does not
say what stands in, a later cell that needs the student's function and does not say so. Here: notebook 01's student
edition, run in a fresh kernel by nbclient (a failing cell raises), and the function shown to catch each of those
faults. All seven student editions run in JupyterLab in the browser test (tests/browser), which applies the same
function to what it saved: one execution of the course serves both, instead of one each.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from saelab.classroom import editions, outline

ROOT = Path(__file__).resolve().parents[1]
NAME = "01_sae_theory.ipynb"


def run_student_edition(name: str) -> tuple[nbformat.NotebookNode, nbformat.NotebookNode]:
    """(the notebook, its student edition executed offline in a fresh kernel, as a student runs it: not strict)."""
    nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
    student = editions.student_edition(nb)
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "SAELAB_CHECKS_STRICT")}
    env["SAELAB_OFFLINE"] = "1"
    NotebookClient(student, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute(env=env)
    return nb, student


@pytest.fixture(scope="module")
def ran() -> tuple[nbformat.NotebookNode, nbformat.NotebookNode]:
    return run_student_edition(NAME)


def test_student_edition_runs_and_every_check_is_not_done_yet(ran):
    nb, student = ran
    assert outline.exercises(nb)
    assert editions.student_run_problems(nb, student) == []


def _say(cell: nbformat.NotebookNode, text: str) -> None:
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text)]


@pytest.mark.parametrize("fault, expected", [
    ("a check praises", "a check passed"),
    ("a stub is silent", "did not print 'not done yet'"),
    ("a stand-in is silent", "the stand-in cell says"),
    ("a later cell does not say it needs the exercise", "did not say it needs it"),
])
def test_each_fault_of_a_student_run_is_reported(ran, fault, expected):
    nb, student = ran
    broken = copy.deepcopy(student)
    exercises = outline.exercises(nb)
    first = exercises[0]
    if fault == "a check praises":
        _say([c for c in broken.cells if c.cell_type == "code"][-1], "✓ check_anything: correct\n")
    elif fault == "a stub is silent":
        _say(broken.cells[first.solution_cell - 1], "")
    elif fault == "a stand-in is silent":
        _say(broken.cells[first.solution_cell], "")
    else:  # a cell at the end that calls the function with no stand-in and prints nothing about it
        function = next(f for e in exercises for f in e.functions if f in editions_no_reference())
        broken.cells.append(nbformat.v4.new_code_cell(f"{function}(None)"))
        _say(broken.cells[-1], "")
    problems = editions.student_run_problems(nb, broken)
    assert any(expected in p for p in problems), problems


def editions_no_reference() -> frozenset[str]:
    from saelab.classroom import standin
    return standin.NO_REFERENCE
