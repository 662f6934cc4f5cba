"""saelab.classroom.editions and .standin: the student edition replaces exactly the solutions, keeps everything
else, and what stands in is right (each library reference passes the exercise's own check)."""
from __future__ import annotations

import contextlib
from pathlib import Path

import nbformat
import pytest
import torch

from saelab.checks import report
from saelab.classroom import editions, outline, plan, standin
from saelab.course import NOTEBOOKS

ROOT = Path(__file__).resolve().parents[1]


def notebook(name: str) -> nbformat.NotebookNode:
    return nbformat.read(ROOT / "notebooks" / name, as_version=4)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_student_edition_replaces_every_solution_and_nothing_else(name):
    nb = notebook(name)
    student = editions.student_edition(nb)
    nbformat.validate(student)
    assert len(student.cells) == len(nb.cells)
    solutions = {e.solution_cell: e for e in outline.exercises(nb)}
    headings = {e.heading_cell: e for e in outline.exercises(nb)}
    for index, (old, new) in enumerate(zip(nb.cells, student.cells)):
        assert not outline.is_solution(new), f"cell {index} still holds a solution"
        if index in solutions:
            assert new.source == editions.stand_in_source(solutions[index].functions)
            assert outline.defined_functions(new.source) == []  # binds names, defines no solution
            assert editions.STAND_IN_TAG in new.metadata["tags"]
        elif index in headings:
            assert plan.marker_line(headings[index].check) in new.source
            assert new.source.replace(plan.marker_line(headings[index].check), "").split() == old.source.split()
        else:
            assert new.source == old.source, f"cell {index} changed"
        if new.cell_type == "code":
            assert new.outputs == [] and new.execution_count is None
    stubs = [student.cells[e.solution_cell - 1].source for e in outline.exercises(nb)]
    assert all("NotImplementedError" in s and e.check in s for s, e in zip(stubs, outline.exercises(nb)))


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_solutions_edition_is_the_notebook(name):
    nb = notebook(name)
    assert editions.solutions_edition(nb) == nb


def test_every_exercise_function_has_a_stand_in_or_says_it_has_none():
    for name in NOTEBOOKS:
        for exercise in outline.exercises(notebook(name)):
            for function in exercise.functions:
                assert (function in standin.REFERENCES) != (function in standin.NO_REFERENCE), (
                    f"{name}: put {function} in saelab.classroom.standin's REFERENCES (a public library function "
                    f"that does the same) or NO_REFERENCE")


# --- stubs and stand-ins ---------------------------------------------------------------------------------------
def test_is_stub_sees_through_decorators_and_nested_functions():
    def plain(x):
        raise NotImplementedError

    @contextlib.contextmanager
    def manager(model):
        raise NotImplementedError
        yield model

    @torch.no_grad()
    def decorated(x):
        raise NotImplementedError("write me")

    def maker(sae):
        def hook(activation, hook):
            raise NotImplementedError
        return hook

    def written(x):
        return x + 1

    assert all(standin.is_stub(f) for f in (plain, manager, decorated, maker))
    assert not standin.is_stub(written)


def test_stand_in_keeps_a_written_function(capsys):
    def my_l0(latents):
        return 2.0

    assert standin.stand_in("my_l0", my_l0) is my_l0
    assert "your my_l0 stays" in capsys.readouterr().out


def test_stand_in_binds_the_library_reference_for_a_stub(capsys):
    def my_l0(latents):
        raise NotImplementedError

    got = standin.stand_in("my_l0", my_l0)
    assert got(torch.tensor([[1.0, 0.0], [1.0, 1.0]])) == pytest.approx(1.5)
    out = capsys.readouterr().out
    assert "my_l0 is not written yet" in out and "saelab.metrics.l0" in out


def test_missing_stand_in_says_so_once_per_cell_and_changes_nothing(capsys):
    stub = standin.stand_in("patch_position", None)
    assert "no public function" in capsys.readouterr().out
    activation = torch.ones(1, 3, 2)
    assert stub(activation, None, clean_activation=torch.zeros(1, 3, 2), position=1) is activation
    stub(activation, None)
    assert capsys.readouterr().out.count("needs your `patch_position`") == 1


def _correct(check, *args) -> bool:
    report.STUBS_SEEN.clear()
    return check(*args)


def test_each_library_reference_passes_the_exercises_check(capsys):
    from saelab.checks import evaluation, features, patching, steering, theory, training
    ref = {name: r.make() for name, r in standin.REFERENCES.items()}
    assert _correct(theory.check_topk, ref["my_topk"])
    assert _correct(theory.check_sae_forward, ref["my_forward"])
    assert _correct(theory.check_l0_and_fvu, ref["my_l0"], ref["my_fvu"])
    assert _correct(features.check_auroc_by_hand, ref["auroc_by_hand"])
    assert _correct(patching.check_logit_diff, ref["logit_diff"])
    assert _correct(steering.check_steering_vector, ref["my_steering_vector"])
    assert _correct(steering.check_steering_hook, ref["my_steering_hook"])
    assert _correct(training.check_resample_high_loss, ref["resample_high_loss"])
    assert _correct(evaluation.check_mcc, ref["my_mcc"])
    assert "✗" not in capsys.readouterr().out
