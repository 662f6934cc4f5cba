"""Notebook 01's exercise checks, in the course's one-line style (`saelab.checks.report`).

    check_topk          keep the k largest pre-activations of each row (then ReLU), zero the rest
    check_sae_forward   subtract pre_bias, encode, ReLU or TopK, decode, add pre_bias back
    check_sae_loss      ||x - x_hat||^2 summed over d_model + l1_coef * ||latents||_1, averaged over the batch
    check_l0, check_fvu the two proxies we judge SAEs by when there are no true features

Each check runs the student's function on several inputs, edge cases included (k larger than the width, a batch of
one, an all-zero input, a latent that never fires), against a reference written out here from the SAE's weights
(never `sae(x)`, `saelab.sae` or `saelab.metrics`, which a solution may call: a broken `SAE.decode` must not pass),
and names the usual mistake when they differ.
"""
from __future__ import annotations

import copy
from typing import Any, Callable

import torch
import torch.nn.functional as F

from saelab.checks import report
from saelab.sae import SAE

SHAPE_HINT = ("encoder.weight is [n_latents, d_model] and W_dec is [d_model, n_latents]: encode with "
              "(x - pre_bias) @ sae.encoder.weight.T, decode with latents @ sae.W_dec.T")


def _close(got: Any, want: torch.Tensor, atol: float = 1e-5) -> bool:
    """Same shape and values (a float tolerance for float32 matmuls)."""
    return (torch.is_tensor(got) and got.shape == want.shape
            and torch.allclose(got.detach().float(), want.float(), atol=atol, rtol=1e-4))


def _show(t: torch.Tensor) -> str:
    """A small tensor as a rounded list, a large one by its shape."""
    return str([[round(v, 3) for v in row] for row in t.tolist()]) if t.numel() <= 16 else f"a {list(t.shape)} tensor"


def _tensor_problem(got: Any, want: torch.Tensor, what: str) -> str | None:
    """The usual type and shape mistakes, or None when `got` is a tensor shaped like `want`."""
    if got is None:
        return f"your function returned None. Did you forget to `return` {what}?"
    if isinstance(got, tuple):
        return f"you returned a tuple; return one tensor ({what}) shaped like {list(want.shape)}."
    if not torch.is_tensor(got):
        return f"expected a tensor ({what}), got {type(got).__name__}."
    if got.shape != want.shape:
        return f"expected {what} of shape {list(want.shape)}, got {list(got.shape)}."
    return None


# --- TopK -----------------------------------------------------------------------------------------
def _scatter_topk(pre_acts: torch.Tensor, k: int, largest: bool = True, dim: int = -1, relu: bool = True
                  ) -> torch.Tensor:
    """The k largest (or smallest) entries along `dim`, scattered into zeros; used to recognise mistakes."""
    values, indices = pre_acts.topk(min(k, pre_acts.shape[dim]), dim=dim, largest=largest)
    return torch.zeros_like(pre_acts).scatter(dim, indices, F.relu(values) if relu else values)


@torch.no_grad()
def _topk_hint(got: torch.Tensor, pre_acts: torch.Tensor, k: int) -> str:
    """Name the mistake behind a TopK output of the right shape but the wrong values."""
    if _close(got, _scatter_topk(pre_acts, k, largest=False)) or _close(got, _scatter_topk(pre_acts, k, False,
                                                                                              relu=False)):
        return "you kept the k SMALLEST values. Use pre_acts.topk(k, dim=-1) (largest=True is the default)."
    if pre_acts.shape[0] >= k and (_close(got, _scatter_topk(pre_acts, k, dim=0))
                                   or _close(got, _scatter_topk(pre_acts, k, dim=0, relu=False))):
        return ("wrong axis: you picked the k largest of each latent across the batch (dim=0). "
                "Each input keeps its own k latents: topk along dim=-1.")
    if _close(got, _scatter_topk(pre_acts, k, relu=False)):
        return ("negative values survived: you forgot the ReLU after TopK. A latent cannot fire negatively; "
                "apply torch.relu to the k kept values.")
    if _close(got, F.relu(pre_acts)) and k < pre_acts.shape[-1]:
        return f"that is a plain ReLU: every positive pre-activation survived. Keep only the k = {k} largest per row."
    kept = (got != 0).sum(dim=-1)
    if (kept > k).any():
        return (f"with k = {k} a row kept {int(kept.max())} non-zero latents. Keep exactly the k largest per row "
                f"(topk along dim=-1) and zero everything else (a threshold keeps ties too).")
    want = _scatter_topk(pre_acts, k)
    return (f"for pre_acts = {_show(pre_acts)} and k = {k} expected {_show(want)}, "
            f"got {_show(got)}. Take topk along dim=-1, ReLU the values, scatter them into zeros.")


def _same_topk(got: torch.Tensor, want: torch.Tensor, pre_acts: torch.Tensor) -> bool:
    """Right up to ties: the same kept values in each row, each taken from its own place in pre_acts."""
    if _close(got, want):
        return True
    got = got.detach().float()
    same_values = torch.allclose(got.sort(-1).values, want.sort(-1).values, atol=1e-6)
    return same_values and bool(((got == 0) | torch.isclose(got, pre_acts)).all())


def _topk_cases() -> list[tuple[str, torch.Tensor, int]]:
    """(what the case is, pre_acts, k): ordinary rows first, then the edge cases."""
    g = torch.Generator().manual_seed(0)
    pre = torch.tensor([[0.5, 3.0, 1.0, 2.0, 0.1], [4.0, 0.2, 0.3, 5.0, 0.4], [0.7, 0.6, 2.5, 0.1, 0.9]])
    never = torch.tensor([[0.9, -0.5, -9.0, -3.0], [-1.0, -2.0, -9.0, -0.1], [0.3, 0.8, -9.0, -4.0]])
    return [("a batch of 3", pre, 2), ("k = 1", pre, 1),
            ("rows with fewer than k positive pre-activations (latent 2 never fires)", never, 3),
            ("a batch of one", torch.randn(1, 8, generator=g), 3),
            ("rows with ties", torch.tensor([[2.0, 1.0, 2.0, 2.0, 0.5], [1.0, 3.0, 3.0, 0.2, 3.0]]), 2),
            ("an all-zero input", torch.zeros(3, 6), 2),
            ("k larger than the width", pre[:2], 7),
            ("a random [6, 50] batch", torch.randn(6, 50, generator=g), 7)]


def check_topk(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> bool:
    """Check `fn(pre_acts [batch, n_latents], k) -> latents [batch, n_latents]`: top k per row, then ReLU."""

    def body() -> str | None:
        for case, pre_acts, k in _topk_cases():
            want = _scatter_topk(pre_acts, k)
            try:
                got = report.call(fn, pre_acts, k)
            except RuntimeError as err:
                if k > pre_acts.shape[-1]:
                    return (f"{err}. With {case} (k = {k}, {pre_acts.shape[-1]} latents) every latent may stay: "
                            f"use min(k, pre_acts.shape[-1]).")
                raise
            problem = _tensor_problem(got, want, "the latents")
            if problem is not None:
                if torch.is_tensor(got) and got.shape == (pre_acts.shape[0], min(k, pre_acts.shape[-1])):
                    problem += " You returned only the top-k values: scatter them back into torch.zeros_like(pre_acts)."
                return f"{case}: {problem}"
            if not _same_topk(got, want, pre_acts):
                return f"{case}: {_topk_hint(got, pre_acts, k)}"
        return None

    return report.check("check_topk", body)


# --- the forward pass ----------------------------------------------------------------------------
def _random_sae(d_model: int, n_latents: int, k: int | None = None, seed: int = 0, silent: int | None = None) -> SAE:
    """A small SAE with random weights and non-zero biases (so a forgotten bias shows)."""
    g = torch.Generator().manual_seed(seed)
    sae = SAE(d_model, n_latents, "topk" if k else "relu", k=k, normalize=False)
    with torch.no_grad():
        sae.encoder.weight.copy_(torch.randn(n_latents, d_model, generator=g))
        sae.decoder.weight.copy_(F.normalize(torch.randn(d_model, n_latents, generator=g), dim=0))
        sae.pre_bias.copy_(torch.randn(d_model, generator=g) * 2)
        sae.latent_bias.copy_(torch.randn(n_latents, generator=g) * 0.5)
        if silent is not None:  # a latent that never fires: its bias keeps it far below zero
            sae.latent_bias[silent] = -100.0
    return sae


def _forward_cases() -> list[tuple[str, SAE, torch.Tensor]]:
    """(what the case is, SAE, x): a square SAE first, so a missing transpose is named instead of crashing."""
    g = torch.Generator().manual_seed(1)
    return [("a ReLU SAE with 6 latents for 6 dimensions", _random_sae(6, 6, seed=1), torch.randn(4, 6, generator=g)),
            ("a ReLU SAE with 12 latents for 5 dimensions", _random_sae(5, 12, seed=2), torch.randn(7, 5, generator=g)),
            ("a TopK SAE (k = 3)", _random_sae(5, 12, k=3, seed=3), torch.randn(7, 5, generator=g)),
            ("a batch of one", _random_sae(5, 12, k=3, seed=4), torch.randn(1, 5, generator=g)),
            ("an all-zero input", _random_sae(5, 12, seed=5), torch.zeros(3, 5)),
            ("a TopK SAE whose latent 0 never fires", _random_sae(4, 6, k=5, seed=6, silent=0),
             torch.randn(5, 4, generator=g) * 0.1)]


def _forward_pieces(sae: SAE, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The right intermediate values and the usual wrong ones, computed from the SAE's weights."""
    W_enc, b_enc, W_dec, b_pre = sae.encoder.weight, sae.latent_bias, sae.W_dec, sae.pre_bias
    pre = (x - b_pre) @ W_enc.T + b_enc
    return {"pre": pre, "pre_no_sub": x @ W_enc.T + b_enc, "pre_plus": (x + b_pre) @ W_enc.T + b_enc,
            "pre_no_b_enc": (x - b_pre) @ W_enc.T, "pre_twice": (x - 2 * b_pre) @ W_enc.T + b_enc,
            "pre_tied": (x - b_pre) @ W_dec + b_enc}


@torch.no_grad()
def reference_forward(sae: SAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(pre_acts, latents, x_hat) written out from the weights of a ReLU or TopK SAE without normalisation."""
    pre = (x - sae.pre_bias) @ sae.encoder.weight.T + sae.latent_bias
    latents = _scatter_topk(pre, sae.k) if sae.activation == "topk" else F.relu(pre)
    return pre, latents, latents @ sae.decoder.weight.T + sae.pre_bias


@torch.no_grad()
def _pre_acts_hint(got: torch.Tensor, sae: SAE, x: torch.Tensor) -> str:
    """Name the mistake behind wrong pre-activations."""
    p = _forward_pieces(sae, x)
    W_enc, b_enc, b_pre = sae.encoder.weight, sae.latent_bias, sae.pre_bias
    if _close(got, p["pre_no_sub"]):
        return "missing bias: subtract pre_bias from x BEFORE encoding, (x - sae.pre_bias) @ sae.encoder.weight.T."
    if _close(got, p["pre_plus"]):
        return "the bias has the wrong sign before encoding: subtract pre_bias (x - sae.pre_bias), do not add it."
    if _close(got, p["pre_twice"]):
        return "double-counted bias: pre_bias is subtracted once, before encoding."
    if _close(got, p["pre_no_b_enc"]):
        return "the encoder's own bias is missing: add sae.latent_bias after multiplying by the encoder."
    if W_enc.shape[0] == W_enc.shape[1] and _close(got, (x - b_pre) @ W_enc + b_enc):
        return f"wrong axis: you multiplied by encoder.weight untransposed. {SHAPE_HINT}."
    if _close(got, p["pre_tied"]):
        return "you encoded with the decoder's weights. Encode with sae.encoder.weight, decode with sae.W_dec."
    if _close(got, reference_forward(sae, x)[1]):
        return "pre_acts is the value BEFORE the activation: return W_enc (x - pre_bias) + latent_bias there."
    return ("wrong pre-activations. pre_acts = (x - sae.pre_bias) @ sae.encoder.weight.T + sae.latent_bias, "
            "shape [batch, n_latents].")


@torch.no_grad()
def _latents_hint(got: torch.Tensor, sae: SAE, pre: torch.Tensor) -> str:
    """Name the mistake behind wrong latents (the pre-activations were right)."""
    if sae.activation == "relu":
        if _close(got, pre):
            return "the latents are the pre-activations: you forgot the ReLU (torch.relu(pre_acts))."
        return "for a ReLU SAE the latents are torch.relu(pre_acts)."
    if _close(got, _scatter_topk(pre, sae.k, relu=False)):
        return "negative latents survived: you forgot the ReLU after TopK (torch.relu on the k kept values)."
    if _close(got, _scatter_topk(pre, sae.k, largest=False)) or _close(got, _scatter_topk(pre, sae.k, False,
                                                                                          relu=False)):
        return "you kept the k SMALLEST pre-activations; TopK keeps the largest (pre_acts.topk(k, dim=-1))."
    if _close(got, F.relu(pre)):
        return (f"this SAE is TopK (sae.activation == 'topk'): keep only the sae.k = {sae.k} largest "
                f"pre-activations per input (your my_topk), not every positive one.")
    return f"for a TopK SAE the latents are my_topk(pre_acts, sae.k) (k = {sae.k}); check that exercise first."


@torch.no_grad()
def _x_hat_hint(got: torch.Tensor, sae: SAE, pre: torch.Tensor, latents: torch.Tensor) -> str:
    """Name the mistake behind a wrong reconstruction (the latents were right)."""
    W_enc, W_dec, b_pre = sae.encoder.weight, sae.W_dec, sae.pre_bias
    decoded = latents @ W_dec.T
    if _close(got, decoded):
        return "missing bias: add pre_bias back after decoding, x_hat = latents @ sae.W_dec.T + sae.pre_bias."
    if _close(got, decoded + 2 * b_pre):
        return "double-counted bias: pre_bias is added back once, after decoding."
    if _close(got, decoded - b_pre):
        return "the bias has the wrong sign after decoding: ADD pre_bias back (it was subtracted before encoding)."
    if W_dec.shape[0] == W_dec.shape[1] and _close(got, latents @ W_dec + b_pre):
        return f"wrong axis: you multiplied by W_dec untransposed. {SHAPE_HINT}."
    if _close(got, latents @ W_enc + b_pre):
        return "you decoded with the encoder's weights (tied weights). Decode with sae.W_dec: latents @ sae.W_dec.T."
    if _close(got, pre @ W_dec.T + b_pre):
        return "you decoded the pre-activations; decode the latents (after ReLU / TopK)."
    return "wrong reconstruction. x_hat = latents @ sae.W_dec.T + sae.pre_bias, shape [batch, d_model]."


def check_sae_forward(fn: Callable[[SAE, torch.Tensor], tuple]) -> bool:
    """Check `fn(sae, x [batch, d_model]) -> (pre_acts, latents, x_hat)` against `SAE.forward`."""

    def body() -> str | None:
        for case, sae, x in _forward_cases():
            want = reference_forward(sae, x)
            try:
                got = report.call(fn, copy.deepcopy(sae), x)
            except RuntimeError as err:
                if "cannot be multiplied" in str(err) or "size of tensor" in str(err):
                    return f"{case}: {err}. {SHAPE_HINT}."
                raise
            if not isinstance(got, (tuple, list)) or len(got) != 3:
                return (f"return three tensors, (pre_acts, latents, x_hat); got "
                        f"{type(got).__name__ if not isinstance(got, (tuple, list)) else f'{len(got)} values'}.")
            for name, value, right in zip(("pre_acts", "latents", "x_hat"), got, want):
                problem = _tensor_problem(value, right, name)
                if problem is not None:
                    return f"{case}: {problem} {SHAPE_HINT}." if "shape" in problem else f"{case}: {problem}"
            pre, latents, x_hat = (v.detach() for v in got)
            if not _close(pre, want[0]):
                return f"{case}: {_pre_acts_hint(pre, sae, x)}"
            if not _close(latents, want[1]):
                return f"{case}: {_latents_hint(latents, sae, want[0])}"
            if not _close(x_hat, want[2]):
                return f"{case}: {_x_hat_hint(x_hat, sae, want[0], want[1])}"
        return None

    return report.check("check_sae_forward", body)


# --- the ReLU + L1 loss -----------------------------------------------------------------------------
# Each part of the loss, done right and in the usual wrong ways; a wrong answer is matched against every mix.
_MSE = {"right": (None, lambda e: e.pow(2).sum(-1).mean()),
        "mean over d_model": ("wrong axis in the reconstruction error: F.mse_loss and .mean() average over "
                              "d_model too; sum the squared error over d_model (dim=-1), then average over the "
                              "batch", lambda e: e.pow(2).mean()),
        "sum over the batch": ("the reconstruction error is summed over the batch; average it over the batch "
                               "(.sum(-1).mean()) so the loss does not grow with the batch size",
                               lambda e: e.pow(2).sum()),
        "not squared": ("the reconstruction error is not squared: use ((x - x_hat) ** 2).sum(-1), not the norm",
                        lambda e: e.norm(dim=-1).mean())}
_L1 = {"right": (None, lambda pre, c: c.abs().sum(-1).mean()),
       "pre-activations": ("L1 on the pre-activations: the penalty is on the latents AFTER the ReLU "
                           "(negative pre-activations are already silent and cost nothing)",
                           lambda pre, c: pre.abs().sum(-1).mean()),
       "pre-activations, signed": ("L1 on the pre-activations: the penalty is on the latents AFTER the ReLU",
                                   lambda pre, c: pre.sum(-1).mean()),
       "mean over latents": ("wrong axis in the L1 term: sum |latents| over the latents (dim=-1), then average "
                             "over the batch; .mean() over everything divides by n_latents",
                             lambda pre, c: c.abs().mean()),
       "sum over the batch": ("the L1 term is summed over the batch; average it over the batch",
                              lambda pre, c: c.abs().sum()),
       "squared": ("that is an L2 penalty (squares); L1 is the sum of absolute values, which pushes latents to "
                   "exactly 0", lambda pre, c: c.pow(2).sum(-1).mean())}
_COEF = {"right": None, "no coefficient": "the L1 term is not multiplied by l1_coef",
         "no L1 term": "the sparsity penalty is missing: add l1_coef * the L1 norm of the latents"}


def _loss_cases() -> list[tuple[str, SAE, torch.Tensor, float]]:
    """(what the case is, SAE, x, l1_coef)."""
    g = torch.Generator().manual_seed(2)
    return [("a batch of 8", _random_sae(5, 12, seed=7), torch.randn(8, 5, generator=g), 0.3),
            ("a batch of one", _random_sae(5, 12, seed=8), torch.randn(1, 5, generator=g), 0.3),
            ("an all-zero input", _random_sae(5, 12, seed=9), torch.zeros(4, 5), 2.0),
            ("an SAE whose latent 0 never fires", _random_sae(5, 12, seed=10, silent=0),
             torch.randn(6, 5, generator=g), 0.7)]


def _loss_hint(got: float, sae: SAE, x: torch.Tensor, l1_coef: float) -> str:
    """Match a wrong loss against every mix of wrong parts; name the wrong parts of the closest match."""
    pre, latents, x_hat = reference_forward(sae, x)
    error = x - x_hat
    for mse_name, (mse_hint, mse) in _MSE.items():
        for l1_name, (l1_hint, l1) in _L1.items():
            for coef_name, coef_hint in _COEF.items():
                coef = {"right": l1_coef, "no coefficient": 1.0, "no L1 term": 0.0}[coef_name]
                value = (mse(error) + coef * l1(pre, latents)).item()
                if abs(value - got) <= 1e-4 * max(1.0, abs(value)):
                    hints = [h for h in (mse_hint, l1_hint if coef_name != "no L1 term" else None, coef_hint) if h]
                    if hints:
                        return "; ".join(hints) + "."
    want = _reference_loss(sae, x, l1_coef)
    return (f"expected {want:.4g}, got {got:.4g}. loss = ((x - x_hat) ** 2).sum(-1).mean() "
            f"+ l1_coef * latents.abs().sum(-1).mean().")


def _reference_loss(sae: SAE, x: torch.Tensor, l1_coef: float) -> float:
    """The loss `saelab.training.train_sae` minimises for a ReLU SAE (see its module docstring), from the weights."""
    _, latents, x_hat = reference_forward(sae, x)
    return ((x - x_hat).pow(2).sum(-1).mean() + l1_coef * latents.abs().sum(-1).mean()).item()


def check_sae_loss(fn: Callable[[SAE, torch.Tensor, float], torch.Tensor]) -> bool:
    """Check `fn(sae, x [batch, d_model], l1_coef) -> loss`: a one-element tensor that gradients flow through."""

    def body() -> str | None:
        for case, sae, x, l1_coef in _loss_cases():
            want = _reference_loss(sae, x, l1_coef)
            student_sae = copy.deepcopy(sae)
            got = report.call(fn, student_sae, x, l1_coef)
            if got is None:
                return "your function returned None. Did you forget to `return` the loss?"
            if not torch.is_tensor(got):
                return (f"return the loss as a tensor, not a {type(got).__name__}: loss.backward() needs the "
                        f"tensor (do not call .item()).")
            if got.numel() != 1:
                return (f"{case}: the loss has shape {list(got.shape)}; reduce it to one number: sum over "
                        f"d_model (and over latents for L1), then average over the batch.")
            if not got.requires_grad:
                return (f"{case}: the loss carries no gradient, so loss.backward() cannot train the SAE. "
                        f"Compute it from sae(x) without torch.no_grad(), .detach() or .item().")
            value = got.item()
            if abs(value - want) > 1e-4 * max(1.0, abs(want)):
                return f"{case}: {_loss_hint(value, sae, x, l1_coef)}"
        return None

    return report.check("check_sae_loss", body)


# --- L0 and FVU ------------------------------------------------------------------------------------
def check_l0(fn: Callable[[torch.Tensor], float]) -> bool:
    """Check `fn(latents [n_inputs, n_latents]) -> float`: mean number of non-zero latents per input."""

    def body() -> str | None:
        # latent 2 never fires
        latents = torch.tensor([[0.0, 1.5, 0.0, 2.0], [0.0, 0.0, 0.0, 0.7], [3.0, 0.2, 0.0, 0.0]])
        cases = [("3 inputs, latent 2 never fires", latents), ("a batch of one", latents[:1]),
                 ("all latents off", torch.zeros(2, 4))]
        for case, lat in cases:
            got, want = report.as_float(report.call(fn, lat)), (lat != 0).sum(-1).float().mean().item()
            if abs(got - want) < 1e-5:
                continue
            count = float((lat != 0).sum())
            if abs(got - count) < 1e-5 and lat.shape[0] > 1:
                return f"got {got:g}: the total number of non-zeros. L0 is per input: divide by the number of rows."
            if abs(got - (lat != 0).sum(0).float().mean().item()) < 1e-5:
                return (f"got {got:g}: wrong axis, that averages over inputs for each latent (dim=0). Count "
                        f"non-zeros along dim=-1 (per input), then average over inputs.")
            if abs(got - (lat != 0).float().mean().item()) < 1e-5:
                return (f"got {got:g}: the fraction of non-zero entries. L0 counts them per input: .sum(-1), "
                        f"then .mean().")
            if abs(got - lat.abs().sum(-1).mean().item()) < 1e-4:
                return f"got {got:g}: that is the mean L1 norm (sum of values). L0 counts entries: (latents != 0)."
            return f"{case}: expected {want:g}, got {got:g}. Hint: (latents != 0).sum(-1).float().mean()"
        return None

    return report.check("check_l0", body)


def check_fvu(fn: Callable[[torch.Tensor, torch.Tensor], float]) -> bool:
    """Check `fn(x, x_hat) -> float`: sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 (mean over inputs)."""

    def body() -> str | None:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(20, 4, generator=g) + torch.tensor([3.0, -2.0, 1.0, 5.0])  # far from zero mean
        cases = [("a noisy reconstruction", x, x + 0.5 * torch.randn(20, 4, generator=g)),
                 ("x_hat = the mean input (FVU must be 1)", x, x.mean(0, keepdim=True).expand_as(x)),
                 ("a perfect reconstruction (FVU must be 0)", x, x.clone())]
        for case, x_in, x_hat in cases:
            got = report.as_float(report.call(fn, x_in, x_hat))
            want = ((x_in - x_hat).pow(2).sum() / (x_in - x_in.mean(0)).pow(2).sum()).item()
            if abs(got - want) < 1e-4 * max(1, abs(want)):
                continue
            err = (x_in - x_hat).pow(2).sum()
            if abs(got - (err / x_in.pow(2).sum()).item()) < 1e-4:
                return (f"{case}: got {got:.4g}, expected {want:.4g}. The denominator must be the variance around "
                        f"the mean, sum ||x - x.mean(dim=0)||^2, not sum ||x||^2.")
            if abs(got - (1 - want)) < 1e-4:
                return (f"{case}: got {got:.4g} = 1 - FVU: that is the variance EXPLAINED. Return the unexplained "
                        f"fraction.")
            if abs(got - (err / (x_in - x_in.mean()).pow(2).sum()).item()) < 1e-4:
                return (f"{case}: got {got:.4g}: wrong axis, you subtracted one overall mean; subtract the mean "
                        f"over inputs for each dimension, x.mean(dim=0).")
            return (f"{case}: expected {want:.4g}, got {got:.4g}. "
                    f"FVU = ((x - x_hat)**2).sum() / ((x - x.mean(dim=0))**2).sum()")
        return None

    return report.check("check_fvu", body)


def check_l0_and_fvu(l0_fn: Callable[[torch.Tensor], float],
                     fvu_fn: Callable[[torch.Tensor, torch.Tensor], float]) -> bool:
    """Run `check_l0` and `check_fvu` (one line each); True only when both are right."""
    return all([check_l0(l0_fn), check_fvu(fvu_fn)])
