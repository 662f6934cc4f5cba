"""How much the training notebook does online, picked by device and memory: the blog's configuration on a GPU, less
on a CPU, fewer activations where memory is short (Binder's ~2 GB).

    SAELAB_BUDGET unset or "auto"   by device: "gpu" when CUDA is available, else "cpu"; then by memory: the next
                                    smaller budget ("cpu", then "small") while the chosen one does not fit
    SAELAB_BUDGET=gpu | cpu | small force one (e.g. to try the blog's run on a big CPU)
    SAELAB_BUDGET=smoke             a tiny budget for CI, where only "does every cell run" matters

The blog's run (8x, 768 -> 6,144 latents, batches of 4,096, 3,000 steps, 2M activations) takes minutes on a GPU
and about 4 hours on a 2-core CPU. The CPU budget keeps every lesson of notebook 05 (curves, dead latents and
resampling, LM loss recovered, the expansion sweep) with smaller batches and fewer steps, so that the whole
notebook finishes within 15 minutes on 2 cores (measure it with benchmarks/notebook_runtimes.py). The small budget
trains the same steps on fewer activations and measures LM loss on fewer texts, so that it fits in ~1 GB beside
DistilGPT2: every lesson still shows, with noisier numbers.
"""
from __future__ import annotations

import os
import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch

from saelab import memory

SETTING = "SAELAB_BUDGET"
NAMES = ("auto", "gpu", "cpu", "small", "smoke")
STEP_DOWN = ("gpu", "cpu", "small")  # "auto" moves right along this while memory is short
# Allocator slack, forward passes (capped at a quarter of free memory, saelab.memory.fit_texts_per_forward), figures.
OVERHEAD_BYTES = 400 * 2**20


@dataclass(frozen=True)
class TrainingBudget:
    """One online configuration of notebook 05: train_sae's settings and how many activations and texts."""

    name: str
    cfg: dict[str, Any] = field(default_factory=dict)  # n_steps, batch_size, lr, dead_after for train_sae
    n_train: int = 0        # activations to train on
    n_eval: int = 0         # held-out activations for L0 / FVU / dead fraction
    n_eval_texts: int = 0   # texts for LM loss recovered (3 forward passes each, per SAE evaluated)
    short_steps: int = 0    # steps of each continued 8x run in the resampling comparison
    resample_steps: int = 0  # steps of each 1x SAE trained from scratch with / without resampling
    topk_steps: int = 0     # steps of each TopK SAE trained from scratch with / without resampling
    sweep_steps: int = 0    # steps of each SAE in the expansion sweep
    sweep_expansions: tuple[int, ...] = (1, 2, 4, 8)
    n_seeds: int = 1        # seeds per arm where runs are compared (3 where there is time: the GPU)
    why: str = ""           # one line for the notebook: which budget and why

    def memory_bytes(self, d_model: int = 768, vocab: int = 50257, max_length: int = 128) -> int:
        """Memory this budget needs beside the loaded model, in bytes (an estimate from its sizes).

        The activations it keeps, plus the largest of: collecting them (chunks, concatenation, shuffled copy), LM
        loss (lm_loss_recovered runs up to 32 texts at once: logits, log-softmax and gather over the vocabulary,
        plus the forward pass) and training the widest SAE (weights, gradients, Adam, a batch of latents).
        """
        act = 4 * d_model
        held = (self.n_train + self.n_eval) * act
        collect = 2 * max(self.n_train, self.n_eval) * act
        per_token = 3 * 4 * vocab + 4 * (12 * 4 * d_model + 16 * d_model)
        lm = min(32, self.n_eval_texts) * max_length * per_token
        n = max(8, *self.sweep_expansions) * d_model
        train = 4 * (4 * 2 * n * d_model + 4 * self.cfg.get("batch_size", 1024) * n) + 4 * (4 * 2 * n * d_model)
        return held + max(collect, lm, train) + OVERHEAD_BYTES


BUDGETS = {
    # The blog's configuration: 3,000 steps x 4,096 tokens is 12M tokens, 6 epochs of 2M activations.
    "gpu": TrainingBudget("gpu", dict(n_steps=3000, batch_size=4096, lr=5e-4, dead_after=1000),
                          n_train=2_000_000, n_eval=100_000, n_eval_texts=200, short_steps=1000,
                          resample_steps=4000, topk_steps=3000, sweep_steps=3000, sweep_expansions=(1, 2, 4, 8, 16),
                          n_seeds=3),
    # 2 CPU cores in float32 (bfloat16 is slower on CPUs without bf16 units; "auto" measures): ~1,300 activations/s
    # out of DistilGPT2, ~2,100 tokens/s of 768 -> 6,144 training (a step of 1,024 is ~0.5 s), ~1,000 tokens/s of
    # full forward passes. In steps of the 8x SAE: main run 300, continued runs 3 x 40, 1x runs 3 x 200 / 8, TopK
    # runs 2 x 100, sweep 200 x (1 + 2 + 4) / 8: ~870 steps, ~7 min; plus ~1 min collecting and ~1 min of LM loss.
    # benchmarks/notebook_runtimes.py measures the whole notebook. Latents silent for 150 steps count as dead.
    "cpu": TrainingBudget("cpu", dict(n_steps=300, batch_size=1024, lr=1e-3, dead_after=150),
                          n_train=80_000, n_eval=10_000, n_eval_texts=24, short_steps=40,
                          resample_steps=200, topk_steps=100, sweep_steps=200, sweep_expansions=(1, 2, 4)),
    # Memory short (Binder's ~2 GB, DistilGPT2 already takes ~0.8 GB): the CPU budget's steps on fewer activations
    # (3 epochs of 100,000 tokens become 10 epochs of 30,000) and LM loss on 4 texts; ~0.9 GB by memory_bytes().
    "small": TrainingBudget("small", dict(n_steps=300, batch_size=1024, lr=1e-3, dead_after=150),
                            n_train=30_000, n_eval=4_000, n_eval_texts=4, short_steps=40,
                            resample_steps=200, topk_steps=100, sweep_steps=200, sweep_expansions=(1, 2, 4)),
    # CI: every cell runs, nothing is learned.
    "smoke": TrainingBudget("smoke", dict(n_steps=20, batch_size=256, lr=1e-3, dead_after=8),
                            n_train=6_000, n_eval=1_024, n_eval_texts=4, short_steps=10,
                            resample_steps=12, topk_steps=8, sweep_steps=8, sweep_expansions=(1, 2)),
}


def budget_name(device: str | torch.device | None = None) -> tuple[str, str]:
    """(budget name, reason) by setting and device only: SAELAB_BUDGET if set, else 'gpu' on CUDA, else 'cpu'."""
    asked = os.environ.get(SETTING, "").strip().lower() or "auto"
    if asked not in NAMES:
        raise ValueError(f"{SETTING} must be one of {NAMES}; got {asked!r}. Unset it to choose by device and memory.")
    if asked != "auto":
        return asked, f"{SETTING}={asked} is set"
    kind = torch.device(device).type if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda":
        return "gpu", "a GPU is available"
    return "cpu", f"no GPU (device {kind}): the blog's run would take about 4 hours on 2 CPU cores"


def _free_bytes(kind: str) -> int | None:
    """Memory the budget's tensors may still take: the GPU's free memory on CUDA, else this process's."""
    if kind == "cuda" and torch.cuda.is_available():
        return int(torch.cuda.mem_get_info()[0])
    return memory.available_memory_bytes()


def training_budget(device: str | torch.device | None = None, available: int | None = None,
                    d_model: int = 768) -> TrainingBudget:
    """The online budget of notebook 05 for `device` and the memory left (call it after loading the model), with
    `why`: one line naming the choice, its size, and its reason. `available` (bytes) overrides the measurement."""
    name, reason = budget_name(device)
    if os.environ.get(SETTING, "").strip().lower() in ("", "auto"):
        kind = torch.device(device).type if device is not None else ("cuda" if name == "gpu" else "cpu")
        free = _free_bytes(kind) if available is None else available
        first = name
        while free is not None and BUDGETS[name].memory_bytes(d_model) > free and name != STEP_DOWN[-1]:
            name = STEP_DOWN[STEP_DOWN.index(name) + 1]
        if name != first:
            reason += (f", and '{first}' needs ~{memory.gib(BUDGETS[first].memory_bytes(d_model))} of memory where "
                       f"{memory.gib(free)} is free")
        if free is not None and BUDGETS[name].memory_bytes(d_model) > free:
            reason += (f"; it needs ~{memory.gib(BUDGETS[name].memory_bytes(d_model))} and only {memory.gib(free)} is "
                       "free, the smallest there is: if the kernel dies, run offline (SAELAB_OFFLINE=1) or on Colab")
    b = BUDGETS[name]
    what = {"gpu": "the blog's configuration", "cpu": "a reduced CPU configuration (every lesson, fewer steps)",
            "small": "the CPU steps on fewer activations (every lesson, noisier numbers)",
            "smoke": "a tiny smoke-test budget (for CI: the numbers below mean nothing)"}[name]
    c = b.cfg
    why = (f"Budget '{name}' because {reason}: {what}, {c['n_steps']:,} steps of {c['batch_size']:,} "
           f"activations from {b.n_train:,} collected, {b.sweep_steps:,} steps per SAE in the size sweep, "
           f"{b.n_seeds} seed{'s' if b.n_seeds > 1 else ''} per compared arm.")
    return dataclasses.replace(b, cfg=dict(c), why=why)
