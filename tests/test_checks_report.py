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


@pytest.mark.parametrize("body", [lambda: "wrong axis", lambda: report.call(_stub, 1)])
def test_strict_mode_raises_on_anything_but_success(monkeypatch, body):
    monkeypatch.setenv(report.STRICT_ENV, "1")
    with pytest.raises(report.CheckFailed):
        report.check("check_x", body)
    assert report.check("check_x", lambda: None) is True


def test_as_float_explains_a_tensor():
    import torch
    with pytest.raises(ValueError, match="shape"):
        report.as_float(torch.ones(3))
    assert report.as_float(torch.tensor(2.5)) == 2.5
