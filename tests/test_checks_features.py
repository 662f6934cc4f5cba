"""Notebook 02's exercise check: one line for a right answer, the named mistake's hint for each wrong one."""
import pytest
import torch

from saelab.checks import report
from saelab.checks.features import check_auroc_by_hand


@pytest.fixture(autouse=True)
def lenient(monkeypatch):
    monkeypatch.delenv(report.STRICT_ENV, raising=False)


def pairs(scores, labels):
    a, b = scores[labels], scores[~labels]
    return (a[:, None] > b[None, :]).float(), (a[:, None] == b[None, :]).float()


def right(scores, labels):
    wins, ties = pairs(scores, labels)
    return (wins + 0.5 * ties).mean().item()


def stub(scores, labels):
    raise NotImplementedError


MISTAKES = {
    "ties counted as 0": (lambda s, l: pairs(s, l)[0].mean().item(), "ties must count half"),
    "ties counted as wins": (lambda s, l: (pairs(s, l)[0] + pairs(s, l)[1]).mean().item(), "not as wins"),
    "wrong direction": (lambda s, l: right(s, ~l), "wrong direction"),
    "a count, not a fraction": (lambda s, l: (pairs(s, l)[0] + 0.5 * pairs(s, l)[1]).sum().item(), "divide by"),
    "every score against every score": (
        lambda s, l: ((s[:, None] > s[None]).float() + 0.5 * (s[:, None] == s[None]).float()).mean().item(),
        "only labelled prompts with unlabelled"),
    "means compared": (lambda s, l: float(s[l].mean() > s[~l].mean()), "compared the two means"),
    "wrong axis (no single number)": (lambda s, l: (pairs(s, l)[0] + 0.5 * pairs(s, l)[1]).mean(0), "single value"),
    "forgot return": (lambda s, l: None, "forget to `return`"),
    "a crash": (lambda s, l: s[l][100], "your function raised IndexError"),
    "NaN": (lambda s, l: float("nan"), "expected"),
}


def test_right_answer_prints_one_line(capsys):
    assert check_auroc_by_hand(right) is True
    assert capsys.readouterr().out == "✓ check_auroc_by_hand: correct\n"


def test_the_library_auroc_passes_too(capsys):
    from saelab.metrics import auroc
    assert check_auroc_by_hand(lambda s, l: auroc(s, l)) is True


def test_stub_is_not_done_yet(capsys):
    assert check_auroc_by_hand(stub) is False
    assert capsys.readouterr().out.startswith("… check_auroc_by_hand: not done yet")


@pytest.mark.parametrize("mistake", MISTAKES)
def test_each_mistake_gets_its_hint(capsys, mistake):
    fn, hint = MISTAKES[mistake]
    assert check_auroc_by_hand(fn) is False
    out = capsys.readouterr().out
    assert out.startswith("✗ check_auroc_by_hand:") and hint in out and out.count("\n") == 1, out


def test_strict_mode_raises_for_a_wrong_answer(monkeypatch):
    monkeypatch.setenv(report.STRICT_ENV, "1")
    with pytest.raises(report.CheckFailed, match="ties must count half"):
        check_auroc_by_hand(MISTAKES["ties counted as 0"][0])
    assert check_auroc_by_hand(right) is True


# check -> its named mistakes (answer, hint) and at least two wrong answers it has no name for; the census in
# tests/test_checks_report.py requires an entry for every check in saelab.checks.features.
WRONG_ANSWERS = {"check_auroc_by_hand": {"named": list(MISTAKES.values()), "unnamed": [
    lambda s, l: 0.9 * right(s, l),
    lambda s, l: 0.5,  # right only where the latent never fires
    lambda s, l: (pairs(s, l)[0] + 0.25 * pairs(s, l)[1]).mean().item(),  # ties a quarter
]}}


@pytest.mark.parametrize("i", range(len(WRONG_ANSWERS["check_auroc_by_hand"]["unnamed"])))
def test_unnamed_wrong_answers_are_not_praised(i, capsys):
    assert check_auroc_by_hand(WRONG_ANSWERS["check_auroc_by_hand"]["unnamed"][i]) is False
    assert capsys.readouterr().out.startswith("✗ check_auroc_by_hand:")
