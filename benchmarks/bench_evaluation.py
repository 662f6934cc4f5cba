"""How long does each metric family of notebook 06 take on a GPT-2-sized SAE? Random weights, on this machine.

A TopK SAE with GPT-2 small's width (768 -> 32,768 latents, k = 32), random unit decoder columns, and 20,000
random "tokens" (activations). Each family is timed once (after one untimed warm-up of the encoder):

    encode            the SAE's latents for every token (dense [n_tokens, 32768], float32)
    label-free        L0, FVU, dead fraction (`evaluation.sae_metrics`, batched) and shrinkage
    ground truth      MCC with Hungarian matching against 1,024 known directions, precision / recall / F1,
                      uniqueness, shrinkage (`saelab.ground_truth`)
    k-sparse probing  k = 1, 2, 5 on a binary label plus the linear-probe ceiling on the raw activations
    absorption        one parent concept on a quarter of the tokens (`absorption.parent_absorption`)
    autointerp        explain one latent over word + label facts and score it three ways (`saelab.autointerp`)

Run: python benchmarks/bench_evaluation.py [--tokens 20000] [--latents 32768]
Peak memory at the defaults: 9.2 GB (measured; dense latents are 2.6 GB and encoding copies them), so pass
--tokens 5000 on a machine with less than 12 GB free. Measured on a 2-core machine shared by ~10 busy processes
(load average ~25): encode 163 s, label-free 186 s, ground truth 25 s, k-sparse probing 12 s, absorption 6 s,
autointerp 3 s; a quiet machine is several times faster.
"""
from __future__ import annotations

import argparse
import random
import time
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from saelab import absorption, autointerp as ai, ground_truth as gt, probing
from saelab.evaluation import sae_metrics
from saelab.sae import SAE

D = 768


@contextmanager
def timed(name: str, results: dict[str, float]):
    start = time.perf_counter()
    yield
    results[name] = time.perf_counter() - start
    print(f"{name:18s} {results[name]:8.2f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=20_000)
    parser.add_argument("--latents", type=int, default=32_768)
    parser.add_argument("--features", type=int, default=1024, help="known directions for the ground-truth metrics")
    args = parser.parse_args()
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    sae = SAE(D, args.latents, "topk", k=32, normalize=False, hook_name="blocks.8.hook_resid_post")
    with torch.no_grad():
        W = F.normalize(torch.randn(D, args.latents, generator=g), dim=0)
        sae.decoder.weight.copy_(W)
        sae.encoder.weight.copy_(W.T)
    features = F.normalize(torch.randn(args.features, D, generator=g), dim=-1)
    codes = (torch.rand(args.tokens, args.features, generator=g) < 0.01) * torch.rand(args.tokens, args.features,
                                                                                        generator=g)
    acts = codes @ features + 0.05 * torch.randn(args.tokens, D, generator=g)
    y = torch.rand(args.tokens, generator=g) < 0.3
    acts[y, 0] += 1.0
    print(f"SAE {D} -> {args.latents:,} (TopK k=32, random weights), {args.tokens:,} tokens, "
          f"{torch.get_num_threads()} threads")
    sae.encode(acts[:256])
    results: dict[str, float] = {}
    with torch.no_grad():
        with timed("encode", results):
            latents = torch.cat([sae.encode(acts[i:i + 2048]) for i in range(0, len(acts), 2048)])
        with timed("label-free", results):
            sae_metrics(sae, acts)
            x_hat = sae.decode(latents[:4096])
            ((x_hat * acts[:4096]).sum(-1) / acts[:4096].pow(2).sum(-1)).mean()
        with timed("ground truth", results):
            match = gt.mcc(sae.W_dec, features)
            gt.detection(latents, codes, match["latent"])
            gt.uniqueness(sae.W_dec, features)
            gt.shrinkage(sae, features)
    half = args.tokens // 2
    with timed("k-sparse probing", results):
        probing.sparse_probing(latents[:half], acts[:half], y[:half], latents[half:], acts[half:], y[half:])
    parent = torch.zeros(args.tokens, dtype=torch.bool)
    parent[: args.tokens // 4] = y[: args.tokens // 4]
    other = torch.zeros(args.tokens, dtype=torch.bool)
    other[: args.tokens // 4] = ~y[: args.tokens // 4]
    with timed("absorption", results):
        absorption.parent_absorption(latents, acts, sae.W_dec.detach(), parent, other)
    rng = random.Random(0)
    facts = ai.Facts({"word": [rng.choice("abcdefghij") for _ in range(args.tokens)],
                      "sentiment": [rng.choice(["positive", "negative", "none"]) for _ in range(args.tokens)]})
    story = torch.arange(args.tokens) // 30
    latent = int((latents > 0).sum(0).argmax())
    with timed("autointerp", results):
        e = ai.explain(latents[:, latent], facts)
        ai.score_all(latents[:, latent], e, facts, story)
    print(f"total {sum(results.values()):.1f} s")


if __name__ == "__main__":
    main()
