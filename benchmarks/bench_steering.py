"""Does the steering hook slow generation down? Tokens/s with and without it (KV cache on, batch 1).

    python benchmarks/bench_steering.py [--tokens 32] [--repeats 3] [--threads 2] [--skip-gpt2] [--tiny-dir DIR]

Two models: the bundled tiny world (if its files exist) and a randomly initialised GPT-2-shaped model
(124M parameters, built locally: no download). Runs with and without the hook alternate, and the best of
`--repeats` is kept, so other load on the machine hurts both sides alike. Target: the hook costs <= 10 %.
"""
from __future__ import annotations

import argparse
import tempfile
import time
import warnings

import torch

from saelab.models import load_model
from saelab.steering import generate, steer


def gpt2_shaped_dir(path: str) -> str:
    """A random GPT2LMHeadModel(GPT2Config()) saved with the tiny world's tokenizer (ids < 50257 suffice)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from saelab.tinyworld import build_tokenizer

    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config()).eval().save_pretrained(path)
    build_tokenizer().save_pretrained(path)
    return path


def tokens_per_second(model, hook_name: str | None, n_tokens: int, repeats: int,
                      prompt: str = "i hate him. he is such a") -> tuple[float, float]:
    """(tokens/s without the hook, tokens/s with it): best of `repeats` alternating runs."""
    vector = torch.randn(model.cfg.d_model)
    generate(model, prompt, max_new_tokens=2)  # warm-up
    best = {False: float("inf"), True: float("inf")}
    for _ in range(repeats):
        for hooked in (False, True):
            start = time.perf_counter()
            if hooked:
                with steer(model, hook_name, vector, 4.0):
                    generate(model, prompt, max_new_tokens=n_tokens, seed=0)
            else:
                generate(model, prompt, max_new_tokens=n_tokens, seed=0)
            best[hooked] = min(best[hooked], time.perf_counter() - start)
    return n_tokens / best[False], n_tokens / best[True]


def report(name: str, model, hook_name: str, n_tokens: int, repeats: int) -> None:
    plain, hooked = tokens_per_second(model, hook_name, n_tokens, repeats)
    print(f"{name:28s} without hook {plain:7.1f} tok/s   with hook {hooked:7.1f} tok/s   "
          f"hook cost {100 * (plain / hooked - 1):+5.1f} %  (target <= 10 %)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tokens", type=int, default=32)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip-gpt2", action="store_true")
    p.add_argument("--tiny-dir", default=None, help="tiny-world files (default: the bundled ones)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (1 is steadier on a busy machine)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    start = time.time()
    from pathlib import Path

    from saelab.tinyworld import FILES_DIR, SAE_HOOK
    tiny = Path(args.tiny_dir or FILES_DIR)
    if (tiny / "config.json").is_file():
        report("tiny world (blocks.2)", load_model(str(tiny)), SAE_HOOK, args.tokens, args.repeats)
    else:
        print(f"tiny world: no files in {tiny}; skipped")
    if not args.skip_gpt2:
        with tempfile.TemporaryDirectory() as d:
            model = load_model(gpt2_shaped_dir(d))
        report("GPT-2-shaped, random (blocks.8)", model, "blocks.8.hook_resid_post", args.tokens, args.repeats)
    print(f"({time.time() - start:.0f} s, torch threads {torch.get_num_threads()})")


if __name__ == "__main__":
    main()
