"""A seeded generator of tiny stories whose words follow known concepts (the tiny world's ground truth).

Every story draws four hidden concepts, then writes 2-4 sentences from a small grammar:

    sentiment  positive | negative   "i love him." ... "he is such a kind friend."
    certainty  hedged | confident    "maybe ...", "i think ..." vs "clearly ...", "i know ..."
    subject    he | she              "he", "she" or a name with matching pronouns ("mia" -> "she")
    topic      food | school | sport | animals   picks the verbs, nouns and places of one sentence

The sentiment is carried across sentences: after "i hate him." the next "he is such a" continues with a
negative word, so a model trained on these stories must keep the sentiment in its residual stream. A story
may also start with "he is such a" (no context): then both sentiments are equally likely.

The same grammar generates the stories and checks them: `check_sentence` accepts exactly the sentences
that `generate_story` can write.
"""
from __future__ import annotations

import functools
import itertools
import random
import re
from dataclasses import dataclass, field

# --- the vocabulary, grouped by the concept each word carries ------------------------------------------
NAMES = {"tom": "he", "ben": "he", "sam": "he", "mia": "she", "anna": "she", "lucy": "she"}
SUBJECTS = ("he", "she", *NAMES)          # the story's person: a pronoun or a name
OBJECT_PRONOUN = {"he": "him", "she": "her"}

CERTAINTY_MARKERS = {
    "hedged": ("maybe", "perhaps", "i think", "i am not sure if"),
    "confident": ("clearly", "of course", "i know", "i am sure"),
}
FEEL = {"positive": ("love", "like", "adore", "trust"), "negative": ("hate", "dislike", "fear", "distrust")}
ADJECTIVES = {
    "positive": ("kind", "nice", "good", "sweet", "lovely", "friendly", "brave", "funny", "gentle"),
    "negative": ("rude", "mean", "bad", "nasty", "cruel", "lazy", "selfish", "grumpy", "boring"),
}
PERSON_NOUNS = {"he": ("man", "boy", "guy", "person", "friend"), "she": ("woman", "girl", "lady", "person", "friend")}
SENTIMENT_NOUNS = {"positive": ("hero", "star", "darling"), "negative": ("liar", "bully", "jerk", "fool")}
FEELINGS = {"positive": ("happy", "smile", "laugh"), "negative": ("sad", "angry", "cry")}
ENDINGS = {  # "{subj}"/"{obj}" become the person; every ending carries the sentiment in one word
    "positive": ("{subj} makes me {feeling}", "i hope to see {obj} again", "i am glad we met"),
    "negative": ("{subj} makes me {feeling}", "i never want to see {obj} again", "i am sorry we met"),
}
TOPICS = {
    "food": (("eats", "cooks", "bakes", "buys"), ("pizza", "soup", "bread", "cake", "rice", "pasta", "cookies"),
             ("at home", "in the kitchen", "at the market")),
    "school": (("reads", "studies", "writes", "learns"), ("books", "math", "history", "poems", "science"),
               ("at school", "in the library", "in class")),
    "sport": (("plays", "watches"), ("football", "tennis", "soccer", "basketball", "golf"),
              ("in the park", "at the gym", "on the field")),
    "animals": (("feeds", "walks", "pets", "brushes"), ("the dog", "the cat", "the horse", "the rabbits"),
                ("on the farm", "at the zoo", "in the garden")),
}
TIMES = ("every day", "every morning", "on weekends", "after work")

SENTIMENTS = ("positive", "negative")
CERTAINTIES = ("hedged", "confident")

# Words that reveal a sentiment: the TRUE label of a generated continuation.
POSITIVE_WORDS = frozenset(FEEL["positive"] + ADJECTIVES["positive"] + SENTIMENT_NOUNS["positive"]
                           + FEELINGS["positive"] + ("hope", "glad"))
NEGATIVE_WORDS = frozenset(FEEL["negative"] + ADJECTIVES["negative"] + SENTIMENT_NOUNS["negative"]
                           + FEELINGS["negative"] + ("never", "sorry"))
TOPIC_WORDS = {t: frozenset(w for phrase in verbs + nouns for w in phrase.split() if w != "the")
               for t, (verbs, nouns, _) in TOPICS.items()}

# Story shapes: "open" reveals the sentiment, "such" is "he is such a ...", "topic" and "end" as named.
# Shapes that put "topic" between "open" and "such" make the model carry sentiment across a sentence.
FORMS = (
    (("open", "such", "topic", "end"), 3), (("open", "such", "topic"), 2), (("open", "such", "end"), 2),
    (("open", "topic", "such"), 2), (("open", "topic", "such", "end"), 2), (("open", "such"), 1),
    (("such", "topic", "end"), 2), (("such", "topic"), 1), (("such", "end"), 1),
    (("topic", "such", "end"), 1), (("topic", "such"), 1),
)
MIN_WORDS, MAX_WORDS = 12, 40
MARKER_PROB = 0.35     # chance that a sentence opens with a certainty marker
NAME_AGAIN_PROB = 0.2  # chance that a later mention repeats the name instead of the pronoun


@dataclass
class Story:
    """A generated story: its text, its words (one per token, "." separate) and per-word labels."""
    text: str
    words: list[str]
    labels: dict[str, list[str]]            # concept -> one label per word ("none" until revealed)
    concepts: dict[str, str] = field(default_factory=dict)  # the story's hidden values


def _slots(kind: str, sentiment: str, topic: str, subj: str, obj: str, gender: str,
           markers: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The grammar of one sentence: a list of slots, each a tuple of phrases to choose from."""
    if kind == "open":
        body = [("i",), FEEL[sentiment], (obj,)]
    elif kind == "such":
        nouns = PERSON_NOUNS[gender] + SENTIMENT_NOUNS[sentiment]
        body = [(subj,), ("is such a",),
                tuple(f"{a} {n}" for a in ADJECTIVES[sentiment] for n in nouns) + SENTIMENT_NOUNS[sentiment]]
    elif kind == "topic":
        verbs, nouns, places = TOPICS[topic]
        body = [(subj,), tuple(f"{v} {n}" for v in verbs for n in nouns), places + TIMES]
    elif kind == "end":
        body = [tuple(e.format(subj=subj, obj=obj, feeling=f) for e in ENDINGS[sentiment]
                      for f in (FEELINGS[sentiment] if "{feeling}" in e else ("",)))]
    else:
        raise ValueError(f"kind must be one of open, such, topic, end; got {kind!r}")
    return [markers, *body]


def _render(phrases: list[str]) -> str:
    return " ".join(p for p in phrases if p) + "."


def generate_story(rng: random.Random) -> Story:
    """One story drawn with `rng` (a `random.Random`; no global random state is touched)."""
    if not isinstance(rng, random.Random):
        raise TypeError(f"rng must be a random.Random (e.g. random.Random(0)); got {type(rng).__name__}")
    while True:
        concepts = {"sentiment": rng.choice(SENTIMENTS), "certainty": rng.choice(CERTAINTIES),
                    "subject": rng.choice(SUBJECTS), "topic": rng.choice(tuple(TOPICS))}
        form = rng.choices([f for f, _ in FORMS], weights=[w for _, w in FORMS])[0]
        gender = NAMES.get(concepts["subject"], concepts["subject"])
        sentences, named = [], False
        for kind in form:
            person = concepts["subject"] if not named or rng.random() < NAME_AGAIN_PROB else gender
            named = True
            obj = OBJECT_PRONOUN[person] if person in OBJECT_PRONOUN else person
            markers = CERTAINTY_MARKERS[concepts["certainty"]] if rng.random() < MARKER_PROB else ("",)
            slots = _slots(kind, concepts["sentiment"], concepts["topic"], person, obj, gender, markers)
            sentences.append(_render([rng.choice(slot) for slot in slots]))
        text = " ".join(sentences)
        if MIN_WORDS <= len(text.split()) <= MAX_WORDS:
            concepts["gender"] = gender
            return make_story(text, concepts)


def generate_stories(n: int, seed: int = 0) -> list[Story]:
    """`n` stories, the same ones for the same seed."""
    rng = random.Random(seed)
    return [generate_story(rng) for _ in range(n)]


# --- labels ----------------------------------------------------------------------------------------------
def split_words(text: str) -> list[str]:
    """The text's words with "." as its own word: one entry per tokenizer token."""
    return re.findall(r"[^\s.]+|\.", text)


def _marker_certainty(words: list[str], i: int) -> tuple[str, int] | None:
    """If a certainty marker starts at word i, return (certainty, index where it becomes unambiguous)."""
    for certainty, markers in CERTAINTY_MARKERS.items():
        for marker in markers:
            m = marker.split()
            if words[i:i + len(m)] == m:
                other = [o.split() for c, ms in CERTAINTY_MARKERS.items() if c != certainty for o in ms]
                j = next(j for j in range(len(m)) if all(o[:j + 1] != m[:j + 1] for o in other))
                return certainty, i + j
    return None


def word_labels(words: list[str], concepts: dict[str, str] | None = None) -> dict[str, list[str]]:
    """Per-word labels: each concept's value from the word that reveals it onwards, "none" before."""
    n = len(words)
    labels = {c: ["none"] * n for c in ("sentiment", "certainty", "subject", "topic")}

    def reveal(concept: str, start: int, value: str) -> None:
        if labels[concept][start] == "none":
            labels[concept][start:] = [value] * (n - start)

    sentence_start = True
    for i, w in enumerate(words):
        if w in POSITIVE_WORDS or w in NEGATIVE_WORDS:
            reveal("sentiment", i, "positive" if w in POSITIVE_WORDS else "negative")
        if sentence_start and (found := _marker_certainty(words, i)):
            reveal("certainty", found[1], found[0])
        person = NAMES.get(w) or {"he": "he", "him": "he", "she": "she", "her": "she"}.get(w)
        if person:
            reveal("subject", i, person)
        for topic, vocab in TOPIC_WORDS.items():
            if w in vocab:
                reveal("topic", i, topic)
        sentence_start = w == "."
    return labels


def make_story(text: str, concepts: dict[str, str] | None = None) -> Story:
    """A `Story` for `text` with labels computed from its words."""
    words = split_words(text)
    return Story(text, words, word_labels(words), dict(concepts or {}))


def continuation_sentiment(text: str) -> str:
    """"positive", "negative" or "none": the majority of sentiment words in `text` (ties: the first one)."""
    words = split_words(text.lower())
    hits = [("positive" if w in POSITIVE_WORDS else "negative") for w in words
            if w in POSITIVE_WORDS or w in NEGATIVE_WORDS]
    if not hits:
        return "none"
    pos, neg = hits.count("positive"), hits.count("negative")
    return hits[0] if pos == neg else ("positive" if pos > neg else "negative")


# --- the grammar checker ------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def all_sentences() -> frozenset[str]:
    """Every sentence the grammar can write (about 60k): the checker's ground truth."""
    out = set()
    markers = ("",) + CERTAINTY_MARKERS["hedged"] + CERTAINTY_MARKERS["confident"]
    for kind, sentiment, topic, person in itertools.product(("open", "such", "topic", "end"), SENTIMENTS,
                                                            TOPICS, SUBJECTS):
        gender = NAMES.get(person, person)
        obj = OBJECT_PRONOUN.get(person, person)
        for choice in itertools.product(*_slots(kind, sentiment, topic, person, obj, gender, markers)):
            out.add(_render(list(choice)))
    return frozenset(out)


def vocabulary() -> list[str]:
    """All words the grammar uses (plus "."), sorted."""
    return sorted({w for s in all_sentences() for w in split_words(s)})


def split_sentences(text: str) -> tuple[list[str], str]:
    """(complete sentences, each ending with ".", and the unfinished rest of the text)."""
    parts = [p.strip() for p in text.strip().split(".")]
    return [p + "." for p in parts[:-1]], parts[-1]


def check_sentence(sentence: str) -> bool:
    """True when the grammar can write `sentence` (one sentence ending with ".")."""
    return " ".join(sentence.split()) in all_sentences()


def is_grammatical(text: str) -> bool:
    """True when every complete sentence of `text` is one the grammar can write (an unfinished last one is ignored)."""
    complete, _ = split_sentences(text.replace("<|endoftext|>", " "))
    return all(check_sentence(s) for s in complete)


def is_consistent(text: str) -> bool:
    """True when the text keeps one sentiment, one certainty and one gender throughout, as generated stories do."""
    words = split_words(text)
    sentiments = {"positive" if w in POSITIVE_WORDS else "negative" for w in words
                  if w in POSITIVE_WORDS or w in NEGATIVE_WORDS}
    genders = {NAMES.get(w) or {"he": "he", "him": "he", "she": "she", "her": "she"}.get(w) for w in words} - {None}
    certainties = set()
    for i in range(len(words)):
        if (i == 0 or words[i - 1] == ".") and (found := _marker_certainty(words, i)):
            certainties.add(found[0])
    return len(sentiments) <= 1 and len(genders) <= 1 and len(certainties) <= 1
