import pytest

from saelab.checks import report


def _stub(x):
    raise NotImplementedError


def test_success_prints_one_line(capsys, monkeypatch):
    monkeypatch.delenv(report.STRICT_ENV, raising=False)
    assert report.check("check_x", lambda: None) is True
    assert capsys.readouterr().out == "✓ check_x: correct\n"


def test_stub_prints_not_done_and_never_raises(capsys, monkeypatch):
    monkeypatch.delenv(report.STRICT_ENV, raising=False)
    assert report.check("check_x", lambda: report.call(_stub, 1)) is False
    assert capsys.readouterr().out.startswith("… check_x: not done yet")


def test_wrong_answer_prints_the_hint(capsys, monkeypatch):
    monkeypatch.delenv(report.STRICT_ENV, raising=False)
    assert report.check("check_x", lambda: "wrong axis") is False
    assert capsys.readouterr().out == "✗ check_x: wrong axis\n"


def test_a_crash_in_student_code_is_one_line(capsys, monkeypatch):
    monkeypatch.delenv(report.STRICT_ENV, raising=False)
    assert report.check("check_x", lambda: report.call(lambda x: x / "a", 1)) is False
    out = capsys.readouterr().out
    assert out.startswith("✗ check_x: your function raised TypeError") and out.count("\n") == 1


def test_strict_mode_raises_on_a_wrong_answer(monkeypatch):
    monkeypatch.setenv(report.STRICT_ENV, "1")
    with pytest.raises(report.CheckFailed, match="wrong axis"):
        report.check("check_x", lambda: "wrong axis")
    with pytest.raises(report.CheckFailed, match="raised TypeError"):
        report.check("check_x", lambda: report.call(lambda x: x / "a", 1))
    assert report.check("check_x", lambda: None) is True


def test_strict_mode_lets_the_stub_say_not_done(monkeypatch, capsys):
    """The notebooks call each check on the untouched stub before the folded solution runs."""
    monkeypatch.setenv(report.STRICT_ENV, "1")
    assert report.check("check_x", lambda: report.call(_stub, 1)) is False
    assert "not done yet" in capsys.readouterr().out
    assert report.check("check_y", lambda: report.call(_stub, 1)) is False  # another exercise's stub: fine too
    assert report.check("check_x", lambda: None) is True  # ... and then the solution cell passes


def test_strict_mode_fails_a_solution_cell_that_is_still_the_stub(monkeypatch, capsys):
    """Stub cell, then a solution cell turned back into `raise NotImplementedError`: the second call raises."""
    monkeypatch.setenv(report.STRICT_ENV, "1")
    assert report.check("check_x", lambda: report.call(_stub, 1)) is False  # the stub cell
    with pytest.raises(report.CheckFailed, match="solution cell.*NotImplementedError"):
        report.check("check_x", lambda: report.call(_stub, 1))  # the solution cell, unwritten
    assert "not done yet" in capsys.readouterr().out


def test_strict_mode_fails_a_stubbed_solution_through_a_real_check(monkeypatch, capsys):
    from saelab.checks.theory import check_topk
    monkeypatch.setenv(report.STRICT_ENV, "1")
    assert check_topk(lambda pre_acts, k: _stub(pre_acts)) is False
    with pytest.raises(report.CheckFailed, match="check_topk"):
        check_topk(lambda pre_acts, k: _stub(pre_acts))


def test_without_strict_mode_a_stub_says_not_done_every_time(monkeypatch, capsys):
    monkeypatch.delenv(report.STRICT_ENV, raising=False)
    for _ in range(3):  # a student may run the stub cell again and again
        assert report.check("check_x", lambda: report.call(_stub, 1)) is False
    assert capsys.readouterr().out.count("not done yet") == 3


def test_as_float_explains_a_tensor():
    import torch
    with pytest.raises(ValueError, match="shape"):
        report.as_float(torch.ones(3))
    assert report.as_float(torch.tensor(2.5)) == 2.5


# --- the census: every check is fed wrong answers -------------------------------------------------------------
def all_checks() -> dict[str, list[str]]:
    """Module name -> the `check_*` functions defined in saelab.checks.<module>."""
    import importlib
    import inspect
    import pkgutil

    import saelab.checks

    found = {}
    for info in pkgutil.iter_modules(saelab.checks.__path__):
        module = importlib.import_module(f"saelab.checks.{info.name}")
        names = [name for name, fn in inspect.getmembers(module, inspect.isfunction)
                 if name.startswith("check_") and fn.__module__ == module.__name__]
        if names:
            found[info.name] = sorted(names)
    return found


def wrong_answers_tested_in(module: str) -> dict:
    """WRONG_ANSWERS of tests/test_checks_<module>.py: check -> {"named": [...], "unnamed": [...]}."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).with_name(f"test_checks_{module}.py")
    assert path.is_file(), f"saelab/checks/{module}.py has checks but no {path.name}"
    spec = importlib.util.spec_from_file_location(f"_census_{path.stem}", path)
    tests = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tests)
    return getattr(tests, "WRONG_ANSWERS", {})


def test_every_check_is_fed_its_named_mistakes_and_two_wrong_answers_it_cannot_name():
    checks = all_checks()
    assert {"theory", "evaluation", "circuits"} <= set(checks), checks  # the census does find the checks
    for module, names in checks.items():
        tested = wrong_answers_tested_in(module)
        assert sorted(tested) == names, (f"tests/test_checks_{module}.py: WRONG_ANSWERS covers {sorted(tested)}, "
                                         f"saelab.checks.{module} has {names}")
        for name in names:
            assert len(tested[name]["named"]) >= 1, f"{name}: no named mistake is fed to it"
            assert len(tested[name]["unnamed"]) >= 2, f"{name}: feed it at least two wrong answers it has no name for"


def test_a_solution_cell_says_the_reference_now_stands_in(monkeypatch, capsys):
    """Under a folded solution the success line must not read as the student's own success."""
    import types

    import IPython

    from saelab.checks import report as rep
    shell = types.SimpleNamespace(user_ns={"_ih": ["", "# @title Solution\ndef f(x):\n    return x\ncheck_f(f)"]})
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    assert rep.report("check_f", None) is True
    assert capsys.readouterr().out.startswith("✓ check_f: the reference solution passes this check")
    shell.user_ns["_ih"].append("def f(x):\n    return x\ncheck_f(f)")  # the student's own cell
    assert rep.report("check_f", None) is True
    assert capsys.readouterr().out == "✓ check_f: correct\n"
