"""Is a trained SAE any good? Sparsity, reconstruction, dead latents, and the LM loss it keeps.

    L0            mean number of latents active per token
    FVU           ||x - x_hat||^2 / ||x - mean(x)||^2 over an eval set
    dead          fraction of latents that never fire on the eval set
    loss recovered (L_zero - L_sae) / (L_zero - L_clean): splice the reconstruction into the forward pass
                  at the hook; 1 = as good as the real activation, 0 = as bad as zeroing it
    CE increase   L_sae - L_clean (nats per token), and KL(clean || spliced) of the next-token distribution:
                  what the splice costs in absolute terms (`splice_costs`), needed where L_zero - L_clean is
                  small and loss recovered is a ratio of small numbers

Splicing never touches the BOS position: the SAE was not trained on it (its activation is the same vector for
every text, and on GPT-2 an outlier far larger than the other positions); the clean, SAE and zero runs all keep
it, so the comparison is about the real tokens.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Sequence

import torch
from tqdm.auto import tqdm

from saelab import metrics
from saelab.activations import tokenize_texts
from saelab.metrics import concept_auroc, rank_latents
from saelab.plots import format_table
from saelab import memory
from saelab.sae import SAE
from saelab.verdicts import verdict


# --- on activations ----------------------------------------------------------------------------------
@torch.no_grad()
def sae_metrics(sae: SAE, acts: torch.Tensor, batch_size: int = 4096) -> dict[str, float]:
    """L0, FVU and dead fraction of `sae` on activations [n_tokens, d_model] (in batches, no grad)."""
    acts = acts.reshape(-1, acts.shape[-1])
    device, dtype = sae.pre_bias.device, sae.pre_bias.dtype
    fires = torch.zeros(sae.n_latents, dtype=torch.long, device=device)
    active, err, x_sum, x_sq = 0.0, 0.0, torch.zeros(sae.d_model, dtype=torch.float64, device=device), 0.0
    for i in range(0, len(acts), batch_size):
        x = acts[i:i + batch_size].to(device=device, dtype=dtype)
        latents = sae.encode(x)
        x_hat = sae.decode(latents, sae.preprocess(x)[1])
        nonzero = latents != 0
        fires += nonzero.sum(dim=0)
        active += nonzero.sum().item()
        err += (x - x_hat).double().pow(2).sum().item()
        x_sum += x.double().sum(dim=0)
        x_sq += x.double().pow(2).sum().item()
    n = len(acts)
    total_var = x_sq - x_sum.pow(2).sum().item() / n  # sum ||x - mean||^2, the same as metrics.fvu's
    return {"l0": active / n, "fvu": err / max(total_var, 1e-12),
            "dead_fraction": metrics.dead_fraction(fires), "n_tokens": n}


# --- splicing into the forward pass ------------------------------------------------------------
@contextlib.contextmanager
def spliced(model: Any, hook_name: str, replace: Callable[[torch.Tensor], torch.Tensor],
            keep_bos: bool = True) -> Iterator[Any]:
    """Within the block, the activation at `hook_name` [batch, pos, d_model] is replaced by `replace(act)`.

    The hook is removed on exit, also when the forward pass (or `replace`) raises.
    """
    def hook_fn(activation: torch.Tensor, hook: Any) -> torch.Tensor:
        new = replace(activation)
        if new.shape != activation.shape:
            raise ValueError(f"the replacement has shape {tuple(new.shape)}; expected {tuple(activation.shape)}")
        new = new.to(activation.dtype)
        if keep_bos:
            new = torch.cat([activation[:, :1], new[:, 1:]], dim=1)
        return new

    with model.hooks(fwd_hooks=[(hook_name, hook_fn)]):  # TransformerLens removes them in a `finally`
        yield model


def sae_replacement(sae: SAE) -> Callable[[torch.Tensor], torch.Tensor]:
    """act [batch, pos, d_model] -> the SAE's reconstruction, in the SAE's dtype and device."""
    def replace(act: torch.Tensor) -> torch.Tensor:
        return sae.reconstruct(act.to(device=sae.pre_bias.device, dtype=sae.pre_bias.dtype)).to(act.device)
    return replace


def zero_replacement(act: torch.Tensor) -> torch.Tensor:
    """Zero-ablation: act -> zeros of the same shape."""
    return torch.zeros_like(act)


@torch.no_grad()
def lm_loss(model: Any, tokens: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean next-token cross-entropy over real tokens; tokens, mask [batch, pos] (mask False at padding)."""
    logits = model(tokens.to(model.cfg.device), return_type="logits").float()
    logprobs = logits[:, :-1].log_softmax(dim=-1)
    targets = tokens[:, 1:].to(logits.device)
    nll = -logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    keep = mask[:, 1:].to(logits.device)
    return (nll[keep].sum() / keep.sum().clamp_min(1)).item()


def loss_recovered(clean: float, with_sae: float, zero: float) -> float:
    """(L_zero - L_sae) / (L_zero - L_clean): 1 = the SAE loses nothing, 0 = no better than zero-ablation."""
    gap = zero - clean
    if abs(gap) < 1e-12:
        raise ValueError(f"zero-ablating the hook does not change the loss ({zero:.4g} vs clean {clean:.4g}); "
                         "loss recovered is undefined: pick a hook that matters")
    return (zero - with_sae) / gap


@torch.no_grad()
def lm_loss_recovered(model: Any, sae: SAE, texts: list[str], hook_name: str | None = None,
                      batch_size: int = 32, max_length: int | None = 128) -> dict[str, float]:
    """LM loss on `texts` clean, with the SAE spliced in at the hook, and zero-ablated, and the fraction recovered."""
    hook_name = hook_name or sae.hook_name
    if hook_name is None:
        raise ValueError("pass hook_name='blocks.L.hook_...' or set sae.hook_name")
    runs = {"clean": None, "sae": sae_replacement(sae), "zero": zero_replacement}
    sums = dict.fromkeys(runs, 0.0)
    n = 0
    for b in range(0, len(texts), batch_size):
        tokens, mask = tokenize_texts(model, texts[b:b + batch_size], max_length)
        weight = int(mask[:, 1:].sum())
        for name, replace in runs.items():
            if replace is None:
                sums[name] += lm_loss(model, tokens, mask) * weight
            else:
                with spliced(model, hook_name, replace):
                    sums[name] += lm_loss(model, tokens, mask) * weight
        n += weight
    out = {f"loss_{k}": v / max(n, 1) for k, v in sums.items()}
    out["loss_recovered"] = loss_recovered(out["loss_clean"], out["loss_sae"], out["loss_zero"])
    return out


@torch.no_grad()
def _logprobs_and_keep(model: Any, tokens: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token log-probabilities [batch, pos - 1, vocab] and which of them predict a real token."""
    logits = model(tokens.to(model.cfg.device), return_type="logits").float()
    return logits[:, :-1].log_softmax(dim=-1), mask[:, 1:].to(logits.device)


@torch.no_grad()
def splice_costs(model: Any, sae: SAE, texts: list[str], hook_name: str | None = None,
                 batch_size: int = 32, max_length: int | None = 128, progress: bool = False) -> dict[str, float]:
    """What splicing the SAE in costs the model, three ways, next to zero-ablation (nats per predicted token).

    loss_clean / loss_sae / loss_zero and loss_recovered as in `lm_loss_recovered`;
    ce_increase_sae = loss_sae - loss_clean, ce_increase_zero = loss_zero - loss_clean (the gap that
    loss_recovered divides by: when it is small, loss recovered is fragile);
    kl_sae, kl_zero = mean KL(clean next-token distribution || spliced one) over the predicted tokens.
    `progress=True` shows a bar over the forward passes (three per batch of texts: on GPT-2 and a CPU, seconds each).
    """
    hook_name = hook_name or sae.hook_name
    if hook_name is None:
        raise ValueError("pass hook_name='blocks.L.hook_...' or set sae.hook_name")
    runs = {"sae": sae_replacement(sae), "zero": zero_replacement}
    nll = dict.fromkeys(["clean", *runs], 0.0)
    kl = dict.fromkeys(runs, 0.0)
    n = 0
    # Each text holds two full-vocabulary log-prob tensors (GPT-2: ~50k floats per token): fewer texts at once
    # where memory is short (Binder's 2 GB); where memory is plenty the batch is unchanged.
    cfg = model.cfg
    per_text = (max_length or 128) * (12 * int(cfg.d_vocab) + memory.forward_bytes_per_token(cfg))
    batch_size = memory.fit_batch_size(batch_size, per_text)
    starts = range(0, len(texts), batch_size)
    bar = tqdm(total=len(starts) * (1 + len(runs)), desc="LM loss: clean, SAE, zero", disable=not progress)
    for b in starts:
        tokens, mask = tokenize_texts(model, texts[b:b + batch_size], max_length)
        clean, keep = _logprobs_and_keep(model, tokens, mask)
        bar.update()
        targets = tokens[:, 1:].to(clean.device).unsqueeze(-1)
        nll["clean"] += -clean.gather(-1, targets).squeeze(-1)[keep].sum().item()
        for name, replace in runs.items():
            with spliced(model, hook_name, replace):
                run, _ = _logprobs_and_keep(model, tokens, mask)
            bar.update()
            nll[name] += -run.gather(-1, targets).squeeze(-1)[keep].sum().item()
            kl[name] += (clean.exp() * (clean - run)).sum(-1)[keep].sum().item()
        n += int(keep.sum())
    bar.close()
    n = max(n, 1)
    out = {f"loss_{k}": v / n for k, v in nll.items()}
    out["loss_recovered"] = loss_recovered(out["loss_clean"], out["loss_sae"], out["loss_zero"])
    out.update({f"ce_increase_{k}": out[f"loss_{k}"] - out["loss_clean"] for k in runs})
    out.update({f"kl_{k}": v / n for k, v in kl.items()})
    return out


def evaluate_sae(model: Any, sae: SAE, acts: torch.Tensor, texts: list[str],
                 hook_name: str | None = None, costs: bool = False, progress: bool = False) -> dict[str, float]:
    """Everything at once: L0, FVU and dead fraction on `acts`, LM loss recovered on `texts`.

    With `costs=True` also the CE-loss increase and KL of the splice and of zero-ablation (`splice_costs`, which
    shows a bar over its forward passes with `progress=True`).
    """
    if costs:
        lm = splice_costs(model, sae, texts, hook_name, progress=progress)
    else:
        lm = lm_loss_recovered(model, sae, texts, hook_name)
    return {**sae_metrics(sae, acts), **lm}


# --- comparing runs over seeds ---------------------------------------------------------------------------
def seed_spread(values: Sequence[float]) -> dict[str, float]:
    """Mean, min and max of one quantity over the seeds of an arm."""
    if len(values) == 0:
        raise ValueError("no values: run the arm with at least one seed")
    values = [float(v) for v in values]
    return {"mean": sum(values) / len(values), "min": min(values), "max": max(values)}


def difference_verdict(a: Sequence[float], b: Sequence[float]) -> str:
    """The course's one rule (`saelab.verdicts.verdict`): 'lower' / 'higher' only where the ranges do not overlap."""
    return verdict(a, b)


def summarise_arms(rows: Sequence[dict[str, Any]], arm: str, keys: Sequence[str], digits: int = 3
                   ) -> list[dict[str, Any]]:
    """One row per arm (the value of `arm` in `rows`, one row per seed): each key as 'mean (min-max)' and seeds."""
    arms: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        arms.setdefault(row[arm], []).append(row)
    out = []
    for name, runs in arms.items():
        line: dict[str, Any] = {arm: name, "seeds": len(runs)}
        for key in keys:
            s = seed_spread([r[key] for r in runs])
            line[key] = f"{s['mean']:.{digits}f} ({s['min']:.{digits}f}-{s['max']:.{digits}f})"
        out.append(line)
    return out


# --- latents vs known concepts (tiny world) -----------------------------------------------------
def concept_latents(latents: torch.Tensor, labels: dict[str, list[str]], top: int = 3,
                    story_ids: torch.Tensor | None = None, per_story: Sequence[str] = (),
                    held_out: tuple[torch.Tensor, dict[str, list[str]], torch.Tensor] | None = None
                    ) -> list[dict[str, Any]]:
    """For every (concept, value), the `top` latents that detect it best where the concept is known.

    latents [n_tokens, n_latents]; labels: concept -> one label per token ("none" = not revealed yet).
    Concepts named in `per_story` are story-level: each story (`story_ids` [n_tokens]) is scored once, by the
    latent's mean over its labelled tokens; the others are ranked per token. With `held_out` = (latents,
    labels, story_ids) of other stories, the latents are chosen here and their AUROCs measured there.
    Returns rows {"concept", "value", "ranked", "latent", "auroc_per_story", "auroc_per_token"}.
    """
    if per_story and story_ids is None:
        raise ValueError(f"per_story={tuple(per_story)} needs story_ids: one story id per token")
    test_latents, test_labels, test_ids = held_out if held_out is not None else (latents, labels, story_ids)
    rows = []
    for concept, values in labels.items():
        if len(values) != len(latents):
            raise ValueError(f"{concept!r} has {len(values)} labels for {len(latents)} tokens")
        for value in sorted(set(values) - {"none"}):
            if not set(values) - {"none", value}:
                continue  # only one value is ever known: nothing to separate it from
            story_level = concept in per_story
            order, _ = rank_latents(latents, values, value, story_ids if story_level else None)
            best = order[:top]
            per_token = concept_auroc(test_latents[:, best], test_labels[concept], value)
            per_story_au = (concept_auroc(test_latents[:, best], test_labels[concept], value, test_ids)
                            if test_ids is not None else torch.full((len(best),), float("nan")))
            rows += [{"concept": concept, "value": value, "ranked": "per story" if story_level else "per token",
                      "latent": i, "auroc_per_story": float(s), "auroc_per_token": float(t)}
                     for i, s, t in zip(best, per_story_au.reshape(-1), per_token.reshape(-1))]
    return rows


def probe_accuracy(train_acts: torch.Tensor, train_labels: Sequence[str], test_acts: torch.Tensor,
                   test_labels: Sequence[str], steps: int = 100, l2: float = 1e-3) -> float:
    """Held-out token accuracy of a linear probe (logistic regression) for a two-valued concept.

    acts [n_tokens, d_model] with one label per token; tokens labelled "none" are left out. The probe is fitted
    on standardised train activations with L-BFGS from zeros (deterministic) and scored on the test tokens.
    """
    values = sorted(set(train_labels) - {"none"})
    if len(values) != 2:
        raise ValueError(f"a probe separates two values; the train labels have {values}")
    def known(acts: torch.Tensor, labels: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        if len(labels) != len(acts):
            raise ValueError(f"{len(labels)} labels for {len(acts)} activations: give one label per token")
        keep = torch.tensor([v in values for v in labels])
        y = torch.tensor([float(v == values[1]) for v in labels])[keep]
        return acts.reshape(len(acts), -1)[keep].float(), y
    x, y = known(train_acts, train_labels)
    x_test, y_test = known(test_acts, test_labels)
    mean, std = x.mean(dim=0), x.std(dim=0).clamp_min(1e-6)
    x, x_test = (x - mean) / std, (x_test - mean) / std
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros((), requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ w + b, y) + l2 * w.pow(2).sum()
        loss.backward()
        return loss
    opt.step(closure)
    with torch.no_grad():
        return ((x_test @ w + b > 0).float() == y_test).float().mean().item()


def story_ids(stories: Sequence[Any]) -> torch.Tensor:
    """Which story each token of `story_activations(..., stories)` comes from: [n_tokens] (BOS excluded)."""
    return torch.repeat_interleave(torch.arange(len(stories)), torch.tensor([len(s.words) for s in stories]))


# --- exercise: the splice hook (the check lives with notebook 05's other checks) --------------------------
from saelab.checks.training import check_splice_hook  # noqa: E402,F401  (re-exported for older imports)
