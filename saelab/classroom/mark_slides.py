"""Set the `slideshow` metadata the notebooks carry (the slide breaks of their reveal.js decks), or check it.

    python -m saelab.classroom.mark_slides notebooks/*.ipynb           # set it (only cell metadata changes)
    python -m saelab.classroom.mark_slides --check notebooks/*.ipynb   # exit 1 when a notebook lacks it

Rules (from the cells' sources, so they hold before a notebook is run):
- the title cell and every markdown cell with a `## ` heading start a slide ("slide");
- a `### ` heading (an exercise, a subsection) starts a sub-slide ("subslide");
- a folded solution cell (`# @title Solution`) is left out ("skip"): decks show the exercise, not its answer;
- prose after a code cell starts a sub-slide (it introduces the next code); other cells join the current
  (sub-)slide ("-") until it would grow past about `BUDGET` lines (a cell that draws counts its figure), then start
  a sub-slide; a code cell over `LONG_CODE` lines starts one unless the slide is still empty.
`--check` fails when a cell has no `slideshow.slide_type` or a section heading does not start a slide; hand edits
of the other cells' types are kept.
"""
from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

import nbformat

from saelab.classroom import outline

BUDGET = 28      # lines of text a slide holds at the deck's size
LONG_CODE = 15   # code lines past which a cell gets a sub-slide of its own
WRAP = 100       # characters per line of prose on a slide
DRAWS = re.compile(r"plt\.show|plt\.subplots|\bfig\b|plot_\w+\(|draw_\w+\(|heatmap|dashboard\(")
TYPES = ("slide", "subslide", "fragment", "skip", "notes", "-")


def height(cell: nbformat.NotebookNode) -> int:
    """Roughly how many slide lines a cell takes, with an allowance for what a code cell prints or draws."""
    lines = cell.source.splitlines() or [""]
    if cell.cell_type == "markdown":
        return sum(max(1, math.ceil(len(line) / WRAP)) for line in lines) + 1
    return len(lines) + 2 + (12 if DRAWS.search(cell.source) else 3)


def slide_types(nb: nbformat.NotebookNode) -> list[str]:
    """The slide type of every cell under the rules above."""
    types, used, has_code = [], BUDGET, False
    for index, cell in enumerate(nb.cells):
        h = height(cell)
        if index == 0 or (cell.cell_type == "markdown" and outline.headings(cell.source)):
            kind = "slide"
        elif outline.is_solution(cell):
            types.append("skip")
            continue
        elif cell.cell_type == "markdown" and (cell.source.lstrip().startswith("### ") or has_code):
            kind = "subslide"  # prose that introduces the next code starts its own sub-slide
        elif cell.cell_type == "code" and len(cell.source.splitlines()) > LONG_CODE and used > 0:
            kind = "subslide"
        elif used + h > BUDGET:
            kind = "subslide"
        else:
            kind = "-"
        if kind == "-":
            used, has_code = used + h, has_code or cell.cell_type == "code"
        else:
            used, has_code = h, cell.cell_type == "code"
        types.append(kind)
    return types


def mark(nb: nbformat.NotebookNode) -> int:
    """Set every cell's `slideshow.slide_type`; return how many cells changed."""
    changed = 0
    for cell, kind in zip(nb.cells, slide_types(nb)):
        if cell.metadata.get("slideshow", {}).get("slide_type") != kind:
            cell.metadata.setdefault("slideshow", {})["slide_type"] = kind
            changed += 1
    return changed


def problems(nb: nbformat.NotebookNode) -> list[str]:
    """What `--check` reports: cells without a slide type, section headings that do not start a slide."""
    found = []
    for index, cell in enumerate(nb.cells):
        kind = cell.metadata.get("slideshow", {}).get("slide_type")
        if kind is None:
            found.append(f"cell {index} has no slideshow.slide_type")
        elif kind not in TYPES:
            found.append(f"cell {index} has an unknown slide type {kind!r}")
        elif cell.cell_type == "markdown" and outline.headings(cell.source) and kind != "slide":
            found.append(f"cell {index} holds a section heading but its slide type is {kind!r}, not 'slide'")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a notebook lacks it")
    args = parser.parse_args(argv)
    failed = False
    for path in args.notebooks:
        nb = nbformat.read(path, as_version=4)
        if args.check:
            found = problems(nb)
            failed |= bool(found)
            for line in found[:5]:
                print(f"{path}: {line}")
            if len(found) > 5:
                print(f"{path}: ... and {len(found) - 5} more")
            continue
        changed = mark(nb)
        if changed:
            nbformat.write(nb, path)
        print(f"{path}: {changed} cells' slide types set")
    if failed:
        print("Set them with: python -m saelab.classroom.mark_slides " + " ".join(map(str, args.notebooks)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
