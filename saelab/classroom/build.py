"""Build the classroom kit into build/classroom/, offline, from the notebooks and their executed copies.

    make course    # once: executes every notebook -> build/notebooks/ (the slides need the figures)
    make classroom # = python -m saelab.classroom.build

    build/classroom/
      index.html                       links to everything below, per notebook
      slides/NN_name.slides.html       reveal.js deck (press S for the speaker notes, Esc for the overview)
      slides/figures.json              which cells of each deck hold a figure (the browser test reads it)
      student/NN_name.ipynb            solutions replaced by stand-ins, no outputs
      solutions/NN_name.ipynb          the notebook as it is
      guide/NN_name.md, .html          the teacher's guide page
      vendor/reveal.js, vendor/mathjax local copies from PyPI packages: nothing is fetched from the web
"""
from __future__ import annotations

import argparse
import html
import json
import shutil
import sys
import time
from pathlib import Path

import nbformat

from saelab.classroom import editions, guide, outline, slides, timings
from saelab.course import NOTEBOOKS

ROOT = Path(__file__).resolve().parents[2]


def build_notebook(name: str, source_dir: Path, executed_dir: Path, out: Path, table: dict) -> dict:
    """Every file of one notebook; returns its row for the index page."""
    stem = Path(name).stem
    source = nbformat.read(source_dir / name, as_version=4)
    executed_path = executed_dir / name
    if not executed_path.exists():
        raise FileNotFoundError(f"{executed_path} is missing: run `make course` first (the slides show its figures)")
    executed = nbformat.read(executed_path, as_version=4)
    measured = table.get("notebooks", {}).get(stem, {}).get("sections_s", {})

    deck = slides.deck_notebook(executed, source, stem, measured)
    (out / "slides" / f"{stem}.slides.html").write_text(slides.export(deck, "../vendor"))
    nbformat.write(editions.student_edition(source), out / "student" / name)
    shutil.copyfile(source_dir / name, out / "solutions" / name)  # the notebook as it is
    links = {"slides": f"../slides/{stem}.slides.html", "student edition": f"../student/{name}",
             "solutions edition": f"../solutions/{name}", "this guide in Markdown": f"{stem}.md"}
    text = guide.guide_markdown(stem, source, table, links)
    (out / "guide" / f"{stem}.md").write_text(text)
    (out / "guide" / f"{stem}.html").write_text(guide.to_html(text, f"Teacher's guide · {outline.title(source)}"))
    students = sum(guide.estimate_minutes(stem, source, s, measured.get(s.key)) for s in outline.sections(source))
    return {"stem": stem, "name": name, "title": outline.title(source), "figures": slides.figure_cells(deck),
            "run": timings.minutes(sum(measured.values())) if measured else "not measured",
            "students": f"about {round(students / 5) * 5} min"}


def index_page(rows: list[dict], table: dict) -> str:
    """The page that links every deck, edition and guide."""
    body = "".join(
        f"<tr><td>{html.escape(r['title'])}</td><td><a href='slides/{r['stem']}.slides.html'>slides</a></td>"
        f"<td><a href='student/{r['name']}'>student</a> · <a href='solutions/{r['name']}'>solutions</a></td>"
        f"<td><a href='guide/{r['stem']}.html'>guide</a> (<a href='guide/{r['stem']}.md'>md</a>)</td>"
        f"<td>{r['run']}</td><td>{r['students']}</td></tr>\n" for r in rows)
    machine = html.escape(f"{table.get('machine', '?')}, {table.get('date', '?')}") if table else "not measured"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>saelab · classroom kit</title>
<style>body{{font-family:sans-serif;max-width:64rem;margin:2rem auto;padding:0 1rem;line-height:1.45}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}}</style></head>
<body>
<h1>saelab · classroom kit</h1>
<p>Everything here opens from this folder with no network: the slides use local copies of reveal.js and MathJax.
In a deck press <b>S</b> for the speaker notes (each section's key points, timing, exercises and questions),
<b>Esc</b> for the overview, arrows to move. Hand out the <b>student</b> edition (solutions replaced by stand-ins
that keep the notebook running); the <b>solutions</b> edition is the notebook as it is.</p>
<table><tr><th>notebook</th><th>slides</th><th>editions</th><th>teacher's guide</th>
<th>cells run (measured: {machine})</th><th>with students (estimate)</th></tr>
{body}</table>
<p>Rebuild after changing a notebook: <code>make course &amp;&amp; make classroom</code>. Re-measure the run times:
<code>{html.escape(timings.COMMAND)}</code>.</p>
</body></html>
"""


def preflight(source_dir: Path, executed_dir: Path) -> None:
    """Raise before anything is removed when a notebook is not executed or carries no slide metadata."""
    for name in NOTEBOOKS:
        if not (executed_dir / name).exists():
            raise FileNotFoundError(f"{executed_dir / name} is missing: run `make course` first (the slides show "
                                    f"its figures)")
        source = nbformat.read(source_dir / name, as_version=4)
        if not any("slideshow" in c.metadata for c in source.cells):
            raise ValueError(f"{name} carries no slide metadata; set it with "
                             f"`python -m saelab.classroom.mark_slides notebooks/*.ipynb`")


def build(source_dir: Path, executed_dir: Path, out: Path) -> list[dict]:
    """Build everything (an earlier kit stays when a notebook is not ready); return the index rows."""
    preflight(source_dir, executed_dir)
    for folder in ("slides", "student", "solutions", "guide"):
        shutil.rmtree(out / folder, ignore_errors=True)
        (out / folder).mkdir(parents=True)
    slides.vendor(out)
    table = timings.load()
    rows = [build_notebook(name, source_dir, executed_dir, out, table) for name in NOTEBOOKS]
    (out / "slides" / "figures.json").write_text(json.dumps({r["stem"]: r["figures"] for r in rows}, indent=1))
    (out / "index.html").write_text(index_page(rows, table))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notebooks", type=Path, default=ROOT / "notebooks", help="the source notebooks")
    parser.add_argument("--executed", type=Path, default=ROOT / "build" / "notebooks", help="make course's output")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "classroom")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        rows = build(args.notebooks, args.executed, args.out)
    except (FileNotFoundError, ValueError, ImportError) as err:
        print(f"make classroom: {err}", file=sys.stderr)
        return 1
    for row in rows:
        print(f"{row['stem']}: slides ({len(row['figures'])} figures), student, solutions, guide")
    print(f"built {args.out / 'index.html'} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
