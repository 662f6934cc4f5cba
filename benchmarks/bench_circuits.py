"""Time to build one attribution graph, and how it grows with prompt length.

    python benchmarks/bench_circuits.py [--quick]

1. The tiny world (4 layers, d_model 160) with four random TopK transcoders (640 latents, k = 8).
2. A GPT-2-small-shaped model (12 layers, d_model 768, 50,257 tokens; random weights) with random OpenAI-format
   32k TopK (k = 32) residual SAEs at layers 4, 8 and 10, as notebook 07's online section uses.
Each is timed on prompts of 9, 18 and 36 tokens; the graph's node count grows with the prompt (k features per
layer and position), so the number of backward passes grows with it too.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from saelab.graphs import build_graph  # noqa: E402
from saelab.replacement import ResidSite, TranscoderSite, gpt2_weights  # noqa: E402
from saelab.sae import SAE  # noqa: E402
from saelab.training import init_sae_  # noqa: E402
from saelab.transcoders import Transcoder  # noqa: E402


def random_sae(d_model: int, n_latents: int, k: int, normalize: bool, seed: int) -> SAE:
    sae = SAE(d_model, n_latents, "topk", k=k, normalize=normalize)
    return init_sae_(sae, seed).eval()


def time_graph(model, weights, sites, tokens: torch.Tensor, repeats: int = 1) -> tuple[float, int]:
    """Best wall time (s) of `repeats` builds and the graph's node count."""
    best, n = float("inf"), 0
    for _ in range(repeats):
        start = time.perf_counter()
        graph = build_graph(model, weights, sites, tokens)
        best, n = min(best, time.perf_counter() - start), len(graph.nodes)
    return best, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="9-token prompts only")
    args = parser.parse_args()
    lengths = (9,) if args.quick else (9, 18, 36)
    torch.manual_seed(0)

    from saelab.models import load_model
    tiny = load_model("tiny-world")
    w = gpt2_weights(tiny)
    sites = {L: TranscoderSite(Transcoder(random_sae(160, 640, 8, False, L), L, torch.randn(160, 160) * 0.02), L)
             for L in range(4)}
    print(f"torch threads: {torch.get_num_threads()}")
    first = None
    for n in lengths:
        tokens = torch.randint(1, w.wte.shape[0], (n,))
        tokens[0] = 0
        t, nodes = time_graph(tiny, w, sites, tokens, repeats=2)
        first = first or (t, nodes)
        print(f"tiny world, 4 transcoders:          {n:>3} tokens  {nodes:>5} nodes  {t:6.2f} s"
              f"  ({t / first[0]:.1f}x the time, {nodes / first[1]:.1f}x the nodes of {lengths[0]} tokens)")

    from transformers import GPT2Config, GPT2LMHeadModel
    gpt2 = GPT2LMHeadModel(GPT2Config()).eval()  # GPT-2 small's shapes, random weights
    w2 = gpt2_weights(gpt2)
    sites2 = {L: ResidSite(random_sae(768, 2**15, 32, True, L), L) for L in (4, 8, 10)}
    first = None
    for n in lengths:
        tokens = torch.randint(1, 50257, (n,))
        t, nodes = time_graph(None, w2, sites2, tokens)
        first = first or (t, nodes)
        print(f"GPT-2 shapes, 32k SAEs at 4, 8, 10: {n:>3} tokens  {nodes:>5} nodes  {t:6.2f} s"
              f"  ({t / first[0]:.1f}x the time, {nodes / first[1]:.1f}x the nodes of {lengths[0]} tokens)")


if __name__ == "__main__":
    main()
