"""Checks for notebook 04's exercises: the steering vector, the steering hook, a `with` block that always
removes its hook, and a difference-of-means vector. Each runs the student's function on several inputs (a single
position, a batch of one, an all-zero vector, an error inside the block, prompts of different lengths) against a
reference written out here, not `saelab.steering` or `saelab.steering_baselines` (whose functions a solution may
call; the unit tests hold them equal), and names the usual mistake.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from saelab.checks import report
from saelab.sae import SAE


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, atol=1e-5)


# --- the references ------------------------------------------------------------------------------------------
def reference_vector(sae: SAE, latents: list[int]) -> torch.Tensor:
    """The blog's steering vector: the sum of the chosen latents' decoder columns (no bias): [d_model]."""
    return sae.decoder.weight[:, list(latents)].sum(-1).detach()


def reference_steered(act: torch.Tensor, vec: torch.Tensor, scale: float, positions: Any) -> torch.Tensor:
    """act [batch, pos, d] with scale * vec added at `positions` (None = every position), in a new tensor."""
    out = act.clone()
    if positions is None:
        return out + scale * vec
    out[:, list(positions)] += scale * vec
    return out


# --- exercise 1: the steering vector --------------------------------------------------------------------------
def check_steering_vector(fn: Callable[[SAE, list[int]], torch.Tensor]) -> bool:
    """Check `fn(sae, latents) -> [d_model]`: the blog's vector, 1.0 per chosen latent through the bias-free decoder."""

    def body() -> str | None:
        torch.manual_seed(0)
        sae = SAE(8, 32, "topk", k=4)
        with torch.no_grad():
            sae.pre_bias.normal_()
        for latents in ([3, 17, 30], [5]):
            want = reference_vector(sae, latents)
            got = report.call(fn, sae, list(latents))
            if got is None:
                return "your function returned None; return the vector (a tensor of shape [d_model])"
            if not torch.is_tensor(got):
                return f"expected a torch.Tensor; got {type(got).__name__}"
            got = got.detach()
            if got.shape != want.shape:
                hint = (" It looks like one column per latent: sum them into one vector."
                        if got.shape in ((8, len(latents)), (len(latents), 8)) and len(latents) > 1 else
                        " Did you use the encoder? Decoder columns live in d_model space." if got.shape[-1] == 32
                        else "")
                return f"shape {list(got.shape)}, expected [d_model] = {list(want.shape)}.{hint}"
            if _close(got, want + sae.pre_bias):
                return ("you added pre_bias: the blog's steering vector uses the bias-free decoder, "
                        "sae.decoder(one_hot) or sae.W_dec[:, latents].sum(-1)")
            if _close(got, sae.encoder.weight[latents].sum(0).detach()):
                return "you summed encoder rows; steering writes into the model, so use the decoder columns W_dec"
            if len(latents) > 1 and _close(got, want / want.norm()):
                return "you normalised the vector; the blog's version puts 1.0 in each slot, no rescaling"
            if not _close(got, want):
                return (f"the values differ from the sum of the decoder columns {latents} "
                        f"(max difference {(got - want).abs().max():.3g})")
        return None

    return report.check("check_steering_vector", body)


# --- exercise 2: the steering hook -----------------------------------------------------------------------------
def _hook_cases() -> list[tuple[str, torch.Tensor, torch.Tensor, float, Any]]:
    """(what, activation [batch, pos, d_model], vector, scale, positions): the inputs the hook check tries."""
    g = torch.Generator().manual_seed(0)
    act, vec = torch.randn(3, 6, 8, generator=g), torch.randn(8, generator=g)
    return [("every position (positions=None)", act, vec, 3.0, None),
            ("positions [0, 2]", act, vec, 3.0, [0, 2]),
            ("a single position (positions=[-1], the last)", act, vec, 3.0, [-1]),
            ("a batch of one", torch.randn(1, 4, 8, generator=g), vec, 2.0, [1]),
            ("an all-zero vector", act, torch.zeros(8), 3.0, None)]


def _hook_mistake(act: torch.Tensor, vec: torch.Tensor, scale: float, positions: Any, got: torch.Tensor) -> str | None:
    """Name the usual mistake that produces `got`, or None."""
    if scale != 1 and _close(got, reference_steered(act, vec, scale * scale, positions)):
        return ("you scaled twice (scale * scale * vector); multiply the vector by `scale` once, e.g. "
                "activation + scale * vector")
    if scale != 1 and vec.abs().sum() > 0 and _close(got, reference_steered(act, vec, 1.0, positions)):
        return "you added the vector without multiplying it by `scale`"
    if vec.norm() > 0 and _close(got, reference_steered(act, vec / vec.norm(), scale, positions)):
        return "you normalised the vector; add it as it is (its length is part of the steering strength)"
    if positions is not None:
        if _close(got, reference_steered(act, vec, scale, None)):
            return ("you added the vector at every position; add it only at `positions` "
                    "(activation[:, positions] on a copy), and everywhere only when positions is None")
        if max(positions) < act.shape[0]:
            wrong_axis = act.clone()
            wrong_axis[positions] += scale * vec
            if _close(got, wrong_axis):
                return ("wrong axis: activation[positions] picks batch rows; positions are the second axis, "
                        "activation[:, positions]")
    return None


def check_steering_hook(fn: Callable[..., torch.Tensor]) -> bool:
    """Check `fn(activation [batch, pos, d_model], hook, vector [d_model], scale, positions) -> activation`: adds
    scale * vector at `positions` (None = every position), returns the result, leaves the input as it was."""

    def body() -> str | None:
        for what, act, vec, scale, positions in _hook_cases():
            original = act.clone()
            given = act.clone()  # the tensor the model (and maybe a cache) holds: it must come back unchanged
            got = report.call(lambda: fn(given, None, vec.clone(), scale, positions))
            if got is None:
                return ("your hook returned None: return the steered activation (TransformerLens uses what a hook "
                        "returns; returning nothing leaves the model unsteered)")
            if not torch.is_tensor(got):
                return f"expected a tensor shaped like the activation; got {type(got).__name__}"
            want = reference_steered(original, vec, scale, positions)
            if not torch.equal(given, original):
                return ("you edited the activation in place (activation += ... or activation[...] = ...); that also "
                        "changes any cached copy of it (run_with_cache keeps the same tensor). Work on a copy: "
                        "activation + scale * vector, or activation.clone() first")
            if got.shape != act.shape:
                return (f"for {what} the result has shape {list(got.shape)}, expected the activation's "
                        f"{list(act.shape)}; broadcast the [d_model] vector over batch and positions")
            if torch.isnan(got).any():
                return (f"for {what} the result has NaN: did you normalise the vector? Add it as it is "
                        "(an all-zero vector must leave the activation unchanged)")
            if not _close(got, want):
                mistake = _hook_mistake(original, vec, scale, positions, got)
                return mistake or (f"for {what} the result differs from activation + scale * vector at those "
                                   f"positions (max difference {(got - want).abs().max():.3g})")
        return None

    return report.check("check_steering_hook", body)


# --- exercise 3: a with block that always removes its hook -------------------------------------------------------
class GenerationFailed(Exception):
    """The error the check raises inside the student's `with` block, as a failing generation would."""


def _n_hooks(model: Any) -> int:
    return sum(len(hp.fwd_hooks) for hp in model.hook_dict.values())


def _handles(model: Any) -> dict[int, tuple[Any, Any]]:
    """Every forward hook on the model: id(handle) -> (hook point, handle)."""
    return {id(h): (hp, h) for hp in model.hook_dict.values() for h in hp.fwd_hooks}


def _callers_hook(activation: torch.Tensor, hook: Any) -> None:
    """Stands for a hook the caller put on the model before steering (it changes nothing)."""
    return None


def _enter(fn: Callable, *args: Any) -> Any:
    """fn(*args) as a context manager; NotImplementedError (the stub) -> NotDone; not one -> a hint."""
    try:
        manager = fn(*args)
    except NotImplementedError:
        raise report.NotDone() from None
    if not (hasattr(manager, "__enter__") and hasattr(manager, "__exit__")):
        raise TypeError(f"your function returned {type(manager).__name__}, not a context manager: decorate it with "
                        "@contextlib.contextmanager and `yield` inside it")
    return manager


def check_steer(fn: Callable[[Any, str, torch.Tensor, float], Any], model: Any, hook_name: str) -> bool:
    """Check `fn(model, hook_name, vector, scale)`, a context manager, on `model`: inside the `with` block the
    model adds scale * vector at hook_name; afterwards (also when the block raises) only the hooks that were there
    before remain, and the block's error reaches the caller. The check leaves `model` as it found it."""

    def body() -> str | None:
        if hook_name not in model.hook_dict:
            raise ValueError(f"the model has no hook {hook_name!r}; pass the SAE's, e.g. sae.hook_name")
        tokens = torch.arange(1, 5, device=model.cfg.device)[None] % model.cfg.d_vocab  # any 4 tokens will do
        g = torch.Generator().manual_seed(1)
        vector, scale = torch.randn(model.cfg.d_model, generator=g).to(model.cfg.device), 2.0
        with torch.no_grad():
            plain = model(tokens)
            want, twice = (model.run_with_hooks(tokens, fwd_hooks=[(hook_name, lambda a, hook, s=s: a + s * vector)])
                           for s in (scale, scale * scale))
        other = next(name for name in model.hook_dict if name != hook_name)
        model.add_hook(other, _callers_hook)  # a hook the caller already had: it must survive
        before = _n_hooks(model)
        manager = _enter(fn, model, hook_name, vector, scale)
        try:
            with manager:
                with torch.no_grad():
                    got = model(tokens)
        except NotImplementedError:
            raise report.NotDone() from None
        if _close(got, plain):
            return ("inside the `with` block the model is not steered: add the hook before you `yield` "
                    "(e.g. with model.hooks(fwd_hooks=[(hook_name, steering_hook(vector, scale))]): yield model)")
        if _close(got, twice):
            return "the model is steered by scale * scale * vector: you scaled twice; multiply by `scale` once"
        if not _close(got, want):
            return "inside the `with` block the output differs from steering by scale * vector at hook_name"
        left = _n_hooks(model) - before
        if left > 0:
            return ("the hook is still on the model after the `with` block: remove it when the block ends, "
                    "e.g. `with model.hooks(...): yield model`")
        if left < 0:
            return ("you removed hooks that were on the model before (model.reset_hooks() removes every hook); "
                    "remove only yours: `with model.hooks(fwd_hooks=[...]): yield model` does exactly that")
        try:
            with _enter(fn, model, hook_name, vector, scale):
                model(tokens)
                raise GenerationFailed("generation failed inside the with block")
        except GenerationFailed:
            pass
        else:
            return ("your context manager swallowed the error raised inside the `with` block; let it reach the "
                    "caller (try/finally, not try/except)")
        left = _n_hooks(model) - before
        if left > 0:
            return ("the hook stays on the model when generation fails inside the `with` block: remove it in a "
                    "`finally:` (or use `with model.hooks(...): yield model`, which does)")
        if left < 0:
            return ("after an error you removed hooks that were on the model before (model.reset_hooks() removes "
                    "every hook); remove only yours")
        return None

    had = _handles(model)
    try:
        return report.check("check_steer", body)
    finally:  # whatever the student's code left behind (and the caller's hook we added) comes off again
        for key, (hook_point, handle) in _handles(model).items():
            if key not in had:
                handle.hook.remove()
                hook_point.fwd_hooks.remove(handle)


# --- exercise 4: a difference-of-means vector ------------------------------------------------------------------
@torch.no_grad()
def _residuals(model: Any, hook_name: str, prompts: list[str]) -> list[torch.Tensor]:
    """The residual at `hook_name` of each prompt, one prompt per run (no padding): a list of [pos, d_model]."""
    return [model.run_with_cache(model.to_tokens(p), names_filter=hook_name)[1][hook_name][0] for p in prompts]


@torch.no_grad()
def _padded_last_rows(model: Any, hook_name: str, prompts: list[str]) -> torch.Tensor:
    """The mistake of batching prompts of different lengths: the last column is a pad token for the shorter ones."""
    return model.run_with_cache(model.to_tokens(list(prompts)), names_filter=hook_name)[1][hook_name][:, -1]


def _dom_mistake(model: Any, hook_name: str, neg: list[str], pos: list[str], res: dict[str, torch.Tensor],
                 got: torch.Tensor, want: torch.Tensor) -> str | None:
    """The usual mistake `got` matches, if any (`res`: each prompt's residual [pos, d_model])."""
    at = lambda prompts, i: torch.stack([res[p][i] for p in prompts]).mean(0)
    every = lambda prompts: torch.cat([res[p] for p in prompts]).mean(0)
    if _close(got, -want):
        return ("the vector points from negative to positive: subtract the positive prompts' mean from the "
                "negative prompts' mean, not the other way round")
    if _close(got, want / want.norm()):
        return "you normalised the vector; return the raw difference (the notebook rescales it to the length it needs)"
    if _close(got, at(neg, -1)):
        return "you returned the negative prompts' mean; subtract the positive prompts' mean from it"
    if _close(got, every(neg) - every(pos)):
        return ("you averaged every position; take each prompt's last token, where the model is about to "
                "write the sentiment word")
    if _close(got, at(neg, 0) - at(pos, 0)):
        return "you took position 0 (the BOS token, the same for every prompt); take the last token, [0, -1]"
    padded = _padded_last_rows(model, hook_name, neg).mean(0) - _padded_last_rows(model, hook_name, pos).mean(0)
    if not _close(padded, want) and _close(got, padded):
        return ("you ran prompts of different lengths as one padded batch, so the last column is a pad token "
                "for the shorter ones; run one prompt at a time (or pick each prompt's own last position)")
    return None


def check_difference_of_means(fn: Callable[[Any, str, list[str], list[str]], torch.Tensor], model: Any,
                              hook_name: str, negative: list[str], positive: list[str]) -> bool:
    """Check `fn(model, hook_name, negative, positive) -> [d_model]`: the mean residual at `hook_name` at the last
    token of the negative prompts minus that of the positive ones, on the given prompts and on unequal subsets."""

    def body() -> str | None:
        if hook_name not in model.hook_dict:
            raise ValueError(f"the model has no hook {hook_name!r}; pass the SAE's, e.g. sae.hook_name")
        if len(negative) < 2 or len(positive) < 2:
            raise ValueError("give the check at least two negative and two positive prompts")
        every = list(dict.fromkeys([*negative, *positive]))
        res = dict(zip(every, _residuals(model, hook_name, every)))
        for what, neg, pos in (("the given prompts", list(negative), list(positive)),
                               ("one negative prompt against the other positive ones", list(negative[:1]),
                                list(positive[1:]))):
            want = (torch.stack([res[p][-1] for p in neg]).mean(0) - torch.stack([res[p][-1] for p in pos]).mean(0))
            got = report.call(fn, model, hook_name, neg, pos)
            if got is None:
                return "your function returned None; return the vector (a tensor of shape [d_model])"
            if not torch.is_tensor(got):
                return f"expected a torch.Tensor; got {type(got).__name__}"
            got = got.detach().to(want.device)
            if got.shape != want.shape:
                hint = (" It looks like one row per prompt: take the mean over the prompts."
                        if got.dim() == 2 and got.shape[-1] == want.shape[-1] else "")
                return f"shape {list(got.shape)}, expected [d_model] = {list(want.shape)}.{hint}"
            if not _close(got, want):
                return _dom_mistake(model, hook_name, neg, pos, res, got, want) or (
                    f"for {what} the values differ from the difference of the last-token means "
                    f"(max difference {(got - want).abs().max():.3g})")
        return None

    return report.check("check_difference_of_means", body)
