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
import re

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


def _stdout(cell: nbformat.NotebookNode) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")


def student_run_problems(source: nbformat.NotebookNode, executed: nbformat.NotebookNode) -> list[str]:
    """What is wrong with a student edition of `source` that was run top to bottom by a student who wrote nothing
    (`executed`, with its outputs); empty when all is well. Every check must print "not done yet" (never
    "correct": no solution is left in this edition), each stand-in cell says what stands in, and every later cell
    that calls a function the library cannot stand in for says it needs it instead of raising. Whether some cell
    failed is for the runner to say (nbclient raises; the browser test reads the page)."""
    from saelab.classroom import standin  # the stand-in names a kernel uses; imported here to keep editions light

    found = outline.exercises(source)
    if not found:
        return ["the notebook has no exercise"]
    code = [c for c in executed.cells if c.cell_type == "code"]
    everything = "\n".join(_stdout(c) for c in code)
    problems = []
    if re.search(r"✓ check_\w+: correct", everything):
        problems.append("a check passed in the student edition")
    if "✗ check_" in everything:
        problems.append("a check called something wrong in the student edition")
    for exercise in found:
        if "not done yet" not in _stdout(executed.cells[exercise.solution_cell - 1]):
            problems.append(f"{exercise.check}: the stub cell did not print 'not done yet'")
        said = _stdout(executed.cells[exercise.solution_cell])
        for function in exercise.functions:
            if f"{function} is not written yet" not in said:
                problems.append(f"{exercise.check}: the stand-in cell says {said!r}")
            if function in standin.NO_REFERENCE:  # every later cell that calls it says it needs it
                for cell in executed.cells[exercise.solution_cell + 1:]:
                    if cell.cell_type == "code" and re.search(rf"\b{function}\b", cell.source) and \
                            f"needs your `{function}`" not in _stdout(cell):
                        problems.append(f"a cell that calls {function} did not say it needs it: {cell.source[:80]!r}")
    return problems
