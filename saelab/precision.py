"""Mixed precision where the hardware pays for it: measure, don't assume.

    "fp32"  everything in float32 (today's behaviour, bit for bit)
    "bf16"  matmuls under torch.autocast(bfloat16); parameters, optimiser state and metrics stay float32
    "fp16"  the same in float16, CUDA only, with a gradient scaler (float16 gradients underflow without one)
    "auto"  time a few steps of the real shapes in each precision the device supports, once per process,
            and keep the faster one when it is at least `MIN_SPEEDUP` x faster; otherwise float32

Many CPUs have no fast bfloat16 (there it is slower than float32); CPUs with AVX512-BF16 / AMX and GPUs
from Ampere on are 2-4x faster in it. Only timing the real step tells which machine you are on.
"""
from __future__ import annotations

import contextlib
import time
from typing import Callable

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
MIN_SPEEDUP = 1.2  # below this, reduced precision is not worth its rounding
TOY_WORK = 2**24  # multiply-adds in a step's largest matmul below which "auto" keeps fp32 without timing
PROBE_SHAPE = (256, 768, 768)  # [m, k] x [k, n]: the matmul that screens out hardware without fast units
_CHOSEN: dict[tuple, str] = {}  # (kind, device type, shape key) -> the precision "auto" picked
TIMINGS: dict[tuple, dict[str, float]] = {}  # the same keys -> seconds per step of each precision timed


def _device_type(device: str | torch.device) -> str:
    return torch.device(device).type


def supported_precisions(device: str | torch.device = "cpu") -> list[str]:
    """The precisions that can run on `device` (fp32 first); "auto" chooses among these."""
    kind = _device_type(device)
    if kind == "cpu":
        return ["fp32", "bf16"]  # autocast bf16 runs on any CPU; whether it is *fast* is what "auto" measures
    if kind == "cuda":
        out = ["fp32"]
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            out.append("bf16")
        return out + ["fp16"]
    return ["fp32"]  # mps and others: keep it simple and exact


def check_precision(precision: str, device: str | torch.device = "cpu") -> str:
    """Return `precision` if it can run on `device`, else raise a ValueError that says what to use."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}")
    if precision == "auto":
        return precision
    supported = supported_precisions(device)
    if precision not in supported:
        hint = "'fp16' needs a CUDA GPU (it uses a gradient scaler); " if precision == "fp16" else ""
        raise ValueError(f"precision {precision!r} does not run on device {str(device)!r}: {hint}"
                         f"use one of {supported} or 'auto'")
    return precision


def autocast(precision: str, device: str | torch.device = "cpu") -> contextlib.AbstractContextManager:
    """A context in which matmuls run in `precision` ("fp32": no autocast at all, so results are unchanged)."""
    check_precision(precision, device)
    if precision == "auto":
        raise ValueError("resolve 'auto' first (pick_precision); autocast needs 'fp32', 'bf16' or 'fp16'")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(_device_type(device), dtype=DTYPES[precision])


def grad_scaler(precision: str, device: str | torch.device = "cpu") -> torch.amp.GradScaler:
    """A gradient scaler, enabled only for fp16 (bf16 has float32's range and needs none)."""
    return torch.amp.GradScaler(_device_type(device), enabled=precision == "fp16")


def time_steps(steps: dict[str, Callable[[], None]], rounds: int = 3, budget_s: float = 3.0,
               device: str | torch.device = "cpu") -> dict[str, float]:
    """Seconds per call of each step (best of interleaved rounds, after one warm-up each): robust to other load."""
    kind = _device_type(device)

    def timed(fn: Callable[[], None]) -> float:
        if kind == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if kind == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    for fn in steps.values():
        fn()  # warm-up: first calls pay for allocation and kernel selection
    best = dict.fromkeys(steps, float("inf"))
    start = time.perf_counter()
    for r in range(rounds):
        for name, fn in steps.items():
            best[name] = min(best[name], timed(fn))
        if r >= 1 and time.perf_counter() - start > budget_s:
            break
    return best


_PROBED: dict[tuple[str, str], float] = {}


def matmul_speedup(precision: str, device: str | torch.device = "cpu") -> float:
    """How many times faster a `PROBE_SHAPE` matmul runs under autocast(`precision`) than in fp32 (cached).

    A cheap screen before timing real steps: on a CPU without bfloat16 units a bf16 matmul is 4-100x slower,
    and a full-size training step timed in it would take minutes.
    """
    key = (precision, _device_type(device))
    if key not in _PROBED:
        m, k, n = PROBE_SHAPE
        g = torch.Generator().manual_seed(0)
        a, w = torch.randn(m, k, generator=g).to(device), torch.randn(n, k, generator=g).to(device)

        def run(p: str) -> Callable[[], None]:
            def step() -> None:
                with autocast(p, device):
                    torch.nn.functional.linear(a, w)
            return step
        seconds = time_steps({"fp32": run("fp32"), precision: run(precision)}, rounds=3, budget_s=0.5,
                             device=device)
        _PROBED[key] = seconds["fp32"] / seconds[precision]
    return _PROBED[key]


def pick_precision(kind: str, make_step: Callable[[str], Callable[[], None]],
                   device: str | torch.device = "cpu", shape_key: tuple = (), work: float | None = None,
                   min_speedup: float = MIN_SPEEDUP) -> str:
    """What "auto" means: the fastest supported precision for this work, if >= `min_speedup` x float32.

    `make_step(precision)` returns a function that runs one step of the real work (on copies: timing must not
    change the caller's state). `work` (multiply-adds of the step's largest matmul) below `TOY_WORK` means
    fp32 without timing: autocast's casts cost more than such matmuls, and timing them is noise. Precisions
    whose probe matmul is slower than fp32 (`matmul_speedup` < 1) are never timed on the real step.
    The answer is cached per process for (kind, device type, shape_key).
    """
    key = (kind, _device_type(device), tuple(shape_key))
    if key not in _CHOSEN:
        candidates = ["fp32"] + [p for p in supported_precisions(device)[1:]
                                 if (work is None or work >= TOY_WORK) and matmul_speedup(p, device) >= 1.0]
        if len(candidates) == 1:
            _CHOSEN[key] = "fp32"
        else:
            TIMINGS[key] = seconds = time_steps({p: make_step(p) for p in candidates}, device=device)
            fastest = min(seconds, key=seconds.get)
            fast_enough = seconds["fp32"] >= min_speedup * seconds[fastest]
            _CHOSEN[key] = fastest if fast_enough else "fp32"
    return _CHOSEN[key]


def resolve_precision(precision: str, kind: str, make_step: Callable[[str], Callable[[], None]],
                      device: str | torch.device = "cpu", shape_key: tuple = (), work: float | None = None) -> str:
    """`precision` checked for `device`, with "auto" replaced by what `pick_precision` measures."""
    check_precision(precision, device)
    if precision != "auto":
        return precision
    return pick_precision(kind, make_step, device, shape_key, work)
