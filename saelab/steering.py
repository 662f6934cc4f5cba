"""Steering a language model with SAE latents: decode chosen latents into a direction, add it to the
residual stream at the SAE's hook while the model generates, and measure what changes.

    v = W_dec @ m            m = 1.0 in each chosen slot ("ones", the blog), the latents' measured
                             activations ("measured"), or v rescaled to unit length ("unit")
    resid <- resid + scale * v        at sae.hook_name, every position, prompt and generated tokens

v is bias-free and lives in the SAE's (normalised) input space, like the blog's `decoder(one_hot)`.
"""
from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import torch

from saelab import metrics
from saelab.models import to_tokens
from saelab.sae import SAE
from saelab.sentiment import fraction_negative, mean_fluency, neutral_context, share_well_formed

MAGNITUDE_MODES = ("ones", "measured", "unit")
MAX_ABS_SCALE = 1000.0  # beyond this every model only prints noise; refuse instead
# The blog's experiment: GPT-2 small, OpenAI's resid_post_mlp_v5_128k SAE at layer 8, scale 20.
BLOG_LATENTS = [62556, 79394, 86309, 69689]
BLOG_SCALE = 20.0
# The tiny world's analogue: its 3 best negative-sentiment latents (`rank_sentiment_latents`) at this scale
# (100 samples of 5 tokens: "i love him. he is such a" 3% -> 83% negative, "he is such a" 42% -> 95%).
TINY_WORLD_N_LATENTS = 3
TINY_WORLD_SCALE = 14.0


# --- the steering vector -----------------------------------------------------------------------------
def check_latents(sae: SAE, latents: int | Sequence[int]) -> list[int]:
    """The latents as a list of ints; ValueError if one is not an index of this SAE."""
    latents = [latents] if isinstance(latents, int) else list(latents)
    if not latents:
        raise ValueError("choose at least one latent, e.g. latents=[12]")
    bad = [i for i in latents if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < sae.n_latents]
    if bad:
        raise ValueError(f"unknown latent(s) {bad}: this SAE has latents 0..{sae.n_latents - 1}")
    return latents


@torch.no_grad()
def steering_vector(sae: SAE, latents: int | Sequence[int],
                    magnitudes: None | str | float | Sequence[float] | torch.Tensor = None) -> torch.Tensor:
    """The decoded direction sum_i m_i W_dec[:, i]: [d_model]. `magnitudes`: None or 'ones' (1.0 each, the
    blog), a number or one number per latent (e.g. `latent_magnitudes(...)`), or 'unit' (length 1)."""
    latents = check_latents(sae, latents)
    unit = isinstance(magnitudes, str) and magnitudes == "unit"
    if magnitudes is None or isinstance(magnitudes, str):
        if magnitudes not in (None, "ones", "unit"):
            raise ValueError(f"magnitudes must be 'ones', 'unit', a number or one number per latent; got "
                             f"{magnitudes!r} (for 'measured' pass latent_magnitudes(model, sae, latents, prompt))")
        magnitudes = 1.0
    m = torch.as_tensor(magnitudes, dtype=sae.W_dec.dtype, device=sae.W_dec.device).flatten()
    if m.numel() == 1:
        m = m.expand(len(latents))
    if m.numel() != len(latents):
        raise ValueError(f"got {m.numel()} magnitudes for {len(latents)} latents; give one per latent")
    one_hot = torch.zeros(sae.n_latents, dtype=m.dtype, device=m.device).index_add_(
        0, torch.tensor(latents, device=m.device), m)
    vector = sae.decoder(one_hot)  # bias-free: the plain sum of decoder columns, as in the blog
    if unit:
        norm = vector.norm()
        if norm == 0:
            raise ValueError("these latents' decoder directions cancel out (length 0): no unit direction")
        vector = vector / norm
    return vector


@torch.no_grad()
def latent_magnitudes(model: Any, sae: SAE, latents: Sequence[int], prompt: str) -> torch.Tensor:
    """Each latent's largest activation over the prompt's tokens: [len(latents)] (0 where it never fires)."""
    from saelab.features import encode_prompt

    latents = check_latents(sae, latents)
    _, acts = encode_prompt(model, sae, prompt)
    return acts[:, latents].max(dim=0).values


@torch.no_grad()
def residual_std(model: Any, hook_name: str, prompt: str) -> float:
    """The mean per-token std of the residual at `hook_name` over the prompt (BOS skipped): the factor between
    the SAE's normalised space, where v lives, and the raw residual stream the hook adds to."""
    from saelab.activations import hook_activations

    resid = hook_activations(model, hook_name, to_tokens(model, prompt))[0, 1:]
    return resid.std(dim=-1).mean().item()


def steering_vectors(model: Any, sae: SAE, latents: Sequence[int], measure_on: str) -> dict[str, torch.Tensor]:
    """The three candidate vectors side by side: {'ones', 'measured' (on `measure_on`), 'unit'} -> [d_model]."""
    measured = latent_magnitudes(model, sae, latents, measure_on)
    if (measured == 0).all():
        warnings.warn(f"none of the latents {list(latents)} fires on {measure_on!r}: the 'measured' vector is 0; "
                      "measure on a prompt that shows the concept", stacklevel=2)
    return {"ones": steering_vector(sae, latents), "measured": steering_vector(sae, latents, measured),
            "unit": steering_vector(sae, latents, "unit")}


# --- the hook ------------------------------------------------------------------------------------------------
def check_scale(scale: float) -> float:
    """`scale` as a float; ValueError for NaN, inf or absurd sizes."""
    try:
        scale = float(scale)
    except (TypeError, ValueError):
        raise ValueError(f"scale must be a number such as 20; got {scale!r}") from None
    if not math.isfinite(scale):
        raise ValueError(f"scale must be a finite number; got {scale}")
    if abs(scale) > MAX_ABS_SCALE:
        raise ValueError(f"scale {scale:g} is absurd (|scale| > {MAX_ABS_SCALE:g}); try something between 0 and 100")
    return scale


def add_steering(activation: torch.Tensor, vector: torch.Tensor, scale: float = 1.0,
                 positions: None | int | Sequence[int] = None) -> torch.Tensor:
    """activation [batch, pos, d_model] + scale * vector [d_model] at `positions` (None = every position; an int
    or a list of ints, negative ones count from the end). A new tensor: the input (maybe cached) is left alone."""
    delta = (scale * vector).to(activation.device, activation.dtype)
    if positions is None:
        return activation + delta
    positions = [positions] if isinstance(positions, int) else list(positions)
    steered = activation.clone()
    steered[:, positions] += delta
    return steered


def steering_hook(vector: torch.Tensor, scale: float,
                  positions: None | int | Sequence[int] = None) -> Callable[[torch.Tensor, Any], torch.Tensor]:
    """A TransformerLens hook fn(activation, hook) that adds scale * vector at `positions` (None = all)."""

    def add_vector(activation: torch.Tensor, hook: Any) -> torch.Tensor:
        return add_steering(activation, vector, scale, positions)

    return add_vector


@contextlib.contextmanager
def steer(model: Any, hook_name: str, vector: torch.Tensor, scale: float,
          positions: None | int | Sequence[int] = None) -> Iterator[Any]:
    """Inside the `with` block, `model` adds scale * vector [d_model] at `hook_name` (at `positions`, None = all);
    the hook is removed when the block ends, also after an exception, and hooks that were there stay."""
    scale = check_scale(scale)
    if hook_name not in model.hook_dict:
        raise ValueError(f"the model has no hook {hook_name!r}; use a name like 'blocks.2.hook_resid_post'")
    if vector.shape != (model.cfg.d_model,):
        raise ValueError(f"vector must have shape [d_model] = [{model.cfg.d_model}]; got {list(vector.shape)}")
    with model.hooks(fwd_hooks=[(hook_name, steering_hook(vector, scale, positions))]):
        yield model


# --- generating --------------------------------------------------------------------------------------------
@dataclass
class Samples:
    """Continuations of one prompt: their texts and token ids [n, new_tokens]."""
    prompt: str
    texts: list[str]
    tokens: torch.Tensor


@torch.no_grad()
def generate(model: Any, prompt: str, n: int = 1, max_new_tokens: int = 10, temperature: float = 0.7,
             seed: int = 0, greedy: bool = False) -> Samples:
    """`n` continuations of `prompt` (sampled at `temperature`, or greedy), the same texts for the same seed.
    Hooks the caller added (e.g. `steer`) stay on; the KV cache stays on."""
    tokens = to_tokens(model, prompt)
    if not 1 <= int(n) <= 256 or not 1 <= int(max_new_tokens) <= model.cfg.n_ctx - tokens.shape[-1]:
        raise ValueError(f"need 1 <= n <= 256 and 1 <= max_new_tokens <= {model.cfg.n_ctx - tokens.shape[-1]} "
                         f"(the model reads at most {model.cfg.n_ctx} tokens); got n={n}, max_new_tokens={max_new_tokens}")
    if not greedy and not (math.isfinite(temperature) and 0 < temperature <= 10):
        raise ValueError(f"temperature must be in (0, 10]; got {temperature} (use greedy=True for temperature 0)")
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():  # seeded, global RNG left untouched
        warnings.simplefilter("ignore")
        torch.manual_seed(seed)
        out = model.generate(tokens.expand(int(n), -1), max_new_tokens=int(max_new_tokens), do_sample=not greedy,
                             temperature=temperature, stop_at_eos=False, verbose=False, use_past_kv_cache=True,
                             return_type="tokens")
    new = out[:, tokens.shape[-1]:]
    return Samples(prompt, [model.tokenizer.decode(row) for row in new], new)


def steered_generate(model: Any, hook_name: str, vector: torch.Tensor, scale: float, prompt: str,
                     **kwargs: Any) -> Samples:
    """`generate(model, prompt, **kwargs)` with scale * vector added at `hook_name`."""
    with steer(model, hook_name, vector, scale):
        return generate(model, prompt, **kwargs)


def before_after(model: Any, hook_name: str, vector: torch.Tensor, scale: float, prompt: str, n: int = 4,
                 max_new_tokens: int = 10, temperature: float = 0.7, seed: int = 0) -> dict[str, list[str]]:
    """{'greedy, unsteered': [1 text], 'sampled, unsteered': [n], 'sampled, steered': [n]} for one prompt."""
    kw = dict(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    return {"greedy, unsteered": generate(model, prompt, max_new_tokens=max_new_tokens, greedy=True).texts,
            "sampled, unsteered": generate(model, prompt, n=n, **kw).texts,
            f"sampled, steered (scale {scale:g})": steered_generate(model, hook_name, vector, scale, prompt, n=n,
                                                                    **kw).texts}


def side_by_side_html(prompt: str, columns: dict[str, list[str]]) -> str:
    """An HTML table: one column per setting, one row per sample (the prompt in bold)."""
    import html

    head = "".join(f"<th style='text-align:left'>{html.escape(k)}</th>" for k in columns)
    rows = ""
    for i in range(max(len(v) for v in columns.values())):
        cells = "".join(f"<td style='text-align:left'><b>{html.escape(prompt)}</b>{html.escape(v[i])}</td>"
                        if i < len(v) else "<td></td>" for v in columns.values())
        rows += f"<tr>{cells}</tr>"
    return f"<table><tr>{head}</tr>{rows}</table>"


# --- measuring: scores over several seeds ---------------------------------------------------------------------
@dataclass
class Scores:
    """One batch of samples, scored: share negative, share well formed (tiny world; None online), fluency."""
    negative: float
    well_formed: float | None
    fluency: float
    texts: list[str] = field(default_factory=list)


def score_samples(model: Any, samples: Samples, method: str = "vader") -> Scores:
    """Score samples (call outside any steering hook): sentiment with `method`, the grammar checker in the tiny
    world, and fluency = mean log p / token under the unsteered model after `neutral_context(prompt)`, so a
    negative word is not marked unlikely just because the prompt was positive."""
    well_formed = share_well_formed(samples.prompt, samples.texts) if method == "tiny-world" else None
    return Scores(fraction_negative(samples.texts, method), well_formed,
                  mean_fluency(model, neutral_context(samples.prompt), samples.tokens), samples.texts)


def steered_scores(model: Any, hook_name: str, vector: torch.Tensor, scale: float, prompt: str,
                   seeds: Sequence[int], n: int = 8, max_new_tokens: int = 10, temperature: float = 0.7,
                   method: str = "vader") -> list[Scores]:
    """Sample `n` steered continuations once per seed and score each batch: one `Scores` per seed."""
    if not seeds:
        raise ValueError("give at least one seed, e.g. seeds=saelab.seeds.seeds(3)")
    out = []
    for seed in seeds:
        s = steered_generate(model, hook_name, vector, scale, prompt, n=n, max_new_tokens=max_new_tokens,
                             temperature=temperature, seed=seed)
        out.append(score_samples(model, s, method))
    return out


def unsteered_and_steered(model: Any, hook_name: str, vector: torch.Tensor, scale: float, prompt: str,
                          seeds: Sequence[int], **kwargs: Any) -> dict[str, list[Scores]]:
    """{'unsteered': one `Scores` per seed, 'steered': the same seeds with scale * vector added}. Scale 0 adds
    nothing, so the unsteered samples are exactly the model's own. kwargs: n, max_new_tokens, temperature, method."""
    return {"unsteered": steered_scores(model, hook_name, vector, 0.0, prompt, seeds, **kwargs),
            "steered": steered_scores(model, hook_name, vector, scale, prompt, seeds, **kwargs)}


def spread(values: Sequence[float | None]) -> tuple[float, float, float]:
    """(mean, min, max) of per-seed values."""
    values = [float(v) for v in values if v is not None]
    if not values:
        raise ValueError("no values to summarise")
    return sum(values) / len(values), min(values), max(values)


def fmt_spread(values: Sequence[float | None], percent: bool = True) -> str:
    """'62% (50-75%)' or '-2.31 (-2.40 to -2.20)': the mean over seeds and their range."""
    mean, lo, hi = spread(values)
    if percent:
        return f"{mean:.0%} ({lo:.0%}-{hi:.0%})"
    return f"{mean:.2f} ({lo:.2f} to {hi:.2f})"


@dataclass
class SweepPoint:
    """What steering at one scale does, per seed: share negative, share well formed, fluency."""
    scale: float
    runs: list[Scores]

    @property
    def negative(self) -> list[float]:
        return [r.negative for r in self.runs]

    @property
    def well_formed(self) -> list[float | None]:
        return [r.well_formed for r in self.runs]

    @property
    def fluency(self) -> list[float]:
        return [r.fluency for r in self.runs]

    @property
    def texts(self) -> list[str]:
        return self.runs[0].texts


def scale_sweep(model: Any, hook_name: str, vector: torch.Tensor, prompt: str, scales: Sequence[float],
                seeds: Sequence[int] = (0,), n: int = 8, max_new_tokens: int = 10, temperature: float = 0.7,
                method: str = "vader") -> list[SweepPoint]:
    """At each scale, `steered_scores` once per seed (sentiment `method`: 'vader' or 'tiny-world')."""
    return [SweepPoint(float(scale), steered_scores(model, hook_name, vector, scale, prompt, seeds, n=n,
                                                    max_new_tokens=max_new_tokens, temperature=temperature,
                                                    method=method)) for scale in scales]


def quality(point: SweepPoint) -> tuple[str, list[float]]:
    """What says the text still reads well: ('well formed', shares) in the tiny world, else ('fluency', nats)."""
    if all(w is not None for w in point.well_formed):
        return "well formed", [float(w) for w in point.well_formed]
    return "fluency", point.fluency


def sweet_spot(points: Sequence[SweepPoint], max_drop: float | None = None) -> tuple[float, float | None]:
    """(sweet spot, breakdown) from the seed means: the smallest scale whose share of negative samples is within
    0.05 of the best while the text still reads well (quality within `max_drop` of scale 0's: 0.25 of the well-
    formed share in the tiny world, 1 nat/token of fluency online), and the first larger scale past that limit."""
    name = quality(points[0])[0]
    max_drop = (0.25 if name == "well formed" else 1.0) if max_drop is None else max_drop
    base = spread(quality(points[0])[1])[0]
    ok = [p for p in points if spread(quality(p)[1])[0] >= base - max_drop]
    best = max(spread(p.negative)[0] for p in ok)
    spot = min(p.scale for p in ok if spread(p.negative)[0] >= best - 0.05)
    broken = [p.scale for p in points if p.scale > spot and spread(quality(p)[1])[0] < base - max_drop]
    return spot, (min(broken) if broken else None)


def plot_band(ax: Any, x: Sequence[float], per_seed: Sequence[Sequence[float]], label: str, **style: Any) -> None:
    """Mean over seeds as a line, min-max as a shaded band, every seed's value as a dot."""
    stats = [spread(v) for v in per_seed]
    line, = ax.plot(x, [m for m, _, _ in stats], "-", label=label, **style)
    ax.fill_between(x, [lo for _, lo, _ in stats], [hi for _, _, hi in stats], color=line.get_color(), alpha=0.2)
    for xi, values in zip(x, per_seed):
        ax.plot([xi] * len(values), values, ".", color=line.get_color(), alpha=0.6)


def plot_sweep(points: Sequence[SweepPoint], title: str = "Steering strength vs effect", ax: Any = None) -> Any:
    """Share of negative continuations and text quality against the scale (mean, min-max band and every seed),
    sweet spot and breakdown marked."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.6))
    scales = [p.scale for p in points]
    plot_band(ax, scales, [p.negative for p in points], "negative continuations", color="tab:red")
    name, _ = quality(points[0])
    if name == "well formed":
        plot_band(ax, scales, [quality(p)[1] for p in points], "well formed (grammar checker)", color="tab:blue")
        ax.set(ylabel="share of continuations")
    else:
        ax.set(ylabel="share of negative continuations")
        ax2 = ax.twinx()
        plot_band(ax2, scales, [p.fluency for p in points], "fluency", color="tab:blue")
        ax2.set_ylabel("fluency (mean log p / token, neutral context)")
    ax.set(xlabel="steering scale", ylim=(-0.05, 1.05), title=title)
    spot, broken = sweet_spot(points)
    ax.axvline(spot, color="tab:green", alpha=0.6, label=f"sweet spot ({spot:g})")
    if broken is not None:
        ax.axvline(broken, color="black", ls=":", label=f"text breaks down ({broken:g})")
    handles, labels = [], []
    for a in ax.figure.axes:
        h, l = a.get_legend_handles_labels()
        handles, labels = handles + h, labels + l
    ax.legend(handles, labels, loc="center right", fontsize=8)
    ax.figure.tight_layout()
    return ax.figure


# --- which latents? Rank them where the sentiment is known --------------------------------------------------
@torch.no_grad()
def rank_sentiment_latents(model: Any, sae: SAE, n_prompts: int = 40, start: int = 0, sentiment: str = "negative",
                           then: str = " he is such a") -> tuple[list[int], torch.Tensor]:
    """Tiny world: latents sorted by AUROC for `sentiment` at the last token of short labelled prompts
    ("i hate him. he is such a" vs "i love him. he is such a": `n_prompts` of each, `prompts.tinyworld_prompts`),
    ties broken by the mean difference; and the AUROC of every latent [n_latents]. That last token is where the
    sentiment is known and where the model is about to write a sentiment word: the place steering acts on."""
    from saelab.features import _rank, collect_latents
    from saelab.prompts import tinyworld_prompts

    if sentiment not in ("positive", "negative"):
        raise ValueError(f"sentiment must be 'positive' or 'negative'; got {sentiment!r}")
    other = "positive" if sentiment == "negative" else "negative"
    texts = tinyworld_prompts(sentiment, n_prompts, start, then) + tinyworld_prompts(other, n_prompts, start, then)
    last = collect_latents(model, sae, texts).last_tokens()
    scores = last.dense(torch.arange(sae.n_latents))  # [2 * n_prompts, n_latents]
    labels = [sentiment] * n_prompts + [other] * n_prompts
    _, auroc = metrics.rank_latents(scores, labels, sentiment)
    diff = scores[:n_prompts].mean(0) - scores[n_prompts:].mean(0)
    return _rank(auroc, diff, "auroc"), auroc


# --- exercise check (moved) -------------------------------------------------------------------------------------
def check_steering_vector(fn: Callable[[SAE, list[int]], torch.Tensor]) -> bool:
    """Moved to `saelab.checks.steering.check_steering_vector` (kept here so older notebooks still run)."""
    from saelab.checks.steering import check_steering_vector as check

    return check(fn)
