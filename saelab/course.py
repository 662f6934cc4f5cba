"""Where each notebook picks its world: GPT-2 + OpenAI's SAE when they load, else the offline tiny world."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from saelab import memory
from saelab.download import DownloadError
from saelab.models import ModelLoadError, is_offline, load_model
from saelab.sae import SAE

# The one repository setting: the Colab badges and Colab install cells are built from it.
GITHUB_REPO = "saelab/saelab"
GITHUB_BRANCH = "main"
# Test runs of the online notebooks set this: load_world then raises instead of falling back to the tiny world.
REQUIRE_ONLINE = "SAELAB_REQUIRE_ONLINE"
NOTEBOOKS = ("01_sae_theory.ipynb", "02_finding_features.ipynb", "03_activation_patching.ipynb",
             "04_steering.ipynb", "05_training_saes.ipynb", "06_evaluating_saes.ipynb",
             "07_circuits.ipynb")


def colab_url(notebook: str) -> str:
    """'Open in Colab' address of a notebook in the repository, e.g. colab_url('01_sae_theory.ipynb')."""
    return f"https://colab.research.google.com/github/{GITHUB_REPO}/blob/{GITHUB_BRANCH}/notebooks/{notebook}"


def pip_install_url() -> str:
    """What Colab's setup cell installs."""
    return f"git+https://github.com/{GITHUB_REPO}.git"


# Memory each world needs beside what the kernel already holds (~0.35 GB of imports), from kernels' peaks measured in
# a 2 GiB cgroup (tests/cgroup/run_limited.py, stand-in): GPT-2 + the 32k SAE peaked at 1.25 GB (notebooks 02-04),
# DistilGPT2 + notebook 05 at 1.69 GB; the tiny world needs little. load_world checks them before it loads anything.
# (DistilGPT2: 1.69 GB peak - ~0.45 GB of imports = ~1.25 GB; that run's cgroup peak was 1.55 of 2 GiB.)
ONLINE_NEEDS_BYTES = {"gpt2": int(1.0 * memory.GiB), "distilgpt2": int(1.2 * memory.GiB)}
OFFLINE_NEEDS_BYTES = int(0.4 * memory.GiB)


class NotEnoughMemory(ValueError):
    """Less memory is free than a world needs: the message says how much each, and what to do."""


def check_memory(needed: int, what: str, available: int | None = None) -> None:
    """Raise NotEnoughMemory, saying what to do, when less than `needed` bytes are free (saelab.memory)."""
    available = memory.available_memory_bytes() if available is None else available
    if available is None or available >= needed:
        return
    if what == "the tiny world":
        raise NotEnoughMemory(
            f"Not enough memory even for the offline tiny world: it needs about {memory.gib(needed)} and only "
            f"{memory.gib(available)} is free here. Shut down other notebooks' kernels (Kernel > Shut Down Kernel) "
            f"and run this one again, or open it on Colab: https://colab.research.google.com/github/{GITHUB_REPO}")
    raise NotEnoughMemory(
        f"it needs about {memory.gib(needed)} of memory and only {memory.gib(available)} is free here "
        f"(Binder gives ~2 GB); the offline tiny world needs about {memory.gib(OFFLINE_NEEDS_BYTES)}: set "
        f"SAELAB_OFFLINE=1 to pick it directly, or open this notebook on Colab for {what}")


class OnlineWorldError(RuntimeError):
    """SAELAB_REQUIRE_ONLINE=1 is set and the online world could not be loaded (the message says why)."""


def online_required() -> bool:
    """True when SAELAB_REQUIRE_ONLINE asks load_world to fail rather than fall back to the tiny world."""
    return os.environ.get(REQUIRE_ONLINE, "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class World:
    """A language model, its SAE, and the example prompts that fit it."""

    name: str  # "gpt2" or "tiny-world"
    model: Any
    sae: SAE | None
    why: str = ""  # why this world was chosen, shown in the banner
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def offline(self) -> bool:
        return self.name == "tiny-world"

    def banner(self) -> str:
        """One line that says which model and SAE this notebook runs on."""
        sae = f"SAE: {self.sae.n_latents:,} latents at {self.sae.hook_name}" if self.sae else "no SAE"
        return f"Using {self.name} ({sae}). {self.why}".strip()


def load_world(model: str = "gpt2", sae_size: str = "auto", with_sae: bool = True,
               device: str | None = None) -> World:
    """GPT-2 (or `model`) with OpenAI's layer-8 SAE when online, else the tiny world with its bundled SAE.

    With SAELAB_REQUIRE_ONLINE=1 (the test runs of the online notebooks) a failure raises `OnlineWorldError`
    with the reason instead of falling back, so a run that was meant to be online cannot pass offline.
    """
    from saelab.pretrained import load_openai_sae, load_sae

    if (memory.available_memory_bytes() or memory.LOW_MEMORY_BYTES) < memory.LOW_MEMORY_BYTES:
        memory.return_freed_memory()  # a small machine: freed tensors go back to the system, not to a heap
    if not is_offline():
        try:
            if with_sae or model in ONLINE_NEEDS_BYTES:  # checked before anything loads: never a dead kernel
                check_memory(ONLINE_NEEDS_BYTES.get(model, ONLINE_NEEDS_BYTES["gpt2"]), model)
            lm = load_model(model, device=device)
            sae = load_openai_sae(8, "resid_post_mlp", sae_size, device=device) if with_sae else None
            return World(model, lm, sae, why="(online)")
        except (ModelLoadError, DownloadError, ValueError) as err:
            if online_required():
                raise OnlineWorldError(
                    f"{REQUIRE_ONLINE}=1 is set, so load_world does not fall back to the tiny world, but the "
                    f"online world ({model}{' + OpenAI SAE' if with_sae else ''}) failed to load: "
                    f"{type(err).__name__}: {err} Fix that, or unset {REQUIRE_ONLINE} to allow the fallback."
                ) from err
            why = f"{model} could not be loaded ({str(err).split('. ')[0]}), so we use the offline tiny world."
    else:
        if online_required():
            raise OnlineWorldError(f"{REQUIRE_ONLINE}=1 and SAELAB_OFFLINE=1 are both set: the online world is "
                                   "required but network use is forbidden. Unset one of the two.")
        why = "SAELAB_OFFLINE=1 is set, so we use the bundled offline tiny world."
    check_memory(OFFLINE_NEEDS_BYTES, "the tiny world")
    lm = load_model("tiny-world", device=device)
    sae = load_sae("tiny-world", device=device) if with_sae else None
    return World("tiny-world", lm, sae, why=why)
