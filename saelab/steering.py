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
from saelab.sentiment import fluency, fraction_negative, sentiment_score

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


def steering_hook(vector: torch.Tensor, scale: float) -> Callable[[torch.Tensor, Any], torch.Tensor]:
    """A TransformerLens hook fn(activation, hook) that adds scale * vector at every position."""
    delta = scale * vector

    def add_vector(activation: torch.Tensor, hook: Any) -> torch.Tensor:
        return activation + delta.to(activation.device, activation.dtype)

    return add_vector


@contextlib.contextmanager
def steer(model: Any, hook_name: str, vector: torch.Tensor, scale: float) -> Iterator[Any]:
    """Inside the `with` block, `model` adds scale * vector [d_model] at `hook_name`; the hook is removed
    when the block ends, also after an exception."""
    scale = check_scale(scale)
    if hook_name not in model.hook_dict:
        raise ValueError(f"the model has no hook {hook_name!r}; use a name like 'blocks.2.hook_resid_post'")
    if vector.shape != (model.cfg.d_model,):
        raise ValueError(f"vector must have shape [d_model] = [{model.cfg.d_model}]; got {list(vector.shape)}")
    with model.hooks(fwd_hooks=[(hook_name, steering_hook(vector, scale))]):
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


# --- measuring: a sweep over scales ---------------------------------------------------------------------------
@dataclass
class SweepPoint:
    """What steering at one scale does: share of negative samples, mean sentiment, mean fluency."""
    scale: float
    negative: float
    sentiment: float
    fluency: float
    texts: list[str] = field(default_factory=list)


def scale_sweep(model: Any, hook_name: str, vector: torch.Tensor, prompt: str, scales: Sequence[float],
                n: int = 8, max_new_tokens: int = 10, temperature: float = 0.7, seed: int = 0,
                method: str = "vader") -> list[SweepPoint]:
    """Sample `n` steered continuations at each scale and score them (sentiment `method`: 'vader' or
    'tiny-world'; fluency under the unsteered model)."""
    points = []
    for scale in scales:
        s = steered_generate(model, hook_name, vector, scale, prompt, n=n, max_new_tokens=max_new_tokens,
                             temperature=temperature, seed=seed)
        flu = fluency(model, prompt, s.tokens)  # outside the hook: judged by the unsteered model
        points.append(SweepPoint(float(scale), fraction_negative(s.texts, method),
                                 sum(sentiment_score(t, method) for t in s.texts) / n, sum(flu) / n, s.texts))
    return points


def sweet_spot(points: Sequence[SweepPoint], max_fluency_drop: float = 1.0) -> tuple[float, float | None]:
    """(sweet spot, breakdown): the smallest scale reaching the highest share of negative samples while the
    fluency stays within `max_fluency_drop` nats/token of scale 0's, and the first scale past that limit."""
    base = points[0].fluency
    ok = [p for p in points if p.fluency >= base - max_fluency_drop]
    best = max(p.negative for p in ok)
    spot = min(p.scale for p in ok if p.negative == best)
    broken = [p.scale for p in points if p.fluency < base - max_fluency_drop and p.scale > spot]
    return spot, (min(broken) if broken else None)


def plot_sweep(points: Sequence[SweepPoint], title: str = "Steering strength vs effect", ax: Any = None,
               max_fluency_drop: float = 1.0) -> Any:
    """Share of negative continuations and fluency against the scale, sweet spot and breakdown marked."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 3.6))
    scales = [p.scale for p in points]
    ax.plot(scales, [p.negative for p in points], "o-", color="tab:red", label="negative continuations")
    ax.set(xlabel="steering scale", ylabel="share of negative continuations", ylim=(-0.05, 1.05), title=title)
    ax2 = ax.twinx()
    ax2.plot(scales, [p.fluency for p in points], "s--", color="tab:blue", label="fluency")
    ax2.set_ylabel("fluency (mean log p / token)")
    spot, broken = sweet_spot(points, max_fluency_drop)
    ax.axvline(spot, color="tab:green", alpha=0.6, label=f"sweet spot ({spot:g})")
    if broken is not None:
        ax.axvline(broken, color="black", ls=":", label=f"text breaks down ({broken:g})")
    lines = ax.get_legend_handles_labels()
    ax.legend(lines[0] + ax2.get_legend_handles_labels()[0], lines[1] + ax2.get_legend_handles_labels()[1],
              loc="lower left", fontsize=8)
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


# --- exercise check ---------------------------------------------------------------------------------------------
def check_steering_vector(fn: Callable[[SAE, list[int]], torch.Tensor], quiet: bool = False) -> bool:
    """Exercise check: does fn(sae, latents) return the blog's vector (1.0 per latent, bias-free decoder)?
    Prints what is wrong and returns False instead of raising, so a notebook keeps running."""
    torch.manual_seed(0)
    sae = SAE(8, 32, "topk", k=4)
    with torch.no_grad():
        sae.pre_bias.normal_()
    latents = [3, 17, 30]
    want = steering_vector(sae, latents)

    def fail(msg: str) -> bool:
        if not quiet:
            print(f"Not yet: {msg}")
        return False

    try:
        got = fn(sae, latents)
    except Exception as err:
        return fail(f"your function raised {type(err).__name__}: {err}")
    if got is None:
        return fail("your function returned None; return the vector (a tensor of shape [d_model])")
    if not torch.is_tensor(got):
        return fail(f"expected a torch.Tensor; got {type(got).__name__}")
    got = got.detach()
    if got.shape != want.shape:
        hint = (" It looks like one row per latent: sum them into one vector." if got.shape == (3, 8) else
                " Did you use the encoder? Decoder columns live in d_model space." if got.shape[-1] == 32 else "")
        return fail(f"shape {list(got.shape)}, expected [d_model] = {list(want.shape)}.{hint}")
    if torch.allclose(got, want + sae.pre_bias, atol=1e-5):
        return fail("you added pre_bias: the blog's steering vector uses the bias-free decoder, "
                    "sae.decoder(one_hot) or sae.W_dec[:, latents].sum(-1)")
    if torch.allclose(got, sae.encoder.weight[latents].sum(0), atol=1e-5):
        return fail("you summed encoder rows; steering writes into the model, so use the decoder columns W_dec")
    if torch.allclose(got, want / want.norm(), atol=1e-5):
        return fail("you normalised the vector; the blog's version puts 1.0 in each slot, no rescaling")
    if not torch.allclose(got, want, atol=1e-5):
        return fail(f"the values differ from the sum of the decoder columns {latents} "
                    f"(max difference {(got - want).abs().max():.3g})")
    if not quiet:
        print("Correct: the steering vector is the sum of the chosen decoder columns.")
    return True
