"""Notebook 05's exercise checks: each right answer passes, each usual mistake gets its hint, a stub is 'not done yet'."""
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


@pytest.mark.parametrize("wrong, hint", [
    (lambda sae: (lambda a, hook: None), "returned None"),
    (lambda sae: (lambda a, hook: a), "unchanged"),
    (lambda sae: (lambda a, hook: sae.reconstruct(a)), "BOS"),
    (lambda sae: (lambda a, hook: sae.encode(a)), "shape"),
    (lambda sae: (lambda a, hook: 1 / 0), "ZeroDivisionError"),
    (lambda sae: None, "return a function"),
    (in_place_hook, "in place"),
    (no_bias_hook, "pre_bias"),
])
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


@pytest.mark.parametrize("mistake, hint", [
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
])
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


@pytest.mark.parametrize("mistake, hint", [
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
])
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
