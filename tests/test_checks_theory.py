"""Notebook 01's exercise checks: a right answer passes, the stub is "not done yet", and each usual mistake gets
its own hint (one wrong answer per named mistake)."""
import pytest
import torch
import torch.nn.functional as F

from saelab.checks import report
from saelab.checks import theory as checks


@pytest.fixture(autouse=True)
def not_strict(monkeypatch):
    monkeypatch.delenv(report.STRICT_ENV, raising=False)


def verdict(check, *fns, capsys) -> str:
    """Run a check, return its one printed line (and assert it is exactly one line)."""
    ok = check(*fns)
    out = capsys.readouterr().out
    assert out.count("\n") == 1, out
    assert ok == out.startswith("✓"), out
    return out


# --- TopK ------------------------------------------------------------------------------------------
def right_topk(pre_acts, k):
    values, indices = pre_acts.topk(min(k, pre_acts.shape[-1]), dim=-1)
    return torch.zeros_like(pre_acts).scatter(-1, indices, torch.relu(values))


def topk_stub(pre_acts, k):
    raise NotImplementedError


def topk_no_relu(pre_acts, k):
    values, indices = pre_acts.topk(min(k, pre_acts.shape[-1]), dim=-1)
    return torch.zeros_like(pre_acts).scatter(-1, indices, values)


def topk_smallest(pre_acts, k):
    values, indices = pre_acts.topk(min(k, pre_acts.shape[-1]), dim=-1, largest=False)
    return torch.zeros_like(pre_acts).scatter(-1, indices, torch.relu(values))


def topk_wrong_axis(pre_acts, k):
    values, indices = pre_acts.topk(k, dim=0)
    return torch.zeros_like(pre_acts).scatter(0, indices, torch.relu(values))


def topk_no_min(pre_acts, k):  # right, except when k is larger than the width
    values, indices = pre_acts.topk(k, dim=-1)
    return torch.zeros_like(pre_acts).scatter(-1, indices, torch.relu(values))


def topk_plain_relu(pre_acts, k):
    return torch.relu(pre_acts)


def topk_values_only(pre_acts, k):
    return torch.relu(pre_acts.topk(min(k, pre_acts.shape[-1]), dim=-1).values)


def topk_tuple(pre_acts, k):
    return pre_acts.topk(k, dim=-1)


def topk_no_return(pre_acts, k):
    right_topk(pre_acts, k)


def test_check_topk_passes_the_right_answer(capsys):
    assert verdict(checks.check_topk, right_topk, capsys=capsys) == "✓ check_topk: correct\n"


def test_check_topk_says_not_done_for_the_stub(capsys):
    assert verdict(checks.check_topk, topk_stub, capsys=capsys).startswith("… check_topk: not done yet")


TOPK_MISTAKES = [
    (topk_no_relu, "forgot the ReLU after TopK"),
    (topk_smallest, "SMALLEST"),
    (topk_wrong_axis, "wrong axis"),
    (topk_no_min, "min(k, pre_acts.shape[-1])"),
    (topk_plain_relu, "plain ReLU"),
    (topk_values_only, "scatter them back"),
    (topk_tuple, "tuple"),
    (topk_no_return, "forget to `return`"),
]


@pytest.mark.parametrize("fn, hint", TOPK_MISTAKES)
def test_check_topk_names_each_mistake(capsys, fn, hint):
    out = verdict(checks.check_topk, fn, capsys=capsys)
    assert out.startswith("✗ check_topk: ") and hint in out, out


def test_check_topk_accepts_any_of_several_tied_latents_and_catches_a_threshold(capsys):
    def sort_based(pre_acts, k):  # picks tied latents in another order than torch.topk may
        order = pre_acts.argsort(dim=-1, descending=True, stable=True)[:, :min(k, pre_acts.shape[-1])]
        return torch.zeros_like(pre_acts).scatter(-1, order, torch.relu(pre_acts.gather(-1, order)))

    def threshold(pre_acts, k):  # keeps everything at least as large as the k-th value: ties survive
        kth = pre_acts.topk(min(k, pre_acts.shape[-1]), dim=-1).values[:, -1:]
        return torch.relu(pre_acts) * (pre_acts >= kth)

    assert verdict(checks.check_topk, sort_based, capsys=capsys).startswith("✓")
    out = verdict(checks.check_topk, threshold, capsys=capsys)
    assert out.startswith("✗ check_topk: rows with ties") and "ties" in out, out


# --- the forward pass ------------------------------------------------------------------------------
def encode(sae, x):
    return (x - sae.pre_bias) @ sae.encoder.weight.T + sae.latent_bias


def activate(sae, pre):
    return right_topk(pre, sae.k) if sae.activation == "topk" else torch.relu(pre)


def right_forward(sae, x):
    pre = encode(sae, x)
    latents = activate(sae, pre)
    return pre, latents, latents @ sae.W_dec.T + sae.pre_bias


def forward_with(pre=None, latents=None, x_hat=None):
    """A forward pass with one piece replaced by a wrong version."""
    def fn(sae, x):
        p = pre(sae, x) if pre else encode(sae, x)
        c = latents(sae, p) if latents else activate(sae, p)
        return p, c, x_hat(sae, c, p) if x_hat else c @ sae.W_dec.T + sae.pre_bias
    return fn


def forward_stub(sae, x):
    raise NotImplementedError


FORWARD_MISTAKES = {
    "missing subtraction": (forward_with(pre=lambda s, x: x @ s.encoder.weight.T + s.latent_bias),
                            "missing bias: subtract pre_bias"),
    "added instead": (forward_with(pre=lambda s, x: (x + s.pre_bias) @ s.encoder.weight.T + s.latent_bias),
                      "wrong sign"),
    "subtracted twice": (forward_with(pre=lambda s, x: (x - 2 * s.pre_bias) @ s.encoder.weight.T + s.latent_bias),
                         "double-counted bias"),
    "no latent bias": (forward_with(pre=lambda s, x: (x - s.pre_bias) @ s.encoder.weight.T), "latent_bias"),
    "encoder untransposed": (forward_with(pre=lambda s, x: (x - s.pre_bias) @ s.encoder.weight + s.latent_bias),
                             "wrong axis"),
    "encoded with the decoder": (forward_with(pre=lambda s, x: (x - s.pre_bias) @ s.W_dec + s.latent_bias),
                                 "encoded with the decoder"),
    "no ReLU": (forward_with(latents=lambda s, p: p if s.activation == "relu" else right_topk(p, s.k)),
                "forgot the ReLU"),
    "no ReLU after TopK": (forward_with(latents=lambda s, p: torch.relu(p) if s.activation == "relu"
                                        else topk_no_relu(p, s.k)), "forgot the ReLU after TopK"),
    "smallest": (forward_with(latents=lambda s, p: torch.relu(p) if s.activation == "relu"
                              else topk_smallest(p, s.k)), "SMALLEST"),
    "ReLU for TopK": (forward_with(latents=lambda s, p: torch.relu(p)), "this SAE is TopK"),
    "missing add-back": (forward_with(x_hat=lambda s, c, p: c @ s.W_dec.T), "missing bias: add pre_bias back"),
    "subtracted after decoding": (forward_with(x_hat=lambda s, c, p: c @ s.W_dec.T - s.pre_bias),
                                  "wrong sign after decoding"),
    "added twice": (forward_with(x_hat=lambda s, c, p: c @ s.W_dec.T + 2 * s.pre_bias), "double-counted bias"),
    "decoder untransposed": (forward_with(x_hat=lambda s, c, p: c @ s.W_dec + s.pre_bias), "wrong axis"),
    "tied weights": (forward_with(x_hat=lambda s, c, p: c @ s.encoder.weight + s.pre_bias), "encoder's weights"),
    "decoded pre-activations": (forward_with(x_hat=lambda s, c, p: p @ s.W_dec.T + s.pre_bias),
                                "decoded the pre-activations"),
}


def test_check_sae_forward_passes_the_right_answer_and_the_library(capsys):
    assert verdict(checks.check_sae_forward, right_forward, capsys=capsys) == "✓ check_sae_forward: correct\n"
    assert verdict(checks.check_sae_forward, lambda sae, x: sae(x), capsys=capsys).startswith("✓")


def test_check_sae_forward_says_not_done_for_the_stub(capsys):
    assert verdict(checks.check_sae_forward, forward_stub, capsys=capsys).startswith("… check_sae_forward: not done")


@pytest.mark.parametrize("mistake", sorted(FORWARD_MISTAKES))
def test_check_sae_forward_names_each_mistake(capsys, mistake):
    fn, hint = FORWARD_MISTAKES[mistake]
    out = verdict(checks.check_sae_forward, fn, capsys=capsys)
    assert out.startswith("✗ check_sae_forward: ") and hint in out, (mistake, out)


def test_check_sae_forward_names_latents_returned_as_pre_activations(capsys):
    def latents_twice(sae, x):
        pre, latents, x_hat = right_forward(sae, x)
        return latents, latents, x_hat

    out = verdict(checks.check_sae_forward, latents_twice, capsys=capsys)
    assert "BEFORE the activation" in out, out


def test_check_sae_forward_explains_a_shape_crash_and_a_wrong_return(capsys):
    def crash(sae, x):  # untransposed encoder on a non-square SAE would crash; here on every SAE
        return right_forward(sae, x @ torch.ones(x.shape[-1], x.shape[-1] + 1))

    out = verdict(checks.check_sae_forward, crash, capsys=capsys)
    assert "your function raised" in out and "encoder.weight is [n_latents, d_model]" in out
    out = verdict(checks.check_sae_forward, lambda sae, x: right_forward(sae, x)[2], capsys=capsys)
    assert "return three tensors" in out


# --- the loss -------------------------------------------------------------------------------------
def right_loss(sae, x, l1_coef):
    pre, latents, x_hat = sae(x)
    return ((x - x_hat) ** 2).sum(-1).mean() + l1_coef * latents.abs().sum(-1).mean()


def loss_stub(sae, x, l1_coef):
    raise NotImplementedError


LOSS_MISTAKES = {
    "L1 on pre-activations": (lambda s, x, a: ((x - s(x)[2]) ** 2).sum(-1).mean() + a * s(x)[0].abs().sum(-1).mean(),
                              "L1 on the pre-activations"),
    "mse_loss": (lambda s, x, a: F.mse_loss(s(x)[2], x) + a * s(x)[1].sum(-1).mean(), "wrong axis"),
    "L1 mean over latents": (lambda s, x, a: ((x - s(x)[2]) ** 2).sum(-1).mean() + a * s(x)[1].mean(),
                             "wrong axis in the L1 term"),
    "summed over the batch": (lambda s, x, a: ((x - s(x)[2]) ** 2).sum() + a * s(x)[1].sum(), "summed over the batch"),
    "not squared": (lambda s, x, a: (x - s(x)[2]).norm(dim=-1).mean() + a * s(x)[1].sum(-1).mean(), "not squared"),
    "L2 penalty": (lambda s, x, a: ((x - s(x)[2]) ** 2).sum(-1).mean() + a * (s(x)[1] ** 2).sum(-1).mean(),
                   "L2 penalty"),
    "no coefficient": (lambda s, x, a: ((x - s(x)[2]) ** 2).sum(-1).mean() + s(x)[1].sum(-1).mean(),
                       "not multiplied by l1_coef"),
    "no L1": (lambda s, x, a: ((x - s(x)[2]) ** 2).sum(-1).mean(), "sparsity penalty is missing"),
    "per-token loss": (lambda s, x, a: ((x - s(x)[2]) ** 2).sum(-1) + a * s(x)[1].sum(-1), "reduce it to one number"),
    ".item()": (lambda s, x, a: right_loss(s, x, a).item(), "do not call .item()"),
    "no_grad": (lambda s, x, a: right_loss(s, x, a).detach(), "carries no gradient"),
}


def test_check_sae_loss_passes_the_right_answer(capsys):
    assert verdict(checks.check_sae_loss, right_loss, capsys=capsys) == "✓ check_sae_loss: correct\n"


def test_check_sae_loss_says_not_done_for_the_stub(capsys):
    assert verdict(checks.check_sae_loss, loss_stub, capsys=capsys).startswith("… check_sae_loss: not done yet")


@pytest.mark.parametrize("mistake", sorted(LOSS_MISTAKES))
def test_check_sae_loss_names_each_mistake(capsys, mistake):
    fn, hint = LOSS_MISTAKES[mistake]
    out = verdict(checks.check_sae_loss, fn, capsys=capsys)
    assert out.startswith("✗ check_sae_loss: ") and hint in out, (mistake, out)


def test_check_sae_loss_matches_what_train_sae_minimises():
    """The check's reference is the loss train_sae logs for a ReLU SAE (its first logged step, before any update
    changes the weights, cannot be read; so compare on a frozen SAE through lr=0)."""
    from saelab.sae import SAE
    from saelab.training import train_sae
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 5, generator=g)
    sae = SAE(5, 12)
    history = train_sae(sae, x, n_steps=1, batch_size=64, lr=0.0, l1_coef=0.4, log_every=1, ortho_every=None,
                        precision="fp32")
    assert history.loss[0] == pytest.approx(right_loss(sae, x, 0.4).item(), rel=1e-5)


# --- L0 and FVU -----------------------------------------------------------------------------------
def right_l0(latents):
    return (latents != 0).sum(-1).float().mean()


def right_fvu(x, x_hat):
    return ((x - x_hat) ** 2).sum() / ((x - x.mean(dim=0)) ** 2).sum()


def l0_stub(latents):
    raise NotImplementedError


def fvu_stub(x, x_hat):
    raise NotImplementedError


def test_check_l0_and_fvu_pass_the_right_answers(capsys):
    assert checks.check_l0_and_fvu(right_l0, right_fvu) is True
    assert capsys.readouterr().out == "✓ check_l0: correct\n✓ check_fvu: correct\n"


def test_check_l0_and_fvu_say_not_done_for_stubs(capsys):
    assert checks.check_l0_and_fvu(l0_stub, fvu_stub) is False
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("… check_l0: not done yet") and out[1].startswith("… check_fvu: not done yet")


L0_MISTAKES = [
    (lambda c: (c != 0).sum(), "divide by the number of rows"),
    (lambda c: (c != 0).sum(0).float().mean(), "wrong axis"),
    (lambda c: (c != 0).float().mean(), "fraction of non-zero entries"),
    (lambda c: c.sum(-1).mean(), "L1"),
    (lambda c: (c != 0).sum(-1).float(), "one number"),
]


@pytest.mark.parametrize("fn, hint", L0_MISTAKES)
def test_check_l0_names_each_mistake(capsys, fn, hint):
    out = verdict(checks.check_l0, fn, capsys=capsys)
    assert out.startswith("✗ check_l0: ") and hint in out, out


FVU_MISTAKES = [
    (lambda x, xh: ((x - xh) ** 2).sum() / (x ** 2).sum(), "variance around the mean"),
    (lambda x, xh: 1 - right_fvu(x, xh), "EXPLAINED"),
    (lambda x, xh: ((x - xh) ** 2).sum() / ((x - x.mean()) ** 2).sum(), "wrong axis"),
    (lambda x, xh: ((x - xh) ** 2).sum(-1) / ((x - x.mean(0)) ** 2).sum(-1), "one number"),
]


@pytest.mark.parametrize("fn, hint", FVU_MISTAKES)
def test_check_fvu_names_each_mistake(capsys, fn, hint):
    out = verdict(checks.check_fvu, fn, capsys=capsys)
    assert out.startswith("✗ check_fvu: ") and hint in out, out


def test_check_l0_and_fvu_report_both_when_one_is_wrong(capsys):
    assert checks.check_l0_and_fvu(right_l0, lambda x, xh: 0.0) is False
    out = capsys.readouterr().out
    assert "✓ check_l0" in out and "✗ check_fvu" in out


def test_in_strict_mode_a_wrong_answer_raises_and_a_stub_goes_on(monkeypatch, capsys):
    monkeypatch.setenv(report.STRICT_ENV, "1")
    with pytest.raises(report.CheckFailed):
        checks.check_sae_loss(LOSS_MISTAKES["no L1"][0])
    with pytest.raises(report.CheckFailed):
        checks.check_topk(topk_no_relu)
    assert checks.check_sae_forward(forward_stub) is False  # the notebook's stub cell runs before its solution
    assert capsys.readouterr().out.splitlines()[-1].startswith("… check_sae_forward: not done yet")
    assert checks.check_sae_forward(right_forward) is True


L0_AND_FVU_MISTAKES = [((L0_MISTAKES[1][0], right_fvu), L0_MISTAKES[1][1]),
                       ((right_l0, FVU_MISTAKES[0][0]), FVU_MISTAKES[0][1])]


@pytest.mark.parametrize("fns, hint", L0_AND_FVU_MISTAKES)
def test_check_l0_and_fvu_name_the_mistake_in_either_function(capsys, fns, hint):
    assert checks.check_l0_and_fvu(*fns) is False
    out = capsys.readouterr().out
    assert "✗ check_" in out and hint in out, out


# --- the checks' references are not the library a solution calls --------------------------------------------
def broken_decode(self, latents, info=None):
    """SAE.decode with a bug: pre_bias added twice."""
    return self.decoder(latents) + 2 * self.pre_bias


def test_a_broken_sae_decode_does_not_pass_the_checks_of_solutions_that_call_it(monkeypatch, capsys):
    from saelab.sae import SAE
    monkeypatch.setattr(SAE, "decode", broken_decode)
    assert verdict(checks.check_sae_loss, right_loss, capsys=capsys).startswith("✗ check_sae_loss:")
    assert verdict(checks.check_sae_forward, lambda sae, x: sae(x), capsys=capsys).startswith("✗ check_sae_forward")
    # a solution written from the weights still passes: the reference does not use SAE.decode either
    assert verdict(checks.check_sae_forward, right_forward, capsys=capsys).startswith("✓")


def test_the_library_passes_the_checks_written_out_without_it(capsys):
    """The references are written out in the checks; the library computes the same thing."""
    from saelab import metrics
    from saelab.sae import topk_activation
    assert checks.check_topk(lambda pre, k: topk_activation(pre, min(k, pre.shape[-1])))
    assert checks.check_sae_forward(lambda sae, x: sae(x)) and checks.check_sae_loss(right_loss)
    assert checks.check_l0_and_fvu(metrics.l0, metrics.fraction_variance_unexplained)


# --- wrong answers the checks do not name must not be praised ---------------------------------------------------
def loss_parts(sae, x):
    pre, latents, x_hat = sae(x)
    return ((x - x_hat) ** 2).sum(-1).mean(), latents.abs().sum(-1).mean()


# check -> its named mistakes (answer, hint) and at least two wrong answers it has no name for; the census in
# tests/test_checks_report.py requires an entry for every check in saelab.checks.theory.
WRONG_ANSWERS = {
    "check_topk": {"named": TOPK_MISTAKES, "unnamed": [
        lambda p, k: 2 * right_topk(p, k),  # the values doubled
        lambda p, k: right_topk(p, max(k - 1, 1)),  # one latent too few
        lambda p, k: torch.zeros_like(p)]},
    "check_sae_forward": {"named": list(FORWARD_MISTAKES.values()), "unnamed": [
        lambda sae, x: tuple(t * 1.01 for t in right_forward(sae, x)),
        lambda sae, x: (right_forward(sae, x)[0], right_forward(sae, x)[1].flip(-1), right_forward(sae, x)[2]),
        lambda sae, x: (lambda p, c, xh: (p, c, xh + 0.1))(*right_forward(sae, x))]},
    "check_sae_loss": {"named": list(LOSS_MISTAKES.values()), "unnamed": [
        lambda s, x, a: 1.5 * right_loss(s, x, a),
        lambda s, x, a: loss_parts(s, x)[0] + a * loss_parts(s, x)[1] / 2,
        lambda s, x, a: loss_parts(s, x)[0].sqrt() + a * loss_parts(s, x)[1]]},
    "check_l0": {"named": L0_MISTAKES, "unnamed": [
        lambda c: right_l0(c) + 1,
        lambda c: (c > 0.5).sum(-1).float().mean()]},
    "check_fvu": {"named": FVU_MISTAKES, "unnamed": [
        lambda x, xh: 2 * right_fvu(x, xh),
        lambda x, xh: ((x - xh) ** 2).mean()]},
    "check_l0_and_fvu": {"named": L0_AND_FVU_MISTAKES, "unnamed": [
        (lambda c: right_l0(c) + 1, right_fvu),
        (right_l0, lambda x, xh: 2 * right_fvu(x, xh))]},
}


@pytest.mark.parametrize("name, i", [(n, i) for n, w in WRONG_ANSWERS.items() for i in range(len(w["unnamed"]))])
def test_unnamed_wrong_answers_are_not_praised(name, i, capsys):
    answer = WRONG_ANSWERS[name]["unnamed"][i]
    assert getattr(checks, name)(*(answer if isinstance(answer, tuple) else (answer,))) is False
    out = capsys.readouterr().out
    assert "✗ check_" in out and "not done" not in out, out
