"""Prompts for notebook 02: the blog's three prompts, labelled positive/negative sets and a small text
corpus, for GPT-2 (hand-written) and for the tiny world (its analogues, and stories from its generator)."""
from __future__ import annotations

from typing import Any

# The seed blog's prompts (GPT-2 small, OpenAI's layer-8 resid_post_mlp 128k SAE).
BLOG_PROMPTS = ("he is good guy", "he is sucks and fucking stupid idiot", "i hate him. he is ugly and stupid")
# On that SAE the blog found latents 62556 and 79394 among the top latents of both negative prompts.
BLOG_NEGATIVE_LATENTS = (62556, 79394)
# Tiny-world analogues (its vocabulary has no "sucks" or "idiot"); the last one must carry the sentiment
# of its first sentence to a neutral final word, like the blog's third prompt.
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


def token_labels(stories: list[Any], concept: str = "sentiment") -> list[str]:
    """One label per token (BOS left out) of the stories' texts, in order: the rows of collect_latents."""
    return [label for s in stories for label in s.labels[concept]]


def prompt_sets(world_name: str, n: int = 40) -> dict[str, Any]:
    """The notebook's prompts for a world ('gpt2' or 'tiny-world'): blog, positive, negative, corpus."""
    if world_name != "tiny-world":
        return {"blog": list(BLOG_PROMPTS), "positive": list(POSITIVE_PROMPTS),
                "negative": list(NEGATIVE_PROMPTS), "corpus": list(TEXTS)}
    return {"blog": list(TINY_BLOG_PROMPTS),
            "positive": [s.text for s in tinyworld_stories(n, "positive", seed=1)],
            "negative": [s.text for s in tinyworld_stories(n, "negative", seed=2)],
            "corpus": [s.text for s in tinyworld_stories(3 * n, seed=3)]}
