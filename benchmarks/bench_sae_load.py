"""Load time and peak memory of a 128k-latent SAE in OpenAI's format (random weights, real shape).

Target: peak RSS growth <= 1.3x the file size. Each measurement runs in a fresh process so that
its peak memory is its own. Usage: python benchmarks/bench_sae_load.py [--latents 131072]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

CHILD = r"""
import json, sys, time, torch
from saelab.sae import SAE, load_sae_file
torch.set_num_threads(2)
def rss():  # VmHWM: this process's peak (getrusage would report the parent's peak across fork+exec)
    return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM"))
base = rss()
t = time.perf_counter()
if sys.argv[2] == "saelab":
    sae = load_sae_file(sys.argv[1])
else:  # the naive way: read everything into memory, then copy into a freshly initialised module
    sd = torch.load(sys.argv[1], weights_only=True)
    n, d = sd["encoder.weight"].shape
    sae = SAE(d, n, "topk", k=32)
    sae.load_state_dict(sd)
load_s = time.perf_counter() - t
after_load = rss() - base
with torch.no_grad():
    sae(torch.randn(64, sae.d_model))  # encode + decode: touches every weight
print(json.dumps({"load_s": load_s, "after_load": after_load, "after_forward": rss() - base}))
"""


def write_state_dict(path: Path, d: int, n: int) -> int:
    """Write a random OpenAI-format TopK state dict; return its size in bytes."""
    g = torch.Generator().manual_seed(0)
    sd = {
        "pre_bias": torch.randn(d, generator=g),
        "encoder.weight": torch.randn(n, d, generator=g) / d**0.5,
        "latent_bias": torch.zeros(n),
        "decoder.weight": torch.randn(d, n, generator=g) / d**0.5,
        "stats_last_nonzero": torch.zeros(n, dtype=torch.long),
        "latents_activation_frequency": torch.ones(n),
        "latents_mean_square": torch.zeros(n),
        "activation": "TopK",
        "activation_state_dict": {"k": 32, "postact_fn": "ReLU"},
    }
    torch.save(sd, path)
    return path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latents", type=int, default=2**17)
    parser.add_argument("--d-model", type=int, default=768)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sae.pt"
        size = write_state_dict(path, args.d_model, args.latents)
        print(f"SAE file: {args.latents} latents x {args.d_model}, {size / 2**20:.0f} MiB")
        print(f"{'loader':<8} {'load s':>7} {'peak/file after load':>21} {'peak/file after forward':>24}")
        for how in ("saelab", "naive"):
            out = subprocess.run([sys.executable, "-c", CHILD, str(path), how],
                                 capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{how:<8} {r['load_s']:>7.2f} {r['after_load'] / size:>21.2f} {r['after_forward'] / size:>24.2f}")
    print("target: saelab peak/file <= 1.30")


if __name__ == "__main__":
    main()
