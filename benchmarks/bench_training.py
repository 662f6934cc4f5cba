"""How fast is saelab's trainer? ReLU + L1 SAE, 768 -> 6144 latents, batch 4096, Adam, on this machine.

Compares tokens/s of `saelab.training.train_sae` with a bare PyTorch loop of the same math, with
logging / orthogonality / resampling on and off (measured every 1-2 steps; amortised at usual intervals), and effective GFLOP/s against a plain matmul.
Run: python benchmarks/bench_training.py  [--steps 3] [--rounds 3]   (~1-2 minutes on 2 CPU cores)
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from saelab.sae import SAE
from saelab.training import init_sae_, resample_dead_latents, train_sae

D, N, B = 768, 6144, 4096
L1 = 1e-3
INTERVALS = (1, 50, 500, 25000)  # counter runs every step; usual log / ortho / resample intervals
FLOP_PER_TOKEN = 5 * 2 * D * N  # forward: encoder + decoder; backward: dW_enc, dW_dec, d(latents)


def bare_loop(sae: SAE, data: torch.Tensor, n_steps: int) -> float:
    """The same math without saelab's trainer: returns seconds for n_steps."""
    opt = torch.optim.Adam(sae.parameters(), lr=1e-4)
    start = time.perf_counter()
    for step in range(n_steps):
        x = data[torch.randint(0, len(data), (B,))]
        latents = torch.relu(F.linear(x - sae.pre_bias, sae.encoder.weight, sae.latent_bias))
        x_hat = F.linear(latents, sae.decoder.weight) + sae.pre_bias
        loss = (x_hat - x).pow(2).sum(-1).mean() + L1 * latents.sum(-1).mean()
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
    args = parser.parse_args()
    torch.manual_seed(0)
    data = torch.randn(4 * B, D)
    sae = init_sae_(SAE(D, N, "relu"), seed=0, x_sample=data[:B])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {D} -> {N}, batch {B}, "
          f"best of {args.rounds} interleaved chunks of {args.steps} steps, after {args.warmup} warm-up")

    loops = {"bare PyTorch loop": lambda n: bare_loop(sae, data, n),
             "saelab train_sae, extras off": lambda n: saelab_loop(sae, data, n, False),
             "saelab, extras every 1-2 steps": lambda n: saelab_loop(sae, data, n, True)}
    for run in loops.values():
        run(args.warmup)
    best = {name: float("inf") for name in loops}
    for _ in range(args.rounds):  # interleave, keep the fastest chunk: robust to other load on the machine
        for name, run in loops.items():
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

    bare = rows[0][1]
    print(f"\n{'loop':32s} {'tokens/s':>10s} {'vs bare':>8s} {'GFLOP/s':>8s}")
    for name, tps in rows:
        print(f"{name:32s} {tps:10.0f} {tps / bare:8.3f} {tps * FLOP_PER_TOKEN / 1e9:8.1f}")
    print(f"{'torch.mm [4096,768]x[768,6144]':32s} {'':10s} {'':8s} {gflops_mm:8.1f}")
    off, stress = rows[1][1], rows[2][1]
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


if __name__ == "__main__":
    main()
