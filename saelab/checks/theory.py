"""Checks for the notebook exercises: run the student's function, explain a wrong answer, return True/False.

A check never raises: an exception from the student's code is caught and explained in one message.
"""
from __future__ import annotations

import traceback
from typing import Any, Callable

import torch

from saelab import metrics
from saelab.sae import topk_activation


class _NotDone(Exception):
    """The student's function still raises NotImplementedError."""


def _call(fn: Callable, *args: Any) -> Any:
    """Call the student's function on copies of the inputs; turn its exceptions into a short story."""
    try:
        return fn(*[a.clone() if torch.is_tensor(a) else a for a in args])
    except NotImplementedError:
        raise _NotDone() from None
    except Exception as err:  # the student's bug, told in one line with where it happened
        frames = [f for f in traceback.extract_tb(err.__traceback__)[1:]
                  if "site-packages" not in f.filename and "saelab" not in f.filename]
        where = f" (line {frames[-1].lineno}: `{(frames[-1].line or '').strip()}`)" if frames else ""
        raise RuntimeError(f"your function raised {type(err).__name__}: {err}{where}") from None


def _report(name: str, problem: str | None) -> bool:
    """Print ✓ or ✗ with the explanation; return whether the answer was right."""
    if problem is None:
        print(f"✓ {name}: correct")
        return True
    print(f"✗ {name}: {problem}")
    return False


def _as_float(value: Any) -> float:
    if torch.is_tensor(value):
        if value.numel() != 1:
            raise ValueError(f"expected one number, got a tensor of shape {tuple(value.shape)}; "
                             f"average it down to a single value")
        return value.item()
    return float(value)


def _checked(name: str, body: Callable[[], str | None]) -> bool:
    """Run a check body; NotImplementedError and crashes become friendly messages."""
    try:
        problem = body()
    except _NotDone:
        problem = "not done yet: replace `raise NotImplementedError` with your code, then run this cell again."
    except (RuntimeError, ValueError, TypeError) as err:
        problem = str(err)
    return _report(name, problem)


# --- TopK ----------------------------------------------------------------------------------------
def check_topk(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> bool:
    """Check `fn(pre_acts [batch, n_latents], k) -> latents [batch, n_latents]`: top k per row, then ReLU."""

    def body() -> str | None:
        pre = torch.tensor([[0.5, 3.0, 1.0, 2.0, 0.1], [4.0, 0.2, 0.3, 5.0, 0.4]])
        mixed = torch.tensor([[0.9, -0.5, -0.2, -3.0], [-1.0, -2.0, -0.1, -4.0]])
        cases = [(pre, 2), (pre, 1), (mixed, 2), (torch.randn(6, 50, generator=torch.Generator().manual_seed(0)), 7)]
        for x, k in cases:
            got = _call(fn, x, k)
            want = topk_activation(x, k)
            if isinstance(got, tuple):
                return ("you returned a tuple (values, indices?). Return one tensor shaped like pre_acts, "
                        "with the top-k values in place and zeros elsewhere.")
            if not torch.is_tensor(got):
                return f"expected a tensor, got {type(got).__name__}. Did you forget to `return` the result?"
            if got.shape != x.shape:
                return (f"expected shape {tuple(x.shape)} (same as pre_acts), got {tuple(got.shape)}. "
                        f"Scatter the top-k values back into a tensor of zeros: torch.zeros_like(pre_acts).scatter(...)")
            if torch.allclose(got, want):
                continue
            kept = (got != 0).sum(dim=-1)
            smallest = torch.zeros_like(x).scatter(-1, x.topk(k, dim=-1, largest=False).indices,
                                                   x.topk(k, dim=-1, largest=False).values)
            if torch.allclose(got, smallest):
                return "you kept the k SMALLEST values. Use pre_acts.topk(k, dim=-1) (largest=True is the default)."
            if (kept > k).any():
                return (f"with k={k} some rows keep {int(kept.max())} non-zero latents. "
                        f"Keep exactly the k largest per row (topk along dim=-1) and zero everything else.")
            if torch.allclose(got.clamp_min(0), want) and (got < 0).any():
                return ("negative values survived. In a TopK SAE the kept values still go through ReLU: "
                        "a latent cannot fire negatively. Apply torch.relu to the top-k values.")
            return (f"for pre_acts={x.tolist() if x.numel() <= 10 else 'a random [6, 50] tensor'} and k={k} "
                    f"expected {want.tolist() if want.numel() <= 10 else 'the 7 largest per row'}, got "
                    f"{got.tolist() if got.numel() <= 10 else 'something else'}. Did you take topk along dim=-1?")
        return None

    return _checked("check_topk", body)


# --- L0 and FVU ------------------------------------------------------------------------------------
def check_l0(fn: Callable[[torch.Tensor], float]) -> bool:
    """Check `fn(latents [n_tokens, n_latents]) -> float`: mean number of non-zero latents per token."""

    def body() -> str | None:
        latents = torch.tensor([[0.0, 1.5, 0.0, 2.0], [0.0, 0.0, 0.0, 0.7], [3.0, 0.2, 0.1, 0.0]])
        got, want = _as_float(_call(fn, latents)), metrics.l0(latents)
        if abs(got - want) < 1e-5:
            return None
        if abs(got - 6) < 1e-5:
            return f"got {got}: the total number of non-zeros. L0 is per token: divide by the number of tokens (rows)."
        if abs(got - 1.5) < 1e-5:
            return (f"got {got}: that averages over tokens for each latent (dim=0). Count non-zeros along "
                    f"dim=-1 (per token), then average over tokens.")
        if abs(got - latents.sum(-1).mean().item()) < 1e-4:
            return f"got {got}: that is the mean L1 norm (sum of values). L0 counts entries: (latents != 0)."
        return f"for latents={latents.tolist()} expected {want:.4g}, got {got:.4g}. Hint: (latents != 0).sum(-1).float().mean()"

    return _checked("check_l0", body)


def check_fvu(fn: Callable[[torch.Tensor, torch.Tensor], float]) -> bool:
    """Check `fn(x, x_hat) -> float`: sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 (mean over tokens)."""

    def body() -> str | None:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(20, 4, generator=g) + torch.tensor([3.0, -2.0, 1.0, 5.0])  # far from zero mean
        x_hat = x + 0.5 * torch.randn(20, 4, generator=g)
        got, want = _as_float(_call(fn, x, x_hat)), metrics.fraction_variance_unexplained(x, x_hat)
        if abs(got - want) < 1e-4 * max(1, abs(want)):
            return None
        err = (x - x_hat).pow(2).sum()
        if abs(got - (err / x.pow(2).sum()).item()) < 1e-4:
            return (f"got {got:.4g}, expected {want:.4g}: the denominator must be the variance around the mean, "
                    f"sum ||x - x.mean(dim=0)||^2, not sum ||x||^2.")
        if abs(got - (1 - want)) < 1e-4:
            return f"got {got:.4g} = 1 - FVU: that is the variance EXPLAINED. Return the unexplained fraction."
        if abs(got - (err / (x - x.mean()).pow(2).sum()).item()) < 1e-4:
            return (f"got {got:.4g}: you subtracted one overall mean; subtract the mean over tokens for each "
                    f"dimension, x.mean(dim=0).")
        return (f"expected {want:.4g}, got {got:.4g}. FVU = ((x - x_hat)**2).sum() / ((x - x.mean(dim=0))**2).sum()")

    return _checked("check_fvu", body)


def check_l0_and_fvu(l0_fn: Callable[[torch.Tensor], float],
                     fvu_fn: Callable[[torch.Tensor, torch.Tensor], float]) -> bool:
    """Run `check_l0` and `check_fvu`; True only when both are right."""
    return all([check_l0(l0_fn), check_fvu(fvu_fn)])
