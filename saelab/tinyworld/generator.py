"""A seeded generator of tiny stories whose words follow known concepts (the tiny world's ground truth).

Every story draws four hidden concepts, then writes 2-4 sentences from a small grammar:

    sentiment  positive | negative   "i love him." ... "he is such a kind friend." ... "he happily eats lovely cake"
    certainty  hedged | confident    "maybe he probably ...", "i think ..." vs "clearly he surely ...", "i know ..."
    subject    he | she              "he", "she" or a name with matching pronouns ("mia" -> "she")
    topic      food | school | sport | animals   picks the verbs, nouns and places of one sentence

Both sentiment and certainty are carried by EVERY sentence: each sentence has a sentiment word ("love",
"kind", "happily", "lovely", "sad", ...), and every sentence after the first opens with a certainty marker
("maybe", "clearly", or one that carries both concepts: "hopefully", "sadly") and repeats the certainty in an
adverb ("probably" / "surely"). After the first sentence a story also keeps a *voice* (`_voice`): even its
neutral words ("eats" or "cooks", "probably" or "possibly", "man" or "boy") are narrowed by its sentiment and
certainty. So almost every next word depends on both concepts, and a model trained on these stories keeps
them in its residual stream at nearly every position, not only where a sentiment word comes next.
The first sentence may be unmarked: a story may start with "he is such a" (no context), and then both
sentiments are equally likely.

The same grammar generates the stories and checks them: `check_sentence` accepts exactly the sentences
that `generate_story` can write as a story's first sentence (the voice is a habit of the storyteller, not a
rule of grammar, so a later sentence out of voice is still grammatical).
"""
from __future__ import annotations

import functools
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
# Markers that carry both concepts at once ("hopefully" is hedged and positive, "sadly" confident and negative).
FUSED_MARKERS = {
    ("positive", "hedged"): ("hopefully", "with luck"), ("negative", "hedged"): ("i fear that", "i worry that"),
    ("positive", "confident"): ("luckily", "thankfully"), ("negative", "confident"): ("sadly", "unfortunately"),
}
CERTAINTY_ADVERBS = {"hedged": ("probably", "possibly"), "confident": ("surely", "certainly")}
FEEL = {"positive": ("love", "like", "adore", "trust"), "negative": ("hate", "dislike", "fear", "distrust")}
ADJECTIVES = {
    "positive": ("kind", "nice", "good", "sweet", "lovely", "friendly", "brave", "funny", "gentle"),
    "negative": ("rude", "mean", "bad", "nasty", "cruel", "lazy", "selfish", "grumpy", "boring"),
}
PERSON_NOUNS = {"he": ("man", "boy", "guy", "person", "friend"), "she": ("woman", "girl", "lady", "person", "friend")}
SENTIMENT_NOUNS = {"positive": ("hero", "star", "darling"), "negative": ("liar", "bully", "jerk", "fool")}
FEELINGS = {"positive": ("happy", "smile", "laugh"), "negative": ("sad", "angry", "cry")}
SENTIMENT_ADVERBS = {"positive": ("happily", "gladly", "proudly"), "negative": ("rudely", "angrily", "grumpily")}
THING_ADJECTIVES = {"positive": ("lovely", "great", "fun", "fine"), "negative": ("nasty", "awful", "dull", "gross")}
ENDINGS = {  # "{subj}"/"{obj}"/"{adv}" become the person and a certainty adverb; each carries the sentiment
    "positive": ("{subj} {adv} makes me {feeling}", "i {adv} hope to see {obj} again", "i am {adv} glad we met"),
    "negative": ("{subj} {adv} makes me {feeling}", "i {adv} never want to see {obj} again",
                 "i am {adv} sorry we met"),
}
TOPICS = {  # verbs, things ("{a}" is the sentiment adjective), places: things and places differ by sentiment
    "food": (("eats", "cooks", "bakes", "buys"),
             {"positive": ("{a} pizza", "{a} cake", "{a} cookies", "{a} pasta"),
              "negative": ("{a} soup", "{a} bread", "{a} rice", "{a} beans")},
             {"positive": ("at home", "at the party"), "negative": ("in the kitchen", "at the market")}),
    "school": (("reads", "studies", "writes", "learns"),
               {"positive": ("{a} books", "{a} poems", "{a} art"), "negative": ("{a} math", "{a} history",
                                                                               "{a} science")},
               {"positive": ("at school", "in the library"), "negative": ("in class", "at the desk")}),
    "sport": (("plays", "watches"),
              {"positive": ("{a} football", "{a} tennis", "{a} golf"), "negative": ("{a} soccer", "{a} basketball",
                                                                                 "{a} rugby")},
              {"positive": ("in the park", "on the beach"), "negative": ("at the gym", "on the field")}),
    "animals": (("feeds", "walks", "pets", "brushes"),
                {"positive": ("the {a} dog", "the {a} cat"), "negative": ("the {a} horse", "the {a} rabbits")},
                {"positive": ("in the garden", "at the zoo"), "negative": ("on the farm", "in the barn")}),
}
TIMES = {"hedged": ("sometimes", "now and then"), "confident": ("every day", "every morning")}

SENTIMENTS = ("positive", "negative")
CERTAINTIES = ("hedged", "confident")

# Words that reveal a sentiment: the TRUE label of a generated continuation.
POSITIVE_WORDS = frozenset(FEEL["positive"] + ADJECTIVES["positive"] + SENTIMENT_NOUNS["positive"]
                           + FEELINGS["positive"] + SENTIMENT_ADVERBS["positive"] + THING_ADJECTIVES["positive"]
                           + ("hope", "glad", "hopefully", "luck", "luckily", "thankfully"))
NEGATIVE_WORDS = frozenset(FEEL["negative"] + ADJECTIVES["negative"] + SENTIMENT_NOUNS["negative"]
                           + FEELINGS["negative"] + SENTIMENT_ADVERBS["negative"] + THING_ADJECTIVES["negative"]
                           + ("never", "sorry", "fear", "worry", "sadly", "unfortunately"))
CERTAINTY_WORDS = {w: c for c, ws in CERTAINTY_ADVERBS.items() for w in ws}
ALL_MARKERS = {c: CERTAINTY_MARKERS[c] + sum((FUSED_MARKERS[s, c] for s in SENTIMENTS), ()) for c in CERTAINTIES}
TOPIC_WORDS = {t: frozenset(w for phrase in verbs + nouns["positive"] + nouns["negative"] for w in phrase.split()
                            if w not in ("the", "{a}")) for t, (verbs, nouns, _) in TOPICS.items()}

# Story shapes: "open" reveals the sentiment, "such" is "he is such a ...", "topic" and "end" as named.
FORMS = (
    (("open", "such", "topic", "end"), 3), (("open", "such", "topic"), 2), (("open", "such", "end"), 2),
    (("open", "topic", "such"), 2), (("open", "topic", "such", "end"), 2), (("open", "such"), 1),
    (("such", "topic", "end"), 2), (("such", "topic"), 1), (("such", "end"), 1),
    (("topic", "such", "end"), 1), (("topic", "such"), 1),
)
MIN_WORDS, MAX_WORDS = 12, 48  # words as text.split() counts them; at most 60 tokens with "." (n_positions 64)
UNMARKED_FIRST_PROB = 0.5  # chance that the first sentence has no certainty marker (all later ones have one)
NAME_AGAIN_PROB = 0.2  # chance that a later mention repeats the name instead of the pronoun


@dataclass
class Story:
    """A generated story: its text, its words (one per token, "." separate) and per-word labels."""
    text: str
    words: list[str]
    labels: dict[str, list[str]]            # concept -> one label per word ("none" until revealed)
    concepts: dict[str, str] = field(default_factory=dict)  # the story's hidden values


def _voice(options: tuple[str, ...], *values: str) -> tuple[str, ...]:
    """A story's voice after its first sentence: each list of words is narrowed by the story's other concepts,
    so that nearly every next word depends on both sentiment and certainty. The first value of each concept
    ("positive", "hedged") keeps the words at even places, the second value those at odd places; a list too
    short to split is kept whole. The first sentence uses every word, so the voice never gives a concept
    away before a word that means it has been read."""
    for value in values:
        if len(options) >= 2:
            options = options[0::2] if value in (SENTIMENTS[0], CERTAINTIES[0]) else options[1::2]
    return options


def _slots(kind: str, sentiment: str, topic: str, subj: str, obj: str, gender: str,
           certainty: str | None, later: bool = False) -> list[tuple[str, ...]]:
    """The grammar of one sentence: a list of slots, each a tuple of phrases to choose from.
    `certainty` None is an unmarked sentence (no marker, no certainty adverb); `later` narrows the words
    to the story's voice (see `_voice`)."""
    def voice(options: tuple[str, ...], *values: str) -> tuple[str, ...]:
        return _voice(options, *values) if later else options

    s, c = sentiment, certainty
    markers = voice(CERTAINTY_MARKERS[c], s) + FUSED_MARKERS[s, c] if c else ("",)
    advs = voice(CERTAINTY_ADVERBS[c], s) if c else ("",)
    if kind == "open":
        body = [("i",), advs, voice(FEEL[s], c), (obj,)]
    elif kind == "such":
        nouns = voice(PERSON_NOUNS[gender], c) + SENTIMENT_NOUNS[s]
        body = [(subj,), ("is",), advs, ("such a",),
                tuple(f"{a} {n}" for a in voice(ADJECTIVES[s], c) for n in nouns) + voice(SENTIMENT_NOUNS[s], c)]
    elif kind == "topic":
        verbs, things, places = TOPICS[topic]
        body = [(subj,), advs, voice(SENTIMENT_ADVERBS[s], c), voice(verbs, s, c),
                tuple(t.format(a=a) for t in voice(things[s], c) for a in voice(THING_ADJECTIVES[s], c)),
                voice(places[s], c) + (voice(TIMES[c], s) if c else ())]
    elif kind == "end":
        body = [tuple(e.format(subj=subj, obj=obj, feeling=f, adv=adv) for e in voice(ENDINGS[s], c)
                      for f in (voice(FEELINGS[s], c) if "{feeling}" in e else ("",)) for adv in advs)]
    else:
        raise ValueError(f"kind must be one of open, such, topic, end; got {kind!r}")
    return [markers, *body]


def _render(phrases: list[str]) -> str:
    return " ".join(" ".join(p.split()) for p in phrases if p.strip()) + "."


def generate_story(rng: random.Random) -> Story:
    """One story drawn with `rng` (a `random.Random`; no global random state is touched)."""
    if not isinstance(rng, random.Random):
        raise TypeError(f"rng must be a random.Random (e.g. random.Random(0)); got {type(rng).__name__}")
    while True:
        concepts = {"sentiment": rng.choice(SENTIMENTS), "certainty": rng.choice(CERTAINTIES),
                    "subject": rng.choice(SUBJECTS), "topic": rng.choice(tuple(TOPICS))}
        form = rng.choices([f for f, _ in FORMS], weights=[w for _, w in FORMS])[0]
        gender = NAMES.get(concepts["subject"], concepts["subject"])
        unmarked_first = rng.random() < UNMARKED_FIRST_PROB
        sentences, named = [], False
        for n, kind in enumerate(form):
            person = concepts["subject"] if not named or rng.random() < NAME_AGAIN_PROB else gender
            named = True
            obj = OBJECT_PRONOUN[person] if person in OBJECT_PRONOUN else person
            certainty = None if n == 0 and unmarked_first else concepts["certainty"]
            slots = _slots(kind, concepts["sentiment"], concepts["topic"], person, obj, gender, certainty,
                           later=n > 0)
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
    for certainty, markers in ALL_MARKERS.items():
        for marker in markers:
            m = marker.split()
            if words[i:i + len(m)] == m:
                other = [o.split() for c, ms in ALL_MARKERS.items() if c != certainty for o in ms]
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
        if w in CERTAINTY_WORDS:
            reveal("certainty", i, CERTAINTY_WORDS[w])
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
def _sentence_grammars() -> tuple[tuple[tuple[str, ...], ...], ...]:
    """Every sentence shape as a tuple of slots (each a tuple of phrases): the checker's ground truth."""
    out = set()
    for kind in ("open", "such", "topic", "end"):
        for sentiment in SENTIMENTS:
            for topic in (TOPICS if kind == "topic" else ("food",)):
                for person in SUBJECTS:
                    gender = NAMES.get(person, person)
                    obj = OBJECT_PRONOUN.get(person, person)
                    for certainty in (None, *CERTAINTIES):
                        slots = _slots(kind, sentiment, topic, person, obj, gender, certainty)
                        out.add(tuple(tuple(" ".join(p.split()) for p in slot) for slot in slots))
    return tuple(sorted(out))


def _matches(words: list[str], slots: tuple[tuple[str, ...], ...]) -> bool:
    if not slots:
        return not words
    for phrase in slots[0]:
        p = phrase.split()
        if words[:len(p)] == p and _matches(words[len(p):], slots[1:]):
            return True
    return False


@functools.lru_cache(maxsize=100_000)
def _check(sentence: str) -> bool:
    if not sentence.endswith("."):
        return False
    words = sentence[:-1].split()
    return any(_matches(words, slots) for slots in _sentence_grammars())


def vocabulary() -> list[str]:
    """All words the grammar uses (plus "."), sorted."""
    return sorted({w for slots in _sentence_grammars() for slot in slots for p in slot for w in p.split()} | {"."})


def split_sentences(text: str) -> tuple[list[str], str]:
    """(complete sentences, each ending with ".", and the unfinished rest of the text)."""
    parts = [p.strip() for p in text.strip().split(".")]
    return [p + "." for p in parts[:-1]], parts[-1]


def check_sentence(sentence: str) -> bool:
    """True when the grammar can write `sentence` (one sentence ending with ".")."""
    return _check(" ".join(sentence.split()))


def is_grammatical(text: str) -> bool:
    """True when every complete sentence of `text` is one the grammar can write (an unfinished last one is ignored)."""
    complete, _ = split_sentences(text.replace("<|endoftext|>", " "))
    return all(check_sentence(s) for s in complete)


def _starts(words: list[str], slots: tuple[tuple[str, ...], ...]) -> bool:
    if not words:
        return True
    for phrase in slots[:1][0] if slots else ():
        p = phrase.split()
        n = min(len(p), len(words))
        if words[:n] == p[:n] and (n < len(p) or _starts(words[n:], slots[1:])):
            return True
    return False


@functools.lru_cache(maxsize=100_000)
def is_sentence_start(text: str) -> bool:
    """True when the grammar can continue `text`, the start of one sentence (no "."), to a sentence it writes."""
    words = text.split()
    return any(_starts(words, slots) for slots in _sentence_grammars())


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
