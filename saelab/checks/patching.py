"""Notebook 03's exercise checks, in the course's one-line style (`saelab.checks.report`).

    check_logit_diff           the metric: logsumexp(positive answers) - logsumexp(negative answers), last position
    check_patch_hook           a hook that copies the clean activation in at one position
    check_latent_attribution   gradient x (z_clean - z_corrupted) at the spliced SAE, for every latent

Every reference is written out here, sharing no code with what a solution calls: the metric from the logits, the
patch by indexing, and attribution with the SAE's encoder and decoder computed from its weights (not `sae.encode`,
`sae.decode` or `saelab.sae_patching`, whose `latent_attribution` a unit test holds equal to it).
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from saelab.checks import report
from saelab.patching import Metric
from saelab.sae import SAE


def _close(got: torch.Tensor, want: torch.Tensor, atol: float = 1e-4) -> bool:
    return got.shape == want.shape and torch.allclose(got.float(), want.float(), atol=atol, rtol=1e-3)


# --- the metric -----------------------------------------------------------------------------------------
def reference_logit_diff(logits: torch.Tensor, pos: list[int], neg: list[int]) -> torch.Tensor:
    """logsumexp of the positive answers' logits minus that of the negative ones, at the last position: [batch]."""
    last = logits[:, -1].double()
    return (last[:, list(pos)].logsumexp(-1) - last[:, list(neg)].logsumexp(-1)).float()


def _logit_diff_hint(got: torch.Tensor, logits: torch.Tensor, pos: list[int], neg: list[int]) -> str:
    """Name the mistake behind a wrong metric of the right shape."""
    want, last = reference_logit_diff(logits, pos, neg), logits[:, -1]
    if _close(got, -want):
        return "the sign is flipped: positive answers minus negative answers."
    if _close(got, reference_logit_diff(logits[:, :1], pos, neg)):
        return "you read the first position; the next word is predicted at the last one, logits[:, -1]."
    if _close(got, last[:, pos].sum(-1) - last[:, neg].sum(-1)) or \
            _close(got, last[:, pos].mean(-1) - last[:, neg].mean(-1)):
        return "combine each answer set with logsumexp (.logsumexp(-1)), not a sum or mean of logits."
    if _close(got, last[:, pos].max(-1).values - last[:, neg].max(-1).values):
        return "you took the largest logit of each set; logsumexp counts every answer (one strong one dominates)."
    return "take logits[:, -1], pick the columns of each answer set, logsumexp each over dim=-1, subtract."


def check_logit_diff(fn: Callable[[torch.Tensor, list[int], list[int]], torch.Tensor]) -> bool:
    """Check `fn(logits [batch, pos, d_vocab], positive_ids, negative_ids) -> [batch]`: logsumexp of the
    positive answers' logits minus logsumexp of the negative ones, at the last position."""

    def body() -> str | None:
        g = torch.Generator().manual_seed(0)
        cases = [("4 prompts", torch.randn(4, 5, 20, generator=g) * 3, [2, 7, 11], [4, 9]),
                 ("a batch of one", torch.randn(1, 3, 20, generator=g) * 3, [1, 5], [6, 8, 19]),
                 ("one answer on each side", torch.randn(3, 4, 20, generator=g) * 3, [3], [12])]
        for name, logits, pos, neg in cases:
            want = reference_logit_diff(logits, pos, neg)
            got = report.call(fn, logits, list(pos), list(neg))
            if not torch.is_tensor(got):
                return (f"return a tensor with one value per batch row; got {type(got).__name__}"
                        + (". Did you forget to `return`?" if got is None else "."))
            got = got.detach()
            if got.shape != want.shape:
                b, p = logits.shape[:2]
                hint = (" You averaged over the batch: keep one value per prompt." if got.dim() == 0 else
                        " Did you forget to take the last position, logits[:, -1]?" if got.shape == (b, p) else
                        " Wrong axis: logsumexp over the answers (dim=-1), not over the batch." if got.shape
                        in ((len(pos),), (len(neg),)) else "")
                return (f"on case '{name}' expected shape {tuple(want.shape)} (one value per batch row), got "
                        f"{tuple(got.shape)}.{hint}")
            if _close(got, want):
                continue
            log_probs = logits.log_softmax(-1)
            if _close(got, reference_logit_diff(log_probs, pos, neg)):
                continue  # log-probabilities give the same difference (the normaliser cancels)
            rounded = [round(v, 3) for v in got.float().tolist()]
            return (f"on case '{name}' expected {[round(v, 3) for v in want.tolist()]}, got {rounded}; "
                    f"{_logit_diff_hint(got, logits, pos, neg)}")
        return None

    return report.check("check_logit_diff", body)


# --- the patching hook ----------------------------------------------------------------------------------
def check_patch_hook(fn: Callable[..., torch.Tensor]) -> bool:
    """Check `fn(activation [batch, pos, d], hook, clean_activation=[batch, pos, d], position=p) -> Tensor`: the
    activation with the clean vector copied in at `position`, every other position unchanged, the cache untouched."""

    def body() -> str | None:
        g = torch.Generator().manual_seed(1)
        corrupted, clean = torch.randn(3, 6, 4, generator=g), torch.randn(3, 6, 4, generator=g)
        cases = [(corrupted, clean, 2), (corrupted, clean, -1), (corrupted, clean, 0), (corrupted[:1], clean[:1], 4)]
        for act, cached, position in cases:
            want = act.clone()
            want[:, position] = cached[:, position]
            cache = cached.clone()  # passed by keyword (not copied), as functools.partial passes the clean cache
            got = report.call(fn, act, None, clean_activation=cache, position=position)
            where = f"with position={position}, batch of {len(act)}"
            if not torch.equal(cache, cached):
                return (f"{where}: you changed clean_activation in place. It is the cached clean run, shared by "
                        f"every later patch; write into `activation` and leave the cache alone.")
            if got is None:
                return "the hook returned None: return the (patched) activation."
            if not torch.is_tensor(got) or got.shape != act.shape:
                return f"{where}: return a tensor of the activation's shape {tuple(act.shape)}."
            if torch.allclose(got, want):
                continue
            if torch.allclose(got, cached):
                hint = "you copied every position; copy only activation[:, position]."
            elif torch.allclose(got, act):
                hint = "nothing changed: assign clean_activation[:, position] to activation[:, position]."
            elif len(act) > 1 and torch.allclose(
                    got, torch.where(torch.arange(len(act))[:, None, None] == position % len(act), cached, act)):
                hint = "you indexed the batch axis; positions are the second axis: activation[:, position]."
            else:
                hint = "only activation[:, position] should change, and it should equal clean_activation[:, position]."
            return f"{where}: {hint}"
        return None

    return report.check("check_patch_hook", body)


# --- latent attribution patching ------------------------------------------------------------------------
def _n_hooks(model: Any) -> int:
    """Hooks attached to the model's hook points (a hook left on would change every later run)."""
    return sum(len(h.fwd_hooks) + len(h.bwd_hooks) for h in getattr(model, "hook_dict", {}).values())


def _metric(model: Any, tokens: torch.Tensor, metric: Metric) -> float:
    with torch.no_grad():
        return float(metric(model(tokens)).reshape(-1)[0])


def encode_by_hand(sae: SAE, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]:
    """The latents of a ReLU or TopK SAE from its weights, and (mean, std) when it standardises its input."""
    if sae.activation not in ("relu", "topk"):
        raise ValueError(f"this check works with ReLU and TopK SAEs; got a {sae.activation} SAE")
    x, stats = x.to(sae.pre_bias.dtype), None
    if sae.normalize:  # OpenAI's LN: per token, minus the mean, over (unbiased std + 1e-5)
        mu = x.mean(-1, keepdim=True)
        std = (x - mu).std(-1, keepdim=True)
        x, stats = (x - mu) / (std + 1e-5), (mu, std)
    pre = (x - sae.pre_bias) @ sae.encoder.weight.T + sae.latent_bias
    if sae.activation == "topk":
        values, indices = pre.topk(sae.k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, indices, values.relu()), stats
    return pre.relu(), stats


def decode_by_hand(sae: SAE, z: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    """The reconstruction from latents, mapped back through the input's (mean, std) when the SAE standardises."""
    recons = z @ sae.decoder.weight.T + sae.pre_bias
    return recons if stats is None else recons * stats[1] + stats[0]


def attribution_variant(model: Any, sae: SAE, clean_tokens: torch.Tensor, corrupted_tokens: torch.Tensor,
                        metric: Metric, position: int, error_term: bool = True, grad_run: str = "corrupted"
                        ) -> torch.Tensor:
    """grad x (z_clean - z_corrupted) at `position` [n_latents], computed from the SAE's weights the right way (the
    check's reference) or with one of two usual mistakes: the splice without its error term, or the gradient taken in
    the clean run."""
    hook_name, leaf = sae.hook_name, []

    def splice(activation: torch.Tensor, hook: Any) -> torch.Tensor:
        z, stats = encode_by_hand(sae, activation)
        leaf.append(z.detach().requires_grad_(True))
        recons = decode_by_hand(sae, leaf[-1], stats)
        return (recons + (activation - recons).detach() if error_term else recons).to(activation.dtype)

    with torch.no_grad():
        z = {name: encode_by_hand(sae, model.run_with_cache(t, names_filter=[hook_name])[1][hook_name][0])[0][position]
             for name, t in (("clean", clean_tokens), ("corrupted", corrupted_tokens))}
    with torch.enable_grad():
        tokens = corrupted_tokens if grad_run == "corrupted" else clean_tokens
        values = metric(model.run_with_hooks(tokens, fwd_hooks=[(hook_name, splice)]))
        (grad,) = torch.autograd.grad(values.sum(), leaf[0])
    return (grad[0, position] * (z["clean"] - z["corrupted"])).detach().float().cpu()


def _attribution_hint(got: torch.Tensor, want: torch.Tensor, m_gap: float, args: tuple) -> str:
    if got.abs().max() == 0 and want.abs().max() > 0:
        return ("every estimate is 0: the error term must be detached, error = (x - decode(z)).detach() (otherwise "
                "its -decode(z) cancels the gradient through decode(z)), and z_clean must come from the clean run, "
                "z_corrupted from the corrupted one.")
    if _close(got, -want, atol=1e-4 * max(1.0, float(want.abs().max()))):
        return "wrong sign: multiply the gradient by (z_clean - z_corrupted), the change patching would make."
    if m_gap != 0 and _close(got, want / m_gap, atol=1e-4):
        return "you normalised by (clean - corrupted); return the raw estimate of the metric's change."
    if _close(got, attribution_variant(*args, error_term=False), atol=1e-3):
        return ("you forgot the error term: the spliced activation must be decode(z) + (x - decode(z)), with the "
                "error detached, so the model runs on x exactly and the gradient is taken there.")
    if _close(got, attribution_variant(*args, grad_run="clean"), atol=1e-3):
        return "you took the gradient in the clean run; attribution patching differentiates the CORRUPTED run."
    return ("splice the SAE into the corrupted run as decode(z) + error with z a leaf (z.detach().requires_grad_()), "
            "backward from metric(logits).sum(), then z.grad[0, position] * (z_clean - z_corrupted).")


def check_latent_attribution(fn: Callable[..., torch.Tensor], model: Any, sae: SAE, clean_tokens: torch.Tensor,
                             corrupted_tokens: torch.Tensor, metric: Metric, position: int) -> bool:
    """Check `fn(model, sae, clean_tokens, corrupted_tokens, metric, position) -> [n_latents]`: the metric's gradient
    w.r.t. the spliced SAE's latents in the corrupted run times (z_clean - z_corrupted), at `position`, against
    `attribution_variant` (what `saelab.sae_patching.latent_attribution` computes, before it normalises). Also at a
    position where both prompts agree (every estimate 0). ReLU and TopK SAEs."""
    n_pos = clean_tokens.shape[1]
    differ = (clean_tokens[0] != corrupted_tokens[0]).nonzero()[:, 0].tolist()
    changed = differ[0] if differ else position % n_pos
    positions = list(dict.fromkeys([position % n_pos, changed, 0]))  # the SAE's position, the changed word, BOS
    m_gap = _metric(model, clean_tokens, metric) - _metric(model, corrupted_tokens, metric)

    def body() -> str | None:
        for p in positions:
            before = _n_hooks(model)
            try:
                got = report.call(fn, model, sae, clean_tokens, corrupted_tokens, metric, p)
            except RuntimeError as err:
                if "does not require grad" in str(err) or "NoneType" in str(err):
                    return (f"{err}. The latents must be a leaf of the graph: z = z.detach().requires_grad_(True) "
                            f"inside the hook, decode from that z, and no torch.no_grad() around the corrupted run.")
                raise
            finally:
                left = _n_hooks(model) - before
                if left > 0:
                    model.reset_hooks()
            if left > 0:
                return ("a hook was left on the model (now removed with model.reset_hooks()): use "
                        "model.run_with_hooks(tokens, fwd_hooks=[...]) so the hook is removed after the run.")
            if not torch.is_tensor(got):
                return f"return a tensor [n_latents] = [{sae.n_latents}]; got {type(got).__name__}."
            got = got.detach().float().cpu()
            if got.shape != (sae.n_latents,):
                hint = (" Select the position: [0, position]." if got.shape[-1:] == (sae.n_latents,) else "")
                return f"expected shape ({sae.n_latents},) (one estimate per latent), got {tuple(got.shape)}.{hint}"
            want = attribution_variant(model, sae, clean_tokens, corrupted_tokens, metric, p)
            if _close(got, want, atol=1e-4 * max(1.0, float(want.abs().max()))):
                continue
            where = "BOS, where both prompts agree" if p == 0 else f"position {p}"
            args = (model, sae, clean_tokens, corrupted_tokens, metric, p)
            return f"at {where}: {_attribution_hint(got, want, m_gap, args)}"
        return None

    return report.check("check_latent_attribution", body)
