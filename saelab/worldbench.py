"""Every architecture on the tiny world: trained on its activations, scored with its labels (notebook 06, section 5).

The toy knows its features; the tiny world knows its concepts at every token. This module trains each architecture
of `saelab.architectures` on the tiny world's activations at one hook, with one shared budget, and scores it with
the metrics that need those labels:

    world_task(model, stories)      activations, labels and texts of a train and a test split, computed once
    train_world_sae(name, task, ..) one architecture trained by `train_sae` with WORLD_BUDGET
    world_card(sae, task)           L0, FVU, LM loss recovered (and the CE it adds), k-sparse probing (per story,
                                    mean over the concepts), absorption of "refers to a woman" (per token),
                                    and the offline autointerp scores of the latent that best marks negative tokens
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from saelab import absorption, metrics, probing
from saelab import autointerp as ai
from saelab.saebench import AUXK, check_fits, make_sae
from saelab.sae import SAE
from saelab.training import init_sae_, train_sae

# Each concept as "one value against the others", scored per story (the story's hidden value).
CONCEPTS = {"sentiment": "negative", "certainty": "hedged", "gender": "she", "topic": "food"}
# Absorption's parent: a word that refers to a woman (names imply "she"), against the words for a man.
SHE_WORDS = frozenset({"she", "her", "mia", "anna", "lucy"})
HE_WORDS = frozenset({"he", "him", "tom", "ben", "sam"})
# One budget for every architecture. Inputs are standardised per token (as OpenAI's SAEs do), so that one learning
# rate suits every rule, JumpReLU's thresholds included; each sparsity setting aims at about 8 active latents.
WORLD_LATENTS = 320  # 2x the tiny world's 160 dimensions: small enough to train 18 SAEs in a notebook
WORLD_BUDGET = dict(n_steps=250, batch_size=512, lr=1e-2, precision="fp32")
WORLD_SETTINGS: dict[str, dict[str, Any]] = {
    "relu": {"l1_coef": 1.8},
    "topk": {"k": 8, **AUXK},
    "batchtopk": {"k": 8, **AUXK},
    "matryoshka": {"k": 8, **AUXK},
    "jumprelu": {"l0_coef": 1.5},
    "gated": {"l1_coef": 3.0},
}
# JumpReLU's thresholds start here (standardised units) rather than at the library's 0.05: through its
# straight-through estimator a threshold moves by about the learning rate per step, too little in 250 steps.
WORLD_JUMP_INIT = 0.5
SPLICE_TEXTS = 64  # test stories for LM loss recovered


@dataclass
class WorldTask:
    """What every architecture is trained and scored on (build it with `world_task`)."""
    model: Any
    hook_name: str
    acts: dict[str, torch.Tensor]        # split -> [n_tokens, d_model]
    ids: dict[str, torch.Tensor]         # split -> story index of each token
    story_y: dict[str, dict[str, torch.Tensor]]  # concept -> split -> [n_stories] bool
    words: list[str]                     # every token's word, train then test
    facts: dict[str, ai.Facts]           # split -> what is known at each token
    negative: torch.Tensor               # train tokens: True where sentiment is negative (known tokens only)
    known: torch.Tensor                  # train tokens: True where sentiment is known
    texts: list[str]                     # test stories for the splice


def world_task(model: Any, stories: dict[str, Sequence[Any]], hook_name: str | None = None) -> WorldTask:
    """Activations and labels of {"train": stories, "test": stories} at `hook_name` (default: the world SAE's)."""
    from saelab.activations import story_activations
    from saelab.evaluation import story_ids
    from saelab.tinyworld import SAE_HOOK

    if set(stories) != {"train", "test"}:
        raise ValueError(f"pass stories as {{'train': [...], 'test': [...]}}; got the splits {sorted(stories)}")
    hook_name = hook_name or SAE_HOOK
    acts, labels, ids, facts = {}, {}, {}, {}
    for split, group in stories.items():
        acts[split], labels[split] = story_activations(model, hook_name, list(group))
        ids[split] = story_ids(group)
        facts[split] = ai.Facts({"word": [w for s in group for w in s.words], **labels[split]})
    story_y = {c: {split: torch.tensor([s.concepts[c] == v for s in group]) for split, group in stories.items()}
               for c, v in CONCEPTS.items()}
    sentiment = labels["train"]["sentiment"]
    return WorldTask(model, hook_name, acts, ids, story_y, facts["train"].facts["word"] + facts["test"].facts["word"],
                     facts,
                     torch.tensor([v == "negative" for v in sentiment]), torch.tensor([v != "none" for v in sentiment]),
                     [s.text for s in stories["test"]][:SPLICE_TEXTS])


def train_world_sae(name: str, task: WorldTask, seed: int = 0, n_latents: int = WORLD_LATENTS,
                    sparsity: float | int | None = None, **budget: Any) -> SAE:
    """Train one architecture on the task's training activations with WORLD_BUDGET (override it by keyword)."""
    sae, setting = make_sae(name, task.acts["train"].shape[1], n_latents, sparsity, task.hook_name,
                            settings=WORLD_SETTINGS, normalize=True)
    init_sae_(sae, seed, task.acts["train"])
    if sae.activation == "jumprelu":
        with torch.no_grad():
            sae.log_threshold.fill_(math.log(WORLD_JUMP_INIT))
    train_sae(sae, task.acts["train"], seed=seed, init=False, log_every=100, ortho_every=None,
              **{**WORLD_BUDGET, **budget}, **setting)
    return sae


def world_card(sae: SAE, task: WorldTask, seed: int = 0) -> dict[str, float]:
    """Every metric of one SAE on the tiny world (see the module docstring); probing and autointerp on held-out
    stories, absorption on the held-out half of the "she" / "he" tokens."""
    from saelab.evaluation import splice_costs

    check_fits(sae, task.acts["train"], task.hook_name)
    with torch.no_grad():
        _, train_latents, _ = sae(task.acts["train"])
        _, test_latents, recons = sae(task.acts["test"])
    lat = {"train": train_latents, "test": test_latents}
    card = {"L0": metrics.l0(lat["test"]), "FVU": metrics.fraction_variance_unexplained(task.acts["test"], recons)}
    costs = splice_costs(task.model, sae, task.texts, task.hook_name)
    card.update({"loss recovered": costs["loss_recovered"], "CE increase": costs["ce_increase_sae"]})

    pooled = {split: probing.pool_by_story(lat[split], task.ids[split]) for split in lat}
    for k in (1, 2):
        card[f"probe k={k}"] = sum(
            probing.k_sparse_probe(pooled["train"], y["train"], pooled["test"], y["test"], k)["accuracy"]
            for y in task.story_y.values()) / len(task.story_y)

    all_acts, all_lat = torch.cat([task.acts["train"], task.acts["test"]]), torch.cat([lat["train"], lat["test"]])
    she = torch.tensor([w in SHE_WORDS for w in task.words])
    he = torch.tensor([w in HE_WORDS for w in task.words])
    absorbed = absorption.parent_absorption(all_lat, all_acts, sae.W_dec.detach(), she, he,
                                            sae_inputs=absorption.sae_inputs(sae, all_acts))
    card.update({"absorption": absorbed["rate"], "caught": absorbed["caught"],
                 "main latents": float(len(absorbed["main_latents"]))})

    known = task.known
    latent = int(probing.class_mean_difference(lat["train"][known], task.negative[known], signed=True).argmax())
    explanation = ai.explain(lat["train"][:, latent], task.facts["train"], seed=seed)
    explanation, _ = ai.widen(explanation, lat["train"][:, latent], task.facts["train"], task.ids["train"])
    scores = ai.score_all(lat["test"][:, latent], explanation, task.facts["test"], task.ids["test"])
    card.update(scores)  # detection, fuzzing, simulation
    return card
