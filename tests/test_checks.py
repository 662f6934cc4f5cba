import torch

from saelab.checks import theory as checks


def right_topk(pre_acts, k):
    values, indices = pre_acts.topk(k, dim=-1)
    return torch.zeros_like(pre_acts).scatter(-1, indices, torch.relu(values))


def test_check_topk_passes_a_right_answer(capsys):
    assert checks.check_topk(right_topk) is True
    assert "✓" in capsys.readouterr().out


def test_check_topk_explains_specific_mistakes(capsys):
    def not_done(pre_acts, k):
        raise NotImplementedError

    def no_relu(pre_acts, k):
        values, indices = pre_acts.topk(k, dim=-1)
        return torch.zeros_like(pre_acts).scatter(-1, indices, values)

    def smallest(pre_acts, k):
        values, indices = pre_acts.topk(k, dim=-1, largest=False)
        return torch.zeros_like(pre_acts).scatter(-1, indices, values)

    def returns_values(pre_acts, k):
        return pre_acts.topk(k, dim=-1).values

    def returns_tuple(pre_acts, k):
        return pre_acts.topk(k, dim=-1)

    def crashes(pre_acts, k):
        return pre_acts.topk(k, dim=5)

    def forgot_return(pre_acts, k):
        right_topk(pre_acts, k)

    expected = {not_done: "not done yet", no_relu: "ReLU", smallest: "SMALLEST", returns_values: "expected shape",
                returns_tuple: "tuple", crashes: "your function raised IndexError", forgot_return: "forget to `return`"}
    for fn, phrase in expected.items():
        assert checks.check_topk(fn) is False
        out = capsys.readouterr().out
        assert out.startswith("✗ check_topk") and phrase in out, (fn.__name__, out)


def test_check_l0_and_fvu(capsys):
    def l0(latents):
        return (latents != 0).sum(-1).float().mean()

    def fvu(x, x_hat):
        return ((x - x_hat) ** 2).sum() / ((x - x.mean(dim=0)) ** 2).sum()

    assert checks.check_l0_and_fvu(l0, fvu) is True
    assert capsys.readouterr().out.count("✓") == 2

    wrong_l0 = {lambda c: (c != 0).sum(): "divide by the number of tokens",
                lambda c: (c != 0).float().mean(0).mean() * 0 + (c != 0).sum(0).float().mean(): "dim=0",
                lambda c: c.sum(-1).mean(): "L1",
                lambda c: (c != 0).sum(-1).float(): "one number"}
    for fn, phrase in wrong_l0.items():
        assert checks.check_l0(fn) is False
        out = capsys.readouterr().out
        assert phrase in out, out

    wrong_fvu = {lambda x, xh: ((x - xh) ** 2).sum() / (x ** 2).sum(): "variance around the mean",
                 lambda x, xh: 1 - fvu(x, xh): "EXPLAINED",
                 lambda x, xh: ((x - xh) ** 2).sum() / ((x - x.mean()) ** 2).sum(): "mean over tokens"}
    for fn, phrase in wrong_fvu.items():
        assert checks.check_fvu(fn) is False
        out = capsys.readouterr().out
        assert phrase in out, out

    assert checks.check_l0_and_fvu(l0, lambda x, xh: 0.0) is False  # one wrong: False, both reported
    out = capsys.readouterr().out
    assert "✓ check_l0" in out and "✗ check_fvu" in out
