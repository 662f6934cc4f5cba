"""Rebuild the tiny world's bundled files: tokenizer, a 4-layer GPT-2 and a TopK SAE on blocks.2.

    python -m saelab.tinyworld.build                 # the real build (about 6 minutes on 2 CPU cores)
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

from saelab.activations import story_activations
from saelab.evaluation import sae_metrics
from saelab.models import load_model
from saelab.sae import SAE
from saelab.tinyworld import FILES_DIR, SAE_HOOK
from saelab.tinyworld.generator import generate_stories
from saelab.tinyworld.tokenizer import build_tokenizer
from saelab.tinyworld.train import make_model, story_tokens, train_model
from saelab.training import train_sae

DEAD_AFTER = 50  # SAE steps (of 4096 tokens) without firing before a latent counts as dead for AuxK


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Train the tiny world's model and SAE into --out.")
    p.add_argument("--out", type=Path, default=FILES_DIR, help="output directory (default: the bundled files)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=1000, help="model training steps (64 stories each)")
    p.add_argument("--sae-steps", type=int, default=1000, help="SAE training steps (4096 tokens each)")
    p.add_argument("--n-embd", type=int, default=160)
    p.add_argument("--expansion", type=int, default=4, help="SAE latents per residual dimension")
    p.add_argument("--k", type=int, default=16, help="TopK: latents active per token")
    p.add_argument("--aux-k", type=int, default=256, help="AuxK: dead latents asked to explain the residual")
    p.add_argument("--aux-coef", type=float, default=0.25, help="weight of the AuxK loss")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (1 is faster on a busy machine)")
    p.add_argument("--sae-only", action="store_true", help="keep the model in --out, retrain only the SAE")
    p.add_argument("--quick", action="store_true", help="a few steps on a few stories: a smoke test")
    p.add_argument("--transcoders-only", action="store_true",
                   help="keep the model and SAE in --out, retrain only notebook 07's transcoders")
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
    if args.transcoders_only:
        return build_transcoder_file(out, args)

    if args.sae_only:  # keep the model; its figures come from the build that trained it
        model = GPT2LMHeadModel.from_pretrained(out).eval()
        previous = json.loads((out / "build.json").read_text()) if (out / "build.json").is_file() else {}
        model_figures = {key: previous.get(key) for key in ("final_loss", "model_seconds")}
    else:
        tokenizer = build_tokenizer()
        stories = generate_stories(n_stories, seed=args.seed)
        seqs = story_tokens(tokenizer, stories)
        model = make_model(len(tokenizer), n_embd=args.n_embd)
        print(f"{len(stories)} stories, {sum(map(len, seqs))} tokens, vocab {len(tokenizer)}")
        losses = train_model(model, seqs, steps=args.steps, batch_size=batch, seed=args.seed)
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        model_figures = {"final_loss": sum(losses[-50:]) / len(losses[-50:]),
                         "model_seconds": round(time.time() - start)}
    n_params = sum(p.numel() for p in model.parameters())

    # The SAE reads the residual stream of fresh stories (another seed: not the model's training text),
    # through the same TransformerBridge and activation reader the notebooks use.
    bridge = load_model(str(out), device="cpu")
    acts, _ = story_activations(bridge, SAE_HOOK, generate_stories(n_sae_stories, seed=args.seed + 1))
    held_out, _ = story_activations(bridge, SAE_HOOK, generate_stories(max(50, n_sae_stories // 10),
                                                                       seed=args.seed + 2))
    d_model = acts.shape[1]
    n_latents = args.expansion * d_model
    sae = SAE(d_model, n_latents, activation="topk", k=min(args.k, n_latents), hook_name=SAE_HOOK)
    sae_start = time.time()
    history = train_sae(sae, acts, n_steps=args.sae_steps, batch_size=256 if args.quick else 4096, lr=1e-3,
                        seed=args.seed, log_every=max(1, args.sae_steps // 10), ortho_every=None,
                        aux_k=args.aux_k, aux_coef=args.aux_coef, dead_after=DEAD_AFTER, num_threads=args.threads)
    for step, fvu, dead in zip(history.step, history.fvu, history.dead_fraction):
        print(f"sae step {step:5d}/{args.sae_steps}  fvu {fvu:.4f}  silent for {DEAD_AFTER} steps {dead:.1%}")
    sae.stats_last_nonzero.zero_()
    sae.save(out / "sae.pt")
    report = sae_metrics(sae, held_out)
    report["sae_seconds"] = round(time.time() - sae_start)
    summary = {"seed": args.seed, "steps": args.steps, "sae_steps": args.sae_steps, "n_params": n_params,
               "expansion": args.expansion, "k": sae.k, "n_latents": sae.n_latents, **model_figures,
               "total_seconds": round(time.time() - start), "sae_tokens": len(acts), **report}
    (out / "build.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))
    build_transcoder_file(out, args)
    return summary


def build_transcoder_file(out: Path, args: argparse.Namespace) -> dict:
    """Notebook 07's transcoders: one TopK transcoder (640 latents, k = 8) per MLP, in transcoders.pt."""
    from saelab.transcoders import build_transcoders, save_transcoders

    bridge = load_model(str(out), device="cpu")
    steps = 3 if args.quick else 400
    transcoders = build_transcoders(bridge, range(bridge.cfg.n_layers), n_texts=100 if args.quick else 800,
                                    seed=args.seed, n_steps=steps)
    save_transcoders(transcoders, out / "transcoders.pt")
    print(f"transcoders: {len(transcoders)} layers, {steps} steps each -> {out / 'transcoders.pt'}")
    return {"transcoder_layers": len(transcoders), "transcoder_steps": steps}


if __name__ == "__main__":
    main()
