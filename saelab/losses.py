"""The training loss of one batch, for every architecture, dense or (TopK family) sparse.

    relu        loss = ||y - x_hat||^2 + l1_coef * ||c||_1          topk   loss = ||y - x_hat||^2 (+ AuxK)
    the others  `saelab.architectures.training_losses`

Every function returns (loss, mse, l1, latents, x_hat) for preprocessed x [batch, d_model] reconstructing y (x
itself, or a target); the losses in float32. `latents` is the dense [batch, n_latents] tensor, or for the sparse
step a `SparseLatents` (the k active entries per token): `fired_latents` and `mean_l0` read either.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from saelab import architectures as arch
from saelab import metrics
from saelab.architectures import aux_k_loss
from saelab.sae import SAE
from saelab.sparse_topk import selected_pre_acts, sparse_decode


@dataclass
class SparseLatents:
    """The latents of a batch as (token, latent, value) entries: what the sparse step keeps instead of [B, n]."""
    values: torch.Tensor  # [nnz] activations (>= 0)
    rows: torch.Tensor  # [nnz] token of each entry
    cols: torch.Tensor  # [nnz] latent of each entry
    n_tokens: int
    n_latents: int

    def fired(self) -> torch.Tensor:
        """[n_latents] bool: which latents were non-zero on some token of the batch."""
        out = torch.zeros(self.n_latents, dtype=torch.bool, device=self.cols.device)
        return out.index_fill_(0, self.cols[self.values > 0], True)

    def l0(self) -> float:
        """Mean number of non-zero latents per token (`metrics.l0` of the dense latents)."""
        return (self.values != 0).sum().item() / self.n_tokens

    def to_dense(self) -> torch.Tensor:
        """The dense latents [n_tokens, n_latents]."""
        out = self.values.new_zeros(self.n_tokens, self.n_latents)
        return out.index_put_((self.rows, self.cols), self.values, accumulate=True)


def loss_settings(sae: SAE, l1_coef: float, l0_coef: float, aux_k: int, aux_coef: float, dead_after: int) -> tuple:
    """The coefficients `batch_losses` passes on to this architecture's loss (aux_k, aux_coef, dead_after last)."""
    if sae.activation in arch.OPENAI_FORMAT:
        return (l1_coef if sae.activation == "relu" else None, aux_k, aux_coef, dead_after)
    return (l1_coef, l0_coef, aux_k, aux_coef, dead_after)  # arch.training_losses' order


def batch_losses(sae: SAE, x: torch.Tensor, y: torch.Tensor, settings: tuple, decoder: str = "dense"
                 ) -> tuple[torch.Tensor, ...]:
    """One training forward pass: (loss, mse, l1, latents, x_hat); `settings` from `loss_settings`."""
    if decoder == "sparse":
        return sparse_topk_losses(sae, x, y, *settings[-3:])
    if sae.activation not in arch.OPENAI_FORMAT:
        return arch.training_losses(sae, x, y, *settings)
    return relu_topk_losses(sae, x, y, *settings)


def relu_topk_losses(sae: SAE, x: torch.Tensor, y: torch.Tensor, l1_coef: float | None, aux_k: int,
                     aux_coef: float, dead_after: int) -> tuple[torch.Tensor, ...]:
    """ReLU (+ L1) or TopK (+ AuxK), dense: (loss, mse, l1, latents, x_hat); losses in float32.

    Under autocast the matmuls (and so latents) are bf16/fp16; x_hat = bf16 + float32 pre_bias is float32.
    """
    pre_act = sae.encode_pre_act(x)
    latents = sae.activate(pre_act)
    x_hat = sae.decoder(latents) + sae.pre_bias
    mse = (x_hat - y).pow(2).sum(dim=-1).mean()
    if latents.dtype == torch.float32:
        l1 = latents.sum(dim=-1).mean()  # latents are >= 0 (ReLU), so this is ||c||_1
    else:  # accumulate in float32 without a float32 copy of latents
        l1 = latents.sum(dim=-1, dtype=torch.float32).mean()
    loss = mse + l1_coef * l1 if l1_coef is not None else mse
    if aux_k:
        loss = loss + aux_coef * aux_k_loss(sae, pre_act, y - x_hat, sae.stats_last_nonzero >= dead_after, aux_k)
    return loss, mse, l1, latents, x_hat


def sparse_topk_losses(sae: SAE, x: torch.Tensor, y: torch.Tensor, aux_k: int, aux_coef: float, dead_after: int
                       ) -> tuple[torch.Tensor, ...]:
    """TopK, BatchTopK or Matryoshka (+ AuxK) through the active latents only (`saelab.sparse_topk`): the same
    losses as the dense step up to float rounding, and the same latents chosen."""
    n_tokens, n = len(x), sae.n_latents
    x_c = x - sae.pre_bias
    with torch.no_grad():  # the one dense product left: every pre-activation, to choose the k largest
        pre = F.linear(x_c, sae.encoder.weight, sae.latent_bias)
        if sae.activation == "topk":
            values, cols = pre.topk(sae.k, dim=-1)
            values, cols = values.reshape(-1), cols.reshape(-1)
            rows = torch.arange(n_tokens, device=x.device).repeat_interleave(sae.k)
        else:  # batchtopk, matryoshka: the batch's k * n_tokens largest, ordered by token
            values, flat, smallest = arch.batch_topk_entries(pre, sae.k, inplace=True)  # peak memory: one [B, n]
            flat, order = flat.sort()
            values, rows, cols = values[order], flat // n, flat % n
            arch.update_threshold_(sae, smallest)
        dead = sae.stats_last_nonzero >= dead_after
        n_aux = min(aux_k, int(dead.sum())) if aux_k else 0
        if n_aux:  # AuxK: each token's strongest dead latents
            aux_values, aux_cols = pre.masked_fill_(~dead, -float("inf")).topk(n_aux, dim=-1)
            values = torch.cat([values, aux_values.reshape(-1)])
            cols = torch.cat([cols, aux_cols.reshape(-1)])
            rows = torch.cat([rows, torch.arange(n_tokens, device=x.device).repeat_interleave(n_aux)])
        del pre  # [batch, n_latents]: not kept for backward
    acts = F.relu(selected_pre_acts(values, rows, cols, x_c, sae.encoder.weight, sae.latent_bias, n_aux == 0))
    n_main = len(acts) - n_tokens * n_aux
    main, main_rows, main_cols = acts[:n_main], rows[:n_main], cols[:n_main]

    # Matryoshka: one bag per (token, prefix band); the cumulative sum over bands gives each prefix's reconstruction
    bands = len(sae.prefixes) if sae.activation == "matryoshka" else 1
    bags = main_rows * bands
    if bands > 1:
        ends = torch.tensor(sae.prefixes, device=x.device)
        bags = bags + torch.bucketize(main_cols, ends, right=True)
    out = sparse_decode(main, main_cols, bags, sae.decoder.weight, n_tokens * bands).view(n_tokens, bands, -1)
    out = (out.cumsum(dim=1) if bands > 1 else out) + sae.pre_bias
    x_hat = out[:, -1]
    mse = (out - y[:, None]).pow(2).sum(dim=-1).mean(dim=0).mean()  # Matryoshka: mean over the prefixes
    l1 = main.sum(dtype=torch.float32) / n_tokens
    loss = mse
    if n_aux:  # OpenAI's AuxK loss (`saelab.architectures.aux_k_loss`) on the dead latents' entries
        residual = (y - x_hat).detach()
        aux_hat = sparse_decode(acts[n_main:], cols[n_main:], rows[n_main:], sae.decoder.weight, n_tokens)
        error = (aux_hat - residual).pow(2).sum(-1).mean() / residual.pow(2).sum(-1).mean().clamp_min(1e-12)
        loss = loss + aux_coef * error
    latents = SparseLatents(main.detach(), main_rows, main_cols, n_tokens, n)
    return loss, mse, l1, latents, x_hat


@torch.no_grad()
def fired_latents(latents: torch.Tensor | SparseLatents) -> torch.Tensor:
    """[n_latents] bool: the latents non-zero on some token of the batch (latents are >= 0)."""
    if isinstance(latents, SparseLatents):
        return latents.fired()
    return latents.amax(dim=0) > 0  # amax is ~3x cheaper than (!= 0).any


def mean_l0(latents: torch.Tensor | SparseLatents) -> float:
    """Mean number of non-zero latents per token, dense or sparse."""
    return latents.l0() if isinstance(latents, SparseLatents) else metrics.l0(latents)
