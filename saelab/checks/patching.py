"""Checks for notebook 03's exercises: each prints "Correct!" or what is wrong and how to fix it.

They never raise, so a notebook with an unfinished stub still runs top to bottom.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from saelab.patching import LogitDiff


def _report(ok: bool, message: str) -> None:
    print(("Correct! " if ok else "Not yet: ") + message)


def _call(fn: Callable, *args: Any) -> tuple[Any, str | None]:
    """fn(*args), or (None, what went wrong) for a stub or a student's bug."""
    try:
        return fn(*args), None
    except NotImplementedError:
        return None, "the function still raises NotImplementedError: replace the stub's body."
    except Exception as err:
        return None, f"your function raised {type(err).__name__}: {err}"


def check_logit_diff(fn: Callable[[torch.Tensor, list[int], list[int]], torch.Tensor]) -> None:
    """Check `fn(logits [batch, pos, d_vocab], positive_ids, negative_ids) -> [batch]`: logsumexp of the
    positive answers' logits minus logsumexp of the negative ones, at the last position."""
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 5, 20, generator=g) * 3
    pos, neg = [2, 7, 11], [4, 9]
    want = LogitDiff(tuple(pos), tuple(neg))(logits)
    got, problem = _call(fn, logits.clone(), list(pos), list(neg))
    if problem:
        return _report(False, problem)
    if not torch.is_tensor(got):
        return _report(False, f"return a tensor with one value per batch row; got {type(got).__name__}.")
    if got.shape != want.shape:
        hint = (" You averaged over the batch: keep one value per prompt." if got.dim() == 0 else
                " Did you forget to take the last position, logits[:, -1]?" if got.shape == (3, 5) else "")
        return _report(False, f"expected shape {tuple(want.shape)} (one value per batch row), got "
                              f"{tuple(got.shape)}.{hint}")
    got = got.detach().float()
    if torch.allclose(got, want, atol=1e-4):
        return _report(True, "your metric matches saelab.patching.LogitDiff.")
    last = logits[:, -1]
    first = LogitDiff(tuple(pos), tuple(neg))(logits[:, :1])
    if torch.allclose(got, -want, atol=1e-4):
        hint = "the sign is flipped: positive answers minus negative answers."
    elif torch.allclose(got, first, atol=1e-4):
        hint = "you read the first position; the next word is predicted at the last one, logits[:, -1]."
    elif torch.allclose(got, last[:, pos].sum(-1) - last[:, neg].sum(-1), atol=1e-4) or \
            torch.allclose(got, last[:, pos].mean(-1) - last[:, neg].mean(-1), atol=1e-4):
        hint = "combine each set with logsumexp (.logsumexp(-1)), not a sum or mean of logits."
    elif torch.allclose(got, last.log_softmax(-1)[:, pos].logsumexp(-1) - last.log_softmax(-1)[:, neg].logsumexp(-1),
                        atol=1e-4):
        return _report(True, "log-probabilities give the same difference as logits (the normaliser cancels).")
    else:
        hint = "take logits[:, -1], pick the columns of each answer set, logsumexp each, subtract."
    rounded = lambda t: [round(v, 3) for v in t.tolist()]  # noqa: E731
    return _report(False, f"expected {rounded(want)}, got {rounded(got)}; {hint}")


def check_patch_hook(fn: Callable[..., torch.Tensor]) -> None:
    """Check `fn(activation [batch, pos, d], hook, clean_activation [batch, pos, d], position) -> Tensor`:
    the activation with the clean vector copied in at `position` (every other position unchanged)."""
    g = torch.Generator().manual_seed(1)
    corrupted, clean = torch.randn(3, 6, 4, generator=g), torch.randn(3, 6, 4, generator=g)
    for position in (2, -1):
        want = corrupted.clone()
        want[:, position] = clean[:, position]
        got, problem = _call(fn, corrupted.clone(), None, clean.clone(), position)
        if problem:
            return _report(False, problem)
        if got is None:
            return _report(False, "the hook returned None: return the (patched) activation.")
        if not torch.is_tensor(got) or got.shape != corrupted.shape:
            return _report(False, f"return a tensor of the activation's shape {tuple(corrupted.shape)}.")
        if torch.allclose(got, want):
            continue
        if torch.allclose(got, clean):
            hint = "you copied every position; copy only activation[:, position]."
        elif torch.allclose(got, corrupted):
            hint = "nothing changed: assign clean_activation[:, position] to activation[:, position]."
        elif torch.allclose(got, torch.where(torch.arange(3)[:, None, None] == position % 3, clean, corrupted)):
            hint = "you indexed the batch axis; positions are the second axis: activation[:, position]."
        else:
            hint = "only activation[:, position] should change, and it should equal clean_activation[:, position]."
        return _report(False, f"with position={position}: {hint}")
    return _report(True, "the hook copies the clean activation at one position and leaves the rest alone.")
