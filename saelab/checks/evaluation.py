"""Notebook 06's exercise checks, in the course's one-line style (`saelab.checks.report`).

    check_mcc              match each true feature to its own latent (Hungarian algorithm on |cos|) and average the
                           matched |cos|: returns (mcc, latent per feature)
    check_jumprelu         JumpReLU's forward pass and the straight-through pseudo-gradient of the mean L0 w.r.t. θ
    check_batchtopk        BatchTopK's selection of k·B entries over the batch and its inference threshold
    check_matryoshka_loss  the reconstruction loss averaged over nested prefixes
    check_token_absorption one token by the absorption recipe: caught, absorbed (by which latent) or missed

The four newer checks compare with references written out here with plain loops over rows and entries, not with
`saelab.architectures` or `saelab.absorption`.

For check_mcc the reference is written out here (|cos| of the normalised vectors, then scipy's `linear_sum_assignment`), not taken
from `saelab.ground_truth`. Both halves of the answer are checked: the MCC must be the optimal one, and the returned
latents must be an assignment that gives it (mean over features i of |cos[i, latent[i]]| equals the returned MCC).
Cases: a permuted identity, a flipped sign, a case where greedy matching picks one latent twice, unnormalised
columns, more latents than features.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from saelab.checks import report

TOL = 1e-5


def _cases() -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """(what it tests, W_dec [d, n_latents], true features [n_features, d])."""
    perm = torch.tensor([2, 0, 3, 1])
    greedy = torch.tensor([[0.6, 0.0, 0.0], [0.8, 1.0, 0.0]])  # feature 1 prefers latent 0, but it is needed by 0
    g = torch.Generator().manual_seed(0)
    wide = torch.randn(6, 10, generator=g)
    return [
        ("a permuted identity", torch.eye(4)[:, perm], torch.eye(4)),
        ("a latent with a flipped sign", torch.diag(torch.tensor([1.0, -1.0, 1.0])), torch.eye(3)),
        ("a case where greedy matching gives one latent to two features", greedy, torch.eye(2)),
        ("unnormalised decoder columns", 3.0 * torch.eye(3)[:, [1, 2, 0]], torch.eye(3)),
        ("more latents than features", wide, torch.randn(4, 6, generator=g)),
    ]


def abs_cos(W_dec: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
    """|cosine| between every true feature and every decoder column, in float64: [n_features, n_latents]."""
    return (F.normalize(feats.double(), dim=-1) @ F.normalize(W_dec.double(), dim=0)).abs()


def optimal_mcc(W_dec: torch.Tensor, feats: torch.Tensor) -> tuple[float, torch.Tensor]:
    """The reference: (the largest mean matched |cos| over one-to-one matchings, the latent of each feature)."""
    cos = abs_cos(W_dec, feats)
    rows, cols = linear_sum_assignment(cos.numpy(), maximize=True)
    latent = torch.empty(len(rows), dtype=torch.long)
    latent[torch.as_tensor(rows)] = torch.as_tensor(cols, dtype=torch.long)
    return cos[torch.arange(len(latent)), latent].mean().item(), latent


def _mcc_hint(name: str, W_dec: torch.Tensor, feats: torch.Tensor, got: float, latent: torch.Tensor,
              want: float) -> str:
    """Name the mistake behind a wrong MCC value."""
    rows = torch.arange(len(latent))
    signed = (F.normalize(feats, dim=-1) @ F.normalize(W_dec, dim=0))[rows, latent].mean().item()
    if abs(got - signed) < 1e-4:
        return (f"on {name}: your MCC is {got:.3f}, expected {want:.3f}. A latent may point at -f: take the absolute "
                "value of the cosine.")
    raw = (feats @ W_dec).abs()[rows, latent].mean().item()
    if abs(got - raw) < 1e-4:
        return (f"on {name}: your MCC is {got:.3f}, expected {want:.3f}. Normalise the decoder columns and the "
                "features before taking dot products (cosine, not dot product).")
    return f"on {name}: your MCC is {got:.3f}, expected {want:.3f} (the mean matched |cos|)."


def _assignment_hint(name: str, cos: torch.Tensor, got: float, latent: torch.Tensor, right: torch.Tensor) -> str:
    """Name the mistake behind latents that do not give the (right) MCC returned with them."""
    n = len(latent)
    given = cos[torch.arange(n), latent].mean().item()
    if torch.equal(latent, torch.arange(n)):
        return (f"on {name}: your latents are 0..{n - 1}, the features' own indices (the `rows` of "
                "linear_sum_assignment). Return `cols`: cols[i] is the latent matched to feature rows[i].")
    if torch.equal(latent, right.flip(0)):
        return (f"on {name}: your latents are the right ones in reverse order. latent_per_feature[i] must be the "
                "latent matched to feature i: return cols in the order of rows.")
    if sorted(latent.tolist()) == sorted(right.tolist()):
        return (f"on {name}: the right latents in the wrong order. latent_per_feature[i] must be the latent matched "
                "to feature i: return cols in the order of rows.")
    return (f"on {name}: your MCC is right ({got:.3f}) but your latents give {given:.3f}: the mean of "
            f"|cos[i, latent[i]]| over your latents must equal it. Return the `cols` of the same matching.")


def _diagnose(name: str, W_dec: torch.Tensor, feats: torch.Tensor, got_mcc: float, got_latent: Any) -> str | None:
    want, right = optimal_mcc(W_dec, feats)
    latent = torch.as_tensor(got_latent).long().reshape(-1)
    n_features, n_latents = feats.shape[0], W_dec.shape[1]
    if latent.shape[0] != n_features:
        return (f"on {name}: return one matched latent per true feature ({n_features}), got {latent.shape[0]}. "
                "linear_sum_assignment returns (rows, cols); cols[i] is the latent matched to feature rows[i].")
    if ((latent < 0) | (latent >= n_latents)).any():
        return f"on {name}: latents must be column indices of W_dec, 0..{n_latents - 1}; got {latent.tolist()}."
    if len(set(latent.tolist())) < len(latent):
        return (f"on {name}: two features got the same latent {latent.tolist()}. That is greedy matching (argmax "
                "per feature); use scipy.optimize.linear_sum_assignment(cos, maximize=True) for a one-to-one match.")
    if abs(got_mcc - want) > TOL:
        return _mcc_hint(name, W_dec, feats, got_mcc, latent, want)
    cos = abs_cos(W_dec, feats)
    if abs(cos[torch.arange(n_features), latent].mean().item() - got_mcc) > TOL:
        return _assignment_hint(name, cos, got_mcc, latent, right)
    return None


def check_mcc(fn: Callable[[torch.Tensor, torch.Tensor], tuple[float, Any]]) -> bool:
    """Check the student's `fn(W_dec [d, n_latents], true_features [n_features, d]) -> (mcc, latent_per_feature)`:
    the optimal mean matched |cos|, and latents whose matched |cos| average to exactly that MCC."""
    def body() -> str | None:
        for name, W_dec, feats in _cases():
            out = report.call(fn, W_dec, feats)
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                return "return two things: (mcc as a float, the matched latent of each feature)."
            problem = _diagnose(name, W_dec, feats, report.as_float(out[0]), out[1])
            if problem:
                return problem
        return None
    return report.check("check_mcc", body)


# --- JumpReLU ---------------------------------------------------------------------------------------------------
def _close(a: Any, b: torch.Tensor, tol: float = 1e-5) -> bool:
    a = torch.as_tensor(a, dtype=torch.float64)
    return a.shape == b.shape and bool(torch.allclose(a, b.double(), atol=tol, rtol=1e-4))


def _jump_case(seed: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """pre-activations [16, 6] with many entries near their latent's threshold, thresholds [6], bandwidth."""
    g = torch.Generator().manual_seed(seed)
    theta = torch.rand(6, generator=g) * 0.5 + 0.2
    eps = 0.1
    pre = torch.randn(16, 6, generator=g) * 0.4
    pre[:8] = theta + (torch.rand(8, 6, generator=g) * 2 - 1) * eps  # half the rows within ±ε of θ
    return pre, theta, eps


def jumprelu_reference(pre: torch.Tensor, theta: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Entry by entry: pre where pre > θ; d(mean over rows of L0)/dθ_j = -(1/ε) x (share of rows with |pre - θ| < ε/2)."""
    n, m = pre.shape
    out, grad = torch.zeros(n, m, dtype=torch.float64), torch.zeros(m, dtype=torch.float64)
    for i in range(n):
        for j in range(m):
            p, t = float(pre[i, j]), float(theta[j])
            out[i, j] = p if p > t else 0.0
            grad[j] += -(1.0 / eps) * (1.0 if abs(p - t) < eps / 2 else 0.0) / n
    return out, grad


def _jump_forward_hint(pre: torch.Tensor, theta: torch.Tensor, got: Any) -> str:
    if _close(got, torch.relu(pre - theta).double()):
        return ("your latents are ReLU(pre - θ): that subtracts the threshold and shrinks every value. JumpReLU keeps "
                "pre itself where pre > θ (a jump at θ), and 0 below.")
    if _close(got, (pre > theta).double()):
        return "your latents are the step H(pre - θ) alone (0 or 1); multiply it by pre: c = pre · H(pre - θ)."
    if _close(got, torch.relu(pre).double()):
        return "your latents ignore θ: every positive pre-activation fires. Keep pre only where pre > θ."
    return "your latents differ from pre · H(pre - θ) (pre where pre > θ, else 0)."


def _jump_grad_hint(pre: torch.Tensor, theta: torch.Tensor, eps: float, got: Any, want: torch.Tensor) -> str:
    near = ((pre - theta).abs() < eps / 2).double()
    wide = ((pre - theta).abs() < eps).double()
    n = pre.shape[0]
    if _close(got, -want):
        return ("your gradient has the wrong sign: raising θ can only switch latents off, so the L0's pseudo-gradient "
                "w.r.t. θ is negative (-(1/ε) K(..)).")
    if _close(got, -wide.sum(0) / (n * eps)):
        return ("you counted rows with |pre - θ| < ε: the rectangle kernel K(u) = 1[|u| < 1/2] has width 1 in "
                "u = (pre - θ)/ε, so only rows within ε/2 of θ count.")
    if _close(got, -near.sum(0) / eps):
        return "you summed over the rows: the L0 is averaged over the batch, so divide by the number of rows."
    if _close(got, -near.sum(0) / n):
        return "you forgot the 1/ε in front of the kernel: the pseudo-gradient is -(1/ε) K((pre - θ)/ε)."
    return "your gradient differs from -(1/ε) x (the share of rows with |pre - θ| < ε/2), one value per latent."


def check_jumprelu(fn: Callable[[torch.Tensor, torch.Tensor, float], tuple[Any, Any]]) -> bool:
    """Check `fn(pre [n, m], theta [m], bandwidth) -> (latents [n, m], grad_theta [m])`: the forward pass and the
    straight-through pseudo-gradient of the batch's mean L0 with respect to each threshold."""
    def body() -> str | None:
        for seed in (0, 1):
            pre, theta, eps = _jump_case(seed)
            out = report.call(fn, pre, theta, eps)
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                return "return two things: (latents [n, m], the gradient of the mean L0 w.r.t. θ [m])."
            want_lat, want_grad = jumprelu_reference(pre, theta, eps)
            if not _close(out[0], want_lat):
                return _jump_forward_hint(pre, theta, out[0])
            if not _close(out[1], want_grad):
                return _jump_grad_hint(pre, theta, eps, out[1], want_grad)
        return None
    return report.check("check_jumprelu", body)


# --- BatchTopK --------------------------------------------------------------------------------------------------
def _batch_case(seed: int) -> tuple[torch.Tensor, int]:
    """pre-activations [6, 8]: rows of very different activity (a busy row, quiet rows, a row with all negatives)."""
    g = torch.Generator().manual_seed(seed)
    pre = torch.randn(6, 8, generator=g)
    pre[0] += 2.0  # a busy sample
    pre[1] -= 3.0  # a quiet one: all negative
    if seed == 1:
        pre -= 1.0  # fewer positive entries than k x batch: only positive values may be kept
    return pre, 3


def batchtopk_reference(pre: torch.Tensor, k: int) -> tuple[torch.Tensor, float]:
    """Sort every positive entry of the batch, keep the k x batch largest; the threshold is the smallest kept."""
    entries = sorted(((float(pre[i, j]), i, j) for i in range(pre.shape[0]) for j in range(pre.shape[1])
                      if pre[i, j] > 0), reverse=True)[:k * pre.shape[0]]
    out = torch.zeros(pre.shape, dtype=torch.float64)
    for v, i, j in entries:
        out[i, j] = v
    return out, entries[-1][0]


def _batch_hint(pre: torch.Tensor, k: int, got: Any) -> str:
    got = torch.as_tensor(got, dtype=torch.float64)
    kept = (got != 0).sum(1)
    values, idx = torch.relu(pre.double()).topk(k, dim=-1)
    if _close(got, torch.zeros(pre.shape, dtype=torch.float64).scatter(-1, idx, values)):
        return ("every sample kept exactly k latents: that is TopK. BatchTopK keeps the k x batch largest entries of "
                "the whole batch, so a busy sample may keep more than k and a quiet one fewer.")
    if int(kept.sum()) == k:
        return "you kept k entries in all; keep k x batch size (the batch shares an average of k per sample)."
    if bool((got < 0).any()):
        return "you kept negative values: apply ReLU first, a negative pre-activation never fires."
    return "your latents differ from the k x batch largest positive entries of the whole batch (the rest 0)."


def check_batchtopk(fn: Callable[[torch.Tensor, int], tuple[Any, Any]]) -> bool:
    """Check `fn(pre [batch, m], k) -> (latents [batch, m], threshold)`: training's selection of the k·batch largest
    ReLU'd entries of the batch, and the threshold inference would use (the smallest value kept)."""
    def body() -> str | None:
        for seed in (0, 1):
            pre, k = _batch_case(seed)
            out = report.call(fn, pre, k)
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                return "return two things: (latents [batch, m], the threshold as a float)."
            want, threshold = batchtopk_reference(pre, k)
            if not _close(out[0], want):
                return _batch_hint(pre, k, out[0])
            got = report.as_float(out[1])
            if abs(got - threshold) > 1e-5:
                dropped = max(float(v) for v in pre.reshape(-1) if v < threshold - 1e-9)
                if abs(got - dropped) < 1e-5:
                    return ("your threshold is the largest value dropped; use the smallest value kept, so that at "
                            "inference `pre >= threshold` keeps what training kept.")
                if abs(got - float(want[want > 0].mean())) < 1e-5:
                    return "your threshold is the mean of the kept values; use the smallest value kept."
                return f"your threshold is {got:.4f}, expected the smallest value kept ({threshold:.4f})."
        return None
    return report.check("check_batchtopk", body)


# --- Matryoshka -------------------------------------------------------------------------------------------------
def _matryoshka_case(seed: int) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    latents = torch.relu(torch.randn(5, 8, generator=g))
    return latents, torch.randn(4, 8, generator=g), torch.randn(4, generator=g), torch.randn(5, 4, generator=g)


def matryoshka_reference(latents, W_dec, b_dec, x, prefixes) -> float:
    """Row by row: for each prefix m, ||x - (b_dec + sum_{i<m} c_i W_dec[:, i])||^2; mean over rows and prefixes."""
    total = 0.0
    for m in prefixes:
        for r in range(len(x)):
            x_hat = b_dec.double().clone()
            for i in range(m):
                x_hat += float(latents[r, i]) * W_dec[:, i].double()
            total += float((x[r].double() - x_hat).pow(2).sum())
    return total / (len(prefixes) * len(x))


def _prefix_losses(latents, W_dec, b_dec, x, prefixes, last=False, bias=True, over_d=False) -> list[float]:
    out = []
    for m in prefixes:
        cols = slice(W_dec.shape[1] - m, None) if last else slice(0, m)
        err = x - latents[:, cols] @ W_dec[:, cols].T - (b_dec if bias else 0)
        out.append(float(err.pow(2).mean() if over_d else err.pow(2).sum(-1).mean()))
    return out


def check_matryoshka_loss(fn: Callable[..., Any]) -> bool:
    """Check `fn(latents [B, n], W_dec [d, n], b_dec [d], x [B, d], prefixes) -> loss`: the mean over the nested
    prefixes m of the squared error (summed over d, averaged over the batch) when only the first m latents decode."""
    def body() -> str | None:
        for seed, prefixes in ((0, (2, 4, 8)), (1, (1, 3, 8))):
            latents, W_dec, b_dec, x = _matryoshka_case(seed)
            got = report.as_float(report.call(fn, latents, W_dec, b_dec, x, prefixes))
            want = matryoshka_reference(latents, W_dec, b_dec, x, prefixes)
            if abs(got - want) <= 1e-4 * max(1.0, abs(want)):
                continue
            per = _prefix_losses(latents, W_dec, b_dec, x, prefixes)
            hints = [
                (per[-1], "you scored the full width only; average the error over every prefix m (the first m "
                          "latents decoding alone)."),
                (sum(per), "you summed the prefixes' errors; average them (divide by the number of prefixes)."),
                (sum(_prefix_losses(latents, W_dec, b_dec, x, prefixes, bias=False)) / len(per),
                 "you left out b_dec: every prefix's reconstruction is b_dec + W_dec[:, :m] c[:m]."),
                (sum(_prefix_losses(latents, W_dec, b_dec, x, prefixes, last=True)) / len(per),
                 "you decoded the LAST m latents; a Matryoshka prefix is the first m (latents[:, :m])."),
                (sum(_prefix_losses(latents, W_dec, b_dec, x, prefixes, over_d=True)) / len(per),
                 "you averaged the squared error over the d dimensions; sum it over d, then average over the batch."),
            ]
            for value, hint in hints:
                if abs(got - value) <= 1e-4 * max(1.0, abs(value)):
                    return hint
            return f"your loss is {got:.4f}, expected {want:.4f} (prefixes {prefixes})."
        return None
    return report.check("check_matryoshka_loss", body)


# --- absorption for one token -----------------------------------------------------------------------------------
def token_absorption_reference(latents, W_dec, probe, projection, main, min_cos=0.1, min_share=0.4):
    """Latent by latent: caught if a main latent fires; else the non-main latent with the largest positive
    act_i <W_dec_i, p/|p|> absorbs when its decoder has cos >= min_cos with p and it carries min_share of the
    projection; else missed. Returns (verdict, absorbing latent or -1)."""
    if any(float(latents[i]) > 0 for i in main):
        return "caught", -1
    p = [float(v) for v in probe]
    norm_p = sum(v * v for v in p) ** 0.5
    best, best_value = -1, 0.0
    for i in range(len(latents)):
        if i in main:
            continue
        col = [float(W_dec[r, i]) for r in range(len(p))]
        value = float(latents[i]) * sum(a * b for a, b in zip(col, p)) / norm_p
        if value > best_value:
            best, best_value = i, value
    if best < 0:
        return "missed", -1
    col = [float(W_dec[r, best]) for r in range(len(p))]
    cos = sum(a * b for a, b in zip(col, p)) / (norm_p * max(sum(a * a for a in col) ** 0.5, 1e-12))
    if cos >= min_cos and projection > 0 and best_value >= min_share * projection:
        return "absorbed", best
    return "missed", -1


def _token_cases() -> list[tuple[str, tuple, str]]:
    """(what it tests, (latents, W_dec, probe, projection, main), the mistake it catches)."""
    W = torch.tensor([[1.0, 0.6, 0.05, 0.9, 0.3], [0.0, 0.8, 0.99, 0.0, 0.95], [0.0, 0.0, 0.0, 0.44, 0.0]])
    p = torch.tensor([3.0, 0.0, 0.0])  # not unit length: the contribution uses p / |p|
    z = torch.zeros(5)
    def lat(**kv):
        out = z.clone()
        for k, v in kv.items():
            out[int(k[1:])] = v
        return out
    return [
        ("a token where the main latent fires", (lat(l0=0.5, l1=1.0), W, p, 1.0, [0]), "main"),
        ("a child latent carrying 60% of the projection", (lat(l1=1.0), W, p, 1.0, [0]), "absorbed"),
        ("a child latent carrying 30% of the projection", (lat(l1=0.5), W, p, 1.0, [0]), "share"),
        ("a strong latent nearly orthogonal to the probe", (lat(l2=9.0), W, p, 0.4, [0]), "cos"),
        ("the largest activation is not the largest contribution", (lat(l3=0.9, l4=2.0), W, p, 1.0, [0]),
         "contribution"),
        ("a parent split over two main latents", (lat(l3=0.8), W, p, 1.0, [0, 3]), "split"),
    ]


def check_token_absorption(fn: Callable[..., Any]) -> bool:
    """Check `fn(latents [n_latents], W_dec [d, n_latents], probe [d], projection, main) -> (verdict, latent)`: one
    token by the recipe, verdict "caught", "absorbed" or "missed" and the absorbing latent (-1 if none)."""
    hints = {
        "main": "a main latent fires here, so the parent is caught, whatever else fires.",
        "share": ("the child latent carries only 30% of the probe's projection; an absorber must carry at least 40% "
                  "(act · <W_dec column, p/|p|> >= 0.4 · projection). Did you divide p by its length (|p| = 3 "
                  "here)?"),
        "cos": "the strongest latent's decoder is nearly orthogonal to the probe (cos < 0.1): it does not carry it.",
        "contribution": ("pick the non-main latent with the largest contribution act · <W_dec column, p/|p|>, not "
                         "the largest activation."),
        "split": "latent 3 is one of the main latents here (a split of the parent): the token is caught.",
        "absorbed": "the child latent carries 60% of the projection while no main latent fires: absorbed by it.",
    }

    def body() -> str | None:
        for name, args, mistake in _token_cases():
            out = report.call(fn, *args)
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                return "return two things: ('caught', 'absorbed' or 'missed', the absorbing latent or -1)."
            want = token_absorption_reference(*args)
            got = (str(out[0]), int(out[1]))
            if got != want:
                return f"on {name}: you said {got}, expected {want}. " + hints[mistake]
        return None
    return report.check("check_token_absorption", body)
