"""Scoring generated text: how negative it is (VADER for GPT-2, the generator's labels in the tiny world),
whether it is well formed (the tiny world's grammar checker) and how fluent it stays (mean log-likelihood per
token under the unsteered model, after a context that says nothing about the sentiment).

    sentiment_score(text, "vader")       VADER's compound score in [-1, 1]
    sentiment_score(text, "tiny-world")  +1 / -1 / 0 from the tiny world's own sentiment words (its ground truth)
    is_well_formed(prompt, continuation) the tiny world's grammar accepts every sentence the continuation ends
    fluency(model, prompt, continuations) mean log p(token) of each continuation, given the prompt
    neutral_context(prompt)              the prompt without its sentiment sentence: "i love him. he is such a" ->
                                         "he is such a", where the model expects either sentiment
"""
from __future__ import annotations

import functools
from typing import Any, Sequence

import torch

from saelab.models import to_tokens

METHODS = ("vader", "tiny-world")
VADER_NEGATIVE = -0.05  # VADER's own convention: compound <= -0.05 is negative, >= 0.05 positive


@functools.lru_cache(maxsize=1)
def _vader() -> Any:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    return SentimentIntensityAnalyzer()


def vader_compound(text: str) -> float:
    """VADER's compound sentiment of `text`, from -1 (very negative) to +1 (very positive); works offline."""
    return float(_vader().polarity_scores(text)["compound"])


def tiny_world_sentiment(text: str) -> float:
    """+1 / -1 when the tiny world's sentiment words in `text` are mostly positive / negative, else 0."""
    from saelab.tinyworld.generator import continuation_sentiment
    return {"positive": 1.0, "negative": -1.0}.get(continuation_sentiment(text), 0.0)


def method_for(world_name: str) -> str:
    """The sentiment scorer that fits a world: the tiny world's true labels there, VADER otherwise."""
    return "tiny-world" if world_name.replace("_", "-").lower() in {"tiny-world", "tinyworld"} else "vader"


def sentiment_score(text: str, method: str = "vader") -> float:
    """Sentiment of one text in [-1, 1] (negative < 0) with `method` 'vader' or 'tiny-world'."""
    if method == "vader":
        return vader_compound(text)
    if method == "tiny-world":
        return tiny_world_sentiment(text)
    raise ValueError(f"method must be one of {METHODS}; got {method!r}")


def is_negative(text: str, method: str = "vader") -> bool:
    """True when `text` reads as negative: VADER compound <= -0.05, or mostly negative tiny-world words."""
    score = sentiment_score(text, method)
    return score <= VADER_NEGATIVE if method == "vader" else score < 0


def fraction_negative(texts: Sequence[str], method: str = "vader") -> float:
    """The share of `texts` that read as negative (0.0 for no texts)."""
    texts = list(texts)
    return sum(is_negative(t, method) for t in texts) / len(texts) if texts else 0.0


@torch.no_grad()
def fluency(model: Any, prompt: str, continuations: Sequence[str] | torch.Tensor) -> list[float]:
    """Mean log-likelihood per token of each continuation given the prompt, under `model` as it is (call it
    outside any steering hook). `continuations`: texts, or token ids [n, new]. Near 0 = what the model
    expects; far below the unsteered text's score = broken text."""
    prompt_tokens = to_tokens(model, prompt)[0]
    if torch.is_tensor(continuations):
        rows = list(continuations.reshape(-1, continuations.shape[-1]))
    else:
        rows = [model.to_tokens(t, prepend_bos=False)[0] if t else prompt_tokens[:0] for t in continuations]
    scores = [float("nan")] * len(rows)
    by_length: dict[int, list[int]] = {}
    for i, cont in enumerate(rows):
        if len(cont):
            by_length.setdefault(len(cont), []).append(i)
    n = len(prompt_tokens) - 1  # the position whose prediction is the first continuation token
    for length, idx in by_length.items():  # one forward pass per continuation length
        cont = torch.stack([rows[i].to(prompt_tokens.device) for i in idx])
        tokens = torch.cat([prompt_tokens.expand(len(idx), -1), cont], dim=1)[:, : model.cfg.n_ctx]
        logp = model(tokens).log_softmax(-1)[:, n:-1]
        mean = logp.gather(-1, tokens[:, n + 1:, None])[..., 0].mean(-1)
        for i, value in zip(idx, mean.tolist()):
            scores[i] = value
    return scores


def is_well_formed(prompt: str, continuation: str) -> bool:
    """Tiny world: True when the continuation finishes the sentence the prompt started, every sentence that ends
    in prompt + continuation is one the generator's grammar can write, and the unfinished rest can still become
    one. Sentiment does not enter: "i love him. he is such a rude man." is well formed."""
    from saelab.tinyworld.generator import is_grammatical, is_sentence_start, split_sentences

    text = prompt + continuation.replace("<|endoftext|>", " ")
    complete, rest = split_sentences(text)
    ended = len(complete) > len(split_sentences(prompt)[0])
    return ended and is_grammatical(text) and is_sentence_start(rest)


def share_well_formed(prompt: str, continuations: Sequence[str]) -> float:
    """The share of `continuations` of `prompt` that the tiny world's grammar accepts (`is_well_formed`)."""
    continuations = list(continuations)
    return sum(is_well_formed(prompt, c) for c in continuations) / len(continuations) if continuations else 0.0


def neutral_context(prompt: str) -> str:
    """The prompt's last, unfinished sentence ("i love him. he is such a" -> "he is such a"): a context that says
    nothing about the sentiment, for judging fluency without rewarding the unsteered sentiment."""
    last = prompt.rsplit(".", 1)[-1].strip()
    if not last:
        raise ValueError(f"the prompt {prompt!r} ends with a full stop; give it an unfinished sentence to continue, "
                         "e.g. 'i love him. he is such a'")
    return last


def mean_fluency(model: Any, prompt: str, continuations: Sequence[str] | torch.Tensor) -> float:
    """The mean of `fluency(model, prompt, continuations)` over the continuations (NaN ones skipped)."""
    scores = [x for x in fluency(model, prompt, continuations) if x == x]
    return sum(scores) / len(scores) if scores else float("nan")
