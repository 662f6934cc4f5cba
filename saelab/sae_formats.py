"""SAELens's file layout for the architectures OpenAI's format cannot hold (BatchTopK, Matryoshka, JumpReLU, Gated).

A folder with two files:
    cfg.json                 {"architecture": "jumprelu" | "gated", "d_in", "d_sae", "dtype", "device",
                              "hook_name" (only when the SAE has one), "apply_b_dec_to_input": true,
                              "normalize_activations": "none" | "layer_norm",
                              "saelab": {"architecture", "normalize", "format_version", "k", "prefixes"}}
    sae_weights.safetensors  W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in]
                             + threshold [d_sae]            (jumprelu, batchtopk, matryoshka)
                             + b_gate, r_mag, b_mag [d_sae]  (gated; b_gate replaces b_enc)
BatchTopK and Matryoshka run at inference as a JumpReLU with one threshold for every latent, so SAELens reads
them as "jumprelu" (as SAELens itself saves its BatchTopK SAEs); saelab reads the "saelab" block to rebuild the
original architecture. No field is ever null: SAELens's loader reads "hook_name" as a string (a null one raised a
TypeError in SAELens 6.54), so an SAE without a hook (trained on toy data) leaves the field out, and the "saelab"
block leaves out what does not apply (k, prefixes). SAELens 6.54 was seen to open these folders and encode and
decode as saelab does; the course does not install it, so the tests check the fields and their types instead.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import load_file, save_file

from saelab import architectures as arch
from saelab.files import atomic_path

if TYPE_CHECKING:
    from saelab.sae import SAE

FORMAT_VERSION = 1
CFG, WEIGHTS = "cfg.json", "sae_weights.safetensors"


def saelens_tensors(sae: "SAE") -> dict[str, torch.Tensor]:
    """The SAE's weights under SAELens's names and shapes (contiguous CPU copies)."""
    t = {
        "W_enc": sae.encoder.weight.detach().T,
        "W_dec": sae.decoder.weight.detach().T,
        "b_dec": sae.pre_bias.detach(),
    }
    name = sae.activation
    if name == "gated":
        t.update(b_gate=sae.latent_bias.detach(), r_mag=sae.r_mag.detach(), b_mag=sae.mag_bias.detach())
    else:
        t["b_enc"] = sae.latent_bias.detach()
    if name == "jumprelu":
        t["threshold"] = sae.log_threshold.detach().exp()
    if name in ("batchtopk", "matryoshka"):
        t["threshold"] = sae.threshold.detach().expand(sae.n_latents)
    return {k: v.float().cpu().contiguous() for k, v in t.items()}


def save_saelens(sae: "SAE", path: str | os.PathLike) -> Path:
    """Write `sae` into the folder `path` (created if needed) as cfg.json + sae_weights.safetensors."""
    path = Path(path)
    if path.is_file():
        raise ValueError(f"{path} is a file; a {sae.activation} SAE is saved as a folder (SAELens's layout). "
                         "Pass a folder path, e.g. without the .pt suffix")
    path.mkdir(parents=True, exist_ok=True)
    cfg = {
        "architecture": "gated" if sae.activation == "gated" else "jumprelu",
        "d_in": sae.d_model,
        "d_sae": sae.n_latents,
        "dtype": "float32",
        "device": "cpu",
        "hook_name": sae.hook_name,
        "apply_b_dec_to_input": True,
        "normalize_activations": "layer_norm" if sae.normalize else "none",
        "saelab": {
            "format_version": FORMAT_VERSION,
            "architecture": sae.activation,
            "k": sae.k,
            "prefixes": list(getattr(sae, "prefixes", ())) or None,
            "normalize": sae.normalize,
        },
    }
    # no nulls: other readers take each field as its documented type (SAELens: hook_name is a string)
    cfg = {key: value for key, value in cfg.items() if value is not None}
    cfg["saelab"] = {key: value for key, value in cfg["saelab"].items() if value is not None}
    with atomic_path(path / WEIGHTS) as tmp:
        save_file(saelens_tensors(sae), str(tmp))
    with atomic_path(path / CFG) as tmp:
        tmp.write_text(json.dumps(cfg, indent=2))
    return path


def load_saelens(path: str | os.PathLike, hook_name: str | None = None,
                 device: str | torch.device | None = None) -> "SAE":
    """Read a folder written by `save_saelens` (or a SAELens jumprelu / gated SAE) back into an `SAE`."""
    from saelab.sae import SAE

    path = Path(path)
    if not (path / CFG).is_file() or not (path / WEIGHTS).is_file():
        raise FileNotFoundError(f"{path} needs {CFG} and {WEIGHTS} (SAELens's layout)")
    cfg = json.loads((path / CFG).read_text())
    extra = cfg.get("saelab") or {}
    name = arch.check_architecture(extra.get("architecture", cfg.get("architecture", "?")))
    t = load_file(str(path / WEIGHTS))
    d_in, d_sae = t["W_enc"].shape
    if (cfg.get("d_in"), cfg.get("d_sae")) != (d_in, d_sae):
        raise ValueError(f"{path / CFG} says d_in={cfg.get('d_in')}, d_sae={cfg.get('d_sae')} but W_enc has shape "
                         f"{tuple(t['W_enc'].shape)}; the two files do not belong together")
    normalize = extra.get("normalize", cfg.get("normalize_activations", "none") == "layer_norm")
    sae = SAE(d_in, d_sae, name, k=extra.get("k"), normalize=normalize,
              hook_name=hook_name or cfg.get("hook_name"), prefixes=extra.get("prefixes"))
    with torch.no_grad():
        sae.encoder.weight.copy_(t["W_enc"].T)
        sae.decoder.weight.copy_(t["W_dec"].T)
        sae.pre_bias.copy_(t["b_dec"])
        sae.latent_bias.copy_(t["b_gate"] if name == "gated" else t["b_enc"])
        if name == "gated":
            sae.r_mag.copy_(t["r_mag"])
            sae.mag_bias.copy_(t["b_mag"])
        if name == "jumprelu":
            sae.log_threshold.copy_(t["threshold"].clamp_min(1e-30).log())
        if name in ("batchtopk", "matryoshka"):
            sae.threshold.copy_(t["threshold"][0])
    return sae if device is None else sae.to(device)


def is_saelens_folder(path: str | os.PathLike) -> bool:
    """True when `path` is a folder holding cfg.json (SAELens's layout)."""
    return Path(path).is_dir() and (Path(path) / CFG).is_file()

