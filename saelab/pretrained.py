"""Pretrained SAEs: OpenAI's GPT-2 small SAEs (downloaded and cached) and the bundled tiny-world SAE."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import torch

from saelab import download, memory
from saelab.models import OFFLINE_HELP, is_offline
from saelab.sae import SAE, load_sae_file

OPENAI_BASE_URL = "https://openaipublic.blob.core.windows.net/sparse-autoencoder/gpt2-small"
# OpenAI's location names -> the TransformerLens hook each SAE reads.
LOCATIONS = {
    "resid_post_mlp": "hook_resid_post",
    "resid_post_attn": "hook_resid_mid",
    "resid_delta_mlp": "hook_mlp_out",
    "resid_delta_attn": "hook_attn_out",
}
SIZES = {"32k": 2**15, "128k": 2**17}
N_LAYERS = 12
OPENAI_CONTEXT_SIZE = 64  # OpenAI's v5 SAEs saw 64-token contexts without BOS (SAELens: context_size 64)
AUTO_128K_MIN_FREE_BYTES = 4 * 2**30  # the 128k SAE is ~800 MB; leave room for GPT-2 and activations


def hook_name(layer: int, location: str) -> str:
    """The TransformerLens hook an OpenAI SAE reads, e.g. (8, 'resid_post_mlp') -> 'blocks.8.hook_resid_post'."""
    check_choice(layer, location)
    return f"blocks.{layer}.{LOCATIONS[location]}"


def check_choice(layer: int, location: str, size: str = "32k") -> None:
    """Raise a ValueError naming the valid choices when layer, location or size is wrong."""
    if location not in LOCATIONS:
        raise ValueError(f"location must be one of {sorted(LOCATIONS)}; got {location!r}")
    if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < N_LAYERS:
        raise ValueError(f"layer must be an integer from 0 to {N_LAYERS - 1} (GPT-2 small has 12 blocks); got {layer!r}")
    if size not in SIZES and size != "auto":
        raise ValueError(f"size must be one of {sorted(SIZES)} or 'auto'; got {size!r}")


def openai_sae_url(layer: int = 8, location: str = "resid_post_mlp", size: str = "128k",
                   base_url: str | None = None) -> str:
    """HTTPS address of one of OpenAI's v5 GPT-2 small SAEs."""
    check_choice(layer, location, size)
    base = (base_url or os.environ.get("SAELAB_OPENAI_SAE_URL") or OPENAI_BASE_URL).rstrip("/")
    return f"{base}/{location}_v5_{size}/autoencoders/{layer}.pt"


def free_memory_bytes() -> int | None:
    """Memory this process may still use: MemAvailable, or less inside a container's limit (saelab.memory)."""
    return memory.available_memory_bytes()


def auto_size() -> str:
    """'128k' when there is room for it, else '32k' (e.g. inside Binder's 2 GB container)."""
    free = free_memory_bytes()
    return "128k" if free is None or free >= AUTO_128K_MIN_FREE_BYTES else "32k"


def _loads_as_sae(path: Path) -> None:
    """Raise ValueError unless `path` is an SAE state dict in OpenAI's format (the download's validation)."""
    load_sae_file(path)


def load_openai_sae(layer: int = 8, location: str = "resid_post_mlp", size: str = "128k",
                    device: str | torch.device | None = None, base_url: str | None = None,
                    progress: bool = True) -> SAE:
    """Download (once, into the cache) and load one of OpenAI's GPT-2 small SAEs."""
    check_choice(layer, location, size)
    if size == "auto":
        size = auto_size()
    url = openai_sae_url(layer, location, size, base_url)
    path = download.cache_dir() / "openai" / f"{location}_v5_{size}" / f"{layer}.pt"
    if is_offline() and not download.is_complete(path):
        raise download.DownloadError(f"SAELAB_OFFLINE=1 is set and {path} is not cached yet. {OFFLINE_HELP}")
    for attempt in range(2):
        try:
            download.download(url, path, progress=progress, validate=_loads_as_sae)
        except download.DownloadError as err:
            raise download.DownloadError(f"{err} {OFFLINE_HELP}") from None
        try:
            sae = load_sae_file(path, hook_name=hook_name(layer, location), device=device)
            sae.context_size = OPENAI_CONTEXT_SIZE  # saelab.features warns when text is longer
            return sae
        except ValueError:
            if attempt == 1:
                raise
            download.forget(path)  # a corrupt cached file: fetch it once more
    raise AssertionError("unreachable")


def load_sae(name: str | os.PathLike = "tiny-world", device: str | torch.device | None = None,
             hook_name: str | None = None) -> SAE:
    """Load an SAE by name: 'tiny-world' (bundled), or the path of an OpenAI-format `.pt` file."""
    if str(name).lower() in {"tiny-world", "tiny_world", "tinyworld"}:
        from saelab.tinyworld import SAE_HOOK, SAE_PATH

        return load_sae_file(SAE_PATH, hook_name=hook_name or SAE_HOOK, device=device)
    path = Path(name).expanduser()
    if not path.is_file():
        raise ValueError(f"no SAE called {str(name)!r}: give 'tiny-world', the path of a saved SAE file, "
                         "or use load_openai_sae(layer=8, location='resid_post_mlp', size='32k') for GPT-2")
    return load_sae_file(path, hook_name=hook_name, device=device)


def openai_autoencoder_class() -> tuple[Any | None, str]:
    """OpenAI's own `Autoencoder` class if installed, else None, with one line saying which case we're in."""
    if importlib.util.find_spec("sparse_autoencoder") is None:
        return None, ("OpenAI's sparse_autoencoder package is not installed (optional: "
                      "pip install --no-deps git+https://github.com/openai/sparse_autoencoder.git)")
    try:
        from sparse_autoencoder.model import Autoencoder  # OpenAI's layout
    except Exception:
        Autoencoder = None
    if Autoencoder is None or not hasattr(Autoencoder, "from_state_dict"):
        return None, ("the installed 'sparse_autoencoder' is PyPI's unrelated package, not OpenAI's: it has no "
                      "Autoencoder.from_state_dict. Uninstall it and run "
                      "pip install --no-deps git+https://github.com/openai/sparse_autoencoder.git")
    return Autoencoder, "OpenAI's sparse_autoencoder is installed"
