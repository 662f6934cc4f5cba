"""Notebook 03's exercise checks: "Correct!" for a right answer, a hint that names the mistake otherwise."""
import pytest

from saelab.checks.patching import check_logit_diff, check_patch_hook


def right_metric(logits, pos, neg):
    last = logits[:, -1]
    return last[:, pos].logsumexp(-1) - last[:, neg].logsumexp(-1)


def right_hook(activation, hook, clean_activation, position):
    activation[:, position] = clean_activation[:, position]
    return activation


def stub(*args):
    raise NotImplementedError


@pytest.mark.parametrize("fn, hint", [
    (right_metric, "Correct!"),
    (stub, "NotImplementedError"),
    (lambda l, p, n: -right_metric(l, p, n), "sign is flipped"),
    (lambda l, p, n: l[:, -1][:, p].sum(-1) - l[:, -1][:, n].sum(-1), "logsumexp"),
    (lambda l, p, n: right_metric(l, p, n).mean(), "averaged over the batch"),
    (lambda l, p, n: l[:, :, p].logsumexp(-1) - l[:, :, n].logsumexp(-1), "last position"),
    (lambda l, p, n: right_metric(l[:, :1], p, n), "first position"),
    (lambda l, p, n: 1 / 0, "ZeroDivisionError"),
    (lambda l, p, n: 3.0, "return a tensor"),
])
def test_check_logit_diff(capsys, fn, hint):
    check_logit_diff(fn)
    out = capsys.readouterr().out
    assert hint in out
    assert out.startswith("Correct!") == (fn is right_metric)


def test_log_probabilities_are_accepted(capsys):
    check_logit_diff(lambda l, p, n: right_metric(l.log_softmax(-1), p, n))
    assert capsys.readouterr().out.startswith("Correct!")


def no_return(activation, hook, clean_activation, position):
    activation[:, position] = clean_activation[:, position]


@pytest.mark.parametrize("fn, hint", [
    (right_hook, "Correct!"),
    (stub, "NotImplementedError"),
    (no_return, "returned None"),
    (lambda a, h, c, p: c, "copied every position"),
    (lambda a, h, c, p: a, "nothing changed"),
    (lambda a, h, c, p: right_hook(a.transpose(0, 1), h, c.transpose(0, 1), p).transpose(0, 1), "batch axis"),
    (lambda a, h, c, p: a[:, :2], "activation's shape"),
])
def test_check_patch_hook(capsys, fn, hint):
    check_patch_hook(fn)
    out = capsys.readouterr().out
    assert hint in out
    assert out.startswith("Correct!") == (fn is right_hook)
