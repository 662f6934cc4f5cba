"""saelab.classroom.mark_slides, .slides, .timings and .build: slide metadata set from the rules without touching a
source, decks with speaker notes and markers that load nothing from the web, timings grouped by section."""
from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from saelab.classroom import build, mark_slides, outline, plan, slides, timings
from saelab.course import NOTEBOOKS

ROOT = Path(__file__).resolve().parents[1]


def notebook(name: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "notebooks" / name, as_version=4)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebooks_carry_slide_metadata(name):
    found = mark_slides.problems(notebook(name))
    assert not found, (f"{name}: {found[:3]}; set it with "
                       f"`python -m saelab.classroom.mark_slides notebooks/*.ipynb` (only cell metadata changes)")


# --- mark_slides -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_mark_slides_follows_the_rules(name):
    nb = notebook(name)
    types = mark_slides.slide_types(nb)
    assert types[0] == "slide"
    for cell, kind in zip(nb.cells, types):
        if cell.cell_type == "markdown" and outline.headings(cell.source):
            assert kind == "slide"
        if outline.is_solution(cell):
            assert kind == "skip"
        if cell.cell_type == "markdown" and cell.source.startswith("### "):
            assert kind == "subslide"
        if cell.cell_type == "code" and len(cell.source.splitlines()) > mark_slides.LONG_CODE:
            assert kind in ("subslide", "skip")


def test_mark_slides_changes_only_metadata_and_check_sees_it(tmp_path, capsys):
    paths = []
    for name in NOTEBOOKS[:2]:
        shutil.copy(ROOT / "notebooks" / name, tmp_path / name)
        paths.append(tmp_path / name)
        nb = nbformat.read(tmp_path / name, 4)
        for cell in nb.cells:
            cell.metadata.pop("slideshow", None)
        nbformat.write(nb, tmp_path / name)
    before = [[c.source for c in nbformat.read(p, 4).cells] for p in paths]
    assert mark_slides.main(["--check", *map(str, paths)]) == 1
    assert "mark_slides" in capsys.readouterr().out
    assert mark_slides.main(list(map(str, paths))) == 0
    assert mark_slides.main(["--check", *map(str, paths)]) == 0
    assert [[c.source for c in nbformat.read(p, 4).cells] for p in paths] == before
    nb = nbformat.read(paths[0], 4)
    heading = next(c for c in nb.cells if c.cell_type == "markdown" and outline.headings(c.source))
    heading.metadata["slideshow"]["slide_type"] = "-"
    assert any("section heading" in p for p in mark_slides.problems(nb))


# --- the deck --------------------------------------------------------------------------------------------------
def executed_toy() -> tuple[nbformat.NotebookNode, nbformat.NotebookNode]:
    """(source, executed) copies of notebook 01 with made-up outputs: a figure, a long print, a widget."""
    source = notebook(NOTEBOOKS[0])
    mark_slides.mark(source)
    executed = copy.deepcopy(source)
    code = [c for c in executed.cells if c.cell_type == "code" and not outline.is_solution(c)]
    code[1].outputs = [nbformat.v4.new_output("display_data", {"image/png": "iVBORw0KGgo=", "text/plain": "fig"})]
    code[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="\n".join(map(str, range(40))))]
    code[3].outputs = [nbformat.v4.new_output("display_data", {slides.WIDGET: {"model_id": "x"}, "text/plain": "VBox"})]
    for cell in executed.cells:
        cell.metadata.pop("slideshow", None)  # the executed copy's metadata must come from the source
    return source, executed


def test_deck_notebook_adds_notes_markers_and_tidies_outputs():
    source, executed = executed_toy()
    deck = slides.deck_notebook(executed, source, "01_sae_theory", {"The sparse autoencoder": 75.0})
    notes = [c for c in deck.cells if c.metadata.get("slideshow", {}).get("slide_type") == "notes"]
    assert len(notes) == len(outline.sections(source)) - 1
    first = next(n for n in notes if "The sparse autoencoder" in n.source)
    assert "1.2 min" in first.source and "Ask:" in first.source and "check_topk" in first.source
    entry = plan.section("01_sae_theory", "The sparse autoencoder")
    assert entry.key_points[0] in first.source and entry.questions[0].ask in first.source
    text = "\n".join(c.source for c in deck.cells if c.cell_type == "markdown")
    assert plan.marker_line("check_topk") in text
    assert "colab-badge.svg" not in text and "[Open in Colab](" in text
    outputs = [o for c in deck.cells if c.cell_type == "code" for o in c.outputs]
    assert any("more lines in the notebook" in o.get("text", "") for o in outputs)
    assert not any(slides.WIDGET in o.get("data", {}) for o in outputs)
    assert all(c.metadata.get("slideshow", {}).get("slide_type") == "skip" for c in deck.cells if outline.is_solution(c))
    assert len(slides.figure_cells(deck)) == 1
    assert executed.cells[0].metadata.get("slideshow") is None  # the inputs are left as they were


def test_a_heading_in_the_middle_of_a_cell_starts_its_own_slide():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("**What we just learned:** x.\n\n## 2. Next\n\ny")])
    nb.cells[0].metadata["slideshow"] = {"slide_type": "slide"}
    deck = slides.split_headings(nb)
    assert [c.source for c in deck.cells] == ["**What we just learned:** x.", "## 2. Next\n\ny"]
    assert [c.metadata["slideshow"]["slide_type"] for c in deck.cells] == ["subslide", "slide"]


def test_a_source_without_slide_metadata_is_refused_with_the_command():
    source, executed = executed_toy()
    for cell in source.cells:
        cell.metadata.pop("slideshow")
    with pytest.raises(ValueError, match="mark_slides"):
        slides.carry_slide_metadata(executed, source)


def test_exported_deck_loads_nothing_from_the_web():
    source, executed = executed_toy()
    html = slides.export(slides.deck_notebook(executed, source, "01_sae_theory", {}), "../vendor")
    loads = re.findall(r"<(?:script|img|link|iframe)[^>]*(?:src|href)=[\"']([^\"']+)", html)
    assert loads and not [u for u in loads if re.match(r"(https?:)?//", u)], loads
    assert "../vendor/reveal.js/dist/reveal.js" in loads and any("../vendor/mathjax/MathJax.js" in u for u in loads)
    assert '<aside class="notes">' in html and "unpkg" not in html and "cdnjs" not in html


def test_vendor_copies_reveal_and_mathjax(tmp_path):
    folder = slides.vendor(tmp_path)
    for part in ("reveal.js/dist/reveal.js", "reveal.js/dist/reveal.css", "reveal.js/dist/theme/white.css",
                 "reveal.js/plugin/notes/notes.js", "mathjax/MathJax.js"):
        assert (folder / part).is_file(), part


# --- timings ---------------------------------------------------------------------------------------------------
def _timed(nb: nbformat.NotebookNode, seconds: float) -> nbformat.NotebookNode:
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.metadata["execution"] = {"iopub.status.busy": "2026-12-06T10:00:00.000000Z",
                                          "shell.execute_reply": f"2026-12-06T10:00:{seconds:09.6f}Z"}
    return nb


def test_section_seconds_sum_each_sections_cells():
    nb = _timed(notebook(NOTEBOOKS[0]), 2.5)
    got = timings.section_seconds(nb)
    sections = outline.sections(nb)
    assert list(got) == [s.key for s in sections]
    for s in sections:
        n_code = sum(nb.cells[i].cell_type == "code" for i in s.cells)
        assert got[s.key] == pytest.approx(2.5 * n_code)
    with pytest.raises(ValueError, match="make course"):
        timings.section_seconds(notebook(NOTEBOOKS[0]))


def test_stored_timings_cover_every_notebook_and_section():
    table = timings.load()
    assert table["machine"] and table["date"] and table["remeasure"] == timings.COMMAND
    for name in NOTEBOOKS:
        stem = Path(name).stem
        keys = [s.key for s in outline.sections(notebook(name))]
        assert list(table["notebooks"][stem]["sections_s"]) == keys, f"re-measure {stem}: {timings.COMMAND}"


def test_minutes_reads_well():
    assert timings.minutes(None) == "not measured"
    assert timings.minutes(4.2) == "4 s" and timings.minutes(138) == "2.3 min"


def test_build_notebook_writes_slides_editions_and_guide(tmp_path):
    source, executed = executed_toy()
    name = NOTEBOOKS[0]
    for folder in ("src", "done", "slides", "student", "solutions", "guide"):
        (tmp_path / folder).mkdir()
    nbformat.write(source, tmp_path / "src" / name)
    nbformat.write(executed, tmp_path / "done" / name)
    row = build.build_notebook(name, tmp_path / "src", tmp_path / "done", tmp_path, {})
    stem = Path(name).stem
    for path in (f"slides/{stem}.slides.html", f"student/{name}", f"solutions/{name}", f"guide/{stem}.md",
                 f"guide/{stem}.html"):
        assert (tmp_path / path).stat().st_size > 0, path
    assert (tmp_path / "solutions" / name).read_bytes() == (tmp_path / "src" / name).read_bytes()
    assert row["figures"] and row["run"] == "not measured"
    shutil.copy(ROOT / "notebooks" / NOTEBOOKS[1], tmp_path / "src" / NOTEBOOKS[1])  # not executed
    with pytest.raises(FileNotFoundError, match="make course"):
        build.build_notebook(NOTEBOOKS[1], tmp_path / "src", tmp_path / "done", tmp_path, {})


def test_index_page_links_every_notebook():
    rows = [{"stem": Path(n).stem, "name": n, "title": n, "run": "1 s", "students": "about 5 min"} for n in NOTEBOOKS]
    page = build.index_page(rows, {"machine": "cpu", "date": "today"})
    for n in NOTEBOOKS:
        stem = Path(n).stem
        for href in (f"slides/{stem}.slides.html", f"student/{n}", f"solutions/{n}", f"guide/{stem}.html"):
            assert f"href='{href}'" in page
    assert "http" not in page
    assert json.dumps(rows)  # rows are plain data


def test_a_build_that_cannot_start_leaves_the_earlier_kit(tmp_path):
    (tmp_path / "out" / "slides").mkdir(parents=True)
    (tmp_path / "out" / "slides" / "old.html").write_text("an earlier deck")
    with pytest.raises(FileNotFoundError, match="make course"):
        build.build(ROOT / "notebooks", tmp_path / "nothing-executed", tmp_path / "out")
    assert (tmp_path / "out" / "slides" / "old.html").exists()
