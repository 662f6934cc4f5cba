"""check_mcc: the reference passes, the stub is 'not done yet', each named mistake gets its hint."""
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from saelab.checks.evaluation import check_mcc


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
