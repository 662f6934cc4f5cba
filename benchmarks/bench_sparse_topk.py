"""Sparse TopK training (issue 30): one training step through the k active latents against the dense step.

For d = 768, n = 4,096 / 32,768 / 131,072 latents and k = 32 / 64: seconds per Adam step of saelab's training step
(the loss of `saelab.losses.batch_losses`, backward, Adam, unit-norm decoder columns, as `train_sae` runs it) with
decoder="dense" and decoder="sparse", best of interleaved repeats after one warm-up each, and the peak memory that
the step adds (Linux: the resident high-water mark, reset before each step). fp32 always; bf16 (autocast) only where
the CPU multiplies bf16 faster than fp32 (the probe of `saelab.precision`). Where SAELens is importable, its TopK
training step of the same shape too. Issue 30's goal: sparse >= 2.5x dense at n = 32,768, k = 32, fp32.
Run: python benchmarks/bench_sparse_topk.py [--batch 2048] [--repeats 2] [--sizes 4096,32768,131072]
     (or SAELAB_BENCH_BATCH / SAELAB_BENCH_REPEATS; the issue's table used batch 4,096)
"""
from __future__ import annotations

import argparse
import copy
import os
import re
import time
from pathlib import Path
from typing import Callable

import torch

from saelab import precision as amp
from saelab import sparse_topk
from saelab.losses import batch_losses, loss_settings
from saelab.sae import SAE
from saelab.training import init_sae_

D = 768


def make_step(sae: SAE, x: torch.Tensor, decoder: str, precision: str, aux_k: int = 0) -> Callable[[], None]:
    """One training step of a copy of `sae` as `train_sae` runs it (fp32 Adam, unit-norm decoder columns)."""
    s = copy.deepcopy(sae)
    if decoder == "sparse":
        sparse_topk.column_major_(s.decoder.weight)
    opt = torch.optim.Adam(s.parameters(), lr=1e-4)
    settings = loss_settings(s, 0.0, 0.0, aux_k, 1 / 32, 0)  # dead_after 0: with aux_k, every latent is "dead"

    def step() -> None:
        with amp.autocast(precision):
            loss = batch_losses(s, x, x, settings, decoder)[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            W = s.decoder.weight
            W.div_(W.norm(dim=0, keepdim=True).clamp_min(1e-8))
    return step


def _status_kib(field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


def peak_mib(fn: Callable[[], None]) -> float | None:
    """Run fn; the resident memory it added at its peak (MiB), or None where /proc cannot reset the mark."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        fn()
        return None
    before = _status_kib("VmRSS")
    fn()
    return (_status_kib("VmHWM") - before) / 1024


def measure(steps: dict[str, Callable[[], None]], repeats: int) -> dict[str, tuple[float, float | None]]:
    """(best seconds, peak MiB) of each step: one warm-up each, then `repeats` interleaved rounds."""
    for fn in steps.values():
        fn()  # Adam's state and the gradients are allocated here, not in the step's working memory
    best = {name: (float("inf"), None) for name in steps}
    for _ in range(repeats):
        for name, fn in steps.items():
            start = time.perf_counter()
            peak = peak_mib(fn)
            seconds = time.perf_counter() - start
            old_s, old_peak = best[name]
            best[name] = (min(old_s, seconds), peak if old_peak is None else max(old_peak, peak or 0.0))
    return best


def saelens_step(n: int, k: int, x: torch.Tensor) -> Callable[[], None] | str:
    """SAELens's TopK training step of the same shape, or why there is none."""
    try:
        import dataclasses

        from sae_lens.saes.sae import TrainStepInput
        from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig
    except ImportError as err:
        return f"SAELens is not importable here ({err.name or err}); it pins transformer-lens < 4, see FACTS.md"
    try:
        sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=D, d_sae=n, k=k, dtype="float32", device="cpu"))
        known = {"sae_in": x, "coefficients": {}, "current_l1_coefficient": 0.0,
                 "dead_neuron_mask": torch.ones(n, dtype=torch.bool), "n_training_steps": 0}
        step_input = TrainStepInput(**{f.name: known[f.name] for f in dataclasses.fields(TrainStepInput)
                                       if f.name in known})
        opt = torch.optim.Adam(sae.parameters(), lr=1e-4)
    except Exception as err:  # its API moves between versions: say so rather than fail the whole benchmark
        return f"SAELens {type(err).__name__}: {err}"

    def step() -> None:
        out = sae.training_forward_pass(step_input)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
    return step


def cpu_flags() -> str:
    """The CPU's model and the vector / matrix units that decide fp32 and bf16 speed."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    model = re.search(r"model name\s*:\s*(.*)", info)
    flags = set(re.search(r"flags\s*:\s*(.*)", info).group(1).split()) if "flags" in info else set()
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")
    return (f"{model.group(1) if model else 'unknown CPU'}; {', '.join(f for f in wanted if f in flags) or 'none of'} "
            f"({' '.join(f for f in wanted if f not in flags) or 'nothing'} absent); "
            f"torch CPU capability {torch.backends.cpu.get_cpu_capability()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=int(os.environ.get("SAELAB_BENCH_BATCH", 2048)))
    parser.add_argument("--repeats", type=int, default=int(os.environ.get("SAELAB_BENCH_REPEATS", 2)))
    parser.add_argument("--sizes", default="4096,32768,131072", help="comma-separated numbers of latents")
    parser.add_argument("--ks", default="32,64")
    parser.add_argument("--aux-k", type=int, default=0, help="AuxK over all latents (OpenAI used 256-512); 0: off")
    args = parser.parse_args()
    sizes, ks = [int(v) for v in args.sizes.split(",")], [int(v) for v in args.ks.split(",")]
    bf16_speed = amp.matmul_speedup("bf16", "cpu")
    precisions = ["fp32"] + (["bf16"] if bf16_speed >= 1.0 else [])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {cpu_flags()}")
    print(f"d {D}, batch {args.batch}, aux_k {args.aux_k}, best of {args.repeats} after a warm-up each; TopK SAE")
    if "bf16" not in precisions:
        print(f"bf16 rows skipped: a bf16 matmul runs at {bf16_speed:.2f}x fp32 on this CPU (no fast bf16 units), "
              "so precision=\"auto\" keeps fp32 here")
    x = torch.randn(args.batch, D, generator=torch.Generator().manual_seed(0))
    print(f"\n{'n':>7} {'k':>3} {'prec':>4} {'dense s':>8} {'sparse s':>8} {'speed-up':>8} "
          f"{'dense MiB':>9} {'sparse MiB':>10}")
    results = {}
    for n in sizes:
        for k in ks:
            sae = init_sae_(SAE(D, n, "topk", k=k, normalize=False), seed=0)
            for p in precisions:
                timed = measure({d: make_step(sae, x, d, p, args.aux_k) for d in ("dense", "sparse")}, args.repeats)
                (dense_s, dense_mib), (sparse_s, sparse_mib) = timed["dense"], timed["sparse"]
                results[n, k, p] = dense_s / sparse_s
                mib = lambda v: f"{v:.0f}" if v is not None else "n/a"  # noqa: E731
                print(f"{n:>7,} {k:>3} {p:>4} {dense_s:8.2f} {sparse_s:8.2f} {dense_s / sparse_s:7.2f}x "
                      f"{mib(dense_mib):>9} {mib(sparse_mib):>10}", flush=True)
            del sae
    goal = results.get((32768, 32, "fp32"))
    if goal is not None:
        print(f"\nissue 30: sparse / dense at n 32,768, k 32, fp32 = {goal:.2f}x (goal >= 2.5x: "
              f"{'met' if goal >= 2.5 else 'NOT met'})")
    n, k = (32768, 32) if 32768 in sizes else (sizes[0], ks[0])
    lens = saelens_step(n, k, x)
    if isinstance(lens, str):
        print(f"SAELens row skipped: {lens}")
    else:
        sae = init_sae_(SAE(D, n, "topk", k=k, normalize=False), seed=0)
        timed = measure({"saelens": lens, "sparse": make_step(sae, x, "sparse", "fp32")}, args.repeats)
        print(f"SAELens TopK step, n {n:,}, k {k}, fp32: {timed['saelens'][0]:.2f} s; saelab sparse "
              f"{timed['sparse'][0]:.2f} s ({timed['saelens'][0] / timed['sparse'][0]:.2f}x faster)")


if __name__ == "__main__":
    main()
