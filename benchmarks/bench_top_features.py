"""Time and peak memory of `top_features` on a GPT-2-shaped model with a 128k-shaped SAE (random weights).

Compares three ways to get the top latents at the last of 64 tokens (in one fresh process):
    stop     saelab's top_features: forward stops after the SAE's block, one position encoded (encode_topk)
    full     the same, but the forward runs all 12 blocks and the unembedding (stop_early=False)
    dense    the naive way: full forward, then sae.encode on every position ([64, 131072]), then topk
Peak memory is VmHWM growth during one call (the high-water mark is reset first via /proc/self/clear_refs;
getrusage would report the parent's peak across fork+exec). Time: best of --repeats, modes interleaved.
Usage: python benchmarks/bench_top_features.py [--latents 131072] [--layer 8] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, sys, tempfile, time, warnings
import torch
warnings.simplefilter("ignore")
torch.set_num_threads(2)
from transformers import GPT2Config, GPT2LMHeadModel
from transformer_lens.model_bridge import TransformerBridge
from saelab.activations import hook_activations
from saelab.features import top_features
from saelab.sae import SAE
from saelab.tinyworld.tokenizer import build_tokenizer

n_latents, layer, repeats = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])

def status(key):  # kB -> bytes, from this process's own /proc entry
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith(key))

torch.manual_seed(0)
config = GPT2Config()  # GPT-2 small's shapes: 12 blocks, d_model 768, vocab 50257
with tempfile.TemporaryDirectory() as d, warnings.catch_warnings():
    config.save_pretrained(d)
    build_tokenizer().save_pretrained(d)  # any tokenizer will do: we feed token ids directly
    model = TransformerBridge.boot_transformers(d, hf_model=GPT2LMHeadModel(config).eval(), device="cpu")
g = torch.Generator().manual_seed(0)
sae = SAE.from_state_dict({
    "pre_bias": torch.randn(768, generator=g), "encoder.weight": torch.randn(n_latents, 768, generator=g) / 28,
    "latent_bias": torch.zeros(n_latents), "decoder.weight": torch.randn(768, n_latents, generator=g) / 28,
    "activation": "TopK", "activation_state_dict": {"k": 32, "postact_fn": "ReLU"}},
    hook_name=f"blocks.{layer}.hook_resid_post")
tokens = torch.randint(2, 280, (64,), generator=g)

@torch.no_grad()
def run(mode):
    if mode == "dense":
        acts = hook_activations(model, sae.hook_name, tokens[None], stop_early=False)[0]
        return sae.encode(acts).topk(10, dim=-1)  # [64, n_latents] built, then one row used
    return top_features(model, sae, tokens, k=10, stop_early=(mode == "stop"))

modes = ("stop", "full", "dense")
results = {}
for mode in modes:  # memory: one call per mode, the high-water mark reset just before it
    run(mode)  # warm-up: first-call allocations
    open("/proc/self/clear_refs", "w").write("5")  # reset VmHWM to the current RSS
    base = status("VmRSS:")
    run(mode)
    results[mode] = {"peak_growth": status("VmHWM:") - base, "seconds": float("inf")}
for _ in range(repeats):  # time: modes interleaved, best of `repeats` (the machine may be shared)
    for mode in modes:
        t = time.perf_counter(); run(mode)
        results[mode]["seconds"] = min(results[mode]["seconds"], time.perf_counter() - t)
print(json.dumps(results))
"""


def measure(latents: int, layer: int, repeats: int) -> dict:
    """Run all modes in one fresh Python process (its own VmHWM) and return what it printed."""
    out = subprocess.run([sys.executable, "-c", CHILD, str(latents), str(layer), str(repeats)],
                         capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"benchmark child failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latents", type=int, default=2**17)
    parser.add_argument("--layer", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results = measure(args.latents, args.layer, args.repeats)
    print(f"top_features, 64 tokens, GPT-2 small shape, SAE 768 x {args.latents} TopK(32) at layer {args.layer}")
    print(f"{'mode':<6} {'ms':>8} {'peak MB':>9}")
    for mode, r in results.items():
        print(f"{mode:<6} {1000 * r['seconds']:8.1f} {r['peak_growth'] / 2**20:9.1f}")
    stop, full, dense = results["stop"], results["full"], results["dense"]
    mib = 2**20  # ratios of growths below 1 MiB mean nothing: report them against a 1 MiB floor
    print(f"stop_at_layer speed-up: {full['seconds'] / stop['seconds']:.2f}x, peak memory "
          f"{full['peak_growth'] / max(stop['peak_growth'], mib):.1f}x; vs encoding every position densely: "
          f"{dense['seconds'] / stop['seconds']:.2f}x time, {dense['peak_growth'] / max(stop['peak_growth'], mib):.1f}x"
          " memory (growths under 1 MiB counted as 1 MiB)")


if __name__ == "__main__":
    main()
