"""How fast is saelab's trainer? ReLU + L1 SAE, 768 -> 6144 latents, batch 4096, Adam, on this machine.

Compares tokens/s of `saelab.training.train_sae` (its default precision="auto") with a bare PyTorch loop of the
same math in float32 and its bfloat16 twin (forward under torch.autocast), with logging / orthogonality /
resampling on and off (measured every 1-2 steps; amortised at usual intervals), and effective GFLOP/s against a
plain matmul. Issue 15's targets: the default >= 2.3x the float32 loop and within 10% of the bfloat16 loop, where
the hardware has fast bfloat16. Where it has not (bf16 matmuls slower than fp32: the probe says so), "auto" keeps
float32 and the bf16 twin is timed for one step only (it takes about a minute there).
`--quality N` also trains N steps of the full-size SAE on GPT-2-shaped random activations, ReLU + L1 and TopK
(k=8; on a 32 -> 128 test 15-21% of its latents die), in "fp32" with seeds 0-2 and in "auto" with seed 0, and
checks that "auto" moves the final FVU / L0 / dead fraction by no more than the fp32 seed spread
(~N x 1.5 s x 8 at ~3,000 tokens/s).
Run: python benchmarks/bench_training.py  [--steps 3] [--rounds 3] [--quality 300]   (~3-5 minutes on 2 cores)
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from saelab import precision
from saelab.sae import SAE
from saelab.training import init_sae_, resample_dead_latents, train_sae

D, N, B = 768, 6144, 4096
L1 = 1e-3
INTERVALS = (1, 50, 500, 25000)  # counter runs every step; usual log / ortho / resample intervals
FLOP_PER_TOKEN = 5 * 2 * D * N  # forward: encoder + decoder; backward: dW_enc, dW_dec, d(latents)


def bare_loop(sae: SAE, data: torch.Tensor, n_steps: int, dtype: torch.dtype = torch.float32) -> float:
    """The same math without saelab's trainer (forward under autocast for bf16): returns seconds for n_steps."""
    opt = torch.optim.Adam(sae.parameters(), lr=1e-4)
    start = time.perf_counter()
    for step in range(n_steps):
        x = data[torch.randint(0, len(data), (B,))]
        with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
            latents = torch.relu(F.linear(x - sae.pre_bias, sae.encoder.weight, sae.latent_bias))
            x_hat = F.linear(latents, sae.decoder.weight) + sae.pre_bias
            loss = (x_hat - x).pow(2).sum(-1).mean() + L1 * latents.sum(-1, dtype=torch.float32).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            sae.decoder.weight.div_(sae.decoder.weight.norm(dim=0, keepdim=True))
    return time.perf_counter() - start


def saelab_loop(sae: SAE, data: torch.Tensor, n_steps: int, stress: bool) -> float:
    """saelab's trainer with logging, orthogonality and resampling off, or (stress) all of them
    every 1-2 steps, where every latent silent for one step counts as dead."""
    kwargs = (dict(log_every=1, ortho_every=2, resample_every=2, dead_after=1) if stress
              else dict(log_every=10**9, ortho_every=None, resample_every=None))
    history = train_sae(sae, data, n_steps=n_steps, batch_size=B, lr=1e-4, l1_coef=L1, init=False, **kwargs)
    return history.seconds


def time_matmul(n: int = 5) -> float:
    """GFLOP/s of torch.mm([B, D] x [D, N])."""
    a, b = torch.randn(B, D), torch.randn(D, N)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(n):
        torch.mm(a, b)
    return n * 2 * B * D * N / (time.perf_counter() - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="timed steps per chunk")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved chunks per loop")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--quality", type=int, default=0, help="steps of the full-size auto vs fp32 quality run")
    args = parser.parse_args()
    torch.manual_seed(0)
    data = torch.randn(4 * B, D)
    sae = init_sae_(SAE(D, N, "relu"), seed=0, x_sample=data[:B])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {D} -> {N}, batch {B}, "
          f"best of {args.rounds} interleaved chunks of {args.steps} steps, after {args.warmup} warm-up")

    start = time.perf_counter()
    saelab_loop(sae, data, 1, False)  # resolves "auto" once for this process (probe, then real steps if any)
    key = next(k for k in precision._CHOSEN if k[0] == "train_sae")
    chosen, probe = precision._CHOSEN[key], precision.matmul_speedup("bf16", "cpu")
    timed = {p: f"{B / s:,.0f} tok/s" for p, s in precision.TIMINGS.get(key, {}).items()}
    print(f'precision="auto" chose {chosen} in {time.perf_counter() - start:.1f} s (incl. one step): bf16 probe '
          f"matmul {probe:.2f}x fp32; real steps timed: {timed or 'none (bf16 screened out by the probe)'}")
    slow_bf16 = probe < 1.0

    loops = {"bare PyTorch loop, float32": lambda n: bare_loop(sae, data, n),
             "bare PyTorch loop, bfloat16": lambda n: bare_loop(sae, data, n, torch.bfloat16),
             f"saelab default (auto -> {chosen})": lambda n: saelab_loop(sae, data, n, False),
             "saelab, extras every 1-2 steps": lambda n: saelab_loop(sae, data, n, True)}
    bf16_name = "bare PyTorch loop, bfloat16"
    for name, run in loops.items():
        if not (slow_bf16 and name == bf16_name):
            run(args.warmup)
    best = {name: float("inf") for name in loops}
    for r in range(args.rounds):  # interleave, keep the fastest chunk: robust to other load on the machine
        for name, run in loops.items():
            if slow_bf16 and name == bf16_name:  # one step is enough to see it is slower (and takes ~a minute)
                if r == 0:
                    best[name] = run(1)
                continue
            best[name] = min(best[name], run(args.steps) / args.steps)
    rows = [(name, B / seconds) for name, seconds in best.items()]
    gflops_mm = time_matmul()

    # what each extra costs on its own (ms), to amortise over realistic intervals
    x = data[:B]
    with torch.no_grad():
        latents = sae.encode(x)
    costs = {}
    from saelab import metrics
    from saelab.training import decoder_orthogonality_auto
    counter = sae.stats_last_nonzero.clone()
    for name, fn in [("dead-latent counter", lambda: counter.mul_(~(latents.amax(dim=0) > 0)).add_(1)),
                     ("log (L0, FVU, .item)", lambda: (metrics.l0(latents), metrics.fraction_variance_unexplained(x, x))),
                     ("ortho (sampled, 16k pairs)", lambda: decoder_orthogonality_auto(sae.W_dec)),
                     ("resample high_loss (64 dead)", lambda: resample_dead_latents(
                         sae, None, torch.arange(N) < 64, x, "high_loss"))]:
        fn()
        times = []
        for _ in range(3):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        costs[name] = 1e3 * min(times)

    bare, bare16, default = rows[0][1], rows[1][1], rows[2][1]
    print(f"\n{'loop':34s} {'tokens/s':>10s} {'vs fp32 bare':>12s} {'GFLOP/s':>8s}")
    for name, tps in rows:
        note = " (1 step, no warm-up)" if slow_bf16 and name == bf16_name else ""
        print(f"{name:34s} {tps:10.0f} {tps / bare:12.3f} {tps * FLOP_PER_TOKEN / 1e9:8.1f}{note}")
    print(f"{'torch.mm [4096,768]x[768,6144]':34s} {'':10s} {'':12s} {gflops_mm:8.1f}")
    print(f"\nissue 15: default / fp32 bare loop = {default / bare:.2f}x (target >= 2.3x where bf16 is fast); "
          f"default / bf16 bare loop = {default / bare16:.2f}x (target >= 0.90)")
    if slow_bf16:
        print(f"  this CPU has no fast bfloat16 (bf16 bare loop {bare16 / bare:.2f}x fp32): auto keeps float32, "
              "so neither target can be met here; the default is bit-identical to float32")
    off, stress = rows[2][1], rows[3][1]
    step_ms = 1e3 * B / bare
    shares = {name: ms / (every * step_ms) for (name, ms), every in zip(costs.items(), INTERVALS)}
    predicted = 1 / (1 + sum(shares.values()))
    print(f"{'saelab, extras at usual intervals':32s} {bare * predicted:10.0f} {predicted:8.3f}   "
          f"(predicted: bare + the costs below)")
    print(f"\nextras every 1-2 steps (stress) vs off, measured: {100 * (off / stress - 1):+.1f}% time")
    print(f"one bare step: {step_ms:.0f} ms. What saelab adds, each timed alone and amortised over its interval:")
    for (name, ms), every in zip(costs.items(), INTERVALS):
        print(f"  {name:30s} {ms:7.1f} ms every {every:>5d} steps -> {100 * shares[name]:.3f}%")
    print(f"  total: {100 * sum(shares.values()):.2f}%")
    print(f"effective GFLOP/s counts {FLOP_PER_TOKEN // (2 * D * N)} matmuls of 2*D*N per token "
          f"(fwd enc+dec, bwd dW_enc, dW_dec, d latents)")
    if args.quality:
        quality(args.quality)


def final_quality(sae: SAE, x: torch.Tensor) -> tuple[float, float, float]:
    """(FVU, L0, dead fraction: latents that never fire on x) of a trained SAE, in float32."""
    from saelab import metrics
    with torch.no_grad():
        lat = sae.encode(x)
        fvu = metrics.fraction_variance_unexplained(x, sae.decode(lat))
    return fvu, metrics.l0(lat), (lat.amax(dim=0) == 0).float().mean().item()


def quality(n_steps: int) -> None:
    """Issue 15's full-size quality guard, bounded as issue 19 asks: "auto" (bf16 where it is faster) may move FVU,
    L0 and the dead fraction of a seeded run by no more than changing the seed moves them in fp32 (seeds 0-2;
    the dead fraction at least one latent). Two cases: ReLU + L1, and TopK with k=8 (latents die more often
    there; the dead fraction is printed)."""
    from saelab.toy import make_toy_features, sample_toy_data
    x, _ = sample_toy_data(make_toy_features(2 * D, D, seed=0), 4 * B, sparsity=0.01, seed=1)
    x = x + 3 * torch.randn(D, generator=torch.Generator().manual_seed(2))  # GPT-2-like: a large mean, outliers
    x[:, :4] *= 10
    cases = {"ReLU + L1": (dict(activation="relu"), dict(l1_coef=0.05)),
             "TopK k=8": (dict(activation="topk", k=8, normalize=False), {})}
    print(f"\nquality guard: {n_steps} steps, {D} -> {N}, batch {B}, GPT-2-shaped random activations")
    for case, (sae_kwargs, loss_kwargs) in cases.items():
        results = {}
        for p, seed in (("fp32", 0), ("fp32", 1), ("fp32", 2), ("auto", 0)):
            sae = SAE(D, N, **sae_kwargs)
            h = train_sae(sae, x, n_steps=n_steps, batch_size=B, lr=1e-3, seed=seed, log_every=n_steps,
                          ortho_every=None, precision=p, **loss_kwargs)
            results[p, seed] = final_quality(sae, x[:B])
            fvu, l0, dead = results[p, seed]
            print(f"  {case:24s} {p:>4} ({h.precision}) seed {seed}: FVU {fvu:.4f}  L0 {l0:.2f}  dead {dead:.4f}  "
                  f"({h.tokens_per_s:,.0f} tokens/s)")
        verdicts = []
        for i, name in enumerate(("FVU", "L0", "dead")):
            seeds = [results["fp32", s][i] for s in (0, 1, 2)]
            bound = max(max(seeds) - min(seeds), 1 / N if name == "dead" else 0.0)
            moved = abs(results["auto", 0][i] - seeds[0])
            verdict = "<=" if moved <= bound else ">  (FAIL)"
            verdicts.append(f"{name} moved {moved:.4f} {verdict} seed spread {bound:.4f}")
        print(f"  {case:24s} auto vs fp32, same seed: " + "; ".join(verdicts))


if __name__ == "__main__":
    main()
