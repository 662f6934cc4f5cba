"""Every SAE architecture's rule in one place: how pre-activations become latents (at inference and in
training) and what the training loss adds to the reconstruction error.

    pre = W_enc (x - b) + b_enc                   (the same encoder for every architecture)

    relu        latents = ReLU(pre)                             loss = mse + l1_coef * sum(latents)
    topk        each token keeps its k largest                  loss = mse  (+ AuxK)
    batchtopk   training: the batch keeps its k * batch largest, shared among tokens (Bussmann et al. 2024);
                inference: pre > one global threshold, the running mean of the smallest value kept in training
                                                                loss = mse  (+ AuxK)
    matryoshka  BatchTopK latents; loss = mean over the nested prefixes m of ||y - W_dec[:, :m] c[:m] - b||^2,
                so the first latents must reconstruct on their own (Bussmann et al. 2025, arXiv 2503.17547)
    jumprelu    latents = pre * H(pre - theta_i), theta_i = exp(log_threshold_i), learned through a
                straight-through estimator with a rectangle kernel of width `bandwidth`
                (Rajamanoharan et al. 2024, arXiv 2407.14435)           loss = mse + l0_coef * L0
    gated       gate = H(pre); magnitude = ReLU(exp(r_mag) * (pre - b_enc) + b_mag); latents = gate * magnitude
                loss = mse + l1_coef * sum(ReLU(pre)) + ||y - W_dec.detach() ReLU(pre) - b.detach()||^2
                (Rajamanoharan et al. 2024, arXiv 2404.16014; the encoder is shared, W_mag = exp(r_mag) W_gate)

mse = ||y - x_hat||^2 per token, averaged over the batch; y is the input itself, or a target (a transcoder).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

if TYPE_CHECKING:
    from saelab.sae import SAE

ARCHITECTURES = ("relu", "topk", "batchtopk", "matryoshka", "jumprelu", "gated")
NEEDS_K = ("topk", "batchtopk", "matryoshka")
OPENAI_FORMAT = ("relu", "topk")  # saved as OpenAI's .pt; the rest in SAELens's cfg.json + safetensors layout
THRESHOLD_MOMENTUM = 0.1  # BatchTopK: threshold <- (1 - m) threshold + m * (smallest value kept in this batch)
JUMP_BANDWIDTH = 0.05  # JumpReLU: width of the straight-through estimator's rectangle kernel
JUMP_INIT_THRESHOLD = 0.05  # JumpReLU: every threshold starts here


def check_architecture(name: str) -> str:
    """The architecture's canonical (lower-case) name, or a ValueError listing the known ones."""
    if not isinstance(name, str) or name.lower() not in ARCHITECTURES:
        raise ValueError(f"unknown SAE architecture {name!r}: activation must be one of {', '.join(ARCHITECTURES)}")
    return name.lower()


def default_prefixes(n_latents: int, n_levels: int = 5) -> tuple[int, ...]:
    """Matryoshka prefix sizes: halving from the full width, e.g. 640 -> (40, 80, 160, 320, 640)."""
    sizes = sorted({max(1, n_latents >> i) for i in range(n_levels)})
    return tuple(sizes)


# --- the activation rules ---------------------------------------------------------------------
def topk_activation(pre_acts: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest pre-activations per row (then ReLU), zero the rest. Same shape as input."""
    values, indices = pre_acts.topk(k, dim=-1)
    return torch.zeros_like(pre_acts).scatter_(-1, indices, F.relu(values))


def batch_topk_entries(pre_acts: torch.Tensor, k: int, inplace: bool = False
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The k * n_tokens largest ReLU'd pre-activations of the whole batch: (values, flat indices, smallest kept).
    `inplace=True` applies the ReLU to `pre_acts` itself (no second [batch, n_latents] tensor; no autograd)."""
    flat = (pre_acts.relu_() if inplace else F.relu(pre_acts)).reshape(-1)
    n_tokens = flat.numel() // pre_acts.shape[-1]
    values, indices = flat.topk(min(k * n_tokens, flat.numel()))
    kept = values.detach()
    smallest = kept[kept > 0].min() if (kept > 0).any() else kept.new_zeros(())
    return values, indices, smallest


def batch_topk_activation(pre_acts: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the k * n_tokens largest ReLU'd pre-activations of the whole batch: (latents, smallest kept value)."""
    values, indices, smallest = batch_topk_entries(pre_acts, k)
    latents = torch.zeros(pre_acts.numel(), dtype=values.dtype, device=values.device).scatter_(0, indices, values)
    return latents.reshape(pre_acts.shape), smallest


@torch.no_grad()
def update_threshold_(sae: "SAE", smallest: torch.Tensor) -> None:
    """BatchTopK's inference threshold follows the smallest value training keeps (a running mean)."""
    if sae.threshold < 0:
        sae.threshold.copy_(smallest)
    else:
        sae.threshold.lerp_(smallest.to(sae.threshold), THRESHOLD_MOMENTUM)


def threshold_activation(pre_acts: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """pre where pre > threshold (a scalar or one per latent), else 0: JumpReLU's and BatchTopK's inference."""
    keep = (pre_acts > threshold) & (pre_acts > 0)
    return torch.where(keep, pre_acts, torch.zeros((), dtype=pre_acts.dtype, device=pre_acts.device))


def gated_activation(sae: "SAE", pre_acts: torch.Tensor) -> torch.Tensor:
    """Gate = pre > 0 decides which latents fire; a rescaled copy of the encoder says how strongly."""
    magnitude = F.relu(sae.r_mag.exp() * (pre_acts - sae.latent_bias) + sae.mag_bias)
    return (pre_acts > 0) * magnitude


def activate(sae: "SAE", pre_acts: torch.Tensor) -> torch.Tensor:
    """Inference: pre-activations -> latents, for every architecture (no batch statistics)."""
    name = sae.activation
    if name == "topk":
        return topk_activation(pre_acts, sae.k)
    if name == "relu":
        return F.relu(pre_acts)
    if name in ("batchtopk", "matryoshka"):
        return threshold_activation(pre_acts, sae.threshold)
    if name == "jumprelu":
        return threshold_activation(pre_acts, sae.log_threshold.exp())
    return gated_activation(sae, pre_acts)


# --- JumpReLU's straight-through estimators ------------------------------------------------------
def _rectangle(pre: torch.Tensor, theta: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """K((pre - theta) / bandwidth) / bandwidth with the rectangle kernel K(u) = 1[|u| < 1/2]."""
    return ((pre - theta).abs() < bandwidth / 2).to(pre.dtype) / bandwidth


class _JumpReLU(torch.autograd.Function):
    """pre * H(pre - theta); d/dpre = H(pre - theta), d/dtheta = -theta * K((pre - theta)/eps) / eps."""

    @staticmethod
    def forward(ctx, pre: torch.Tensor, log_threshold: torch.Tensor, bandwidth: float) -> torch.Tensor:
        theta = log_threshold.exp()
        ctx.save_for_backward(pre, theta)
        ctx.bandwidth = bandwidth
        return pre * (pre > theta)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        pre, theta = ctx.saved_tensors
        grad_pre = grad * (pre > theta)
        grad_theta = -(theta * _rectangle(pre, theta, ctx.bandwidth) * grad).reshape(-1, pre.shape[-1]).sum(0)
        return grad_pre, grad_theta * theta, None  # chain rule: d theta / d log_threshold = theta


class _Step(torch.autograd.Function):
    """H(pre - theta); no gradient to pre, d/dtheta = -K((pre - theta)/eps) / eps (the L0 penalty's STE)."""

    @staticmethod
    def forward(ctx, pre: torch.Tensor, log_threshold: torch.Tensor, bandwidth: float) -> torch.Tensor:
        theta = log_threshold.exp()
        ctx.save_for_backward(pre, theta)
        ctx.bandwidth = bandwidth
        return (pre > theta).to(pre.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        pre, theta = ctx.saved_tensors
        grad_theta = -(_rectangle(pre, theta, ctx.bandwidth) * grad).reshape(-1, pre.shape[-1]).sum(0)
        return None, grad_theta * theta, None


# --- training ----------------------------------------------------------------------------------------
def aux_k_loss(sae: "SAE", pre_act: torch.Tensor, residual: torch.Tensor, dead: torch.Tensor, aux_k: int
               ) -> torch.Tensor:
    """OpenAI's AuxK loss: the `aux_k` strongest *dead* latents of each token try to reconstruct the residual
    x - x_hat that the live latents left, normalised by the residual's size. 0 when no latent is dead."""
    n_dead = int(dead.sum())
    if n_dead == 0:
        return pre_act.new_zeros(())
    vals, idx = pre_act.masked_fill(~dead, -float("inf")).topk(min(aux_k, n_dead), dim=-1)
    aux_latents = torch.zeros_like(pre_act).scatter_(-1, idx, F.relu(vals))
    residual = residual.detach()
    error = (sae.decoder(aux_latents) - residual).pow(2).sum(-1).mean()
    return error / residual.pow(2).sum(-1).mean().clamp_min(1e-12)


def training_losses(sae: "SAE", x: torch.Tensor, y: torch.Tensor, l1_coef: float, l0_coef: float,
                    aux_k: int, aux_coef: float, dead_after: int) -> tuple[torch.Tensor, ...]:
    """One training forward pass of a batchtopk, matryoshka, jumprelu or gated SAE on preprocessed x
    [batch, d_model] reconstructing y: (loss, mse, l1, latents, x_hat). ReLU and TopK stay in `saelab.training`.
    """
    name = sae.activation
    pre_act = sae.encode_pre_act(x)
    penalty = pre_act.new_zeros(())
    if name in ("batchtopk", "matryoshka"):
        latents, smallest = batch_topk_activation(pre_act, sae.k)
        update_threshold_(sae, smallest)
    elif name == "jumprelu":
        latents = _JumpReLU.apply(pre_act, sae.log_threshold, JUMP_BANDWIDTH)
        l0 = _Step.apply(pre_act, sae.log_threshold, JUMP_BANDWIDTH).sum(-1).mean()
        penalty = l0_coef * l0
    elif name == "gated":
        latents = gated_activation(sae, pre_act)
        gate = F.relu(pre_act)
        penalty = l1_coef * gate.sum(-1).mean()
        via_gate = F.linear(gate, sae.decoder.weight.detach()) + sae.pre_bias.detach()
        penalty = penalty + (via_gate - y).pow(2).sum(-1).mean()
    else:
        raise ValueError(f"training_losses handles {ARCHITECTURES[2:]}; {name!r} is trained in saelab.training")
    x_hat = sae.decoder(latents) + sae.pre_bias
    if name == "matryoshka":
        mse = matryoshka_mse(sae, latents, y)
    else:
        mse = (x_hat - y).pow(2).sum(dim=-1).mean()
    l1 = latents.sum(dim=-1, dtype=torch.float32).mean()
    loss = mse + penalty
    if aux_k:
        loss = loss + aux_coef * aux_k_loss(sae, pre_act, y - x_hat, sae.stats_last_nonzero >= dead_after, aux_k)
    return loss, mse, l1, latents, x_hat


def matryoshka_mse(sae: "SAE", latents: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean over the nested prefixes of the squared error when only the first m latents decode."""
    total, out, start = 0.0, sae.pre_bias.expand_as(y), 0
    for end in sae.prefixes:
        out = out + F.linear(latents[:, start:end], sae.decoder.weight[:, start:end])
        total = total + (out - y).pow(2).sum(dim=-1).mean()
        start = end
    return total / len(sae.prefixes)
