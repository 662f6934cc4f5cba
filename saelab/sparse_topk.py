"""Train TopK-family SAEs sparsely: decode through the k active latents, back-propagate only into them.

A TopK, BatchTopK or Matryoshka SAE uses k of its n latents per token, yet the dense step multiplies by all of W_dec
and back-propagates through all of W_enc (~6 x batch x d x n multiply-adds). Only the encoder's forward pass needs
every pre-activation (to find the k largest); the rest touches batch x k x d numbers (x_c = x - pre_bias, g = dL/dpre):

    x_hat[b]      = sum_j v[b, j] W_dec[:, c[b, j]] + pre_bias         dL/dx_c[b] = sum_j g[b, j] W_enc[c[b, j]]
    dL/dW_enc[c]  = sum of g[b, j] x_c[b] over the entries with c[b, j] = c     (only the selected rows)

Each is a weighted sum of gathered rows: `F.embedding_bag(..., per_sample_weights=..., mode="sum")` without the
[batch, n] matrix (`gather_sum`; EleutherAI's sparsify decodes so without Triton). During sparse training W_dec
[d, n] is stored column-major (`column_major_`, same values) so W_dec^T is embedding_bag's table without a copy.
Under bf16 autocast only the encoder's matmul runs in bf16: the gathers are memory-bound and stay float32 (no bf16
embedding_bag needed, which some CPUs lack).
"""
from __future__ import annotations

import contextlib
import warnings
from typing import TYPE_CHECKING, Callable, Iterator

import torch
import torch.nn.functional as F

from saelab import architectures as arch
from saelab import precision as amp

if TYPE_CHECKING:
    from saelab.sae import SAE

DECODERS = ("auto", "dense", "sparse")
SPARSE_MIN_LATENTS = 4096  # below this "auto" keeps the dense step without timing (toy and course sizes)
TIMING_ROWS = 1024  # "auto" times steps of at most this many tokens (cheaper; sparse gains more at full batch)
DECODER_TIMINGS: dict[tuple, dict[str, float]] = {}  # shape key -> seconds per step of "dense" and "sparse"
_BACKEND: dict[tuple, str | None] = {}  # (device type, precision) -> why the sparse step cannot run, or None


def _sort_order(keys: torch.Tensor) -> torch.Tensor:
    """argsort(keys), on one CPU thread: torch's multi-threaded sort of 1e5 keys took 270 ms instead of 2 ms on a busy
    2-core CPU (measured), longer than the rest of the sparse backward."""
    if keys.device.type != "cpu":
        return torch.argsort(keys, stable=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return torch.argsort(keys, stable=True)
    finally:
        torch.set_num_threads(threads)


def gather_sum(out_rows: torch.Tensor, in_rows: torch.Tensor, weights: torch.Tensor, table: torch.Tensor,
               n_out: int, presorted: bool = False) -> torch.Tensor:
    """out[n_out, width] with out[out_rows[e]] += weights[e] * table[in_rows[e]] for every entry e.

    A sparse [n_out, len(table)] matrix times `table`, computed by embedding_bag, which wants the entries sorted into
    bags: pass `presorted=True` when `out_rows` is already ascending.
    """
    if not presorted:
        order = _sort_order(out_rows)
        out_rows, in_rows, weights = out_rows[order], in_rows[order], weights[order]
    counts = torch.bincount(out_rows, minlength=n_out)
    offsets = counts.cumsum(0) - counts
    return F.embedding_bag(in_rows, table, offsets, mode="sum", per_sample_weights=weights.to(table.dtype))


class _SelectedPreActs(torch.autograd.Function):
    """Forward: the given pre-activation values. Backward: gradients as if values = x_c[rows] . W_enc[cols] + b[cols]."""

    @staticmethod
    def forward(ctx, values, rows, cols, x_c, W_enc, b_enc, rows_sorted):
        ctx.save_for_backward(rows, cols, x_c, W_enc)
        ctx.rows_sorted = rows_sorted
        return values.to(W_enc.dtype, copy=True)  # float32 from here on, even under bf16 autocast

    @staticmethod
    def backward(ctx, grad):
        rows, cols, x_c, W_enc = ctx.saved_tensors
        g = grad.to(W_enc.dtype)  # bf16 under autocast: the parameters' gradients are accumulated in float32
        grad_x = grad_W = grad_b = None
        if ctx.needs_input_grad[3]:
            grad_x = gather_sum(rows, cols, g, W_enc, len(x_c), presorted=ctx.rows_sorted)
        if ctx.needs_input_grad[4]:  # only the selected rows are non-zero; the rest is one memset
            grad_W = gather_sum(cols, rows, g, x_c, len(W_enc))
        if ctx.needs_input_grad[5]:
            grad_b = torch.zeros(len(W_enc), dtype=W_enc.dtype, device=g.device).index_add_(0, cols, g)
        return None, None, None, grad_x, grad_W, grad_b, None


def selected_pre_acts(values: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, x_c: torch.Tensor,
                      W_enc: torch.Tensor, b_enc: torch.Tensor, rows_sorted: bool = False) -> torch.Tensor:
    """`values` [nnz] (pre-activations computed without grad, at (rows, cols)) with the encoder's sparse backward:
    gradients reach x_c [batch, d], W_enc [n, d] and b_enc [n] only through the selected entries. Returned in
    W_enc's dtype. `rows_sorted=True` (rows ascending) saves a sort in the backward pass."""
    return _SelectedPreActs.apply(values, rows, cols, x_c, W_enc, b_enc, rows_sorted)


class _DecoderGradient(torch.autograd.Function):
    """Identity on the decoded batch; backward gives W_dec [d, n] its gradient, grad_out summed into the columns used.

    embedding_bag's own weight gradient sorts its indices on all threads (see `_sort_order`); this one does not.
    """

    @staticmethod
    def forward(ctx, out, values, cols, bags, W_dec):
        ctx.save_for_backward(values, cols, bags)
        ctx.n_latents = W_dec.shape[1]
        return out.clone()

    @staticmethod
    def backward(ctx, grad):
        values, cols, bags = ctx.saved_tensors
        grad_W = gather_sum(cols, bags, values, grad, ctx.n_latents).t()  # [d, n], column-major like W_dec in training
        return grad, None, None, None, grad_W


def sparse_decode(values: torch.Tensor, cols: torch.Tensor, bags: torch.Tensor, W_dec: torch.Tensor,
                  n_bags: int) -> torch.Tensor:
    """sum of values[e] * W_dec[:, cols[e]] per bag: [n_bags, d_model] (no pre_bias). W_dec is [d_model, n]; `bags`
    [nnz] ascending (entries ordered by token).

    `values` get their gradient from embedding_bag itself, W_dec a dense one (for Adam) from `_DecoderGradient`."""
    out = gather_sum(bags, cols, values, W_dec.detach().t(), n_bags, presorted=True)
    return _DecoderGradient.apply(out, values.detach(), cols, bags, W_dec)


def column_major_(W_dec: torch.Tensor) -> None:
    """Store W_dec [d_model, n] column-major (the same values) so that W_dec^T, embedding_bag's table, is contiguous:
    no transposed copy of the decoder in the forward pass or for its gradient (Adam's moments follow the layout)."""
    if W_dec.is_contiguous():
        W_dec.data = W_dec.data.t().contiguous().t()


@contextlib.contextmanager
def kept_layout(W_dec: torch.Tensor) -> Iterator[None]:
    """Give W_dec back its row-major layout on exit if `column_major_` changed it meanwhile."""
    was_contiguous = W_dec.is_contiguous()
    try:
        yield
    finally:
        if was_contiguous and not W_dec.is_contiguous():
            W_dec.data = W_dec.data.contiguous()


def check_decoder(decoder: str, activation: str) -> str:
    """Return `decoder` if it can train a `activation` SAE, else a ValueError that says what to use."""
    if decoder not in DECODERS:
        raise ValueError(f"decoder must be one of {DECODERS}; got {decoder!r}")
    if decoder == "sparse" and activation not in arch.NEEDS_K:
        raise ValueError(f'decoder="sparse" trains {", ".join(arch.NEEDS_K)} SAEs only (it decodes through the k '
                         f'active latents); a {activation} SAE uses all of its latents: use decoder="dense" or "auto"')
    return decoder


def backend_problem(device: torch.device | str, precision: str) -> str | None:
    """Why the sparse step cannot run on `device` in `precision` (an op it lacks), or None; cached per process."""
    from saelab.losses import sparse_topk_losses
    from saelab.sae import SAE
    key = (torch.device(device).type, precision)
    if key not in _BACKEND:
        try:
            sae = SAE(8, 16, "topk", k=2, normalize=False).to(device)
            x = torch.randn(4, 8, device=device)
            with amp.autocast(precision, device):
                sparse_topk_losses(sae, x, x, 2, 1 / 32, 0)[0].backward()
            _BACKEND[key] = None
        except (RuntimeError, NotImplementedError) as err:
            _BACKEND[key] = f"{type(err).__name__}: {str(err).splitlines()[0][:160]}"
    return _BACKEND[key]


def pick_decoder(decoder: str, sae: "SAE", precision: str, make_step: Callable[[str], Callable[[], None]],
                 shape_key: tuple = ()) -> tuple[str, str]:
    """What `decoder` means for this run: ("dense" or "sparse", a one-line reason). "auto": dense without timing for
    the architectures without k and below `SPARSE_MIN_LATENTS` latents (small runs stay what they always were); above,
    the faster of `make_step("dense")` and `make_step("sparse")` (timed once per process for `shape_key`). Where the
    device lacks an op, "sparse" falls back to "dense" with a warning."""
    check_decoder(decoder, sae.activation)
    device = sae.decoder.weight.device
    if decoder == "dense":
        return "dense", "dense: asked for"
    if decoder == "auto" and sae.activation not in arch.NEEDS_K:
        return "dense", f"auto: a {sae.activation} SAE uses all its latents, dense without timing"
    if decoder == "auto" and sae.n_latents < SPARSE_MIN_LATENTS:
        return "dense", f"auto: {sae.n_latents} latents < {SPARSE_MIN_LATENTS}, dense without timing"
    problem = backend_problem(device, precision)
    if problem is not None:
        note = f"dense: the sparse step fails on {torch.device(device).type} in {precision} ({problem})"
        if decoder == "sparse":
            warnings.warn(f'decoder="sparse" falls back to dense: {note}', RuntimeWarning, stacklevel=3)
        return "dense", note
    if decoder == "sparse":
        return "sparse", "sparse: asked for"
    key = (sae.activation, sae.d_model, sae.n_latents, sae.k, precision, torch.device(device).type) + tuple(shape_key)
    if key not in DECODER_TIMINGS:
        DECODER_TIMINGS[key] = amp.time_steps({name: make_step(name) for name in ("dense", "sparse")}, device=device)
    seconds = DECODER_TIMINGS[key]
    chosen = "sparse" if seconds["sparse"] < seconds["dense"] else "dense"
    return chosen, (f"auto: timed {1e3 * seconds['sparse']:.0f} ms sparse vs {1e3 * seconds['dense']:.0f} ms dense "
                    f"per step ({seconds['dense'] / seconds['sparse']:.2f}x), kept {chosen}")
