"""Train an SAE on activations: one small loop for the toy and for GPT-2, for every architecture.

    ReLU:  loss = ||x - x_hat||^2 + l1_coef * ||c||_1      (per token, averaged over the batch)
    TopK:  loss = ||x - x_hat||^2                           (sparsity is built into the activation)
    BatchTopK, Matryoshka, JumpReLU (l0_coef), Gated (l1_coef): their rules are in `saelab.architectures`.

The L1 term is weighted by the decoder norms implicitly: after every optimiser step each decoder
column is rescaled to unit norm, so the SAE cannot shrink ||c||_1 by growing a column instead.
With `normalize=True` SAEs the loss is computed in the SAE's standardised space, as OpenAI did.

Dead latents: `sae.stats_last_nonzero[i]` counts the steps since latent i last fired. Every
`resample_every` steps the latents silent for `dead_after` steps are given new directions
(`resample_dead_latents`, strategy "reinit" or "high_loss"). For TopK SAEs there is also OpenAI's AuxK
loss (`aux_k` > 0): the `aux_k` strongest dead latents must reconstruct what the live ones missed, which
gives them gradient without moving them by hand.

A target distinct from the input (`target=`): the SAE then reads x and reconstructs y, e.g. a *transcoder*
that reads an MLP's input and writes its output. Pass a tensor `target` aligned row for row with a tensor `data`,
or stream (input, target) pairs. The shared `pre_bias` becomes the output bias (initialised at the target mean);
the free `latent_bias` absorbs any input offset. Without a target everything is exactly as before.

Precision (`saelab.precision`): with "bf16" / "fp16" only the forward pass runs under torch.autocast, so the
matmuls run in reduced precision; parameters, Adam state, the decoder-norm constraint, the metrics, the
orthogonality and resampling stay float32. "auto" (the default) times a few steps of the real shapes once per
process and keeps bf16 only where it is >= 1.2x faster; with "fp32" the loop is exactly what it always was.

Decoder (`saelab.sparse_topk`): TopK, BatchTopK and Matryoshka SAEs can train through their k active latents only
(`decoder="sparse"`), the same training up to float rounding. "auto" keeps "dense" without timing below 4,096 latents
and for the other architectures; above, it times both once per process. The losses are in `saelab.losses`.
"""
from __future__ import annotations

import contextlib
import copy
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch
import torch.nn.functional as F

from saelab import architectures as arch
from saelab import metrics
from saelab import precision as amp
from saelab import sparse_topk
from saelab.architectures import aux_k_loss  # noqa: F401  (importable from here, as before)
from saelab.losses import batch_losses, fired_latents, loss_settings, mean_l0
from saelab.sae import SAE

STRATEGIES = ("reinit", "high_loss")


@dataclass
class History:
    """What `train_sae` logged: one entry per log step (ortho and resampling on their own steps)."""
    step: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    mse: list[float] = field(default_factory=list)
    l1: list[float] = field(default_factory=list)
    l0: list[float] = field(default_factory=list)
    fvu: list[float] = field(default_factory=list)
    dead_fraction: list[float] = field(default_factory=list)
    ortho_step: list[int] = field(default_factory=list)
    ortho: list[float] = field(default_factory=list)
    resampled: list[tuple[int, int]] = field(default_factory=list)  # (step, number of latents)
    tokens: int = 0
    seconds: float = 0.0
    stopped: bool = False
    precision: str = "fp32"  # what the matmuls ran in: "fp32", "bf16" or "fp16" ("auto" resolved)
    decoder: str = "dense"  # "dense" or "sparse" (the TopK family through its active latents; "auto" resolved)
    decoder_note: str = ""  # why that decoder: asked for, below the size threshold, timed, or a fallback

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / max(self.seconds, 1e-9)

    def last(self) -> dict[str, float]:
        """The most recent log entry as a dict (empty before the first log)."""
        if not self.step:
            return {}
        keys = ("step", "loss", "mse", "l1", "l0", "fvu", "dead_fraction")
        return {k: getattr(self, k)[-1] for k in keys}


# --- initialisation and data ---------------------------------------------------------------
@torch.no_grad()
def init_sae_(sae: SAE, seed: int = 0, x_sample: torch.Tensor | None = None) -> SAE:
    """Seeded init: unit-norm random decoder columns, encoder = decoder^T, pre_bias = mean input."""
    g = torch.Generator().manual_seed(seed)
    W = F.normalize(torch.randn(sae.d_model, sae.n_latents, generator=g), dim=0)
    sae.decoder.weight.copy_(W)
    sae.encoder.weight.copy_(W.T)
    sae.latent_bias.zero_()
    sae.pre_bias.zero_()
    if x_sample is not None:  # start the decoder bias at the data mean: the SAE then models deviations
        x_sample = x_sample.reshape(-1, x_sample.shape[-1]).to(W)
        sae.pre_bias.copy_(sae.preprocess(x_sample)[0].mean(dim=0))
    sae.stats_last_nonzero.zero_()
    _init_architecture_(sae)
    return sae


@torch.no_grad()
def _init_architecture_(sae: SAE) -> None:
    """Reset the tensors only some architectures have (nothing for ReLU and TopK)."""
    if hasattr(sae, "threshold"):
        sae.threshold.fill_(-1.0)  # BatchTopK / Matryoshka: estimated again during training
    if sae.activation == "jumprelu":
        sae.log_threshold.fill_(math.log(arch.JUMP_INIT_THRESHOLD))
    if sae.activation == "gated":
        sae.r_mag.zero_()
        sae.mag_bias.zero_()


def iterate_batches(data: torch.Tensor | Iterable[torch.Tensor], batch_size: int,
                    seed: int = 0) -> Iterator[torch.Tensor]:
    """Yield batches [batch, d_model]: seeded reshuffled epochs of a tensor, or the items of an iterable."""
    if not torch.is_tensor(data):
        yield from data
        return
    data = data.reshape(-1, data.shape[-1])
    batch_size = min(batch_size, len(data))
    g = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(len(data), generator=g)
        for i in range(0, len(data) - batch_size + 1, batch_size):
            yield data[perm[i:i + batch_size]]


def iterate_pairs(data: torch.Tensor | Iterable, target: torch.Tensor | None, batch_size: int,
                  seed: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (input, target) batches: the same seeded reshuffle of two aligned tensors, or a stream of pairs."""
    if target is None:
        for item in iterate_batches(data, batch_size, seed):
            if isinstance(item, (tuple, list)):
                if len(item) != 2:
                    raise ValueError(f"a streamed item must be a batch or an (input, target) pair; got "
                                     f"{len(item)} tensors")
                yield item[0], item[1]
            else:
                yield item, item
        return
    if not torch.is_tensor(data) or not torch.is_tensor(target):
        raise ValueError("target= must be a tensor aligned with a tensor `data`; to stream, yield (input, target) "
                         "pairs from `data` and leave target=None")
    data, target = data.reshape(-1, data.shape[-1]), target.reshape(-1, target.shape[-1])
    if len(data) != len(target):
        raise ValueError(f"data has {len(data)} rows but target has {len(target)}; pass one target row per "
                         "input row (e.g. MLP input and MLP output of the same tokens)")
    batch_size = min(batch_size, len(data))
    g = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(len(data), generator=g)
        for i in range(0, len(data) - batch_size + 1, batch_size):
            rows = perm[i:i + batch_size]
            yield data[rows], target[rows]


# --- dead latents ------------------------------------------------------------------------------
@torch.no_grad()
def resample_dead_latents(sae: SAE, optimizer: torch.optim.Optimizer | None, dead: torch.Tensor,
                          x: torch.Tensor, strategy: str = "high_loss", seed: int = 0,
                          target: torch.Tensor | None = None) -> int:
    """Give the latents where `dead` [n_latents] is True new directions; return how many.

    "reinit":    random unit decoder column, encoder row = the same direction (as at init).
    "high_loss": decoder column = a normalised input x - pre_bias drawn with probability
                 proportional to its squared reconstruction error (Anthropic, 2023); encoder row =
                 that direction * 0.2 * mean norm of the live encoder rows.
    Both zero the latent's bias, its steps-since-fired counter and its Adam moments.
    x [batch, d_model] must already be preprocessed (`sae.preprocess`). With a `target` (a transcoder) the
    error is measured against it, the decoder column points at the target and the encoder row at the input.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}; got {strategy!r}")
    idx = dead.nonzero().squeeze(1)
    if len(idx) == 0:
        return 0
    g = torch.Generator().manual_seed(seed)
    W_enc, W_dec = sae.encoder.weight, sae.decoder.weight
    if strategy == "reinit":
        directions = F.normalize(torch.randn(len(idx), sae.d_model, generator=g), dim=-1).to(W_dec)
        enc_rows = directions
    else:
        y = x if target is None else target
        x_hat = sae.decoder(sae.activate(sae.encode_pre_act(x))) + sae.pre_bias
        err = (y - x_hat).pow(2).sum(dim=-1).float().cpu()
        probs = err if err.sum() > 0 else torch.ones_like(err)
        # with replacement when fewer inputs have an error than latents are dead: never a zero-error input
        picks = torch.multinomial(probs, len(idx), replacement=len(idx) > int((probs > 0).sum()), generator=g)
        directions = F.normalize(y[picks.to(x.device)] - sae.pre_bias, dim=-1)
        alive = ~dead
        scale = 0.2 * W_enc[alive].norm(dim=1).mean() if alive.any() else 1.0
        if target is None:
            enc_rows = directions * scale
        else:  # read the input that caused the error, write the target it missed
            enc_rows = F.normalize(x[picks.to(x.device)] - x.mean(dim=0), dim=-1) * scale
    W_dec[:, idx] = directions.T
    W_enc[idx] = enc_rows
    sae.latent_bias[idx] = 0.0
    sae.stats_last_nonzero[idx] = 0
    if optimizer is not None:  # stale Adam moments would push the new directions straight back
        for param, index in ((W_enc, (idx,)), (W_dec, (slice(None), idx)), (sae.latent_bias, (idx,))):
            for key in ("exp_avg", "exp_avg_sq"):
                if key in optimizer.state.get(param, {}):
                    optimizer.state[param][key][index] = 0.0
    return len(idx)


def decoder_orthogonality_auto(W_dec: torch.Tensor, exact_max: int = 2048, seed: int = 0) -> float:
    """Exact mean |cos| of decoder columns up to `exact_max` latents, an unbiased sample above."""
    if W_dec.shape[1] <= exact_max:
        return metrics.decoder_orthogonality(W_dec)
    return metrics.decoder_orthogonality_sampled(W_dec, n_pairs=16384, seed=seed)


# --- the loop ------------------------------------------------------------------------------------
def train_sae(
    sae: SAE,
    data: torch.Tensor | Iterable[torch.Tensor],
    *,
    target: torch.Tensor | None = None,
    n_steps: int = 1000,
    batch_size: int = 4096,
    lr: float = 1e-3,
    l1_coef: float = 1e-3,
    l0_coef: float = 1e-3,
    seed: int = 0,
    init: bool = True,
    log_every: int = 50,
    ortho_every: int | None = 500,
    ortho_exact_max: int = 2048,
    resample_every: int | None = None,
    resample_strategy: str = "high_loss",
    dead_after: int = 500,
    aux_k: int = 0,
    aux_coef: float = 1 / 32,
    normalize_decoder: bool = True,
    progress: bool = False,
    num_threads: int | None = None,
    callback: Callable[[History, SAE], bool | None] | None = None,
    stop: threading.Event | None = None,
    checkpoint_path: str | Path | None = None,
    checkpoint_every: int | None = None,
    resume: bool = False,
    precision: str = "auto",
    decoder: str = "auto",
) -> History:
    """Train `sae` in place on batches [batch, d_model] and return the `History`.

    `data` is an in-memory tensor [n_tokens, d_model] (seeded shuffling) or any iterable of batches
    (training stops when it runs out). `target` [n_tokens, d_model], aligned with a tensor `data`, makes the SAE
    reconstruct the target instead of its input (a transcoder); an iterable `data` may instead yield
    (input, target) pairs. `callback(history, sae)` runs after every log; return True
    from it, or set the `stop` event, to stop early. `init=False` continues from the current weights.
    `num_threads=None` uses one CPU thread for toy-sized SAEs (tiny matmuls run faster, and far
    faster when other programs share the cores) and torch's setting otherwise. `aux_k` > 0 (TopK, BatchTopK,
    Matryoshka) adds `aux_coef` x the AuxK loss over the latents silent for `dead_after` steps. `l1_coef` weighs
    the L1 penalty of ReLU and Gated SAEs, `l0_coef` the L0 penalty of JumpReLU SAEs. `precision` is "auto",
    "fp32", "bf16" or "fp16" (CUDA only), see `saelab.precision`; `history.precision` says what ran. `decoder` is
    "auto", "dense" or "sparse" (TopK, BatchTopK, Matryoshka: see `saelab.sparse_topk`); `history.decoder` says which
    ran and `history.decoder_note` why.
    `checkpoint_path` saves the SAE every `checkpoint_every` steps and at the end, with the run's state (step,
    Adam moments, precision) beside it in `<path>.train`; `resume=True` continues from there (the same data,
    seed and settings then give the weights of an uninterrupted run; the History holds the new steps only).
    """
    amp.check_precision(precision, sae.decoder.weight.device)
    sparse_topk.check_decoder(decoder, sae.activation)
    if resume and checkpoint_path is None:
        raise ValueError("resume=True continues the run saved at checkpoint_path; pass checkpoint_path too")
    if aux_k and sae.activation not in arch.NEEDS_K:
        raise ValueError(f"aux_k is the AuxK loss of {', '.join(arch.NEEDS_K)} SAEs; for a {sae.activation} SAE "
                         "use resample_every instead")
    if num_threads is None and sae.n_latents * sae.d_model * batch_size < 2**24:
        num_threads = 1
    with _cpu_threads(num_threads), sparse_topk.kept_layout(sae.decoder.weight):
        return _train(sae, data, target=target, n_steps=n_steps, batch_size=batch_size, lr=lr, l1_coef=l1_coef,
                      l0_coef=l0_coef, seed=seed,
                      init=init, log_every=log_every, ortho_every=ortho_every, ortho_exact_max=ortho_exact_max,
                      resample_every=resample_every, resample_strategy=resample_strategy,
                      dead_after=dead_after, aux_k=aux_k, aux_coef=aux_coef,
                      normalize_decoder=normalize_decoder, progress=progress,
                      callback=callback, stop=stop, checkpoint_path=checkpoint_path,
                      checkpoint_every=checkpoint_every, resume=resume, precision=precision, decoder=decoder)


@contextlib.contextmanager
def _cpu_threads(n: int | None) -> Iterator[None]:
    """Temporarily use n CPU threads in torch (None: leave as is)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n or before)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train(sae: SAE, data, *, target, n_steps, batch_size, lr, l1_coef, l0_coef, seed, init, log_every, ortho_every,
           ortho_exact_max, resample_every, resample_strategy, dead_after, aux_k, aux_coef, normalize_decoder,
           progress, callback, stop, checkpoint_path, checkpoint_every, resume, precision, decoder) -> History:
    """The training loop itself (arguments as in `train_sae`)."""
    if resample_strategy not in STRATEGIES:
        raise ValueError(f"resample_strategy must be one of {STRATEGIES}; got {resample_strategy!r}")
    if log_every < 1:
        raise ValueError(f"log_every must be >= 1; got {log_every}")
    batches = iterate_pairs(data, target, batch_size, seed)
    first_pair = next(batches, None)
    if first_pair is None:
        raise ValueError("data yielded no batches; pass a tensor [n_tokens, d_model] or an iterable of them")
    first, first_y = first_pair
    transcoder = first_y is not first
    if transcoder:
        _check_target(sae, first, first_y)
    device, dtype = sae.decoder.weight.device, sae.decoder.weight.dtype
    if init:
        init_sae_(sae, seed, first_y.to(device))  # pre_bias starts at the mean of what the SAE writes
    optimizer = torch.optim.Adam(sae.parameters(), lr=lr)
    saved = _load_run(checkpoint_path, sae, optimizer) if resume else None
    done = saved["step"] if saved else 0
    for _ in range(done - 1):  # skip the batches the saved run already trained on
        next(batches, None)
    loss_args = loss_settings(sae, l1_coef, l0_coef, aux_k, aux_coef, dead_after)
    history = History(precision=saved["precision"] if saved else
                      _resolve(precision, sae, first, lr, loss_args, normalize_decoder))
    history.decoder, history.decoder_note = ((saved["decoder"], "resumed") if saved and "decoder" in saved else
                                             _resolve_decoder(decoder, sae, first, lr, loss_args, normalize_decoder,
                                                              history.precision))
    if history.decoder == "sparse":
        sparse_topk.column_major_(sae.decoder.weight)  # W_dec^T contiguous for embedding_bag; restored at the end
    scaler = amp.grad_scaler(history.precision, device) if history.precision == "fp16" else None
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=n_steps, desc=f"training {sae.activation} SAE", unit="step")

    start = time.perf_counter()
    x, y = first, first_y
    for step in range(done + 1, n_steps + 1):
        if step > 1:
            pair = next(batches, None)
            if pair is None:
                break
            x, y = pair
            if transcoder:
                _check_target(sae, x, y)
        x = x.reshape(-1, x.shape[-1]).to(device=device, dtype=dtype, non_blocking=True)  # [batch, d_model]
        x, _ = sae.preprocess(x)  # standardised for normalize=True SAEs; the loss lives in this space
        y = x if not transcoder else y.reshape(-1, y.shape[-1]).to(device=device, dtype=dtype, non_blocking=True)
        with amp.autocast(history.precision, device):
            loss, mse, l1, latents, x_hat = batch_losses(sae, x, y, loss_args, history.decoder)
        _update(sae, loss, optimizer, scaler, normalize_decoder)
        sae.stats_last_nonzero.mul_(~fired_latents(latents)).add_(1)  # steps since each latent last fired
        history.tokens += len(x)

        if step % log_every == 0 or step == n_steps:
            _log(history, step, loss, mse, l1, latents, y, x_hat, sae, dead_after)
            if bar is not None:
                bar.set_postfix(loss=f"{history.loss[-1]:.4g}", L0=f"{history.l0[-1]:.1f}",
                                FVU=f"{history.fvu[-1]:.3f}", refresh=False)
            if callback is not None and callback(history, sae):
                history.stopped = True
        if ortho_every and (step % ortho_every == 0 or step == n_steps):
            history.ortho_step.append(step)
            history.ortho.append(decoder_orthogonality_auto(sae.decoder.weight, ortho_exact_max, seed + step))
        if resample_every and step % resample_every == 0 and step < n_steps:
            dead = sae.stats_last_nonzero >= dead_after
            n = resample_dead_latents(sae, optimizer, dead, x, resample_strategy, seed + step,
                                      target=y if transcoder else None)
            if n:
                history.resampled.append((step, n))
        done = step
        if checkpoint_path is not None and checkpoint_every and step % checkpoint_every == 0:
            _save_run(checkpoint_path, sae, optimizer, step, history)
        if bar is not None:
            bar.update(1)
        if history.stopped or (stop is not None and stop.is_set()):
            history.stopped = True
            break

    history.seconds = time.perf_counter() - start
    if bar is not None:
        bar.close()
    if checkpoint_path is not None:
        _save_run(checkpoint_path, sae, optimizer, done, history)
    return history


def _save_run(path: str | Path, sae: SAE, optimizer: torch.optim.Optimizer, step: int, history: History) -> None:
    """The SAE at `path` and what resuming needs at `<path>.train`: step, weights, Adam state, precision, decoder."""
    sae.save(path)
    state = {"step": step, "sae": sae.state_dict(), "optimizer": optimizer.state_dict(),
             "precision": history.precision, "decoder": history.decoder}
    tmp = Path(f"{path}.train.tmp")
    torch.save(state, tmp)
    tmp.replace(f"{path}.train")  # never a half-written state


def _load_run(path: str | Path, sae: SAE, optimizer: torch.optim.Optimizer) -> dict | None:
    """Load a saved run into `sae` and `optimizer`; None (start afresh) when nothing was saved yet."""
    file = Path(f"{path}.train")
    if not file.is_file():
        return None
    state = torch.load(file, map_location=sae.decoder.weight.device, weights_only=True)
    sae.load_state_dict(state["sae"])
    optimizer.load_state_dict(state["optimizer"])
    return state


def _check_target(sae: SAE, x: torch.Tensor, y: torch.Tensor) -> None:
    """Raise a clear error when a target batch does not fit the SAE or its input batch."""
    if sae.normalize:
        raise ValueError("training on a target needs an SAE with normalize=False (standardising the input would "
                         "also rescale the target); build it as SAE(..., normalize=False)")
    if y.shape[-1] != sae.d_model:
        raise ValueError(f"target has width {y.shape[-1]} but the SAE writes {sae.d_model}; build the SAE with "
                         f"d_model={y.shape[-1]} or pass the matching target")
    if x.reshape(-1, x.shape[-1]).shape[0] != y.reshape(-1, y.shape[-1]).shape[0]:
        raise ValueError(f"an (input, target) pair has {x.reshape(-1, x.shape[-1]).shape[0]} input rows and "
                         f"{y.reshape(-1, y.shape[-1]).shape[0]} target rows; yield one target row per input row")


def _update(sae: SAE, loss: torch.Tensor, optimizer: torch.optim.Optimizer,
            scaler: torch.amp.GradScaler | None, normalize_decoder: bool) -> None:
    """Backward, Adam step (through the fp16 gradient scaler if any), unit-norm decoder columns; all float32."""
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
        optimizer.step()
    else:  # fp16: scale the loss so small gradients do not underflow; skip steps whose gradients overflowed
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    if normalize_decoder:
        with torch.no_grad():
            W = sae.decoder.weight
            W.div_(W.norm(dim=0, keepdim=True).clamp_min(1e-8))


def _step_on_copy(sae: SAE, x: torch.Tensor, lr: float, loss_args: tuple, normalize_decoder: bool,
                  precision: str, decoder: str) -> Callable[[], None]:
    """One training step of a copy of `sae` on preprocessed x, repeatable (timing must not move the real SAE,
    its counters or the optimiser)."""
    s, device = copy.deepcopy(sae), sae.decoder.weight.device
    if decoder == "sparse":
        sparse_topk.column_major_(s.decoder.weight)
    opt = torch.optim.Adam(s.parameters(), lr=lr)
    scaler = amp.grad_scaler(precision, device) if precision == "fp16" else None

    def step() -> None:
        with amp.autocast(precision, device):
            loss = batch_losses(s, x, x, loss_args, decoder)[0]
        _update(s, loss, opt, scaler, normalize_decoder)
    return step


def _first_batch(sae: SAE, first: torch.Tensor) -> torch.Tensor:
    """The first batch as the loop sees it: [batch, d_model], on the SAE's device and dtype, preprocessed."""
    x = first.reshape(-1, first.shape[-1]).to(device=sae.decoder.weight.device, dtype=sae.decoder.weight.dtype)
    return sae.preprocess(x)[0]


def _resolve(precision: str, sae: SAE, first: torch.Tensor, lr: float, loss_args: tuple,
             normalize_decoder: bool) -> str:
    """`precision` with "auto" resolved by timing (dense) training steps of these shapes on copies of the SAE."""
    x = _first_batch(sae, first)
    make_step = lambda p: _step_on_copy(sae, x, lr, loss_args, normalize_decoder, p, "dense")  # noqa: E731
    # the fastest choice can depend on the thread count too (train_sae uses 1 thread for toy-sized SAEs)
    key = (sae.activation, sae.d_model, sae.n_latents, len(x), bool(loss_args[1]), torch.get_num_threads())
    return amp.resolve_precision(precision, "train_sae", make_step, sae.decoder.weight.device, key,
                                 work=len(x) * sae.d_model * sae.n_latents)


def _resolve_decoder(decoder: str, sae: SAE, first: torch.Tensor, lr: float, loss_args: tuple,
                     normalize_decoder: bool, precision: str) -> tuple[str, str]:
    """(the decoder that runs, why): `sparse_topk.pick_decoder`, timing steps on copies and on at most
    `sparse_topk.TIMING_ROWS` rows of the first batch if needed."""
    x = _first_batch(sae, first)
    rows = x[:sparse_topk.TIMING_ROWS]
    make_step = lambda d: _step_on_copy(sae, rows, lr, loss_args, normalize_decoder, precision, d)  # noqa: E731
    key = (len(x), bool(loss_args[-3]), torch.get_num_threads())
    return sparse_topk.pick_decoder(decoder, sae, precision, make_step, key)


@torch.no_grad()
def _log(history: History, step: int, loss: torch.Tensor, mse: torch.Tensor, l1: torch.Tensor,
         latents: torch.Tensor, x: torch.Tensor, x_hat: torch.Tensor, sae: SAE, dead_after: int) -> None:
    """Append one log entry (the only place the loop turns tensors into Python floats)."""
    history.step.append(step)
    history.loss.append(loss.item())
    history.mse.append(mse.item())
    history.l1.append(l1.item())
    history.l0.append(mean_l0(latents))
    history.fvu.append(metrics.fraction_variance_unexplained(x, x_hat))
    history.dead_fraction.append((sae.stats_last_nonzero >= dead_after).float().mean().item())
    if not math.isfinite(history.loss[-1]):
        raise FloatingPointError(f"loss became {history.loss[-1]} at step {step}; lower lr or l1_coef")
