"""reveal.js slides of an executed notebook, with speaker notes, that open without any network.

nbconvert's slides template loads reveal.js from unpkg.com, jQuery and require.js from cdnjs, mermaid and MathJax from
CDNs too. Here every one of those comes from a local copy (`vendor`): reveal.js 5 from PyPI's `sphinx-revealjs`
(its `_static/revealjs`: `dist/reveal.js`, `dist/reveal.css`, `dist/theme/`, `plugin/notes/notes.js`, the layout
`--SlidesExporter.reveal_url_prefix` must point at) and MathJax 2 from PyPI's `jupyter-server-mathjax`; the template
below drops jQuery, require.js, mermaid and the widget manager, which the decks do not need.

Slide breaks are the `slideshow` metadata the source notebooks carry (`saelab.classroom.mark_slides`), copied onto
the executed cells by cell id. The deck itself also gets, built here and never written back to a notebook:
- a speaker-notes cell under each section heading: key points, measured minutes, exercises, discussion questions;
- the markers line under each exercise heading (difficulty, importance, minutes);
- a section heading that sits in the middle of a cell split off onto its own slide;
- long text outputs cut to `MAX_OUTPUT_LINES`, interactive widgets replaced by a line saying where they work, and
  the Colab badge (an image from the web) turned into a plain link.
"""
from __future__ import annotations

import copy
import importlib.util
import re
import shutil
import tempfile
from pathlib import Path

import nbformat
from nbconvert import SlidesExporter

from saelab.classroom import editions, guide, outline, plan, timings

MAX_OUTPUT_LINES = 16
WIDGET = "application/vnd.jupyter.widget-view+json"
WIDGET_NOTE = "(an interactive panel: open the notebook in JupyterLab or Colab to use it)"
BADGE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\(([^)]*)\)")
MATHJAX_QUERY = "?config=TeX-AMS-MML_HTMLorMML-full,Safe"

TEMPLATE = r"""{%- extends 'reveal/index.html.j2' -%}
{# Everything from this machine: no jQuery, require.js, mermaid or widget manager, reveal.js by plain script tags. #}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}
<script type="text/x-mathjax-config">
MathJax.Hub.Config({
  tex2jax: {inlineMath: [['$', '$'], ['\\(', '\\)']], displayMath: [['$$', '$$'], ['\\[', '\\]']],
            processEscapes: true, processEnvironments: true},
  "HTML-CSS": {availableFonts: [], webFont: "STIX-Web", imageFont: null},
  messageStyle: "none", showMathMenu: false, menuSettings: {zoom: "None"}
});
</script>
<script src="{{ resources.mathjax_url }}"></script>
<style>
.reveal .slides section { height: 100%; overflow-y: auto; text-align: left; }
.reveal .slides section .jp-RenderedImage img { max-height: 560px; }
.saelab-markers { font-size: 0.8em; }
</style>
{%- endblock html_head_js_mathjax -%}
{% block footer_js %}
<script src="{{ resources.reveal.url_prefix }}/dist/reveal.js"></script>
<script src="{{ resources.reveal.url_prefix }}/plugin/notes/notes.js"></script>
<script>
Reveal.initialize({controls: true, progress: true, hash: true, center: false, transition: "none",
                   slideNumber: "c/t", width: 1280, height: 860, plugins: [RevealNotes]});
Reveal.on("slidechanged", function () {
  if (window.MathJax && MathJax.Hub) { MathJax.Hub.Queue(["Typeset", MathJax.Hub, Reveal.getCurrentSlide()]); }
});
</script>
{% endblock footer_js %}
"""


# --- the local copies --------------------------------------------------------------------------------------------
def package_dir(name: str) -> Path:
    """Where an installed package lives, without importing it (an ImportError says how to install it)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"the classroom build needs PyPI's {name.replace('_', '-')}: "
                          f"pip install -e '.[classroom]' (once, with network), then build offline")
    return Path(list(spec.submodule_search_locations)[0])


def reveal_source() -> Path:
    """reveal.js as sphinx-revealjs ships it (dist/ and plugin/)."""
    return package_dir("sphinx_revealjs") / "_static" / "revealjs"


def mathjax_source() -> Path:
    """MathJax 2 as jupyter-server-mathjax ships it (MathJax.js, config/, jax/, fonts/ ...)."""
    return package_dir("jupyter_server_mathjax") / "static"


def vendor(out: Path) -> Path:
    """Copy reveal.js (dist + the notes plugin) and MathJax into out/vendor/; return that folder."""
    target = out / "vendor"
    reveal = reveal_source()
    for part in ("dist", "plugin/notes"):
        shutil.copytree(reveal / part, target / "reveal.js" / part, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("*.map", "*.esm.js"))
    shutil.copytree(mathjax_source(), target / "mathjax", dirs_exist_ok=True)
    return target


# --- the deck's notebook -------------------------------------------------------------------------------------------
def carry_slide_metadata(executed: nbformat.NotebookNode, source: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of the executed notebook with each cell's `slideshow` metadata taken from the source notebook (by
    cell id, else by position). A ValueError names the command when the source carries none."""
    if not any("slideshow" in c.metadata for c in source.cells):
        raise ValueError("the notebook carries no slide metadata; set it with "
                         "`python -m saelab.classroom.mark_slides notebooks/*.ipynb`")
    by_id = {c.get("id"): c.metadata.get("slideshow") for c in source.cells if c.get("id")}
    deck = copy.deepcopy(executed)
    for index, cell in enumerate(deck.cells):
        show = by_id.get(cell.get("id"))
        if show is None and index < len(source.cells) and source.cells[index].source == cell.source:
            show = source.cells[index].metadata.get("slideshow")
        if show is not None:
            cell.metadata["slideshow"] = copy.deepcopy(show)
    return deck


def _kind(cell: nbformat.NotebookNode) -> str:
    return cell.metadata.get("slideshow", {}).get("slide_type", "-")


def split_headings(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Cut a markdown cell before each `## ` heading in its middle: the text before it stays with the previous
    section (as a sub-slide), each heading starts a slide."""
    cells = []
    for cell in nb.cells:
        pieces = outline.split_at_headings(cell.source) if cell.cell_type == "markdown" else [cell.source]
        if len(pieces) == 1 or not pieces[0].strip():
            cells.append(cell)
            continue
        for number, piece in enumerate(pieces):
            part = copy.deepcopy(cell)
            part.source = piece.strip("\n")
            part["id"] = f"{cell.get('id', 'cell')}-{number}"
            part.metadata["slideshow"] = {"slide_type": "subslide" if number == 0 else "slide"}
            cells.append(part)
    nb.cells = cells
    return nb


def speaker_notes(notebook: str, nb: nbformat.NotebookNode, section: outline.Section,
                  exercises: list[outline.Exercise], measured: dict[str, float]) -> str:
    """The notes of one section: key points, its timing (measured run, student estimate), its exercises, its
    discussion questions."""
    entry = plan.section(notebook, section.key)
    run = measured.get(section.key)
    students = guide.estimate_minutes(notebook, nb, section, run)
    timing = f"cells run in {timings.minutes(run)}" if run is not None else "run time not measured"
    lines = [f"**{section.heading}** ({timing}; with students about {max(1, round(students))} min)", ""]
    lines += [f"- {point}" for point in entry.key_points]
    for exercise in exercises:
        m = plan.markers(exercise.check)
        lines.append(f"- Exercise ({exercise.check}): difficulty {m.difficulty}/5, importance {m.importance}/5, "
                     f"{m.minutes[0]}-{m.minutes[1]} min")
    if entry.questions:
        lines += ["", "Ask:"] + [f"- {q.ask}" for q in entry.questions]
    return "\n".join(lines)


def add_speaker_notes(nb: nbformat.NotebookNode, notebook: str, measured: dict[str, float]) -> nbformat.NotebookNode:
    """Insert a notes cell right after each section's heading cell (the opening gets none)."""
    found = outline.exercises(nb)
    inserts = []
    for section in outline.sections(nb)[1:]:
        first = next(i for i in section.cells if section.heading in outline.headings(nb.cells[i].source))
        mine = [e for e in found if e.section == section.key]
        note = nbformat.v4.new_markdown_cell(speaker_notes(notebook, nb, section, mine, measured))
        note["id"] = f"notes-{first}"
        note.metadata["slideshow"] = {"slide_type": "notes"}
        inserts.append((first + 1, note))
    for index, note in reversed(inserts):
        nb.cells.insert(index, note)
    return nb


def tidy_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Long text cut, widgets replaced by a note, the Colab badge turned into a link; no widget state."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = BADGE.sub(r"[Open in Colab](\1)", cell.source)
            continue
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                out["text"] = _cut(out["text"])
            data = out.get("data", {})
            if WIDGET in data:
                out["data"] = {"text/plain": WIDGET_NOTE}
            elif "text/plain" in data and len(data) == 1:
                data["text/plain"] = _cut(data["text/plain"])
    nb.metadata.pop("widgets", None)
    return nb


def _cut(text: str | list[str]) -> str:
    lines = ("".join(text) if isinstance(text, list) else text).splitlines()
    if len(lines) <= MAX_OUTPUT_LINES:
        return "\n".join(lines) + "\n"
    return "\n".join(lines[:MAX_OUTPUT_LINES] + [f"… ({len(lines) - MAX_OUTPUT_LINES} more lines in the notebook)"])


def deck_notebook(executed: nbformat.NotebookNode, source: nbformat.NotebookNode, notebook: str,
                  measured: dict[str, float]) -> nbformat.NotebookNode:
    """The notebook the deck is made from (see the module docstring); the inputs are left as they were."""
    deck = carry_slide_metadata(executed, source)
    deck = editions.with_markers(deck)
    deck = add_speaker_notes(deck, notebook, measured)
    return tidy_outputs(split_headings(deck))


def figure_cells(deck: nbformat.NotebookNode) -> list[str]:
    """Ids of the cells on show in the deck whose output is a figure (an image): each slide holding one must show
    it (the browser test checks)."""
    return [c["id"] for c in deck.cells if c.cell_type == "code" and _kind(c) != "skip"
            and any("image/png" in o.get("data", {}) or "image/svg+xml" in o.get("data", {}) for o in c.outputs)]


# --- the HTML ------------------------------------------------------------------------------------------------------
def export(deck: nbformat.NotebookNode, vendor_prefix: str) -> str:
    """The deck as one reveal.js HTML page; `vendor_prefix` is the path from the page to the vendor/ folder."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "saelab_reveal"
        folder.mkdir()
        (folder / "index.html.j2").write_text(TEMPLATE)
        (folder / "conf.json").write_text('{"base_template": "reveal", "mimetypes": {"text/html": true}}')
        exporter = SlidesExporter(extra_template_basedirs=[tmp], template_name="saelab_reveal",
                                  reveal_url_prefix=f"{vendor_prefix}/reveal.js", reveal_theme="white",
                                  exclude_input_prompt=True, exclude_output_prompt=True)
        exporter.mathjax_url = f"{vendor_prefix}/mathjax/MathJax.js{MATHJAX_QUERY}"
        html, _ = exporter.from_notebook_node(deck)
    return html
