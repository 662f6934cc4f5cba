"""Rebuild the tiny world's bundled files: tokenizer, a 4-layer GPT-2 and a TopK SAE on blocks.2.

    python -m saelab.tinyworld.build                 # the real build (~12 minutes on 2 CPU cores)
    python -m saelab.tinyworld.build --quick --out /tmp/tw   # a few steps, to check that it runs

Everything is seeded: the same arguments give the same stories and the same starting weights.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from transformers import GPT2LMHeadModel

from saelab.tinyworld import FILES_DIR, SAE_HOOK
from saelab.tinyworld.generator import generate_stories
from saelab.tinyworld.tokenizer import build_tokenizer
from saelab.tinyworld.train import (collect_activations, make_model, sae_report, story_tokens, train_model,
                                    train_sae)

SAE_LAYER = 3  # blocks.2.hook_resid_post == HF hidden_states[3] (hidden_states[0] is the embedding)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Train the tiny world's model and SAE into --out.")
    p.add_argument("--out", type=Path, default=FILES_DIR, help="output directory (default: the bundled files)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=1000, help="model training steps (64 stories each)")
    p.add_argument("--sae-steps", type=int, default=1000, help="SAE training steps (4096 tokens each)")
    p.add_argument("--n-embd", type=int, default=160)
    p.add_argument("--expansion", type=int, default=4, help="SAE latents per residual dimension (8x leaves ~11%% dead latents)")
    p.add_argument("--k", type=int, default=16, help="TopK: latents active per token")
    p.add_argument("--aux-coef", type=float, default=0.25, help="weight of the AuxK loss for dead latents")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (1 is faster on a busy machine)")
    p.add_argument("--sae-only", action="store_true", help="keep the model in --out, retrain only the SAE")
    p.add_argument("--quick", action="store_true", help="a few steps on a few stories: a smoke test")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Build the tokenizer, model and SAE into `--out`; return a summary (also written to build.json)."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    n_stories, n_sae_stories, batch = 50_000, 20_000, 64
    if args.quick:
        args.steps, args.sae_steps, n_stories, n_sae_stories, batch = 3, 3, 200, 100, 16
    start = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    tokenizer = build_tokenizer()
    stories = generate_stories(n_stories, seed=args.seed)
    seqs = story_tokens(tokenizer, stories)
    if args.sae_only:
        model, losses = GPT2LMHeadModel.from_pretrained(out).eval(), [float("nan")]
    else:
        model = make_model(len(tokenizer), n_embd=args.n_embd)
        print(f"{len(stories)} stories, {sum(map(len, seqs))} tokens, vocab {len(tokenizer)}")
        losses = train_model(model, seqs, steps=args.steps, batch_size=batch, seed=args.seed)
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    n_params = sum(p.numel() for p in model.parameters())
    model_time = time.time() - start

    # The SAE reads the residual stream of fresh stories (another seed: not the model's training text).
    sae_seqs = story_tokens(tokenizer, generate_stories(n_sae_stories, seed=args.seed + 1))
    acts = collect_activations(model, sae_seqs, layer=SAE_LAYER)
    held_out = collect_activations(model, story_tokens(tokenizer, generate_stories(
        max(50, n_sae_stories // 10), seed=args.seed + 2)), layer=SAE_LAYER)
    d_model = acts.shape[1]
    sae = train_sae(acts, n_latents=args.expansion * d_model, k=min(args.k, args.expansion * d_model),
                    steps=args.sae_steps, hook_name=SAE_HOOK, seed=args.seed, aux_coef=args.aux_coef,
                    batch_size=256 if args.quick else 4096)
    sae.save(out / "sae.pt")
    report = sae_report(sae, held_out)
    summary = {"seed": args.seed, "steps": args.steps, "sae_steps": args.sae_steps, "n_params": n_params,
               "expansion": args.expansion, "k": sae.k, "n_latents": sae.n_latents,
               "final_loss": sum(losses[-50:]) / len(losses[-50:]), "model_seconds": round(model_time),
               "total_seconds": round(time.time() - start), "sae_tokens": len(acts), **report}
    (out / "build.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
