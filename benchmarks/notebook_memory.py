"""Peak memory (RSS of the kernel) and wall time of each notebook executed headless, offline.

Binder gives 1-2 GB, so each notebook should stay under 2 GB. GPT-2 cannot be downloaded here, so its
footprint is estimated with same-shaped random weights: GPT-2 small + a 32k SAE, and + a 128k SAE,
running the notebooks' core step (a forward to layer 8 and the SAE's top latents) in a fresh process.
Usage: python benchmarks/notebook_memory.py [--skip-notebooks] [--skip-gpt2]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from notebook_runtimes import run_notebook  # one way to run a notebook and read its kernel's peak RSS

ROOT = Path(__file__).resolve().parents[1]

MAKE_GPT2_DIR = r"""
import sys, torch
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel
from saelab.tinyworld import FILES_DIR
torch.manual_seed(0)
GPT2LMHeadModel(GPT2Config()).eval().save_pretrained(sys.argv[1])   # GPT-2 small's shapes, random weights
AutoTokenizer.from_pretrained(str(FILES_DIR)).save_pretrained(sys.argv[1])
"""

GPT2_ESTIMATE = r"""
import json, sys, torch
from transformer_lens.model_bridge import TransformerBridge
from saelab.activations import hook_activations
from saelab.sae import SAE
torch.set_num_threads(2)
def peak(): return next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM"))
model = TransformerBridge.boot_transformers(sys.argv[1], device="cpu")
n_latents = int(sys.argv[2])
sae = SAE(768, n_latents, "topk", k=32, hook_name="blocks.8.hook_resid_post") if n_latents else None
tokens = torch.randint(0, 50257, (1, 64))
with torch.no_grad():
    acts = hook_activations(model, "blocks.8.hook_resid_post", tokens)
    if sae is not None:
        sae.encode_topk(acts[0], 10)
print(json.dumps({"peak": peak()}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-notebooks", action="store_true")
    parser.add_argument("--skip-gpt2", action="store_true")
    args = parser.parse_args()
    os.environ["SAELAB_OFFLINE"] = "1"
    os.environ.pop("MPLBACKEND", None)  # Agg in a kernel would swallow every figure
    if not args.skip_notebooks:
        print(f"{'notebook (offline, tiny world)':<34} {'seconds':>8} {'peak RSS MiB':>13} {'< 2 GiB':>8}")
        for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
            seconds, _, peak = run_notebook(path)
            print(f"{path.name:<34} {seconds:>8.1f} {peak / 2**20:>13.0f} {'yes' if peak < 2**31 else 'NO':>8}",
                  flush=True)
    if not args.skip_gpt2:
        print(f"\n{'GPT-2 estimate (random weights)':<34} {'peak RSS MiB':>13} {'< 2 GiB':>8}")
        with tempfile.TemporaryDirectory() as model_dir:
            subprocess.run([sys.executable, "-c", MAKE_GPT2_DIR, model_dir], check=True, capture_output=True, cwd=ROOT)
            for label, n in (("GPT-2 small, no SAE", 0), ("GPT-2 small + 32k SAE", 2**15),
                             ("GPT-2 small + 128k SAE", 2**17)):
                out = subprocess.run([sys.executable, "-c", GPT2_ESTIMATE, model_dir, str(n)], capture_output=True,
                                     text=True, check=True, cwd=ROOT)
                peak = json.loads(out.stdout.strip().splitlines()[-1])["peak"]
                print(f"{label:<34} {peak / 2**20:>13.0f} {'yes' if peak < 2**31 else 'NO':>8}", flush=True)


if __name__ == "__main__":
    main()
