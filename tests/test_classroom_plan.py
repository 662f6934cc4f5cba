"""saelab.classroom.plan, .discussion and .guide: the guide lists every section, exercise and check of every
notebook, and the plan lists nothing that is gone. A notebook that gains a section, an exercise or a check fails
here until the plan says how to teach it."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from saelab.classroom import guide, mistakes, outline, plan
from saelab.course import NOTEBOOKS

ROOT = Path(__file__).resolve().parents[1]
STEMS = [Path(n).stem for n in NOTEBOOKS]


def notebook(stem: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "notebooks" / f"{stem}.ipynb", as_version=4)


@pytest.mark.parametrize("stem", STEMS)
def test_plan_lists_every_section_and_no_other(stem):
    keys = [s.key for s in outline.sections(notebook(stem))[1:]]
    missing = [k for k in keys if k not in plan.SECTIONS.get(stem, {})]
    assert not missing, f"{stem}: add these sections to saelab/classroom/discussion.py: {missing}"
    stale = [k for k in plan.SECTIONS[stem] if k not in keys]
    assert not stale, f"{stem}: discussion.py plans sections the notebook no longer has: {stale}"


@pytest.mark.parametrize("stem", STEMS)
def test_every_section_has_key_points_and_two_or_three_questions(stem):
    for key, entry in plan.SECTIONS[stem].items():
        assert entry.key_points, f"{stem} / {key}: no key points"
        assert 2 <= len(entry.questions) <= 3, f"{stem} / {key}: {len(entry.questions)} questions"
        assert all(q.ask[-1] in "?." and len(q.good_answer.split()) >= 5 for q in entry.questions)


def test_plan_has_markers_for_every_exercise_and_no_other():
    checks = [e.check for stem in STEMS for e in outline.exercises(notebook(stem))]
    assert sorted(checks) == sorted(plan.EXERCISES), "saelab/classroom/plan.py's EXERCISES differ from the checks"
    for m in plan.EXERCISES.values():
        assert 1 <= m.difficulty <= 5 and 1 <= m.importance <= 5 and 0 < m.minutes[0] <= m.minutes[1]


@pytest.mark.parametrize("stem", STEMS)
def test_guide_lists_every_section_exercise_check_and_mistake(stem):
    nb = notebook(stem)
    table = {"machine": "test CPU", "date": "today", "run": "a test", "note": "", "remeasure": "x",
             "notebooks": {stem: {"sections_s": {s.key: 1.0 for s in outline.sections(nb)}}}}
    text = guide.guide_markdown(stem, nb, table)
    for section in outline.sections(nb)[1:]:
        assert f"### {section.heading}" in text and f"| {guide._cell(section.heading)} |" in text
    for goal in outline.learning_goals(nb):
        assert goal in text
    for exercise in outline.exercises(nb):
        assert f"### {exercise.title}" in text and f"`{exercise.check}`" in text
        assert plan.marker_line(exercise.check) in text
        for hint in mistakes.mistakes(exercise.check):
            assert guide.md_escape(hint) in text
    for q in (q for entry in plan.SECTIONS[stem].values() for q in entry.questions):
        assert q.ask in text and q.good_answer in text
    assert "The network fails" in text and "Binder" in text and "Colab" in text


def test_guide_html_is_standalone():
    text = guide.to_html(guide.guide_markdown(STEMS[0], notebook(STEMS[0]), {}), "guide")
    assert "<table>" in text and "<h2" in text
    assert "src=\"http" not in text and "<link" not in text and "<script" not in text


def test_student_estimate_adds_run_reading_and_exercise_minutes():
    nb = notebook("01_sae_theory")
    section = next(s for s in outline.sections(nb) if s.key == "The sparse autoencoder")
    base = guide.estimate_minutes("01_sae_theory", nb, section, 0.0)
    exercises = sum(plan.markers(e.check).mid_minutes for e in outline.exercises(nb) if e.section == section.key)
    assert base > exercises > 0
    assert guide.estimate_minutes("01_sae_theory", nb, section, 120.0) == pytest.approx(base + 2.0)
