"""The teacher's guide page of one notebook, in Markdown (and HTML from it).

It holds the learning goals; a session plan with each section's measured run time (`timings.json`) and an estimate
for students doing the exercises; each exercise's markers, the cases its check tries and the mistakes it recognises
(read from the check's code by `saelab.classroom.mistakes`); each section's key points and discussion questions with
what a good answer contains; and what to do when the network, Colab or Binder fails.

Student estimate of a section = its cells' measured run time + reading (markdown words / `READING_WPM`, code lines
x `CODE_LINE_S`) + the midpoint of each exercise's minutes (solution cells are not read by students).
"""
from __future__ import annotations

import html
import math
import re

import nbformat
from nbconvert.filters.markdown import markdown2html

from saelab.classroom import mistakes, outline, plan, timings

READING_WPM = 120  # technical prose, read with care
CODE_LINE_S = 4    # reading one line of code before running it

WHEN_THINGS_FAIL = """\
- **The network fails (or there is none).** Every notebook runs offline on the bundled *tiny world*: set
  `SAELAB_OFFLINE=1` before starting Jupyter (or let it fall back: each notebook says in one line which world it
  runs on). Nothing is downloaded; the lessons and the exercises are the same, only the printed numbers differ. Run
  `make course` the day before on the classroom machine: it installs everything and executes every notebook
  offline, so you also have the executed notebooks (`build/notebooks/`) and their HTML (`build/html/`) to show.
  These slides, the guide and both editions open from `build/classroom/` in any browser, with no network
  (reveal.js and MathJax are local copies).
- **Colab is slow or will not start.** Open the executed HTML page of the notebook (`build/html/`) or this deck and
  walk through it; students can run the student edition locally (`pip install -e .` then `jupyter lab`) or on
  Binder. On Colab the first cell installs saelab (about a minute); GPT-2 and OpenAI's SAE download once
  (about 800 MB for the 128k SAE, 200 MB for 32k).
- **Binder is slow or runs out of memory (about 2 GB).** `load_world` picks the 32k SAE there and notebook 05 a
  smaller budget, each saying why; where even that does not fit it says how much memory is needed. Tell students to
  set `SAELAB_OFFLINE=1` (the tiny world needs about 0.4 GB) and to shut down other notebooks' kernels.
- **A cell is slow in class.** The session plan's run times say which cells take long; start them before you
  talk about them, or show the executed HTML while they run.
"""


def estimate_minutes(notebook: str, nb: nbformat.NotebookNode, section: outline.Section,
                     measured_s: float | None) -> float:
    """Minutes a student needs for a section: run time + reading prose and code + the exercises' minutes."""
    words = sum(len(part.split()) for part in section.markdown)
    code = sum(len(nb.cells[i].source.splitlines()) for i in section.cells
               if nb.cells[i].cell_type == "code" and not outline.is_solution(nb.cells[i]))
    exercise = sum(plan.markers(e.check).mid_minutes for e in outline.exercises(nb) if e.section == section.key)
    return (measured_s or 0) / 60 + words / READING_WPM + code * CODE_LINE_S / 60 + exercise


def _minutes(value: float) -> str:
    return f"{max(1, math.ceil(value))} min"


def md_escape(text: str) -> str:
    """Text with Markdown's emphasis, link and HTML characters escaped outside `code` spans."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):
        parts[i] = re.sub(r"([*_\[\]<>#|])", r"\\\1", parts[i])
    return "`".join(parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def session_plan(notebook: str, nb: nbformat.NotebookNode, measured: dict[str, float], table: dict) -> list[str]:
    """The session plan table, with a line saying where and when the run times were measured."""
    lines = ["## Session plan", ""]
    if table:
        lines += [f"Run times measured on {table['machine']}, {table['date']} ({table['run']}). {table['note']}".strip(),
                  f"Re-measure: `{table['remeasure']}`.", ""]
    else:
        lines += ["No run times measured yet: run `" + timings.COMMAND + "`.", ""]
    lines += ["| section | cells run (measured) | with students (estimate) | exercises |", "|---|---|---|---|"]
    total_run = total_students = 0.0
    found = outline.exercises(nb)
    for section in outline.sections(nb):
        run = measured.get(section.key)
        students = estimate_minutes(notebook, nb, section, run)
        total_run, total_students = total_run + (run or 0), total_students + students
        names = ", ".join(e.title.split(":", 1)[-1].strip() for e in found if e.section == section.key) or "-"
        lines.append(f"| {_cell(section.heading)} | {timings.minutes(run)} | {_minutes(students)} | {_cell(names)} |")
    lines += [f"| **whole notebook** | **{timings.minutes(total_run)}** | **{_minutes(total_students)}** | |", "",
              f"Estimate = run time + reading ({READING_WPM} words a minute, {CODE_LINE_S} s a line of code) + the "
              f"middle of each exercise's minutes.", ""]
    return lines


def exercise_pages(nb: nbformat.NotebookNode) -> list[str]:
    """One block per exercise: markers, the cases its check tries, the mistakes it recognises."""
    lines = ["## Exercises", "",
             "Students see the same markers under each exercise's heading in the student edition and the slides. "
             "The lists below are read from each check's code in `saelab/checks/`, so they always match what the "
             "check prints.", ""]
    for exercise in outline.exercises(nb):
        m = plan.markers(exercise.check)
        lines += [f"### {exercise.title}", "", plan.marker_line(exercise.check), "",
                  f"Check: `{exercise.check}` · functions: " + ", ".join(f"`{f}`" for f in exercise.functions)
                  + f" · section: {exercise.section}", ""]
        tried = mistakes.cases(exercise.check)
        if tried:
            lines += ["Cases the check tries: " + md_escape("; ".join(tried)) + ".", ""]
        lines += ["Mistakes the check recognises (… is a value it fills in):", ""]
        lines += [f"- {md_escape(hint)}" for hint in mistakes.mistakes(exercise.check)]
        lines.append("")
    return lines


def discussion(notebook: str, nb: nbformat.NotebookNode) -> list[str]:
    """Key points and questions, section by section."""
    lines = ["## Section by section", ""]
    for section in outline.sections(nb)[1:]:
        entry = plan.section(notebook, section.key)
        lines += [f"### {section.heading}", "", "Key points:", ""] + [f"- {p}" for p in entry.key_points] + [""]
        if entry.questions:
            lines += ["Discussion questions:", ""]
            for number, q in enumerate(entry.questions, 1):
                lines += [f"{number}. **{q.ask}**  ", f"   A good answer: {q.good_answer}"]
            lines.append("")
    return lines


def guide_markdown(notebook: str, nb: nbformat.NotebookNode, table: dict | None = None,
                   links: dict[str, str] | None = None) -> str:
    """The whole guide page for `notebook` (its stem, e.g. '01_sae_theory')."""
    table = timings.load() if table is None else table
    measured = table.get("notebooks", {}).get(notebook, {}).get("sections_s", {})
    lines = [f"# Teacher's guide · {outline.title(nb)}", ""]
    if links:
        lines += [" · ".join(f"[{name}]({href})" for name, href in links.items()), ""]
    lines += ["## Learning goals", ""] + [f"{i}. {g}" for i, g in enumerate(outline.learning_goals(nb), 1)] + [""]
    lines += session_plan(notebook, nb, measured, table)
    lines += exercise_pages(nb)
    lines += discussion(notebook, nb)
    lines += ["## When things fail", "", WHEN_THINGS_FAIL]
    return "\n".join(lines)


def to_html(markdown: str, title: str) -> str:
    """A standalone HTML page (no outside resources) from the guide's Markdown."""
    body = markdown2html(markdown)
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>\n"
            "<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45}"
            "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}"
            "code{background:#f3f3f3;padding:0 .2rem}a.anchor-link{display:none}</style></head>\n<body>\n" + body + "\n</body></html>\n")
