"""Loading language models: GPT-2 / DistilGPT2 from the hub, a local directory, or the offline tiny world.

Every model comes back as a TransformerLens `TransformerBridge` holding the raw Hugging Face weights
(no LayerNorm folding, no weight centring), which is what OpenAI's GPT-2 SAEs were trained on.
"""
from __future__ import annotations

import contextlib
import io
import os
import warnings
from pathlib import Path
from typing import Any

import torch

TINY_WORLD = "tiny-world"
TINY_WORLD_DIR = Path(__file__).parent / "tinyworld" / "files"
# Short names students type -> the official Hugging Face repository names.
HUB_NAMES = {
    "gpt2": "openai-community/gpt2",
    "gpt2-small": "openai-community/gpt2",
    "distilgpt2": "distilbert/distilgpt2",
}
OFFLINE_HELP = (
    "To work without network, use the bundled offline model: saelab.load_model('tiny-world'), "
    "or set the environment variable SAELAB_OFFLINE=1 before starting Jupyter so that every "
    "notebook picks the tiny world."
)


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says why and what to do."""


def is_offline() -> bool:
    """True when SAELAB_OFFLINE asks saelab never to touch the network."""
    return os.environ.get("SAELAB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def pick_device(device: str | torch.device | None = None) -> str:
    """The device to use: the one asked for, else cuda, then mps, then cpu."""
    if device is not None:
        return str(device)
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def resolve_model_name(name: str) -> str:
    """Map a short or official name, a local directory or 'tiny-world' to what the loader needs."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"model name must be a non-empty string such as 'gpt2'; got {name!r}")
    name = name.strip()
    if name.lower() in {TINY_WORLD, "tiny_world", "tinyworld"}:
        return str(TINY_WORLD_DIR)
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    return HUB_NAMES.get(name.lower(), name)


def _local_snapshot(repo_id: str) -> str:
    """The cached copy of a hub model, without touching the network."""
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(repo_id, local_files_only=True)
    except Exception:
        raise ModelLoadError(
            f"SAELAB_OFFLINE=1 is set and '{repo_id}' is not in the Hugging Face cache, so it cannot be "
            f"loaded without network. {OFFLINE_HELP} (Or unset SAELAB_OFFLINE on a machine with network.)"
        ) from None


def load_model(name: str, device: str | torch.device | None = None) -> Any:
    """Load a causal LM as a TransformerBridge: 'gpt2', 'distilgpt2', an official HF name,
    a local Hugging Face directory, or 'tiny-world' (bundled, offline)."""
    from transformer_lens.model_bridge import TransformerBridge

    source = resolve_model_name(name)
    if source == str(TINY_WORLD_DIR) and not (TINY_WORLD_DIR / "config.json").is_file():
        raise ModelLoadError(f"the tiny world's files are missing from {TINY_WORLD_DIR}; rebuild them with "
                             "`python -m saelab.tinyworld.build` or reinstall saelab")
    if is_offline() and not Path(source).is_dir():
        source = _local_snapshot(source)
    _pass_kv_cache_to_bridge_attention()
    try:
        with _quiet():
            model = TransformerBridge.boot_transformers(source, device=pick_device(device))
    except Exception as err:
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        raise ModelLoadError(
            f"Could not load the model '{name}' ({type(err).__name__}: {first_line}). "
            f"If you have no network or the model hub is unreachable: {OFFLINE_HELP}"
        ) from None
    model.eval()
    return model


def _pass_kv_cache_to_bridge_attention() -> None:
    """Make generation's KV cache reach TransformerBridge attention under newer transformers.

    transformers 5.x renamed the attention layers' `past_key_values` argument to `cache`, and
    TransformerLens 4.3's bridge only looks for the old names, so it never fills the cache: cached
    generation then attends to the newest token alone and drifts from the uncached result. We hand the
    cache over under the name the bridge reads. Where the bridge already gets it, this changes nothing.
    """
    from transformer_lens.model_bridge.generalized_components.attention import AttentionBridge

    original = AttentionBridge._update_kv_cache
    if getattr(original, "_saelab_cache_fix", False):
        return

    def update_kv_cache(self: Any, k: torch.Tensor, v: torch.Tensor, **kwargs: Any) -> Any:
        if kwargs.get("past_key_values") is None and kwargs.get("cache") is not None:
            kwargs["past_key_values"] = kwargs["cache"]
        return original(self, k, v, **kwargs)

    update_kv_cache._saelab_cache_fix = True
    AttentionBridge._update_kv_cache = update_kv_cache


@contextlib.contextmanager
def _quiet():
    """Hide the loaders' progress bars and deprecation chatter; real errors still raise."""
    from transformers.utils import logging as hf_logging

    bars_were_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # a notebook would show "Loading weights" as a widget
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        if bars_were_on:
            hf_logging.enable_progress_bar()


def to_tokens(model: Any, prompt: str, prepend_bos: bool = True) -> torch.Tensor:
    """Token ids [1, pos] for one prompt, with clear errors for empty or too-long prompts and a
    warning that lists words the model's vocabulary does not know."""
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("the prompt is empty: type a sentence, e.g. 'i love him. he is such a'")
    tokens = model.to_tokens(prompt, prepend_bos=prepend_bos, truncate=False)
    n_ctx = model.cfg.n_ctx
    if tokens.shape[-1] > n_ctx:
        raise ValueError(f"the prompt is {tokens.shape[-1]} tokens long but the model reads at most {n_ctx}; "
                         "shorten it")
    unknown = unknown_words(model.tokenizer, prompt)
    if unknown:
        warnings.warn(f"these words are not in the model's vocabulary and were read as <unk>: "
                      f"{', '.join(unknown)}", stacklevel=2)
    return tokens


def unknown_words(tokenizer: Any, text: str) -> list[str]:
    """Words of `text` that a word-level tokenizer maps to its unknown token (none for GPT-2's BPE)."""
    unk_id = getattr(tokenizer, "unk_token_id", None)
    if unk_id is None:
        return []
    encoding = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    words = [text[a:b].strip() for tok, (a, b) in zip(encoding["input_ids"], encoding["offset_mapping"])
             if tok == unk_id]
    return list(dict.fromkeys(words))  # each unknown word once, in order


def check_position(position: Any, n_pos: int) -> int:
    """`position` as an index from 0 (BOS) to n_pos - 1, or a ValueError saying which positions exist."""
    if isinstance(position, bool) or not isinstance(position, int) or not -n_pos <= position < n_pos:
        raise ValueError(f"position must be an integer from {-n_pos} to {n_pos - 1} for this {n_pos}-token "
                         f"prompt (0 is BOS, -1 the last token); got {position!r}")
    return position % n_pos
