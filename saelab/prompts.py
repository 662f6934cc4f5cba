"""Prompts for notebooks 02 and 04: the blog's three prompts, labelled positive/negative sets (one to rank
latents on, one held out) and a small text corpus, for GPT-2 (hand-written) and for the tiny world (its
analogues: short "i love him." / "i hate him." prompts and stories from its generator)."""
from __future__ import annotations

import functools
import itertools
import random
from typing import Any

# The seed blog's prompts (GPT-2 small, OpenAI's layer-8 resid_post_mlp 128k SAE).
BLOG_PROMPTS = ("he is good guy", "he is sucks and fucking stupid idiot", "i hate him. he is ugly and stupid")
# On that SAE the blog found latents 62556 and 79394 among the top latents of both negative prompts.
BLOG_NEGATIVE_LATENTS = (62556, 79394)
# Tiny-world analogues (its vocabulary has no "sucks" or "idiot"); the last one must carry the sentiment
# of its first sentence to a neutral final word, like the blog's third prompt.
# Notebook 04's steering prompt: a clearly positive context, so unsteered samples are positive and any negative
# one is the steering's doing ("he is such a" alone is about half negative in the tiny world).
STEERING_PROMPT = "i love him. he is such a"
TINY_BLOG_PROMPTS = ("he is such a good guy", "he is such a rude jerk", "i hate him. he is such a mean guy")

POSITIVE_PROMPTS = (
    "she is such a kind and generous friend",
    "i love him. he is a wonderful person",
    "what a lovely day, everyone was so happy",
    "the teacher was patient, warm and encouraging",
    "he is a brilliant and honest man",
    "thank you so much, you are amazing",
    "i adore my little sister, she is sweet",
    "the movie was fantastic and the music was beautiful",
    "they were friendly and helpful all day",
    "my grandmother is the gentlest soul i know",
    "this is the best meal i have ever had",
    "we had a great time and laughed a lot",
)
NEGATIVE_PROMPTS = (
    "she is such a rude and selfish liar",
    "i hate him. he is a horrible person",
    "what an awful day, everyone was so miserable",
    "the teacher was cruel, cold and insulting",
    "he is a stupid and dishonest man",
    "shut up, you are disgusting",
    "i despise my neighbour, he is nasty",
    "the movie was terrible and the music was ugly",
    "they were hostile and useless all day",
    "my landlord is the meanest jerk i know",
    "this is the worst meal i have ever had",
    "we had a miserable time and cried a lot",
)
# Held out: never used to rank latents, only to check the winner on text it has not seen.
HELD_OUT_POSITIVE = (
    "she is a caring and cheerful neighbour",
    "i really like him, he is so thoughtful",
    "the garden looked wonderful in the sun",
    "our coach was kind, fair and inspiring",
    "you are a delightful and clever friend",
    "the concert was joyful and the crowd was lovely",
    "he always helps everyone, he is a gem",
    "what a charming little town, we loved it",
)
HELD_OUT_NEGATIVE = (
    "she is a spiteful and bitter neighbour",
    "i really dislike him, he is so arrogant",
    "the garden looked dreadful in the rain",
    "our coach was harsh, unfair and bullying",
    "you are a pathetic and dishonest coward",
    "the concert was boring and the crowd was rude",
    "he always lies to everyone, he is a creep",
    "what a filthy little town, we hated it",
)
# A small, varied text set for "where does this latent fire most?" on GPT-2.
TEXTS = POSITIVE_PROMPTS + NEGATIVE_PROMPTS + (
    "the cat sat on the mat and looked out of the window",
    "in 1969 two astronauts walked on the moon",
    "the function returns a list of integers sorted in place",
    "paris is the capital of france and its largest city",
    "add two cups of flour and stir until smooth",
    "the stock market fell sharply on monday morning",
    "he scored twice in the second half to win the match",
    "photosynthesis turns light, water and carbon dioxide into sugar",
    "please send me the report by friday",
    "the river floods every spring after the snow melts",
    "she plays the violin in the city orchestra",
    "the committee will vote on the proposal next week",
    "you idiot, that was the dumbest thing i have ever seen",
    "honestly he is a great guy and a good friend",
    "i think maybe it will rain tomorrow",
    "the new phone has a larger screen and a faster chip",
)


def tinyworld_stories(n: int, sentiment: str | None = None, seed: int = 0) -> list[Any]:
    """`n` generated tiny-world stories (optionally only one sentiment), the same ones for the same seed."""
    from saelab.tinyworld import generate_stories

    if sentiment not in (None, "positive", "negative"):
        raise ValueError(f"sentiment must be None, 'positive' or 'negative'; got {sentiment!r}")
    stories, batch = [], 0
    while len(stories) < n:
        new = generate_stories(4 * n, seed=seed * 1000 + batch)
        stories += [s for s in new if sentiment is None or s.concepts["sentiment"] == sentiment]
        batch += 1
    return stories[:n]


@functools.lru_cache(maxsize=4)
def _opening_sentences(sentiment: str, seed: int = 0) -> tuple[str, ...]:
    """Every first sentence "[marker] i [adverb] love/hate <person>." the generator can write, shuffled by `seed`."""
    from saelab.tinyworld.generator import NAMES, OBJECT_PRONOUN, SUBJECTS, _render, _slots

    out = set()
    for person in SUBJECTS:
        gender, obj = NAMES.get(person, person), OBJECT_PRONOUN.get(person, person)
        for certainty in (None, "hedged", "confident"):
            slots = _slots("open", sentiment, "food", person, obj, gender, certainty)
            out.update(_render(list(words)) for words in itertools.product(*slots))
    texts = sorted(out)
    random.Random(seed).shuffle(texts)
    return tuple(texts)


def tinyworld_prompts(sentiment: str, n: int, start: int = 0, then: str = "", seed: int = 0) -> list[str]:
    """Short tiny-world prompts whose sentiment is known at the last token: "i love him.", "maybe i probably
    hate tom." (`then` is appended, e.g. " he is such a"). Prompts start..start+n of a list shuffled by `seed`, so
    different ranges never share a prompt (rank on one range, check on another)."""
    if sentiment not in ("positive", "negative"):
        raise ValueError(f"sentiment must be 'positive' or 'negative'; got {sentiment!r}")
    texts = _opening_sentences(sentiment, seed)
    if not (n >= 1 and start >= 0 and start + n <= len(texts)):
        raise ValueError(f"there are {len(texts)} {sentiment} prompts; need 1 <= n and start + n <= {len(texts)}, "
                         f"got start={start}, n={n}")
    return [t + then for t in texts[start:start + n]]


def token_labels(stories: list[Any], concept: str = "sentiment") -> list[str]:
    """One label per token (BOS left out) of the stories' texts, in order: the rows of collect_latents."""
    return [label for s in stories for label in s.labels[concept]]


def prompt_sets(world_name: str, n: int = 40, seed: int = 0) -> dict[str, Any]:
    """The notebook's prompts for a world ('gpt2' or 'tiny-world'): blog, positive, negative (to rank latents on),
    held_out_positive, held_out_negative (to check them on) and corpus. Every labelled prompt states its
    sentiment by its last token. `seed` picks the tiny world's generated prompts and stories (pass
    saelab.seeds.seed(0)); GPT-2's hand-written sets do not depend on it."""
    if world_name != "tiny-world":
        return {"blog": list(BLOG_PROMPTS), "positive": list(POSITIVE_PROMPTS), "negative": list(NEGATIVE_PROMPTS),
                "held_out_positive": list(HELD_OUT_POSITIVE), "held_out_negative": list(HELD_OUT_NEGATIVE),
                "corpus": list(TEXTS)}
    return {"blog": list(TINY_BLOG_PROMPTS),
            "positive": tinyworld_prompts("positive", n, seed=seed),
            "negative": tinyworld_prompts("negative", n, seed=seed),
            "held_out_positive": tinyworld_prompts("positive", 5 * n, start=n, seed=seed),
            "held_out_negative": tinyworld_prompts("negative", 5 * n, start=n, seed=seed),
            "corpus": [s.text for s in tinyworld_stories(3 * n, seed=3 + seed)]}
