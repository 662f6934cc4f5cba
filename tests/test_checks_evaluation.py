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


# --- the architecture exercises ------------------------------------------------------------------------------
from saelab.checks.evaluation import check_batchtopk, check_jumprelu, check_matryoshka_loss  # noqa: E402
from saelab.checks.evaluation import check_token_absorption  # noqa: E402


def jump(pre, theta, eps):
    near = ((pre - theta).abs() < eps / 2).float()
    return pre * (pre > theta), -near.mean(0) / eps


def jump_soft(pre, theta, eps):
    return torch.relu(pre - theta), jump(pre, theta, eps)[1]


def jump_step(pre, theta, eps):
    return (pre > theta).float(), jump(pre, theta, eps)[1]


def jump_no_theta(pre, theta, eps):
    return torch.relu(pre), jump(pre, theta, eps)[1]


def jump_sign(pre, theta, eps):
    return jump(pre, theta, eps)[0], -jump(pre, theta, eps)[1]


def jump_wide(pre, theta, eps):
    return jump(pre, theta, eps)[0], -((pre - theta).abs() < eps).float().mean(0) / eps


def jump_sum(pre, theta, eps):
    return jump(pre, theta, eps)[0], -((pre - theta).abs() < eps / 2).float().sum(0) / eps


def jump_no_eps(pre, theta, eps):
    return jump(pre, theta, eps)[0], -((pre - theta).abs() < eps / 2).float().mean(0)


def btk(pre, k):
    flat = torch.relu(pre).reshape(-1)
    values, idx = flat.topk(k * pre.shape[0])
    kept = values[values > 0]
    return torch.zeros_like(flat).scatter(0, idx, values).reshape(pre.shape), kept.min().item()


def btk_per_row(pre, k):
    values, idx = torch.relu(pre).topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, idx, values), btk(pre, k)[1]


def btk_k_total(pre, k):
    flat = torch.relu(pre).reshape(-1)
    values, idx = flat.topk(k)
    return torch.zeros_like(flat).scatter(0, idx, values).reshape(pre.shape), btk(pre, k)[1]


def btk_no_relu(pre, k):
    flat = pre.reshape(-1)
    values, idx = flat.topk(k * pre.shape[0])
    return torch.zeros_like(flat).scatter(0, idx, values).reshape(pre.shape), btk(pre, k)[1]


def btk_largest_dropped(pre, k):
    latents, thr = btk(pre, k)
    return latents, pre[pre < thr].max().item()


def btk_mean_kept(pre, k):
    latents, _ = btk(pre, k)
    return latents, latents[latents > 0].mean().item()


def mat(latents, W_dec, b_dec, x, prefixes):
    return sum((x - latents[:, :m] @ W_dec[:, :m].T - b_dec).pow(2).sum(-1).mean() for m in prefixes) / len(prefixes)


def mat_full(latents, W_dec, b_dec, x, prefixes):
    return (x - latents @ W_dec.T - b_dec).pow(2).sum(-1).mean()


def mat_sum(latents, W_dec, b_dec, x, prefixes):
    return mat(latents, W_dec, b_dec, x, prefixes) * len(prefixes)


def mat_no_bias(latents, W_dec, b_dec, x, prefixes):
    return mat(latents, W_dec, torch.zeros_like(b_dec), x, prefixes)


def mat_last(latents, W_dec, b_dec, x, prefixes):
    n = W_dec.shape[1]
    return sum((x - latents[:, n - m:] @ W_dec[:, n - m:].T - b_dec).pow(2).sum(-1).mean()
               for m in prefixes) / len(prefixes)


def mat_over_d(latents, W_dec, b_dec, x, prefixes):
    return sum((x - latents[:, :m] @ W_dec[:, :m].T - b_dec).pow(2).mean() for m in prefixes) / len(prefixes)


def tok(latents, W_dec, probe, projection, main, min_share=0.4, min_cos=0.1, normalise=True, use_act=False,
        first_main_only=False):
    """One token by the recipe (vectorised), with switches for the named mistakes."""
    main_ = main[:1] if first_main_only else list(main)
    if (latents[main_] > 0).any():
        return "caught", -1
    p = probe / probe.norm() if normalise else probe
    contribution = latents * (W_dec.T @ p)
    contribution[main_] = 0.0
    score = latents.clone() if use_act else contribution.clone()
    score[main_] = -1.0
    best = int(score.argmax())
    cos = float(W_dec[:, best] @ probe / (W_dec[:, best].norm() * probe.norm()))
    if contribution[best] > 0 and cos >= min_cos and projection > 0 and contribution[best] >= min_share * projection:
        return "absorbed", best
    return "missed", -1


def tok_ignores_main(latents, W_dec, probe, projection, main):
    return tok(latents.masked_fill(torch.arange(len(latents)) == main[0], 0.0), W_dec, probe, projection, main)


ARCH_CHECKS = {
    "check_jumprelu": (check_jumprelu, jump, [
        (jump_soft, "ReLU(pre - θ)"), (jump_step, "the step H(pre - θ) alone"), (jump_no_theta, "ignore θ"),
        (jump_sign, "wrong sign"), (jump_wide, "within ε/2"), (jump_sum, "divide by the number of rows"),
        (jump_no_eps, "forgot the 1/ε")]),
    "check_batchtopk": (check_batchtopk, btk, [
        (btk_per_row, "that is TopK"), (btk_k_total, "keep k x batch size"), (btk_no_relu, "apply ReLU first"),
        (btk_largest_dropped, "largest value dropped"), (btk_mean_kept, "mean of the kept values")]),
    "check_matryoshka_loss": (check_matryoshka_loss, mat, [
        (mat_full, "full width only"), (mat_sum, "summed the prefixes"), (mat_no_bias, "left out b_dec"),
        (mat_last, "LAST m latents"), (mat_over_d, "sum it over d")]),
    "check_token_absorption": (check_token_absorption, tok, [
        (tok_ignores_main, "a main latent fires here"),
        (lambda *a: tok(*a, min_share=0.0), "at least 40%"),
        (lambda *a: tok(*a, min_cos=-1.0), "nearly orthogonal"),
        (lambda *a: tok(*a, use_act=True), "not the largest activation"),
        (lambda *a: tok(*a, first_main_only=True), "a split of the parent"),
        (lambda *a: tok(*a, normalise=False), "divide p by its length")]),
}
for _name, (_check, _ref, _named) in ARCH_CHECKS.items():
    WRONG_ANSWERS[_name] = {"named": _named, "unnamed": []}
WRONG_ANSWERS["check_jumprelu"]["unnamed"] = [lambda p, t, e: (jump(p, t, e)[0] * 1.1, jump(p, t, e)[1]),
                                              lambda p, t, e: (jump(p, t, e)[0], jump(p, t, e)[1] * 0.5)]
WRONG_ANSWERS["check_batchtopk"]["unnamed"] = [lambda p, k: (btk(p, k)[0] * 0.9, btk(p, k)[1]),
                                               lambda p, k: (btk(p, k)[0], btk(p, k)[1] + 0.3)]
WRONG_ANSWERS["check_matryoshka_loss"]["unnamed"] = [lambda *a: mat(*a) + 0.5, lambda *a: mat(*a[:4], a[4][:-1])]
WRONG_ANSWERS["check_token_absorption"]["unnamed"] = [lambda *a: ("absorbed", 1), lambda *a: ("missed", -1)]


@pytest.mark.parametrize("name", list(ARCH_CHECKS))
def test_architecture_reference_passes_and_stub_is_not_done(name, capsys):
    check, ref, _ = ARCH_CHECKS[name]
    assert check(ref)
    assert capsys.readouterr().out.strip() == f"✓ {name}: correct"
    def any_stub(*args):
        raise NotImplementedError

    assert not check(any_stub)
    assert "not done yet" in capsys.readouterr().out


@pytest.mark.parametrize("name", list(ARCH_CHECKS))
def test_architecture_mistakes_get_their_hints(name, capsys):
    check, _, named = ARCH_CHECKS[name]
    for fn, hint in named:
        assert not check(fn)
        out = capsys.readouterr().out
        assert out.startswith(f"✗ {name}:") and hint in out, (fn.__name__, out)


@pytest.mark.parametrize("name, i", [(n, i) for n in ARCH_CHECKS for i in range(2)])
def test_architecture_unnamed_wrong_answers_are_not_praised(name, i, capsys):
    check = ARCH_CHECKS[name][0]
    assert check(WRONG_ANSWERS[name]["unnamed"][i]) is False
    assert capsys.readouterr().out.startswith(f"✗ {name}:")


def test_references_agree_with_the_library():
    """The checks' loop references and saelab.architectures compute the same thing."""
    from saelab import architectures as arch
    from saelab.checks.evaluation import batchtopk_reference, jumprelu_reference
    g = torch.Generator().manual_seed(3)
    pre = torch.randn(10, 5, generator=g)
    latents, smallest = arch.batch_topk_activation(pre, 2)
    want, thr = batchtopk_reference(pre, 2)
    assert torch.allclose(latents.double(), want) and smallest.item() == pytest.approx(thr)
    theta = torch.full((5,), 0.3)
    log_t = theta.log().requires_grad_(True)
    l0 = arch._Step.apply(pre, log_t, 0.5).sum(-1).mean()
    l0.backward()
    _, grad = jumprelu_reference(pre, theta, 0.5)
    assert torch.allclose(log_t.grad.double() / theta.double(), grad, atol=1e-6)  # d/dlogθ = θ d/dθ
