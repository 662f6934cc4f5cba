"""Training the tiny world: a 4-layer GPT-2 on generated stories, then a TopK SAE on its residual stream.

Both loops are deliberately plain (AdamW / Adam, a few lines each) so they can be read top to bottom;
`saelab.training` is the course's general SAE trainer, this one only has to build the bundled files.
"""
from __future__ import annotations

import math
import random
import time
from typing import Callable

import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel

from saelab.sae import SAE
from saelab.tinyworld.generator import Story

BOS = 0  # <|endoftext|>: every story starts with it (like TransformerLens's to_tokens) and ends with it


def story_tokens(tokenizer, stories: list[Story]) -> list[list[int]]:
    """[bos] + tokens + [eos] for each story."""
    ids = tokenizer([s.text for s in stories], add_special_tokens=False)["input_ids"]
    return [[BOS, *x, BOS] for x in ids]


def pad_batch(seqs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens [batch, pos] padded with bos, labels [batch, pos] with -100 on padding)."""
    n = max(len(s) for s in seqs)
    tokens = torch.full((len(seqs), n), BOS, dtype=torch.long)
    labels = torch.full((len(seqs), n), -100, dtype=torch.long)
    for i, s in enumerate(seqs):
        tokens[i, :len(s)] = torch.tensor(s)
        labels[i, :len(s)] = torch.tensor(s)
    return tokens, labels


def length_batches(seqs: list[list[int]], batch_size: int, seed: int) -> list[list[int]]:
    """Batches of similar-length sequences (less padding), in a seeded random order."""
    rng = random.Random(seed)
    order = list(range(len(seqs)))
    rng.shuffle(order)
    batches = []
    chunk = batch_size * 32  # sort within chunks: similar lengths, still a random mix of stories
    for c in range(0, len(order), chunk):
        part = sorted(order[c:c + chunk], key=lambda i: len(seqs[i]))
        batches += [part[b:b + batch_size] for b in range(0, len(part), batch_size)]
    rng.shuffle(batches)
    return batches


def make_model(vocab_size: int, n_embd: int = 160, n_layer: int = 4, n_head: int = 4,
               n_positions: int = 64) -> GPT2LMHeadModel:
    """A small GPT-2 (no dropout: the stories never run out, so there is nothing to overfit)."""
    config = GPT2Config(vocab_size=vocab_size, n_positions=n_positions, n_embd=n_embd, n_layer=n_layer,
                        n_head=n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        bos_token_id=BOS, eos_token_id=BOS, pad_token_id=BOS)
    return GPT2LMHeadModel(config)


def train_model(model: GPT2LMHeadModel, seqs: list[list[int]], steps: int, batch_size: int = 64,
                lr: float = 2e-3, seed: int = 0, log: Callable[[str], None] = print) -> list[float]:
    """Train `model` on `seqs` for `steps` AdamW steps (warm-up then cosine decay); return the losses."""
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.01)
    warmup = max(1, min(100, steps // 10))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min((s + 1) / warmup, 0.1 + 0.9 * 0.5 * (
        1 + math.cos(math.pi * min(1.0, s / max(1, steps))))))
    batches, epoch, losses, start = [], 0, [], time.time()
    model.train()
    for step in range(steps):
        if not batches:
            batches, epoch = length_batches(seqs, batch_size, seed + epoch), epoch + 1
        tokens, labels = pad_batch([seqs[i] for i in batches.pop()])
        loss = model(tokens, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sched.step()
        losses.append(loss.item())
        if step % 100 == 0 or step == steps - 1:
            log(f"model step {step:5d}/{steps}  loss {sum(losses[-100:]) / len(losses[-100:]):.4f}  "
                f"{time.time() - start:6.0f}s")
    model.eval()
    return losses


@torch.no_grad()
def collect_activations(model: GPT2LMHeadModel, seqs: list[list[int]], layer: int,
                        batch_size: int = 256) -> torch.Tensor:
    """Residual stream after block `layer - 1` (HF hidden_states[layer]) at every real token: [tokens, d_model]."""
    model.eval()
    out = []
    for b in range(0, len(seqs), batch_size):
        chunk = seqs[b:b + batch_size]
        tokens, labels = pad_batch(chunk)
        hidden = model.transformer(tokens, output_hidden_states=True).hidden_states[layer]
        out.append(hidden[labels != -100])
    return torch.cat(out)


def fraction_variance_unexplained(x: torch.Tensor, x_hat: torch.Tensor) -> float:
    """sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 over tokens."""
    return ((x - x_hat).pow(2).sum() / (x - x.mean(0)).pow(2).sum()).item()


def train_sae(acts: torch.Tensor, n_latents: int, k: int, steps: int, hook_name: str,
              batch_size: int = 4096, lr: float = 1e-3, seed: int = 0, aux_k: int = 256, aux_coef: float = 1 / 32,
              dead_tokens: int = 200_000, log: Callable[[str], None] = print) -> SAE:
    """A TopK SAE on `acts` [tokens, d_model]: Adam on the MSE of normalised inputs, plus OpenAI's AuxK
    loss (the top `aux_k` dead latents reconstruct what the live ones missed), unit-norm decoder columns."""
    torch.manual_seed(seed)
    d_model = acts.shape[1]
    sae = SAE(d_model, n_latents, activation="topk", k=k, hook_name=hook_name)
    x_all, _ = sae.preprocess(acts)  # train on normalised inputs, like OpenAI's v5 SAEs
    with torch.no_grad():
        sae.pre_bias.copy_(x_all.mean(0))
        sae.decoder.weight.copy_(F.normalize(torch.randn(d_model, n_latents), dim=0))
        sae.encoder.weight.copy_(sae.decoder.weight.t())
    opt = torch.optim.Adam(sae.parameters(), lr=lr)
    since_fired = torch.zeros(n_latents)  # tokens since each latent last fired
    gen = torch.Generator().manual_seed(seed)
    start = time.time()
    for step in range(steps):
        x = x_all[torch.randint(len(x_all), (batch_size,), generator=gen)]
        pre = sae.encode_pre_act(x)
        latents = sae.activate(pre)
        recons = sae.decoder(latents) + sae.pre_bias
        mse = (recons - x).pow(2).sum(-1).mean() / d_model
        loss = mse
        dead = since_fired > dead_tokens
        if dead.any():  # AuxK: let dead latents explain the residual, so they get gradient again
            aux_pre = pre.masked_fill(~dead, -float("inf"))
            vals, idx = aux_pre.topk(min(aux_k, int(dead.sum())), dim=-1)
            aux = torch.zeros_like(pre).scatter_(-1, idx, F.relu(vals))
            residual = (x - recons).detach()
            aux_loss = (sae.decoder(aux) - residual).pow(2).sum(-1).mean() / residual.pow(2).sum(-1).mean()
            loss = loss + aux_coef * aux_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            sae.decoder.weight.copy_(F.normalize(sae.decoder.weight, dim=0))
            fired = (latents > 0).any(0)
            since_fired = torch.where(fired, torch.zeros_like(since_fired), since_fired + batch_size)
        if step % 250 == 0 or step == steps - 1:
            log(f"sae step {step:5d}/{steps}  mse {mse.item():.4f}  dead {int(dead.sum())}  "
                f"{time.time() - start:6.0f}s")
        if step == int(steps * 0.8):  # a last, smaller learning rate polishes the reconstruction
            for g in opt.param_groups:
                g["lr"] = lr / 10
    sae.stats_last_nonzero.zero_()
    return sae


@torch.no_grad()
def sae_report(sae: SAE, acts: torch.Tensor) -> dict[str, float]:
    """FVU on raw activations, mean L0 and the fraction of latents that never fire on `acts`."""
    fired = torch.zeros(sae.n_latents, dtype=torch.bool)
    errs, l0 = [], 0.0
    for b in range(0, len(acts), 8192):
        x = acts[b:b + 8192]
        _, latents, recons = sae(x)
        errs.append(recons)
        fired |= (latents > 0).any(0)
        l0 += (latents > 0).sum().item()
    sae.stats_last_nonzero.zero_()
    x_hat = torch.cat(errs)
    return {"fvu": fraction_variance_unexplained(acts, x_hat), "l0": l0 / len(acts),
            "dead_fraction": 1 - fired.float().mean().item()}
