"""Training the tiny world's model: a 4-layer GPT-2 on generated stories (a plain AdamW loop).

Its SAE is trained afterwards by the course's own trainer, `saelab.training.train_sae` (see `build.py`).
"""
from __future__ import annotations

import math
import random
import time
from typing import Callable

import torch
from transformers import GPT2Config, GPT2LMHeadModel

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
