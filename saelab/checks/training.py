"""Checks for notebook 05's exercises: the splice hook, one training step, and "high_loss" resampling.

Each check runs the student's function on several small cases, including edge cases (a batch of one, an all-zero
input, a latent that never fires), next to a reference written out here from the SAE's weights: not `sae.reconstruct`,
`train_sae` or `resample_dead_latents`, which a solution may call (the unit tests hold the references equal to those).
It names the usual mistake when the answers differ. Verdicts are printed in the course's one-line style
(`saelab.checks.report`).
"""
from __future__ import annotations

import copy
from typing import Any, Callable

import torch
import torch.nn.functional as F

from saelab.checks import report
from saelab.sae import SAE


def _random_sae(d_model: int = 8, n_latents: int = 32, seed: int = 0, std: float = 0.5) -> SAE:
    """A small ReLU SAE with random weights and biases (so a missing bias shows)."""
    g = torch.Generator().manual_seed(seed)
    sae = SAE(d_model, n_latents)
    with torch.no_grad():
        for p in (sae.encoder.weight, sae.decoder.weight, sae.pre_bias, sae.latent_bias):
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return sae


def latents_by_hand(sae: SAE, x: torch.Tensor) -> torch.Tensor:
    """ReLU(W_enc (x - pre_bias) + latent_bias) from the weights of a ReLU SAE without normalisation: [..., n_latents]."""
    return F.relu((x - sae.pre_bias) @ sae.encoder.weight.T + sae.latent_bias)


def reconstruct_by_hand(sae: SAE, x: torch.Tensor) -> torch.Tensor:
    """W_dec latents + pre_bias from the weights: [..., d_model]."""
    return latents_by_hand(sae, x) @ sae.decoder.weight.T + sae.pre_bias


def _invoke(fn: Callable, *args: Any) -> Any:
    """Call the student's function on these very objects (so in-place edits show); stubs and crashes as in report."""
    return report.call(lambda: fn(*args))


# --- exercise 1: the splice hook ----------------------------------------------------------------------------
def check_splice_hook(make_splice_hook: Callable[[SAE], Callable]) -> bool:
    """Check `make_splice_hook(sae) -> hook_fn(activation, hook)`: positions 1.. replaced by the reconstruction.

    The hook must return the activation [batch, pos, d_model] with every position except BOS (position 0)
    replaced by the reconstruction, without editing the activation it was given (a cache may hold it).
    """
    def body() -> str | None:
        sae = _random_sae()
        g = torch.Generator().manual_seed(1)
        for act in (torch.randn(2, 5, 8, generator=g) * 3, torch.randn(1, 3, 8, generator=g), torch.zeros(2, 4, 8)):
            with torch.no_grad():
                expected = act.clone()
                expected[:, 1:] = reconstruct_by_hand(sae, act[:, 1:])
            hook_fn = _invoke(make_splice_hook, sae)
            if not callable(hook_fn):
                return (f"make_splice_hook(sae) returned {type(hook_fn).__name__}; return a function "
                        "hook_fn(activation, hook)")
            given = act.clone()
            with torch.no_grad():
                out = _invoke(hook_fn, given, None)
            if out is None:
                return ("your hook returned None; a TransformerLens hook that replaces the activation must return "
                        "the new tensor [batch, pos, d_model]")
            if not torch.is_tensor(out) or out.shape != act.shape:
                return (f"your hook returned shape {tuple(getattr(out, 'shape', ()))}; expected {tuple(act.shape)} "
                        "(the same shape as the activation). sae.encode gives latents; sae.reconstruct gives x_hat")
            if not torch.equal(given, act):
                return ("your hook edited the activation in place: a cache (run_with_cache) holding the same tensor "
                        "would change too. Build a new tensor, e.g. out = sae.reconstruct(activation)")
            if torch.allclose(out, act) and not torch.allclose(expected, act):
                return "your hook returned the activation unchanged; replace it with sae.reconstruct(...)"
            if not torch.allclose(out[:, 0], act[:, 0]):
                if torch.allclose(out[:, 0], reconstruct_by_hand(sae, act[:, :1])[:, 0].detach(), atol=1e-5):
                    return "position 0 (BOS) was reconstructed too; keep the original activation there"
                return "position 0 (BOS) changed; keep the original activation there"
            if not torch.allclose(out[:, 1:], expected[:, 1:], atol=1e-5):
                no_bias = (latents_by_hand(sae, act[:, 1:]) @ sae.decoder.weight.T).detach()
                if torch.allclose(out[:, 1:], no_bias, atol=1e-5):
                    return "positions 1.. lack the pre_bias: sae.reconstruct adds it back (decoder(latents) + pre_bias)"
                return ("positions 1.. differ from sae.reconstruct(activation)[:, 1:]; did you call sae.encode only, "
                        "or decode without the pre_bias?")
        return None

    return report.check("check_splice_hook", body)


# --- exercise 2: one training step ------------------------------------------------------------------------
def manual_step_losses(sae: SAE, x: torch.Tensor, l1_coef: float, lr: float, n_steps: int,
                       zero_grad: bool = True) -> list[float]:
    """`n_steps` steps of `train_sae` on the one batch x (fresh Adam, no init), written out from the weights: the
    check's reference (with `zero_grad=False`: the forgotten optimizer.zero_grad())."""
    optimizer, losses = torch.optim.Adam(sae.parameters(), lr=lr), []
    for _ in range(n_steps):
        if zero_grad:
            optimizer.zero_grad()
        latents = latents_by_hand(sae, x)
        loss = (reconstruct_by_hand(sae, x) - x).pow(2).sum(-1).mean() + l1_coef * latents.sum(-1).mean()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            sae.decoder.weight.div_(sae.decoder.weight.norm(dim=0, keepdim=True).clamp_min(1e-8))
        losses.append(loss.item())
    return losses


def _variant_losses(sae: SAE, x: torch.Tensor, l1_coef: float) -> dict[str, float]:
    """The loss of the first step under each usual mistake, to recognise it from the student's returned loss."""
    with torch.no_grad():
        pre = (x - sae.pre_bias) @ sae.encoder.weight.T + sae.latent_bias
        latents = F.relu(pre)
        x_hat = latents @ sae.decoder.weight.T + sae.pre_bias
        err = (x_hat - x).pow(2)
        mse, l1 = err.sum(-1).mean(), latents.sum(-1).mean()
        return {
            "l1_pre": (mse + l1_coef * pre.abs().sum(-1).mean()).item(),
            "l1_pre_signed": (mse + l1_coef * pre.sum(-1).mean()).item(),
            "no_l1": mse.item(),
            "mse_mean_all": (err.mean() + l1_coef * l1).item(),
            "mse_wrong_axis": (err.sum(0).mean() + l1_coef * l1).item(),
            "l1_wrong_axis": (mse + l1_coef * latents.sum(0).mean()).item(),
            "no_bias": ((latents @ sae.decoder.weight.T - x).pow(2).sum(-1).mean() + l1_coef * l1).item(),
            "double_bias": ((x_hat + sae.pre_bias - x).pow(2).sum(-1).mean() + l1_coef * l1).item(),
        }


STEP_HINTS = {
    "l1_pre": "your loss puts the L1 penalty on the pre-activations; penalise the latents after the ReLU "
              "(latents = relu(pre_acts); l1 = latents.sum(-1).mean())",
    "l1_pre_signed": "your loss sums the pre-activations; the L1 term is the sum of the latents after the ReLU",
    "no_l1": "your loss has no L1 term: add l1_coef * latents.sum(-1).mean()",
    "mse_mean_all": "your reconstruction error is averaged over every element (F.mse_loss); train_sae sums over "
                    "d_model and averages over the batch: (x_hat - x).pow(2).sum(-1).mean()",
    "mse_wrong_axis": "wrong axis: your reconstruction error sums over the batch (dim=0); sum over d_model (dim=-1), "
                      "then average over the batch",
    "l1_wrong_axis": "wrong axis: your L1 term sums over the batch (dim=0); sum over latents (dim=-1), then average",
    "no_bias": "missing bias: the reconstruction is decoder(latents) + pre_bias (sae.decode adds it)",
    "double_bias": "double-counted bias: pre_bias is added twice to the reconstruction (sae.decode already adds it)",
}


def check_training_step(training_step: Callable[[SAE, torch.optim.Optimizer, torch.Tensor, float], Any]) -> bool:
    """Check `training_step(sae, optimizer, x, l1_coef) -> loss`: one step of `train_sae` on a ReLU SAE.

    Runs three steps with one Adam optimiser on the same batch and compares the returned losses and the weights
    with `manual_step_losses` (what `train_sae(..., n_steps=3, init=False)` does) on a copy; cases: a random batch,
    a batch of one, all zeros.
    """
    def body() -> str | None:
        g = torch.Generator().manual_seed(2)
        cases = [("a batch of 16", torch.randn(16, 8, generator=g) * 2),
                 ("a batch of one", torch.randn(1, 8, generator=g) * 2),
                 ("an all-zero batch", torch.zeros(4, 8))]
        l1_coef, lr = 0.3, 1e-2
        for name, x in cases:
            sae = _random_sae(seed=3)
            ref = copy.deepcopy(sae)
            want_losses = manual_step_losses(ref, x, l1_coef, lr, n_steps=3)
            variants = _variant_losses(sae, x, l1_coef)
            optimizer = torch.optim.Adam(sae.parameters(), lr=lr)
            given = x.clone()
            got = [_invoke(training_step, sae, optimizer, given, l1_coef) for _ in range(3)]
            if not torch.equal(given, x):
                return ("your step edited the batch x in place (e.g. x -= sae.pre_bias); the caller's tensor "
                        "changed. Compute x - sae.pre_bias into a new tensor")
            if any(v is None for v in got):
                return "your step returned None; return the loss (loss.item() or the loss tensor)"
            got = [report.as_float(v) for v in got]
            if abs(got[0] - want_losses[0]) > 1e-4 * max(1.0, abs(want_losses[0])):
                for key, value in variants.items():
                    if abs(got[0] - value) <= 1e-4 * max(1.0, abs(value)):
                        return f"{STEP_HINTS[key]} ({name})"
                return (f"on {name} your first loss is {got[0]:.5g}; train_sae's is {want_losses[0]:.5g}. "
                        "loss = (x_hat - x).pow(2).sum(-1).mean() + l1_coef * latents.sum(-1).mean()")
            norms = sae.decoder.weight.norm(dim=0)
            if not torch.allclose(norms, torch.ones_like(norms), atol=1e-4):
                return ("forgot to renormalise: after the optimiser step, divide every decoder column by its norm "
                        "(W = sae.decoder.weight; W.div_(W.norm(dim=0, keepdim=True)) under torch.no_grad())")
            got_t, want_t = torch.tensor(got), torch.tensor(want_losses)
            if not torch.allclose(got_t, want_t, rtol=1e-4, atol=1e-5):
                if abs(got[1] - got[0]) <= 1e-7 * max(1.0, abs(got[0])):
                    return ("your loss never changes from step to step: call loss.backward() and then "
                            "optimizer.step()")
                no_zero_grad = manual_step_losses(_random_sae(seed=3), x, l1_coef, lr, 3, zero_grad=False)
                if torch.allclose(got_t, torch.tensor(no_zero_grad), rtol=1e-4, atol=1e-5):
                    return ("the first step matches but later ones do not: call optimizer.zero_grad() before "
                            "loss.backward(), or gradients add up across steps")
                return (f"on {name} your losses over three steps are {[round(v, 5) for v in got]}; train_sae's are "
                        f"{[round(v, 5) for v in want_losses]}. Did you call loss.backward() and optimizer.step()?")
            for p_got, p_want, pname in zip(sae.parameters(), ref.parameters(), ("pre_bias", "encoder", "latent_bias",
                                                                                  "decoder")):
                if not torch.allclose(p_got, p_want, rtol=1e-4, atol=1e-5):
                    return (f"on {name} the losses match but {pname} ends up different from train_sae's; normalise "
                            "the decoder columns (dim=0: one norm per latent) after optimizer.step()")
        return None

    return report.check("check_training_step", body)


# --- exercise 3: "high_loss" resampling --------------------------------------------------------------------
@torch.no_grad()
def resample_by_hand(sae: SAE, dead: torch.Tensor, x: torch.Tensor, seed: int, errors_fn: Callable | None = None,
                     direction_fn: Callable | None = None, enc_scale: bool = True, zero_bias: bool = True) -> SAE:
    """A copy of `sae` after "high_loss" resampling of the `dead` latents, written out from the weights: the check's
    reference, or (with one argument changed) one usual mistake."""
    s = copy.deepcopy(sae)
    idx = dead.nonzero().squeeze(1)
    if len(idx) == 0:
        return s
    x_hat = reconstruct_by_hand(s, x)
    err = errors_fn(x, x_hat, s) if errors_fn else (x - x_hat).pow(2).sum(-1)
    probs = err if err.sum() > 0 else torch.ones_like(err)
    g = torch.Generator().manual_seed(seed)
    picks = torch.multinomial(probs, len(idx), replacement=len(idx) > len(x), generator=g)
    d = direction_fn(x[picks], s) if direction_fn else F.normalize(x[picks] - s.pre_bias, dim=-1)
    scale = 0.2 * s.encoder.weight[~dead].norm(dim=1).mean() if enc_scale else 1.0
    s.decoder.weight[:, idx] = d.T
    s.encoder.weight[idx] = d * scale
    if zero_bias:
        s.latent_bias[idx] = 0.0
    s.stats_last_nonzero[idx] = 0
    return s


def _resample_variants(sae: SAE, dead: torch.Tensor, x: torch.Tensor, seed: int) -> dict[str, SAE]:
    """The result of each usual mistake, on copies of `sae`."""
    def run(**mistake: Any) -> SAE:
        return resample_by_hand(sae, dead, x, seed, **mistake)

    return {
        "uniform": run(errors_fn=lambda x, x_hat, s: torch.ones(len(x))),
        "norm_not_squared": run(errors_fn=lambda x, x_hat, s: (x - x_hat).norm(dim=-1)),
        "error_no_bias": run(errors_fn=lambda x, x_hat, s: (x - (x_hat - s.pre_bias)).pow(2).sum(-1)),
        "direction_no_bias": run(direction_fn=lambda xp, s: F.normalize(xp, dim=-1)),
        "not_normalised": run(direction_fn=lambda xp, s: xp - s.pre_bias),
        "normalised_wrong_axis": run(direction_fn=lambda xp, s: F.normalize(xp - s.pre_bias, dim=0)),
        "encoder_unscaled": run(enc_scale=False),
        "bias_kept": run(zero_bias=False),
    }


RESAMPLE_HINTS = {
    "uniform": "you drew the inputs uniformly; draw them with probability proportional to their squared "
               "reconstruction error: torch.multinomial(errors, n_dead, ...)",
    "norm_not_squared": "your draw uses the error's norm; use the SQUARED error, (x - x_hat).pow(2).sum(-1)",
    "error_no_bias": "missing bias in the error: x_hat = sae.decoder(latents) + sae.pre_bias",
    "direction_no_bias": "missing bias: the new direction is the input minus pre_bias, normalised: "
                         "F.normalize(x[picks] - sae.pre_bias, dim=-1)",
    "not_normalised": "forgot to renormalise: the new decoder columns must have unit norm "
                      "(F.normalize(x[picks] - sae.pre_bias, dim=-1))",
    "normalised_wrong_axis": "wrong axis: normalise each chosen input on its own (dim=-1), not across the draws (dim=0)",
    "encoder_unscaled": "the new encoder rows must be the direction times 0.2 x the mean norm of the LIVE encoder "
                        "rows (sae.encoder.weight[~dead].norm(dim=1).mean())",
    "bias_kept": "set the revived latents' latent_bias to 0 (an old negative bias could keep them silent)",
}


def _same(a: SAE, b: SAE, atol: float = 1e-5) -> bool:
    return all(torch.allclose(p, q, atol=atol) for p, q in zip(a.parameters(), b.parameters())) and \
        torch.equal(a.stats_last_nonzero, b.stats_last_nonzero)


def check_resample_high_loss(resample: Callable[[SAE, torch.Tensor, torch.Tensor, int], Any]) -> bool:
    """Check `resample(sae, dead, x, seed)`: what `resample_dead_latents(sae, None, dead, x, "high_loss", seed)` does.

    Cases: several dead latents, a batch of one (every draw picks it), one latent that never fires, none dead,
    and an all-zero batch.
    """
    def body() -> str | None:
        g = torch.Generator().manual_seed(4)
        x = torch.randn(12, 8, generator=g) * 2
        some = torch.zeros(32, dtype=torch.bool)
        some[[3, 10, 17, 30]] = True
        one = torch.zeros(32, dtype=torch.bool)
        one[5] = True
        cases = [("4 dead latents", some, x), ("a batch of one", some, x[:1]), ("one latent that never fires", one, x),
                 ("no dead latent", torch.zeros(32, dtype=torch.bool), x), ("an all-zero batch", some, torch.zeros(6, 8))]
        for name, dead, batch in cases:
            sae = _random_sae(seed=5)
            sae.stats_last_nonzero.fill_(7)
            s_ref, s_got = resample_by_hand(sae, dead, batch, seed=11), copy.deepcopy(sae)
            given = batch.clone()
            _invoke(resample, s_got, dead.clone(), given, 11)
            if not torch.equal(given, batch):
                return ("you edited the batch x in place (e.g. x -= sae.pre_bias); the caller's activations changed. "
                        "Compute x - sae.pre_bias into a new tensor")
            if _same(s_got, s_ref):
                continue
            if not dead.any():
                return "with no dead latent nothing may change; return early when dead.sum() == 0"
            live = ~dead
            if not (torch.allclose(s_got.decoder.weight[:, live], sae.decoder.weight[:, live])
                    and torch.allclose(s_got.encoder.weight[live], sae.encoder.weight[live])):
                return ("you changed live latents: only the dead ones get new directions. The decoder column of "
                        "latent i is W_dec[:, i] (dim 1), its encoder row is W_enc[i]")
            for key, variant in _resample_variants(sae, dead, batch, seed=11).items():
                if _same(s_got, variant):
                    return f"{RESAMPLE_HINTS[key]} ({name})"
            if not torch.equal(s_got.stats_last_nonzero, s_ref.stats_last_nonzero):
                return "reset the revived latents' steps-since-fired counter: sae.stats_last_nonzero[idx] = 0"
            if torch.allclose(s_got.decoder.weight, s_ref.decoder.weight, atol=1e-5):
                return ("the decoder matches but the encoder rows or latent biases do not: encoder row = direction x "
                        "0.2 x mean live encoder-row norm, latent_bias = 0")
            return (f"on {name} the new decoder columns differ from resample_dead_latents's. Draw with "
                    "torch.multinomial(errors, n_dead, replacement=n_dead > len(x), generator="
                    "torch.Generator().manual_seed(seed)) and use x[picks] - sae.pre_bias, normalised")
        return None

    return report.check("check_resample_high_loss", body)
