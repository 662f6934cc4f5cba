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


def returns_rows(W_dec, feats):
    """The mistake the exercise warns about: the row indices of linear_sum_assignment (0..n-1) as the latents."""
    cos = (F.normalize(feats, dim=-1) @ F.normalize(W_dec, dim=0)).abs()
    rows, cols = linear_sum_assignment(cos.numpy(), maximize=True)
    return cos[rows, cols].mean().item(), torch.as_tensor(rows)


def returns_arange(W_dec, feats):
    return reference(W_dec, feats)[0], torch.arange(feats.shape[0])


def reversed_cols(W_dec, feats):
    mcc, cols = reference(W_dec, feats)
    return mcc, cols.flip(0)


def stub(W_dec, feats):
    raise NotImplementedError


MISTAKES = [(greedy, "greedy matching"), (signed, "absolute value"), (unnormalised, "Normalise"),
            (returns_rows, "Return `cols`"), (returns_arange, "the features' own indices"),
            (reversed_cols, "reverse order")]


def test_reference_passes(capsys):
    assert check_mcc(reference)
    assert capsys.readouterr().out.strip() == "✓ check_mcc: correct"


def test_stub_is_not_done(capsys):
    assert not check_mcc(stub)
    assert "not done yet" in capsys.readouterr().out


def test_each_mistake_gets_its_hint(capsys):
    for fn, hint in MISTAKES:
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


def test_the_reference_is_the_optimal_matching_of_ground_truth():
    from saelab import ground_truth as gt
    from saelab.checks.evaluation import optimal_mcc
    g = torch.Generator().manual_seed(1)
    for W_dec, feats in ((torch.randn(6, 10, generator=g), torch.randn(4, 6, generator=g)),
                         (torch.eye(4)[:, [2, 0, 3, 1]], torch.eye(4))):
        want, latent = optimal_mcc(W_dec, feats)
        assert want == pytest.approx(gt.mcc(W_dec, feats)["mcc"], abs=1e-6)
        assert torch.equal(latent, gt.mcc(W_dec, feats)["latent"])


def mean_of_best(W_dec, feats):
    """Each feature's best |cos| averaged (greedy's number) with the Hungarian latents."""
    cos = (F.normalize(feats, dim=-1) @ F.normalize(W_dec, dim=0)).abs()
    return cos.max(dim=1).values.mean().item(), reference(W_dec, feats)[1]


def other_matching(W_dec, feats):
    """The right MCC with another one-to-one matching (each feature's latent moved one along)."""
    mcc, cols = reference(W_dec, feats)
    return mcc, cols.roll(1)


# check -> its named mistakes (answer, hint) and at least two wrong answers it has no name for; the census in
# tests/test_checks_report.py requires an entry for every check in saelab.checks.evaluation.
WRONG_ANSWERS = {"check_mcc": {"named": MISTAKES, "unnamed": [
    lambda W, f: (reference(W, f)[0] + 0.01, reference(W, f)[1]),
    mean_of_best,
    other_matching,
]}}


@pytest.mark.parametrize("i", range(len(WRONG_ANSWERS["check_mcc"]["unnamed"])))
def test_unnamed_wrong_answers_are_not_praised(i, capsys):
    assert check_mcc(WRONG_ANSWERS["check_mcc"]["unnamed"][i]) is False
    assert capsys.readouterr().out.startswith("✗ check_mcc:")
