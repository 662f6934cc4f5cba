"""Activation patching on a GPT-2-shaped model (random weights): batched vs one forward per patch, and
attribution patching vs real latent patching.

    residual stream, every (layer, position): patch_residual (batched) vs transformer_lens.patching (a loop)
    SAE latents at one position: latent_patching (batched) vs the same with batch_size=1, vs latent_attribution
    float32 vs bfloat16 autocast for the batched latent patching: time and largest difference in the effects

GPT-2 cannot be downloaded here, so GPT-2 small's shapes with random weights stand in (timings depend on shapes,
not weights), with the tiny world's word-level tokenizer and an OpenAI-shaped random TopK SAE (k=32) at layer 8.
Usage: python benchmarks/bench_patching.py [--n-latents 32768] [--repeats 3]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from typing import Callable

import torch

from saelab.sae_patching import latent_attribution, latent_patching
from saelab.models import load_model
from saelab.patching import logit_diff_metric, patch_residual
from saelab.precision import autocast
from saelab.sae import SAE

CLEAN, CORRUPTED = "i love him. he is such a", "i hate him. he is such a"


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """The fastest of `repeats` runs after one warm-up (the machine is shared: the minimum is the least noisy)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def gpt2_shaped(path: str) -> object:
    from transformers import GPT2Config, GPT2LMHeadModel

    from saelab.tinyworld.tokenizer import build_tokenizer

    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config()).eval().save_pretrained(path)  # GPT-2 small's defaults: 12 x 768, 50257 vocab
    build_tokenizer().save_pretrained(path)
    return load_model(path, device="cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-latents", type=int, default=2**15)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1 is steadier on a busy machine)")
    args = parser.parse_args()
    torch.set_num_threads(min(args.threads, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as path:
        model = gpt2_shaped(path)
        torch.manual_seed(1)
        sae = SAE(768, args.n_latents, "topk", k=32, hook_name="blocks.8.hook_resid_post").eval()
        metric = logit_diff_metric(model)
        n_pos = model.to_tokens(CLEAN).shape[1]
        print(f"GPT-2-shaped model (random weights), {n_pos}-token prompts, SAE {args.n_latents:,} latents k=32 "
              f"at {sae.hook_name}, {torch.get_num_threads()} threads, best of {args.repeats}")

        batched = best_time(lambda: patch_residual(model, CLEAN, CORRUPTED, metric), args.repeats)
        loop = best_time(lambda: patch_residual(model, CLEAN, CORRUPTED, metric, method="transformer_lens"),
                         args.repeats)
        print(f"residual patching, {model.cfg.n_layers} x {n_pos} cells: batched {batched:.2f} s, "
              f"transformer_lens one forward per cell {loop:.2f} s -> {loop / batched:.1f}x faster")

        effects = latent_patching(model, sae, CLEAN, CORRUPTED, metric)
        real = best_time(lambda: latent_patching(model, sae, CLEAN, CORRUPTED, metric), args.repeats)
        single = best_time(lambda: latent_patching(model, sae, CLEAN, CORRUPTED, metric, batch_size=1),
                           args.repeats)
        attribution = best_time(lambda: latent_attribution(model, sae, CLEAN, CORRUPTED, metric), args.repeats)
        print(f"latent patching, {len(effects)} active latents at the last position: batched {real:.2f} s, "
              f"one forward per latent {single:.2f} s -> {single / real:.1f}x faster")
        print(f"attribution patching (all latents, one forward + backward) {attribution:.2f} s: "
              f"{real / attribution:.1f}x faster than batched real patching, "
              f"{single / attribution:.1f}x faster than one forward per latent")

        # Mixed precision (saelab.precision): is batched latent patching faster under bfloat16 autocast here?
        low = best_time(lambda: _bf16(lambda: latent_patching(model, sae, CLEAN, CORRUPTED, metric)), args.repeats)
        print(f"bfloat16 autocast latent patching {low:.2f} s: {real / low:.2f}x float32")
    same_answer_in_bf16()


def _bf16(fn: Callable[[], object]) -> object:
    with autocast("bf16", "cuda" if torch.cuda.is_available() else "cpu"):
        return fn()


def same_answer_in_bf16() -> None:
    """On the tiny world, where the answer means something: do bfloat16 effects match float32 ones?"""
    from saelab.pretrained import load_sae

    model, sae = load_model("tiny-world", device="cpu"), load_sae("tiny-world", device="cpu")
    metric = logit_diff_metric(model)
    heat = patch_residual(model, CLEAN, CORRUPTED, metric)
    heat_low = _bf16(lambda: patch_residual(model, CLEAN, CORRUPTED, metric))
    effects = latent_patching(model, sae, CLEAN, CORRUPTED, metric)
    low = _bf16(lambda: latent_patching(model, sae, CLEAN, CORRUPTED, metric))
    print(f"tiny world, bfloat16 vs float32: heatmap differs by up to {(heat_low - heat).abs().max():.3f}, latent "
          f"effects by up to {(low.effect_of(effects.latents) - effects.effects).abs().max():.3f} (largest effect "
          f"{effects.effects.abs().max():.3f}); same top-5 latents: {low.top(5) == effects.top(5)}")

if __name__ == "__main__":
    main()
