"""How much does stopping the forward pass at the hook save? Activation collection on a DistilGPT2-shaped model.

A random `GPT2LMHeadModel(GPT2Config(n_layer=6))` (768-d, 6 blocks, 50,257-token unembedding: DistilGPT2's
shape) booted through TransformerBridge from a local directory. Tokens/s of `hook_activations` with and
without stopping early (from inside the hook; TL 4.3 `stop_at_layer` still runs the unembedding at the
last block), at the blog's hook (blocks.5.hook_mlp_out: only the unembedding is skipped) and at
an earlier one (blocks.2.hook_mlp_out: three blocks and the unembedding are skipped).
Then issue 15's precision comparison at blocks.5.hook_mlp_out (stopping early): tokens/s in float32, under
bfloat16 autocast, and in what `ActivationSource(precision="auto")` picks, with the largest relative error of the
bf16 activations (target where bf16 is fast: >= 1.8x float32).
Run: python benchmarks/bench_activations.py [--batch 2] [--seq 128] [--rounds 3] [--precision-batch 8]
(~2-3 minutes on 2 CPU cores)
"""
from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time

import torch

from saelab import precision
from saelab.activations import hook_activations

HOOKS = ("blocks.5.hook_mlp_out", "blocks.2.hook_mlp_out")


def distilgpt2_shaped(path: str):
    """A random DistilGPT2-shaped model saved to `path` and booted as a TransformerBridge."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from saelab.models import load_model
    from saelab.tinyworld.tokenizer import build_tokenizer

    torch.manual_seed(0)
    with contextlib.redirect_stderr(io.StringIO()):  # no "Writing model shards" progress bar
        GPT2LMHeadModel(GPT2Config(n_layer=6)).eval().save_pretrained(path)
    build_tokenizer().save_pretrained(path)  # any tokenizer will do: we feed token ids
    return load_model(path, device="cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved timed forwards per setting")
    parser.add_argument("--precision-batch", type=int, default=8, help="texts per forward for the precision rows")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model = distilgpt2_shaped(tmp)
    tokens = torch.randint(1, 300, (args.batch, args.seq), generator=torch.Generator().manual_seed(0))
    n = tokens.numel()
    settings = [(hook, stop) for hook in HOOKS for stop in (False, True)]
    for hook, stop in settings:  # warm-up
        hook_activations(model, hook, tokens, stop_early=stop)
    best = dict.fromkeys(settings, float("inf"))
    for _ in range(args.rounds):  # interleave and keep the fastest: robust to other load on the machine
        for hook, stop in settings:
            start = time.perf_counter()
            hook_activations(model, hook, tokens, stop_early=stop)
            best[hook, stop] = min(best[hook, stop], time.perf_counter() - start)

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; DistilGPT2-shaped random model "
          f"(6 x 768, vocab 50257), batch {args.batch} x {args.seq} tokens, best of {args.rounds}")
    print(f"{'hook':<24} {'full forward tok/s':>19} {'stop early tok/s':>20} {'speed-up':>9}")
    for hook in HOOKS:
        full, early = n / best[hook, False], n / best[hook, True]
        print(f"{hook:<24} {full:>19,.0f} {early:>20,.0f} {early / full:>8.2f}x")
    compare_precisions(model, HOOKS[0], args.precision_batch, args.seq, args.rounds)


def compare_precisions(model, hook: str, batch: int, seq: int, rounds: int) -> None:
    """Tokens/s of hook_activations in fp32 and bf16 (interleaved, best of `rounds`) and what "auto" picks."""
    if precision.matmul_speedup("bf16") < 1.0:  # no fast bf16 here: a full batch would take many minutes
        batch, seq, rounds = 1, 32, 1
        print("\n(bf16 matmuls are slower than fp32 on this CPU: precision rows use 1 x 32 tokens, 1 round)")
    tokens = torch.randint(1, 300, (batch, seq), generator=torch.Generator().manual_seed(1))
    steps = {p: (lambda p=p: hook_activations(model, hook, tokens, precision=p)) for p in ("fp32", "bf16")}
    seconds = precision.time_steps(steps, rounds=rounds, budget_s=float("inf"))
    exact, fast = steps["fp32"](), steps["bf16"]()
    rel = ((fast - exact).norm(dim=-1) / exact.norm(dim=-1).clamp_min(1e-12)).max().item()
    work = tokens.numel() * model.cfg.d_model * 4 * model.cfg.d_model  # what ActivationSource passes
    key = ("bench", model.cfg.d_model, tuple(tokens.shape))
    start = time.perf_counter()
    chosen = precision.pick_precision("activations", lambda p: steps[p], "cpu", key, work)
    print(f"\nprecision at {hook}, stopping early, batch {batch} x {seq} tokens, best of {rounds} interleaved:")
    for p, s in seconds.items():
        print(f"  {p:<5} {tokens.numel() / s:>10,.0f} tokens/s   {seconds['fp32'] / s:5.2f}x fp32")
    print(f"  auto  -> {chosen} ({tokens.numel() / seconds[chosen]:,.0f} tokens/s; deciding took "
          f"{time.perf_counter() - start:.1f} s, bf16 probe matmul {precision.matmul_speedup('bf16'):.2f}x fp32)")
    print(f"  bf16 vs fp32 activations: max relative error per token {rel:.4f} (activations returned as float32)")


if __name__ == "__main__":
    main()
