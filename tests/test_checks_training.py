"""Notebook 05's exercise checks: each right answer passes, each usual mistake gets its hint, a stub is 'not done yet'."""
import copy

import pytest
import torch
import torch.nn.functional as F

from saelab.checks.training import check_resample_high_loss, check_splice_hook, check_training_step


@pytest.fixture(autouse=True)
def not_strict(monkeypatch):
    monkeypatch.delenv("SAELAB_CHECKS_STRICT", raising=False)


def verdict(check, fn, capsys) -> tuple[bool, str]:
    ok = check(fn)
    out = capsys.readouterr().out
    assert out.count("\n") == 1, f"a check prints exactly one line; got {out!r}"
    return ok, out


# --- the splice hook ------------------------------------------------------------------------------------------
def right_hook(sae):
    def hook_fn(activation, hook):
        out = sae.reconstruct(activation)
        out[:, 0] = activation[:, 0]
        return out
    return hook_fn


def in_place_hook(sae):
    def hook_fn(activation, hook):
        activation[:, 1:] = sae.reconstruct(activation[:, 1:])
        return activation
    return hook_fn


def no_bias_hook(sae):
    def hook_fn(activation, hook):
        out = sae.decoder(sae.encode(activation))
        out[:, 0] = activation[:, 0]
        return out
    return hook_fn


def stub_hook(sae):
    raise NotImplementedError


SPLICE_MISTAKES = [
    (lambda sae: (lambda a, hook: None), "returned None"),
    (lambda sae: (lambda a, hook: a), "unchanged"),
    (lambda sae: (lambda a, hook: sae.reconstruct(a)), "BOS"),
    (lambda sae: (lambda a, hook: sae.encode(a)), "shape"),
    (lambda sae: (lambda a, hook: 1 / 0), "ZeroDivisionError"),
    (lambda sae: None, "return a function"),
    (in_place_hook, "in place"),
    (no_bias_hook, "pre_bias"),
]


@pytest.mark.parametrize("wrong, hint", SPLICE_MISTAKES)
def test_check_splice_hook_names_each_mistake(wrong, hint, capsys):
    ok, out = verdict(check_splice_hook, wrong, capsys)
    assert not ok and out.startswith("✗ check_splice_hook:") and hint in out


def test_check_splice_hook_passes_the_solution_and_waits_for_the_stub(capsys):
    assert verdict(check_splice_hook, right_hook, capsys) == (True, "✓ check_splice_hook: correct\n")
    ok, out = verdict(check_splice_hook, stub_hook, capsys)
    assert not ok and "not done yet" in out


def test_check_splice_hook_is_still_importable_from_evaluation():
    from saelab import evaluation
    assert evaluation.check_splice_hook is check_splice_hook


# --- one training step ------------------------------------------------------------------------------------------
def step(sae, optimizer, x, l1_coef, *, l1_on=None, mse=None, recon=None, zero_grad=True, renorm=True,
         update=True, in_place=False):
    """A training step with one mistake switched on by keyword (none: the right answer)."""
    if zero_grad:
        optimizer.zero_grad()
    if in_place:
        x -= 0.0 * x + 1e-3
    pre = sae.encode_pre_act(x)
    latents = F.relu(pre)
    x_hat = recon(sae, latents) if recon else sae.decoder(latents) + sae.pre_bias
    err = (x_hat - x).pow(2)
    rec = mse(err) if mse else err.sum(-1).mean()
    l1 = l1_on(pre, latents) if l1_on else latents.sum(-1).mean()
    loss = rec + l1_coef * l1
    loss.backward()
    if update:
        optimizer.step()
    if renorm:
        with torch.no_grad():
            W = sae.decoder.weight
            W.div_(W.norm(dim=0, keepdim=True))
    return loss.item()


def stub_step(sae, optimizer, x, l1_coef):
    raise NotImplementedError


STEP_MISTAKES = [
    (dict(renorm=False), "forgot to renormalise"),
    (dict(l1_on=lambda pre, lat: pre.abs().sum(-1).mean()), "pre-activations"),
    (dict(l1_on=lambda pre, lat: lat.sum(0).mean()), "wrong axis"),
    (dict(mse=lambda err: err.sum(0).mean()), "wrong axis"),
    (dict(mse=lambda err: err.mean()), "every element"),
    (dict(recon=lambda sae, lat: sae.decoder(lat)), "missing bias"),
    (dict(recon=lambda sae, lat: sae.decoder(lat) + 2 * sae.pre_bias), "double-counted bias"),
    (dict(zero_grad=False), "zero_grad"),
    (dict(update=False), "optimizer.step()"),
    (dict(in_place=True), "in place"),
]


@pytest.mark.parametrize("mistake, hint", STEP_MISTAKES)
def test_check_training_step_names_each_mistake(mistake, hint, capsys):
    ok, out = verdict(check_training_step, lambda *a: step(*a, **mistake), capsys)
    assert not ok and out.startswith("✗ check_training_step:") and hint in out, out


def test_check_training_step_passes_the_solution_and_waits_for_the_stub(capsys):
    assert verdict(check_training_step, step, capsys) == (True, "✓ check_training_step: correct\n")
    ok, out = verdict(check_training_step, stub_step, capsys)
    assert not ok and "not done yet" in out


def test_check_training_step_accepts_the_sae_methods_and_a_loss_tensor(capsys):
    def with_methods(sae, optimizer, x, l1_coef):
        optimizer.zero_grad()
        latents = sae.encode(x)
        loss = (sae.decode(latents) - x).pow(2).sum(-1).mean() + l1_coef * latents.abs().sum(-1).mean()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            sae.decoder.weight /= sae.decoder.weight.norm(dim=0, keepdim=True)
        return loss
    assert verdict(check_training_step, with_methods, capsys)[0]


# --- "high_loss" resampling ---------------------------------------------------------------------------------------
def resample(sae, dead, x, seed, *, probs_of=None, direction_of=None, scale=True, zero_bias=True, counter=True,
             live_too=False, in_place=False):
    """"high_loss" resampling with one mistake switched on by keyword (none: the right answer)."""
    idx = dead.nonzero().squeeze(1)
    if len(idx) == 0:
        return
    with torch.no_grad():
        if in_place:
            x -= sae.pre_bias
            x += sae.pre_bias
        x_hat = sae.decoder(F.relu(sae.encode_pre_act(x))) + sae.pre_bias
        errors = probs_of(x, x_hat, sae) if probs_of else (x - x_hat).pow(2).sum(-1)
        if errors.sum() == 0:
            errors = torch.ones_like(errors)
        g = torch.Generator().manual_seed(seed)
        picks = torch.multinomial(errors, len(idx), replacement=len(idx) > len(x), generator=g)
        directions = direction_of(x[picks], sae) if direction_of else F.normalize(x[picks] - sae.pre_bias, dim=-1)
        factor = 0.2 * sae.encoder.weight[~dead].norm(dim=1).mean() if scale else 1.0
        if live_too:
            idx = torch.arange(len(idx))
        sae.decoder.weight[:, idx] = directions.T
        sae.encoder.weight[idx] = directions * factor
        if zero_bias:
            sae.latent_bias[idx] = 0.0
        if counter:
            sae.stats_last_nonzero[idx] = 0


def stub_resample(sae, dead, x, seed):
    raise NotImplementedError


RESAMPLE_MISTAKES = [
    (dict(probs_of=lambda x, x_hat, sae: torch.ones(len(x))), "uniformly"),
    (dict(probs_of=lambda x, x_hat, sae: (x - x_hat).norm(dim=-1)), "SQUARED"),
    (dict(probs_of=lambda x, x_hat, sae: (x - x_hat + sae.pre_bias).pow(2).sum(-1)), "missing bias"),
    (dict(direction_of=lambda xp, sae: F.normalize(xp, dim=-1)), "missing bias"),
    (dict(direction_of=lambda xp, sae: xp - sae.pre_bias), "forgot to renormalise"),
    (dict(direction_of=lambda xp, sae: F.normalize(xp - sae.pre_bias, dim=0)), "wrong axis"),
    (dict(scale=False), "0.2"),
    (dict(zero_bias=False), "latent_bias"),
    (dict(counter=False), "counter"),
    (dict(live_too=True), "live latents"),
    (dict(in_place=True), "in place"),
]


@pytest.mark.parametrize("mistake, hint", RESAMPLE_MISTAKES)
def test_check_resample_high_loss_names_each_mistake(mistake, hint, capsys):
    ok, out = verdict(check_resample_high_loss, lambda *a: resample(*a, **mistake), capsys)
    assert not ok and out.startswith("✗ check_resample_high_loss:") and hint in out, out


def test_check_resample_high_loss_passes_the_solution_and_waits_for_the_stub(capsys):
    assert verdict(check_resample_high_loss, resample, capsys) == (True, "✓ check_resample_high_loss: correct\n")
    ok, out = verdict(check_resample_high_loss, stub_resample, capsys)
    assert not ok and "not done yet" in out


def test_check_resample_high_loss_wants_nothing_changed_when_no_latent_is_dead(capsys):
    def always_one(sae, dead, x, seed):
        resample(sae, dead | (torch.arange(len(dead)) == 0), x, seed)
    ok, out = verdict(check_resample_high_loss, always_one, capsys)
    assert not ok and ("live latents" in out or "nothing may change" in out)


def test_strict_mode_raises_for_a_wrong_answer_but_not_for_the_stub(monkeypatch, capsys):
    from saelab.checks.report import CheckFailed
    monkeypatch.setenv("SAELAB_CHECKS_STRICT", "1")
    with pytest.raises(CheckFailed):
        check_resample_high_loss(lambda *a: resample(*a, zero_bias=False))
    assert check_resample_high_loss(stub_resample) is False
    assert "not done yet" in capsys.readouterr().out
    assert check_resample_high_loss(resample) is True


# --- the checks' references are written out; the library computes the same -------------------------------------
def test_the_library_passes_the_checks_written_out_without_it(capsys):
    from saelab.training import resample_dead_latents
    assert check_resample_high_loss(lambda sae, dead, x, seed: resample_dead_latents(sae, None, dead, x, "high_loss",
                                                                                     seed)) is True
    assert check_splice_hook(right_hook) is True  # it calls sae.reconstruct


def test_the_training_step_reference_is_what_train_sae_does():
    from saelab.checks.training import manual_step_losses
    from saelab.sae import SAE
    from saelab.training import train_sae
    g = torch.Generator().manual_seed(0)
    x, sae = torch.randn(16, 8, generator=g) * 2, SAE(8, 32)
    with torch.no_grad():
        for p in sae.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    ref = copy.deepcopy(sae)
    history = train_sae(sae, x, n_steps=3, batch_size=16, lr=1e-2, l1_coef=0.3, init=False, log_every=1,
                        ortho_every=None, precision="fp32", num_threads=1)
    assert history.loss == pytest.approx(manual_step_losses(ref, x, 0.3, 1e-2, 3), rel=1e-5)
    for p, q in zip(sae.parameters(), ref.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


# --- wrong answers the checks do not name must not be praised ---------------------------------------------------
def halfway_hook(sae):
    def hook_fn(activation, hook):
        out = 0.5 * (activation + sae.reconstruct(activation))
        out[:, 0] = activation[:, 0]
        return out
    return hook_fn


def sgd_step(sae, optimizer, x, l1_coef):
    """The loss right, but a plain gradient step of its own instead of optimizer.step()."""
    optimizer.zero_grad()
    latents = F.relu(sae.encode_pre_act(x))
    loss = (sae.decoder(latents) + sae.pre_bias - x).pow(2).sum(-1).mean() + l1_coef * latents.sum(-1).mean()
    loss.backward()
    with torch.no_grad():
        for p in sae.parameters():
            p -= 1e-2 * p.grad
        sae.decoder.weight.div_(sae.decoder.weight.norm(dim=0, keepdim=True))
    return loss.item()


# check -> its named mistakes (answer, hint) and at least two wrong answers it has no name for; the census in
# tests/test_checks_report.py requires an entry for every check in saelab.checks.training.
WRONG_ANSWERS = {
    "check_splice_hook": {"named": SPLICE_MISTAKES, "unnamed": [
        halfway_hook,
        lambda sae: (lambda a, hook: right_hook(sae)(2 * a, hook) / 2)]},
    "check_training_step": {"named": STEP_MISTAKES, "unnamed": [
        lambda sae, optimizer, x, l1_coef: step(sae, optimizer, x, 2 * l1_coef),
        sgd_step]},
    "check_resample_high_loss": {"named": RESAMPLE_MISTAKES, "unnamed": [
        lambda *a: resample(*a, direction_of=lambda xp, sae: -F.normalize(xp - sae.pre_bias, dim=-1)),
        lambda sae, dead, x, seed: resample(sae, dead, x, seed + 1)]},
}


@pytest.mark.parametrize("name, i", [(n, i) for n, w in WRONG_ANSWERS.items() for i in range(len(w["unnamed"]))])
def test_unnamed_wrong_answers_are_not_praised(name, i, capsys):
    check = {"check_splice_hook": check_splice_hook, "check_training_step": check_training_step,
             "check_resample_high_loss": check_resample_high_loss}[name]
    ok, out = verdict(check, WRONG_ANSWERS[name]["unnamed"][i], capsys)
    assert not ok and out.startswith(f"✗ {name}:"), out
