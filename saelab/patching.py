"""Activation patching: which activations (layer, position) carry the information a model uses for one answer?

    clean      "i love him. he is such a"  -> the model prefers " good", " nice", " kind"
    corrupted  "i hate him. he is such a"  -> it prefers " rude", " mean", " bad"
    metric     logit difference at the last position, normalised so that corrupted = 0 and clean = 1

Copy one clean activation into the corrupted run and read the normalised metric: how much of the clean answer
that activation alone restores. `patch_residual` does it for every (layer, position) with batched forward passes
(one batch row per patch); `transformer_lens.patching.get_act_patch_resid_pre` does the same one forward at a
time and gives the same numbers (`method="transformer_lens"` calls it). SAE latents: `saelab.sae_patching`.
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence
from unittest import mock

import torch

from saelab.features import _as_tokens
from saelab.models import check_position

# The notebook's prompt pair per world, and its answer words (each must be one token of the model).
PROMPTS = {"tiny-world": ("i love him. he is such a", "i hate him. he is such a"),
           "gpt2": ("I love him. He is such a", "I hate him. He is such a")}
POSITIVE_WORDS = ("good", "nice", "kind")
NEGATIVE_WORDS = ("rude", "mean", "bad")
# What can be patched per block. Not resid_mid: on TL 4.3's TransformerBridge a value written at
# hook_resid_mid reaches only the MLP's input, not the residual stream (measured), so patching it is misleading.
COMPONENTS = {"resid_pre": "hook_resid_pre", "attn_out": "hook_attn_out", "mlp_out": "hook_mlp_out"}
Metric = Callable[[torch.Tensor], torch.Tensor]


def prompt_pair(world_name: str) -> tuple[str, str]:
    """(clean, corrupted) prompts for a world: lower case for the tiny world, normal casing for GPT-2."""
    return PROMPTS["tiny-world" if world_name == "tiny-world" else "gpt2"]


# --- the metric ---------------------------------------------------------------------------------------
def answer_ids(model: Any, words: Sequence[str] | str, leading_space: bool = True) -> list[int]:
    """Token id of each answer word (read after a space: "good" -> " good"); a ValueError lists every word
    that is not exactly one known token. `words` may be a list or a comma-separated string."""
    if isinstance(words, str):
        words = [w for w in re.split(r"[,\n]+", words)]
    words = [w.strip() for w in words if w.strip()]
    if not words:
        raise ValueError("the answer set is empty: give at least one word, e.g. ['good', 'nice']")
    tok = model.tokenizer
    unk = getattr(tok, "unk_token_id", None)
    ids, offenders = [], []
    for word in words:
        text = " " + word if leading_space else word
        found = tok.encode(text, add_special_tokens=False)
        if len(found) == 1 and (unk is None or found[0] != unk):
            ids.append(int(found[0]))
        elif len(found) == 1 or (unk is not None and unk in found):
            offenders.append(f"{text!r} is not in the model's vocabulary")
        else:
            offenders.append(f"{text!r} is {len(found)} tokens {[tok.decode([i]) for i in found]}")
    if offenders:
        raise ValueError("each answer word must be a single token of the model: " + "; ".join(offenders)
                         + ". Pick other words (try a more common word, or another spelling).")
    return ids


@dataclass(frozen=True)
class LogitDiff:
    """metric(logits [batch, pos, d_vocab]) -> [batch]: logsumexp over the positive answers' logits minus
    logsumexp over the negative ones, at the last position (how much the model prefers a positive answer)."""
    positive_ids: tuple[int, ...]
    negative_ids: tuple[int, ...]
    positive_words: tuple[str, ...] = ()
    negative_words: tuple[str, ...] = ()

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        last = logits[:, -1].float()
        return last[:, list(self.positive_ids)].logsumexp(-1) - last[:, list(self.negative_ids)].logsumexp(-1)


def logit_diff_metric(model: Any, positive_words: Sequence[str] | str = POSITIVE_WORDS,
                      negative_words: Sequence[str] | str = NEGATIVE_WORDS) -> LogitDiff:
    """The logit-difference metric for two sets of answer words, each checked to be one token of the model."""
    pos, neg = answer_ids(model, positive_words), answer_ids(model, negative_words)
    both = sorted(set(pos) & set(neg))
    if both:
        raise ValueError(f"these answers are in both sets: {[model.tokenizer.decode([i]) for i in both]}; "
                         "a word can count for one side only")
    decode = model.tokenizer.decode
    return LogitDiff(tuple(pos), tuple(neg), tuple(decode([i]) for i in pos), tuple(decode([i]) for i in neg))


# --- prompts ------------------------------------------------------------------------------------------
def _tokens(model: Any, prompt: str | torch.Tensor, name: str) -> torch.Tensor:
    """Token ids [1, pos] of the `name` prompt, on the model's device (`features._as_tokens`, one prompt only)."""
    if not isinstance(prompt, str) and torch.as_tensor(prompt).dim() == 2 and len(prompt) != 1:
        raise ValueError(f"the {name} prompt has {len(prompt)} rows; patch one prompt pair at a time")
    try:
        return _as_tokens(model, prompt).long().to(model.cfg.device)
    except ValueError as err:
        raise ValueError(f"the {name} prompt: {err}") from None


def pair_tokens(model: Any, clean: str | torch.Tensor, corrupted: str | torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """(clean, corrupted) token ids [1, pos]; a ValueError showing both token lists when their lengths differ."""
    clean_tokens, corrupted_tokens = _tokens(model, clean, "clean"), _tokens(model, corrupted, "corrupted")
    if clean_tokens.shape != corrupted_tokens.shape:
        raise ValueError(
            f"clean and corrupted must have the same number of tokens, so that positions line up; clean has "
            f"{clean_tokens.shape[1]}: {model.to_str_tokens(clean_tokens[0])}, corrupted has "
            f"{corrupted_tokens.shape[1]}: {model.to_str_tokens(corrupted_tokens[0])}. "
            "Swap a word for one that is also a single token.")
    return clean_tokens, corrupted_tokens


def _metric_values(metric: Metric, logits: torch.Tensor) -> torch.Tensor:
    """The metric's value per batch row [batch], with a clear error for a metric that returns something else."""
    values = torch.as_tensor(metric(logits))
    if values.shape != (logits.shape[0],):
        raise ValueError(f"the metric must return one value per batch row, shape [{logits.shape[0]}]; got "
                         f"shape {tuple(values.shape)}. Reduce over positions and vocabulary only, not the batch.")
    return values.detach().float().cpu()


def normaliser(m_clean: float, m_corrupted: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """f(values) = (values - corrupted) / (clean - corrupted): 0 for the corrupted run, 1 for the clean run."""
    gap = m_clean - m_corrupted
    if abs(gap) < 1e-4:
        raise ValueError(f"clean and corrupted give the same metric ({m_clean:.4f} vs {m_corrupted:.4f}), so there "
                         "is nothing to restore: pick prompts or answer words on which the model's answers differ")
    return lambda values: (values - m_corrupted) / gap


# --- patching every (layer, position) -----------------------------------------------------------------
@contextlib.contextmanager
def _no_progress_bar():
    """TL 4.3's generic_activation_patch always draws a tqdm bar; inside a notebook panel they would pile up."""
    from transformer_lens import patching as tl_patching

    with mock.patch.object(tl_patching, "tqdm", lambda iterable, *a, **k: iterable):
        yield


@torch.no_grad()
def patch_residual(model: Any, clean: str | torch.Tensor, corrupted: str | torch.Tensor, metric: Metric,
                   component: str = "resid_pre", batch_size: int = 64, method: str = "batched") -> torch.Tensor:
    """Normalised metric after copying the clean `component` of each block at each position into the
    corrupted run: [n_layers, n_pos] (0: nothing restored, 1: the clean answer). `component`: "resid_pre"
    (the residual stream entering a block), "attn_out" or "mlp_out". `method="transformer_lens"` runs
    transformer_lens.patching's function instead (one forward per cell, same numbers)."""
    if component not in COMPONENTS:
        raise ValueError(f"component must be one of {list(COMPONENTS)}; got {component!r}")
    if method not in ("batched", "transformer_lens"):
        raise ValueError(f"method must be 'batched' or 'transformer_lens'; got {method!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    clean_tokens, corrupted_tokens = pair_tokens(model, clean, corrupted)
    names = [f"blocks.{layer}.{COMPONENTS[component]}" for layer in range(model.cfg.n_layers)]
    clean_logits, cache = model.run_with_cache(clean_tokens, names_filter=names)
    m_clean = float(_metric_values(metric, clean_logits)[0])
    m_corrupted = float(_metric_values(metric, model(corrupted_tokens))[0])
    norm = normaliser(m_clean, m_corrupted)
    n_layers, n_pos = model.cfg.n_layers, clean_tokens.shape[1]
    if method == "transformer_lens":
        from transformer_lens import patching as tl_patching

        fn = getattr(tl_patching, f"get_act_patch_{component}")
        with _no_progress_bar():
            raw = fn(model, corrupted_tokens, cache, lambda logits: _metric_values(metric, logits)[0])
        return norm(raw.float().cpu())
    cells = [(layer, pos) for layer in range(n_layers) for pos in range(n_pos)]
    values = torch.empty(len(cells))
    for start in range(0, len(cells), batch_size):
        chunk = cells[start:start + batch_size]
        hooks = [(names[layer], _copy_hook(cache[names[layer]], chunk, layer)) for layer in {c[0] for c in chunk}]
        logits = model.run_with_hooks(corrupted_tokens.repeat(len(chunk), 1), fwd_hooks=hooks)
        values[start:start + len(chunk)] = _metric_values(metric, logits)
    return norm(values).reshape(n_layers, n_pos)


def _copy_hook(clean_activation: torch.Tensor, cells: list[tuple[int, int]], layer: int) -> Callable:
    """A hook that, in batch row r, copies the clean activation at cells[r]'s position (for cells of `layer`)."""
    rows = torch.tensor([r for r, (lay, _) in enumerate(cells) if lay == layer])
    positions = torch.tensor([pos for lay, pos in cells if lay == layer])

    def hook(activation: torch.Tensor, hook: Any) -> torch.Tensor:
        activation[rows, positions] = clean_activation[0, positions].to(activation.dtype)
        return activation
    return hook


# --- pictures -----------------------------------------------------------------------------------------
def plot_patching(values: torch.Tensor, str_tokens: Sequence[str], title: str = "Residual-stream patching",
                  ylabel: str = "patched: input to block", ax: Any = None, mark: tuple[int, int] | None = None,
                  limit: float | None = None) -> Any:
    """Heatmap of a [n_layers, n_pos] patching result, tokens on the x axis, values written in the cells;
    `mark` = (layer, position) outlines one cell. The colour scale runs from -limit to +limit (default: 1, or the
    largest |value| when that is larger, so an overshoot past the clean answer never looks like 1); pass the same
    `limit` to maps you want to compare. Returns the matplotlib Axes."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    values = values.detach().float().cpu()
    n_layers, n_pos = values.shape
    if len(str_tokens) != n_pos:
        raise ValueError(f"need one token label per position ({n_pos}); got {len(str_tokens)}")
    if limit is None:
        limit = max(1.0, float(values.abs().max()))
    if not limit > 0:
        raise ValueError(f"limit must be a positive number (the colour scale runs from -limit to +limit); got {limit!r}")
    ax = ax or plt.subplots(figsize=(max(5, 0.75 * n_pos + 2), 0.45 * n_layers + 1.6))[1]
    image = ax.imshow(values, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    if n_layers * n_pos <= 400:  # write the numbers only where they stay readable
        for (layer, pos), v in zip(torch.cartesian_prod(torch.arange(n_layers), torch.arange(n_pos)).tolist(),
                                   values.flatten().tolist()):
            ax.text(pos, layer, f"{v:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if abs(v) > 0.6 * limit else "black")
    if mark is not None:
        ax.add_patch(Rectangle((mark[1] - 0.5, mark[0] - 0.5), 1, 1, fill=False, edgecolor="black", linewidth=2))
    ax.set_xticks(range(n_pos), [repr(t)[1:-1] for t in str_tokens], rotation=45, ha="right")
    ax.set_yticks(range(n_layers))
    ax.set(title=title, xlabel="position (token)", ylabel=ylabel)
    ax.figure.colorbar(image, ax=ax, label="normalised metric (clean = 1)", pad=0.01)
    return ax


def residual_attribution(model: Any, clean: str | torch.Tensor, corrupted: str | torch.Tensor, metric: Metric,
                         component: str = "resid_pre") -> torch.Tensor:
    """Attribution patching for `patch_residual`: grad of the metric w.r.t. each block's `component` in the
    corrupted run, dotted with (clean - corrupted) there, normalised: [n_layers, n_pos], from one forward and
    one backward pass (plus the clean run). A first-order estimate; compare it with patch_residual."""
    if component not in COMPONENTS:
        raise ValueError(f"component must be one of {list(COMPONENTS)}; got {component!r}")
    clean_tokens, corrupted_tokens = pair_tokens(model, clean, corrupted)
    names = [f"blocks.{layer}.{COMPONENTS[component]}" for layer in range(model.cfg.n_layers)]
    with torch.no_grad():
        clean_logits, cache = model.run_with_cache(clean_tokens, names_filter=names)
    m_clean = float(_metric_values(metric, clean_logits)[0])
    seen: dict[str, torch.Tensor] = {}
    acts: dict[str, torch.Tensor] = {}

    def keep(name: str) -> Callable:
        def hook(activation: torch.Tensor, hook: Any) -> torch.Tensor:
            # a zero leaf added here has the gradient of the metric w.r.t. this activation (all later paths)
            seen[name] = torch.zeros_like(activation, requires_grad=True)
            acts[name] = activation.detach()
            return activation + seen[name]
        return hook

    with torch.enable_grad():
        values = metric(model.run_with_hooks(corrupted_tokens, fwd_hooks=[(n, keep(n)) for n in names]))
        grads = torch.autograd.grad(values.sum(), [seen[n] for n in names])
    m_corrupted = float(values.detach()[0])
    norm = normaliser(m_clean, m_corrupted)
    estimate = torch.stack([(g[0] * (cache[n][0] - acts[n][0])).sum(-1) for g, n in zip(grads, names)])
    return norm(estimate.detach().float().cpu() + m_corrupted)
