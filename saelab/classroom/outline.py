"""A notebook's teaching outline, read from its cells: the `## ` sections, the exercises and the checks they call.

    sections(nb)   -> [Section]   title, the cells each one holds (a heading may sit in the middle of a cell)
    exercises(nb)  -> [Exercise]  one per solution cell (first line `# @title Solution`): its check, its functions

Everything the classroom build makes (slides, editions, guide) starts from this, so a section or an exercise added to
a notebook reaches all three, and a test fails until the plan in `saelab.classroom.plan` lists it.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field

import nbformat

SOLUTION = "# @title Solution"
OPENING = "Opening and setup"  # the cells before the first `## ` heading
_HEADING = re.compile(r"^## +(.+?)\s*$", re.M)
_EXERCISE = re.compile(r"^### +(Exercise\b.*?)\s*$", re.M)
_NUMBER = re.compile(r"^\d+\.\s*")


def section_key(heading: str) -> str:
    """A section's title without its number: '1. Why we need SAEs: superposition' -> 'Why we need SAEs: ...'."""
    return _NUMBER.sub("", heading.strip())


@dataclass
class Section:
    """One `## ` section: its heading, the indices of the cells that belong to it (a cell whose heading is in its
    middle belongs to the section it opens) and its markdown text (from that cell, only the part it holds)."""

    heading: str
    cells: list[int] = field(default_factory=list)
    markdown: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return section_key(self.heading) if self.heading != OPENING else OPENING


@dataclass
class Exercise:
    """An exercise: the check its solution cell calls, the functions the solution defines, where its cells are."""

    title: str           # the `### Exercise ...` heading, without the hashes
    check: str           # e.g. "check_topk"; the key of the exercise in saelab.classroom.plan
    functions: list[str]  # names the solution defines, e.g. ["my_l0", "my_fvu"]
    section: str         # the key of the section it belongs to
    solution_cell: int
    heading_cell: int


def is_solution(cell: nbformat.NotebookNode) -> bool:
    """A folded reference solution: a code cell whose first line is `# @title Solution`."""
    return cell.cell_type == "code" and cell.source.lstrip().startswith(SOLUTION)


def headings(source: str) -> list[str]:
    """The `## ` headings in a markdown source, in order."""
    return _HEADING.findall(source)


def split_at_headings(source: str) -> list[str]:
    """A markdown source cut before each `## ` heading: [text before the first heading, heading 1 + its text, ...]."""
    starts = [m.start() for m in _HEADING.finditer(source)]
    return [source[a:b] for a, b in zip([0] + starts, starts + [len(source)])]


def sections(nb: nbformat.NotebookNode) -> list[Section]:
    """The notebook's sections, the opening (title and setup) first."""
    found = [Section(OPENING)]
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            before, *pieces = split_at_headings(cell.source)
            if before.strip():
                found[-1].markdown.append(before)
            for piece in pieces:
                found.append(Section(headings(piece)[0], markdown=[piece]))
        found[-1].cells.append(index)
    return found


def section_of_cell(nb: nbformat.NotebookNode) -> list[str]:
    """For each cell, the key of the section it belongs to."""
    owner = [""] * len(nb.cells)
    for section in sections(nb):
        for index in section.cells:
            owner[index] = section.key
    return owner


def defined_functions(source: str) -> list[str]:
    """Names of the top-level functions a cell defines (decorated ones included)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]


def called_checks(source: str) -> list[str]:
    """The `check_*` functions a cell calls, in order of first call."""
    names = re.findall(r"\b(check_\w+)\s*\(", source)
    return list(dict.fromkeys(names))


def exercises(nb: nbformat.NotebookNode) -> list[Exercise]:
    """Every exercise, found from its solution cell and the nearest `### Exercise` heading above it."""
    owner = section_of_cell(nb)
    found = []
    for index, cell in enumerate(nb.cells):
        if not is_solution(cell):
            continue
        checks = called_checks(cell.source)
        if not checks:
            raise ValueError(f"cell {index} is a solution cell that calls no check_* function")
        heading_cell, title = index, "Exercise"
        for earlier in range(index - 1, -1, -1):
            match = _EXERCISE.search(nb.cells[earlier].source) if nb.cells[earlier].cell_type == "markdown" else None
            if match:
                heading_cell, title = earlier, match.group(1)
                break
        found.append(Exercise(title, checks[0], defined_functions(cell.source), owner[index], index, heading_cell))
    return found


def learning_goals(nb: nbformat.NotebookNode) -> list[str]:
    """The numbered learning goals of the title cell (continuation lines joined)."""
    text = nb.cells[0].source
    block = text.split("**Learning goals**", 1)[1] if "**Learning goals**" in text else ""
    goals: list[str] = []
    for line in block.splitlines():
        if re.match(r"^\d+\.\s", line):
            goals.append(re.sub(r"^\d+\.\s*", "", line).strip())
        elif goals and line.startswith(" ") and line.strip():
            goals[-1] += " " + line.strip()
        elif goals and not line.strip():
            break
    return goals


def title(nb: nbformat.NotebookNode) -> str:
    """The notebook's `# ` title."""
    match = re.search(r"^# +(.+?)\s*$", nb.cells[0].source, re.M)
    return match.group(1) if match else "untitled"

