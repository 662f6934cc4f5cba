"""Baselines for SAE steering, at the same added length: a random unit direction, a difference of means, prompting.

    random      u ~ N(0, I) / |u|                                       a direction that knows nothing
    diff-means  d = mean(resid[last] | negative prompts) - mean(resid[last] | positive prompts)
    prompting   no vector: a negative sentence written before the prompt
    resid <- resid + length * direction / |direction|                   at the SAE's hook, like `steering.steer`

Each seed draws its own random direction, its own sample of labelled prompts and its own prefix, and samples the
continuations with that seed, so the spread over seeds covers all three sources of chance. AxBench (Wu et al.
2025) ran this comparison on real models; prompting and a difference of means beat SAE steering there.
"""
from __future__ import annotations

import random
from typing import Any, Sequence

import torch

from saelab.models import to_tokens
from saelab.steering import Samples, Scores, generate, score_samples, steered_scores

ARMS = ("unsteered", "random", "difference of means", "SAE", "prompting")


def random_unit_direction(d_model: int, seed: int) -> torch.Tensor:
    """A random direction of length 1 [d_model], the same for the same seed (isotropic: Gaussian, normalised)."""
    g = torch.Generator().manual_seed(int(seed))
    u = torch.randn(int(d_model), generator=g)
    return u / u.norm()


def labelled_prompts(world_name: str, n: int, seed: int) -> dict[str, list[str]]:
    """{'negative': n prompts, 'positive': n prompts} whose sentiment is known at the last token, drawn by `seed`.
    Tiny world: "i hate him. he is such a" and the like (every opening the generator writes); GPT-2: the
    hand-written sets of `saelab.prompts` (12 of each, so at most 12)."""
    from saelab.prompts import NEGATIVE_PROMPTS, POSITIVE_PROMPTS, tinyworld_prompts

    if n < 1:
        raise ValueError(f"need at least one labelled prompt of each sentiment; got n={n}")
    if world_name == "tiny-world":  # a different shuffle of all openings per seed: a fresh sample each time
        return {s: tinyworld_prompts(s, n, then=" he is such a", seed=seed) for s in ("negative", "positive")}
    pools = {"negative": list(NEGATIVE_PROMPTS), "positive": list(POSITIVE_PROMPTS)}
    if n > min(len(p) for p in pools.values()):
        raise ValueError(f"GPT-2's labelled sets hold {len(NEGATIVE_PROMPTS)} prompts each; got n={n}")
    return {s: random.Random(seed).sample(p, n) for s, p in pools.items()}


@torch.no_grad()
def last_token_residuals(model: Any, hook_name: str, prompts: Sequence[str]) -> torch.Tensor:
    """The raw residual stream at `hook_name` at each prompt's last token [n_prompts, d_model]."""
    tokens = [to_tokens(model, p)[0] for p in prompts]
    rows: list[torch.Tensor | None] = [None] * len(tokens)
    by_length: dict[int, list[int]] = {}
    for i, t in enumerate(tokens):  # one forward pass per prompt length: no padding can leak into the mean
        by_length.setdefault(len(t), []).append(i)
    for idx in by_length.values():
        _, cache = model.run_with_cache(torch.stack([tokens[i] for i in idx]), names_filter=hook_name)
        for i, row in zip(idx, cache[hook_name][:, -1]):
            rows[i] = row
    return torch.stack(rows)


def difference_of_means(model: Any, hook_name: str, negative: Sequence[str], positive: Sequence[str]) -> torch.Tensor:
    """mean residual on negative prompts minus mean on positive ones, at the last token [d_model]: the
    direction from "positive" to "negative" that labelled data alone gives, with no SAE."""
    if not negative or not positive:
        raise ValueError("give at least one negative and one positive prompt")
    return (last_token_residuals(model, hook_name, negative).mean(0)
            - last_token_residuals(model, hook_name, positive).mean(0))


def prompted_scores(model: Any, prefix: str, prompt: str, seed: int, n: int = 8, max_new_tokens: int = 10,
                    temperature: float = 0.7, method: str = "vader") -> Scores:
    """Prompting: sample continuations of `prefix + " " + prompt` and score them as continuations of `prompt`
    alone (sentiment, the grammar checker, fluency after the neutral context), like every steered arm."""
    s = generate(model, f"{prefix} {prompt}", n=n, max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    return score_samples(model, Samples(prompt, s.texts, s.tokens), method)


def negative_prefix(world_name: str, seed: int) -> str:
    """A negative sentence to write before the prompt ("i hate sam."), drawn by `seed`."""
    from saelab.prompts import NEGATIVE_PROMPTS, tinyworld_prompts

    if world_name == "tiny-world":
        return tinyworld_prompts("negative", 1, seed=seed)[0]
    return random.Random(seed).choice(NEGATIVE_PROMPTS).capitalize() + "."


def compare_arms(model: Any, hook_name: str, sae_direction: torch.Tensor, length: float, prompt: str,
                 seeds: Sequence[int], world_name: str, n_labelled: int = 16, n: int = 8, max_new_tokens: int = 10,
                 temperature: float = 0.7, method: str = "vader", progress: bool = True) -> dict[str, Any]:
    """Every arm of `ARMS` once per seed, each steered arm adding a vector of the same `length` at `hook_name`.
    Returns {'scores': {arm: [Scores per seed]}, 'directions': {'random' / 'difference of means': [unit vectors
    per seed]}, 'prefixes': [one per seed]}. A tqdm bar counts the arms when `progress`."""
    if not seeds:
        raise ValueError("give at least one seed, e.g. seeds=saelab.seeds.seeds(5)")
    if not (length > 0):
        raise ValueError(f"length must be positive (the length the SAE vector adds); got {length}")
    kw = dict(n=n, max_new_tokens=max_new_tokens, temperature=temperature, method=method)
    unit = lambda v: v / v.norm()
    scores: dict[str, list[Scores]] = {arm: [] for arm in ARMS}
    directions: dict[str, list[torch.Tensor]] = {"random": [], "difference of means": []}
    prefixes = []
    bar = _bar(len(seeds) * len(ARMS), progress)
    for seed in seeds:
        sets = labelled_prompts(world_name, n_labelled, seed)
        directions["random"].append(random_unit_direction(model.cfg.d_model, seed).to(sae_direction.device))
        directions["difference of means"].append(unit(difference_of_means(model, hook_name, sets["negative"],
                                                                          sets["positive"])))
        steered = {"unsteered": (sae_direction, 0.0), "random": (directions["random"][-1], length),
                   "difference of means": (directions["difference of means"][-1], length),
                   "SAE": (unit(sae_direction), length)}
        for arm, (v, scale) in steered.items():
            scores[arm] += steered_scores(model, hook_name, v, scale, prompt, [seed], **kw)
            bar.update(1)
        prefixes.append(negative_prefix(world_name, seed))
        scores["prompting"].append(prompted_scores(model, prefixes[-1], prompt, seed, **kw))
        bar.update(1)
    bar.close()
    return {"scores": scores, "directions": directions, "prefixes": prefixes}


def _bar(total: int, show: bool) -> Any:
    """A tqdm.auto bar, or a silent stand-in with the same update/close."""
    if show:
        from tqdm.auto import tqdm
        return tqdm(total=total, desc="baselines", unit="arm")

    class _Silent:
        def update(self, _n: int) -> None: ...
        def close(self) -> None: ...
    return _Silent()


def arms_table(scores: dict[str, list[Scores]]) -> list[dict[str, Any]]:
    """One row per arm: per-seed shares negative and well formed (None online) and fluency, for printing."""
    return [{"arm": arm, "negative": [s.negative for s in runs], "well_formed": [s.well_formed for s in runs],
             "fluency": [s.fluency for s in runs]} for arm, runs in scores.items()]


def plot_arms(axes: Sequence[Any], scores: dict[str, list[Scores]]) -> None:
    """Two panels: share negative, and share well formed (tiny world) or fluency (online), per arm; every seed a
    dot, the mean a bar."""
    quality = "well_formed" if all(s.well_formed is not None for r in scores.values() for s in r) else "fluency"
    for ax, key, label in zip(axes, ("negative", quality), ("share negative", "share well formed"
                                                            if quality == "well_formed" else "mean log p / token")):
        for x, (arm, runs) in enumerate(scores.items()):
            values = [float(getattr(s, key)) for s in runs]
            ax.bar(x, sum(values) / len(values), color="lightgray", edgecolor="gray")
            ax.plot([x] * len(values), values, "o", color="tab:red" if arm == "SAE" else "black", ms=4)
        ax.set_xticks(range(len(scores)), list(scores), rotation=20, fontsize=8)
        ax.set(ylabel=label)
        if quality == "well_formed" or key == "negative":
            ax.set_ylim(0, 1.05)
