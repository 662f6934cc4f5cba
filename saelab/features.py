"""Reading a prompt through an SAE: which latents fire, where, and how strongly."""
from __future__ import annotations

from typing import Any

import torch

from saelab.models import to_tokens
from saelab.sae import SAE


def hook_layer(hook_name: str) -> int:
    """The block index in a TransformerLens hook name: 'blocks.8.hook_resid_post' -> 8."""
    parts = hook_name.split(".")
    if len(parts) < 3 or parts[0] != "blocks" or not parts[1].isdigit():
        raise ValueError(f"expected a hook like 'blocks.8.hook_resid_post'; got {hook_name!r}")
    return int(parts[1])


@torch.no_grad()
def residual_activations(model: Any, hook_name: str, tokens: torch.Tensor) -> torch.Tensor:
    """Activations at `hook_name` for token ids [batch, pos] -> [batch, pos, d_model].

    The forward pass stops right after the hook's block: later blocks and the unembedding are skipped.
    """
    _, cache = model.run_with_cache(tokens, names_filter=[hook_name], stop_at_layer=hook_layer(hook_name) + 1)
    return cache[hook_name]


@torch.no_grad()
def encode_prompt(model: Any, sae: SAE, prompt: str) -> tuple[list[str], torch.Tensor]:
    """The prompt's tokens (as strings, BOS included) and the SAE latents at each: [pos, n_latents]."""
    if sae.hook_name is None:
        raise ValueError("this SAE does not know which hook it reads; set sae.hook_name = 'blocks.L.hook_...'")
    tokens = to_tokens(model, prompt)
    acts = residual_activations(model, sae.hook_name, tokens)[0]
    latents = sae.encode(acts.to(sae.pre_bias.dtype))
    return model.to_str_tokens(tokens[0]), latents
