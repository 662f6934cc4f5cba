"""The two editions a teacher hands out, built from a notebook, never kept by hand.

    solutions_edition(nb)  the notebook as it is (its folded solutions run and pass their checks)
    student_edition(nb)    every solution cell replaced by a stand-in cell (`saelab.classroom.standin`): the
                           student's function stays if they wrote it, else the library's stands in, and the cell
                           says which; outputs cleared; each exercise heading shows its difficulty, importance and
                           minutes (`saelab.classroom.plan`)

The exercise, its goal, its stub and its check stay, so in the student edition every check prints "not done yet"
until the student writes the function.
"""
from __future__ import annotations

import copy

import nbformat

from saelab.classroom import outline, plan

STAND_IN_TAG = "saelab-stand-in"


def stand_in_source(functions: list[str]) -> str:
    """The code that replaces a solution cell defining `functions`."""
    lines = ["# Student edition: the reference solution is not in this notebook. If you wrote the function above, it",
             "# stays; if not, the library's version stands in for it, so that the cells below still run.",
             "from saelab.classroom.standin import stand_in", ""]
    lines += [f'{name} = stand_in("{name}", globals().get("{name}"))' for name in functions]
    return "\n".join(lines)


def stand_in_cell(solution: nbformat.NotebookNode, functions: list[str]) -> nbformat.NotebookNode:
    """A code cell in the solution's place (same id), visible, without outputs."""
    cell = nbformat.v4.new_code_cell(stand_in_source(functions))
    if "id" in solution:
        cell["id"] = solution["id"]
    cell.metadata = {"tags": [STAND_IN_TAG]}
    if "slideshow" in solution.metadata:
        cell.metadata["slideshow"] = copy.deepcopy(solution.metadata["slideshow"])
    return cell


def with_markers(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy whose exercise headings carry their markers line (difficulty, importance, minutes) under them."""
    nb = copy.deepcopy(nb)
    for exercise in outline.exercises(nb):
        cell = nb.cells[exercise.heading_cell]
        heading = f"### {exercise.title}"
        line = plan.marker_line(exercise.check)
        if heading in cell.source and line not in cell.source:
            before, rest = cell.source.split(heading, 1)
            cell.source = f"{before}{heading}\n\n{line}\n\n{rest.lstrip(chr(10))}".rstrip("\n")
    return nb


def clear_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Outputs, execution counts, timings and widget state removed (what a student should start from)."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    return nb


def student_edition(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook with every solution replaced by its stand-in cell, markers under the exercise headings."""
    student = clear_outputs(with_markers(nb))
    for exercise in outline.exercises(nb):
        student.cells[exercise.solution_cell] = stand_in_cell(nb.cells[exercise.solution_cell], exercise.functions)
    student.metadata["saelab"] = {"edition": "student"}
    return student


def solutions_edition(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook as it is: its solutions, folded, run and pass their checks."""
    return copy.deepcopy(nb)
