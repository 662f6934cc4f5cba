"""A sparse autoencoder; ReLU and TopK read and write OpenAI's state-dict format.

    latents = act(W_enc @ (x - pre_bias) + latent_bias)      act = ReLU, TopK(k), or see below
    recons  = W_dec @ latents + pre_bias

With `normalize=True` (OpenAI's v5 TopK SAEs) x is first standardised per token,
x -> (x - mean) / (std + 1e-5), and the reconstruction is mapped back with the same mean and std.

The newer architectures (BatchTopK, Matryoshka BatchTopK, JumpReLU, Gated; their rules are in
`saelab.architectures`) are saved in SAELens's layout: a folder with `cfg.json` and `sae_weights.safetensors`
(W_enc [d_in, d_sae], b_enc, W_dec [d_sae, d_in], b_dec, plus `threshold` for JumpReLU, BatchTopK and Matryoshka,
which load elsewhere as JumpReLU SAEs, or b_gate, r_mag, b_mag for Gated); `cfg.json` keeps saelab's own
settings under "saelab" so `load_sae_file` rebuilds the same SAE.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from saelab import architectures as arch
from saelab.architectures import topk_activation
from saelab.files import atomic_path

# Keys every OpenAI-format state dict has; "activation" and "activation_state_dict" are optional.
TENSOR_KEYS = ("pre_bias", "encoder.weight", "latent_bias", "decoder.weight")
BUFFER_KEYS = ("stats_last_nonzero", "latents_activation_frequency", "latents_mean_square")
ACTIVATION_NAMES = {"relu": "ReLU", "topk": "TopK"}  # saelab name -> OpenAI class name
EPS = 1e-5


def standardise(x: torch.Tensor, eps: float = EPS) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return (x_normalised, mean, std) per token, exactly as OpenAI's `LN` (unbiased std)."""
    mu = x.mean(dim=-1, keepdim=True)
    x = x - mu
    std = x.std(dim=-1, keepdim=True)
    return x / (std + eps), mu, std


class SAE(nn.Module):
    """A sparse autoencoder for one hook point of a language model (`hook_name`)."""

    def __init__(
        self,
        d_model: int,
        n_latents: int,
        activation: str = "relu",
        k: int | None = None,
        normalize: bool | None = None,
        hook_name: str | None = None,
        prefixes: tuple[int, ...] | list[int] | None = None,
    ) -> None:
        super().__init__()
        activation = arch.check_architecture(activation)
        if activation in arch.NEEDS_K:
            if k is None or not 1 <= int(k) <= n_latents:
                raise ValueError(f"{activation} needs 1 <= k <= n_latents ({n_latents}); got k={k}. "
                                 "Pick a smaller k.")
        elif k is not None:
            raise ValueError(f"k only applies to {', '.join(arch.NEEDS_K)}; drop k or pick one of those")
        if prefixes is not None and activation != "matryoshka":
            raise ValueError("prefixes only apply to activation='matryoshka'; drop prefixes")
        self.activation = activation
        self.k = None if k is None else int(k)
        # OpenAI's loader switches normalisation on exactly for TopK files; default to the same rule.
        self.normalize = (activation == "topk") if normalize is None else bool(normalize)
        self.hook_name = hook_name

        self.pre_bias = nn.Parameter(torch.zeros(d_model))
        self.encoder = nn.Linear(d_model, n_latents, bias=False)
        self.latent_bias = nn.Parameter(torch.zeros(n_latents))
        self.decoder = nn.Linear(n_latents, d_model, bias=False)
        self.register_buffer("stats_last_nonzero", torch.zeros(n_latents, dtype=torch.long))
        self.register_buffer("latents_activation_frequency", torch.ones(n_latents))
        self.register_buffer("latents_mean_square", torch.zeros(n_latents))
        self._add_architecture_parameters(prefixes)

    def _add_architecture_parameters(self, prefixes: tuple[int, ...] | list[int] | None) -> None:
        """The tensors only some architectures have (none for ReLU and TopK, which keep OpenAI's keys)."""
        n = self.n_latents
        if self.activation in ("batchtopk", "matryoshka"):
            self.register_buffer("threshold", torch.tensor(-1.0))  # < 0: not estimated yet (set by training)
        if self.activation == "matryoshka":
            prefixes = tuple(int(m) for m in (prefixes or arch.default_prefixes(n)))
            if list(prefixes) != sorted(set(prefixes)) or prefixes[0] < 1 or prefixes[-1] != n:
                raise ValueError(f"prefixes must increase strictly and end at n_latents ({n}); got {prefixes}")
            self.prefixes = prefixes
        if self.activation == "jumprelu":
            self.log_threshold = nn.Parameter(torch.full((n,), math.log(arch.JUMP_INIT_THRESHOLD)))
        if self.activation == "gated":
            self.r_mag = nn.Parameter(torch.zeros(n))
            self.mag_bias = nn.Parameter(torch.zeros(n))

    @property
    def d_model(self) -> int:
        return self.pre_bias.shape[0]

    @property
    def n_latents(self) -> int:
        return self.latent_bias.shape[0]

    @property
    def W_dec(self) -> torch.Tensor:
        """Decoder directions, one column per latent: [d_model, n_latents]."""
        return self.decoder.weight

    def __repr__(self) -> str:
        act = f"{self.activation}(k={self.k})" if self.k is not None else self.activation
        return (f"SAE(d_model={self.d_model}, n_latents={self.n_latents}, activation={act}, "
                f"normalize={self.normalize}, hook_name={self.hook_name!r})")

    # --- the math -------------------------------------------------------------------------
    def preprocess(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Standardise x when the SAE was trained on normalised inputs; return (x, info)."""
        if not self.normalize:
            return x, {}
        x, mu, std = standardise(x)
        return x, {"mu": mu, "std": std}

    def encode_pre_act(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-activations for already preprocessed x: [..., n_latents]."""
        return F.linear(x - self.pre_bias, self.encoder.weight, self.latent_bias)

    def activate(self, pre_acts: torch.Tensor) -> torch.Tensor:
        """Pre-activations -> latents by the architecture's inference rule (`saelab.architectures.activate`)."""
        return arch.activate(self, pre_acts)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent activations for raw inputs x [..., d_model] -> [..., n_latents]."""
        x, _ = self.preprocess(x)
        return self.activate(self.encode_pre_act(x))

    def encode_topk(self, x: torch.Tensor, k: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The k strongest latents without building a dense [.., n_latents] result: (values, indices)."""
        x, _ = self.preprocess(x)
        pre = self.encode_pre_act(x)
        k = k or self.k or 10
        values, indices = pre.topk(min(k, self.n_latents), dim=-1)
        return F.relu(values), indices

    def decode(self, latents: torch.Tensor, info: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Reconstruction [..., d_model]; pass `info` from `preprocess` to undo normalisation."""
        recons = self.decoder(latents) + self.pre_bias
        if self.normalize:
            if info is None:
                raise ValueError("this SAE normalises its inputs: pass info from sae.preprocess(x) to decode")
            recons = recons * info["std"] + info["mu"]
        return recons

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (pre-activations, latents, reconstruction), like OpenAI's Autoencoder."""
        x_in, info = self.preprocess(x)
        pre_acts = self.encode_pre_act(x_in)
        latents = self.activate(pre_acts)
        recons = self.decode(latents, info)
        with torch.no_grad():  # OpenAI's "steps since this latent last fired" counter
            fired = (latents.reshape(-1, self.n_latents) != 0).any(dim=0)
            self.stats_last_nonzero.mul_((~fired).long()).add_(1)
        return pre_acts, latents, recons

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """x_hat for raw inputs x: [..., d_model]."""
        return self.forward(x)[2]

    # --- OpenAI's file format ----------------------------------------------------------------
    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """OpenAI's state dict: tensors plus the activation's name and settings."""
        sd = super().state_dict(*args, **kwargs)
        prefix = kwargs.get("prefix", "")
        sd[prefix + "activation"] = ACTIVATION_NAMES.get(self.activation, self.activation)
        sd[prefix + "activation_state_dict"] = (
            {"k": self.k, "postact_fn": "ReLU"} if self.activation == "topk" else {}
        )
        return sd

    def load_state_dict(self, state_dict: dict[str, Any], strict: bool = True, assign: bool = False):
        tensors = {k: v for k, v in state_dict.items() if k not in ("activation", "activation_state_dict")}
        return super().load_state_dict(tensors, strict=strict, assign=assign)

    @classmethod
    def from_state_dict(
        cls,
        state_dict: dict[str, Any],
        hook_name: str | None = None,
        device: str | torch.device | None = None,
    ) -> "SAE":
        """Build an SAE from an OpenAI-format state dict without copying its tensors."""
        check_state_dict(state_dict)
        n_latents, d_model = state_dict["encoder.weight"].shape
        name = state_dict.get("activation", "ReLU")
        settings = state_dict.get("activation_state_dict", {}) or {}
        activation = {v: k for k, v in ACTIVATION_NAMES.items()}[name]
        with torch.device("meta"):  # no throwaway random init: the real tensors are assigned below
            sae = cls(d_model, n_latents, activation, k=settings.get("k"), hook_name=hook_name)
        full = {key: state_dict[key] for key in TENSOR_KEYS}
        full["stats_last_nonzero"] = state_dict.get("stats_last_nonzero", torch.zeros(n_latents, dtype=torch.long))
        full["latents_activation_frequency"] = state_dict.get("latents_activation_frequency", torch.ones(n_latents))
        full["latents_mean_square"] = state_dict.get("latents_mean_square", torch.zeros(n_latents))
        sae.load_state_dict(full, strict=True, assign=True)
        return sae if device is None else sae.to(device)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the SAE in OpenAI's format (atomically) plus a small JSON sidecar with its hook.

        The newer architectures go to a folder `path` in SAELens's layout instead (see the module docstring).
        """
        path = Path(path)
        if self.activation not in arch.OPENAI_FORMAT:
            from saelab.sae_formats import save_saelens
            return save_saelens(self, path)
        sd = {k: v.detach().cpu() if torch.is_tensor(v) else v for k, v in self.state_dict().items()}
        with atomic_path(path) as tmp:
            torch.save(sd, tmp)
        with atomic_path(sidecar_path(path)) as tmp:
            tmp.write_text(json.dumps({"hook_name": self.hook_name}))
        return path


def sidecar_path(path: str | os.PathLike) -> Path:
    """Where saelab keeps an SAE file's metadata (the hook it reads): `<file>.json`."""
    return Path(str(path) + ".json")


def check_state_dict(state_dict: dict[str, Any]) -> None:
    """Raise a ValueError that says what is wrong with an OpenAI-format state dict."""
    if not isinstance(state_dict, dict):
        raise ValueError(f"expected a state dict (a dict of tensors); got {type(state_dict).__name__}")
    missing = [k for k in TENSOR_KEYS if k not in state_dict]
    if missing:
        raise ValueError(
            f"state dict is missing {missing}; an OpenAI-format SAE has keys {list(TENSOR_KEYS)} "
            f"(found {sorted(state_dict)[:8]}). Is this an SAE file from a different library?"
        )
    n_latents, d_model = state_dict["encoder.weight"].shape
    shapes = {"pre_bias": (d_model,), "latent_bias": (n_latents,), "decoder.weight": (d_model, n_latents)}
    for key, shape in shapes.items():
        if tuple(state_dict[key].shape) != shape:
            raise ValueError(f"{key} has shape {tuple(state_dict[key].shape)}; expected {shape} "
                             f"for encoder.weight of shape {(n_latents, d_model)}")
    name = state_dict.get("activation", "ReLU")
    if name not in ACTIVATION_NAMES.values():
        raise ValueError(f"activation must be one of {sorted(ACTIVATION_NAMES.values())}; got {name!r}")
    if name == "TopK":
        k = (state_dict.get("activation_state_dict") or {}).get("k")
        if not isinstance(k, int) or not 1 <= k <= n_latents:
            raise ValueError(f"TopK state dict needs activation_state_dict['k'] in 1..{n_latents}; got {k!r}")


def load_sae_file(path: str | os.PathLike, hook_name: str | None = None,
                  device: str | torch.device | None = None) -> SAE:
    """Load an OpenAI-format `.pt` file safely (weights_only) and memory-mapped (no second copy)."""
    path = Path(path)
    if path.is_dir() and (path / "cfg.json").is_file():
        from saelab.sae_formats import load_saelens
        return load_saelens(path, hook_name=hook_name, device=device)
    if not path.is_file():
        raise FileNotFoundError(f"no SAE file at {path}")
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # a truncated zip or a pickle that weights_only refuses
        raise ValueError(f"{path} is not a readable SAE state dict ({type(err).__name__}: "
                         f"{str(err).splitlines()[0][:200]}). Delete it and fetch or save it again.") from None
    if hook_name is None and sidecar_path(path).is_file():
        hook_name = json.loads(sidecar_path(path).read_text()).get("hook_name")
    return SAE.from_state_dict(state_dict, hook_name=hook_name, device=device)
