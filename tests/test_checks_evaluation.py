"""check_mcc: the reference passes, the stub is 'not done yet', each named mistake gets its hint."""
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

import pytest

from saelab.checks.evaluation import check_mcc
from saelab.checks.report import CheckFailed


@pytest.fixture(autouse=True)
def not_strict(monkeypatch):
    """These tests read the printed hints; `make unit` sets SAELAB_CHECKS_STRICT=1, which would raise instead."""
    monkeypatch.delenv("SAELAB_CHECKS_STRICT", raising=False)


def reference(W_dec, feats):
    cos = (F.normalize(feats, dim=-1) @ F.normalize(W_dec, dim=0)).abs()
    rows, cols = linear_sum_assignment(cos.numpy(), maximize=True)
    return cos[rows, cols].mean().item(), torch.as_tensor(cols)


def greedy(W_dec, feats):
    cos = (F.normalize(feats, dim=-1) @ F.normalize(W_dec, dim=0)).abs()
    best = cos.argmax(dim=1)
    return cos.max(dim=1).values.mean().item(), best


def signed(W_dec, feats):
    cos = F.normalize(feats, dim=-1) @ F.normalize(W_dec, dim=0)
    rows, cols = linear_sum_assignment(cos.abs().numpy(), maximize=True)
    return cos[rows, cols].mean().item(), torch.as_tensor(cols)


def unnormalised(W_dec, feats):
    cos = (feats @ W_dec).abs()
    rows, cols = linear_sum_assignment(cos.numpy(), maximize=True)
    return cos[rows, cols].mean().item(), torch.as_tensor(cols)


def stub(W_dec, feats):
    raise NotImplementedError


def test_reference_passes(capsys):
    assert check_mcc(reference)
    assert capsys.readouterr().out.strip() == "✓ check_mcc: correct"


def test_stub_is_not_done(capsys):
    assert not check_mcc(stub)
    assert "not done yet" in capsys.readouterr().out


def test_each_mistake_gets_its_hint(capsys):
    for fn, hint in ((greedy, "greedy matching"), (signed, "absolute value"), (unnormalised, "Normalise")):
        assert not check_mcc(fn)
        out = capsys.readouterr().out
        assert out.startswith("✗ check_mcc:") and hint in out, (fn.__name__, out)


def test_strict_mode_raises_for_a_wrong_answer_but_not_for_the_stub(monkeypatch, capsys):
    monkeypatch.setenv("SAELAB_CHECKS_STRICT", "1")
    with pytest.raises(CheckFailed):
        check_mcc(greedy)
    assert check_mcc(stub) is False
    assert "not done yet" in capsys.readouterr().out
    assert check_mcc(reference) is True
