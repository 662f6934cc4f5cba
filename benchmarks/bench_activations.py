"""How much does stopping the forward pass at the hook save? Activation collection on a DistilGPT2-shaped model.

A random `GPT2LMHeadModel(GPT2Config(n_layer=6))` (768-d, 6 blocks, 50,257-token unembedding: DistilGPT2's
shape) booted through TransformerBridge from a local directory. Tokens/s of `hook_activations` with and
without stopping early (from inside the hook; TL 4.3 `stop_at_layer` still runs the unembedding at the
last block), at the blog's hook (blocks.5.hook_mlp_out: only the unembedding is skipped) and at
an earlier one (blocks.2.hook_mlp_out: three blocks and the unembedding are skipped).
Run: python benchmarks/bench_activations.py [--batch 2] [--seq 128] [--rounds 3]   (~1 minute on 2 CPU cores)
"""
from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time

import torch

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


if __name__ == "__main__":
    main()
