"""Tests for saelab.tinyworld: the story generator, its grammar, the tokenizer, the bundled files, the build."""
import random

import pytest
import torch

from saelab.sae import load_sae_file
from saelab.tinyworld import (FILES_DIR, MLP_HOOK, SAE_HOOK, SAE_PATH, NEGATIVE_WORDS, POSITIVE_WORDS,
                              build_tokenizer, check_sentence, continuation_sentiment, generate_stories,
                              generate_story, is_grammatical, load_tokenizer, unknown_words)
from saelab.tinyworld.generator import split_words, vocabulary


@pytest.fixture(scope="module")
def stories():
    return generate_stories(300, seed=7)


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def test_same_seed_same_stories_other_seed_other_stories():
    assert [s.text for s in generate_stories(20, seed=3)] == [s.text for s in generate_stories(20, seed=3)]
    assert [s.text for s in generate_stories(20, seed=3)] != [s.text for s in generate_stories(20, seed=4)]
    assert generate_story(random.Random(5)).text == generate_story(random.Random(5)).text


def test_generate_story_wants_a_random_generator():
    with pytest.raises(TypeError, match="random.Random"):
        generate_story(0)


def test_stories_are_short_lowercase_and_use_a_small_vocabulary(stories):
    for s in stories:
        assert s.text == s.text.lower()
        assert 2 <= s.text.count(".") <= 4
        assert 12 <= len(s.text.split()) <= 48
        assert len(s.words) + 2 <= 64  # bos + tokens + eos fit the model's positions
    assert len(vocabulary()) < 300


def test_sentiment_label_matches_the_words_used(stories):
    for s in stories:
        sentiment = s.concepts["sentiment"]
        own, other = (POSITIVE_WORDS, NEGATIVE_WORDS) if sentiment == "positive" else (NEGATIVE_WORDS, POSITIVE_WORDS)
        assert not set(s.words) & other, s.text
        first = next(i for i, w in enumerate(s.words) if w in own)  # revealed at the first sentiment word
        assert s.labels["sentiment"] == ["none"] * first + [sentiment] * (len(s.words) - first)
        assert continuation_sentiment(s.text) == sentiment


def test_every_sentence_carries_sentiment_and_later_ones_certainty(stories):
    from saelab.tinyworld.generator import ALL_MARKERS, CERTAINTY_ADVERBS, split_sentences
    for s in stories:
        own = POSITIVE_WORDS if s.concepts["sentiment"] == "positive" else NEGATIVE_WORDS
        sentences, rest = split_sentences(s.text)
        assert rest == ""
        for n, sentence in enumerate(sentences):
            words = split_words(sentence)
            assert set(words) & own, sentence
            if n > 0:  # only the first sentence may leave the certainty open
                c = s.concepts["certainty"]
                assert any(sentence.startswith(m + " ") for m in ALL_MARKERS[c]), sentence
                assert set(words) & set(CERTAINTY_ADVERBS[c]), sentence
        assert s.labels["certainty"][-1] == s.concepts["certainty"]


def test_later_sentences_keep_the_story_voice(stories):
    """After the first sentence the neutral words depend on the story's concepts ("probably" only in positive
    hedged stories, "possibly" only in negative ones); in the first sentence they never do."""
    from saelab.tinyworld.generator import split_sentences
    later, first = {}, {}
    for s in generate_stories(3000, seed=11):
        sentences, _ = split_sentences(s.text)
        key = (s.concepts["sentiment"], s.concepts["certainty"])
        for n, sentence in enumerate(sentences):
            for w in split_words(sentence):
                (later if n else first).setdefault(w, set()).add(key)
    assert later["probably"] == {("positive", "hedged")} and later["possibly"] == {("negative", "hedged")}
    assert later["eats"] | later["cooks"] | later["bakes"] | later["buys"] == {
        ("positive", "hedged"), ("negative", "hedged"), ("positive", "confident"), ("negative", "confident")}
    assert len(later["eats"]) == 1 and later["eats"] != later["buys"]  # each verb keeps to one voice
    assert {k[0] for k in first["probably"]} == {"positive", "negative"}  # no leak before a sentiment word
    assert {k[0] for k in first["eats"]} == {"positive", "negative"}


def test_fused_markers_reveal_sentiment_and_certainty():
    from saelab.tinyworld.generator import make_story
    s = make_story("sadly he is surely such a rude man. i fear that he is possibly such a rude man.")
    assert s.labels["sentiment"][0] == "negative" and s.labels["certainty"][0] == "confident"
    s = make_story("i fear him. i worry that i possibly distrust him.")
    assert s.labels["sentiment"][1] == "negative"           # "fear" as a verb, not the marker "i fear that"
    assert s.labels["certainty"][:5] == ["none"] * 5        # "i fear him. i" says nothing about certainty
    assert s.labels["certainty"][5:] == ["hedged"] * 7    # revealed at "worry", where the marker is clear
    assert check_sentence("hopefully he is probably such a kind man.")
    assert not check_sentence("hopefully he is surely such a kind man.")  # a hedged marker, a confident adverb


def test_other_labels_match_the_story(stories):
    for s in stories:
        assert s.labels["subject"][-1] == s.concepts["gender"]
        assert s.labels["certainty"][-1] in ("none", s.concepts["certainty"])
        assert s.labels["topic"][-1] in ("none", s.concepts["topic"])
        assert all(len(v) == len(s.words) for v in s.labels.values())


def test_labels_align_with_tokenizer_tokens(stories, tokenizer):
    for s in stories[:50]:
        tokens = tokenizer.convert_ids_to_tokens(tokenizer(s.text)["input_ids"])
        assert [t.lstrip("Ġ") for t in tokens] == s.words


def test_sentiment_is_balanced_without_context():
    starts = [s for s in generate_stories(4000, seed=1) if s.text.startswith("he is such a")]
    negative = sum(s.concepts["sentiment"] == "negative" for s in starts) / len(starts)
    assert len(starts) > 30 and 0.3 < negative < 0.7


def test_grammar_accepts_generated_stories_and_rejects_scrambled_ones(stories):
    assert all(is_grammatical(s.text) for s in stories)
    words = stories[0].text.rstrip(".").split()
    random.Random(0).shuffle(words)
    assert not is_grammatical(" ".join(words) + ".")
    assert check_sentence("he is such a kind man.")
    assert not check_sentence("he is such a kind woman.")      # gender must agree
    assert not check_sentence("he is such a kind liar.")       # sentiment must agree within a sentence
    assert check_sentence("maybe he probably happily eats lovely cake at home.")
    assert not check_sentence("maybe he surely happily eats lovely cake at home.")  # certainty must agree
    assert not check_sentence("maybe he probably angrily eats lovely cake at home.")  # and sentiment too
    assert is_grammatical("i love him. he is such a")          # an unfinished last sentence is not judged
    assert not is_grammatical("i love him. he is such a kind friend friend.")


def test_continuation_sentiment():
    assert continuation_sentiment(" rude man. he makes me angry.") == "negative"
    assert continuation_sentiment(" kind friend.") == "positive"
    assert continuation_sentiment(" person.") == "none"


def test_tokenizer_round_trip(stories, tokenizer):
    for s in stories:
        assert tokenizer.decode(tokenizer(s.text)["input_ids"]) == s.text
    assert tokenizer.eos_token_id == tokenizer.bos_token_id == tokenizer.pad_token_id == 0
    assert {"he", "Ġhe", "."} <= set(tokenizer.get_vocab())


def test_unknown_words_are_reported_not_fatal(tokenizer):
    assert unknown_words(tokenizer, "he is such a kind friend.") == []
    assert unknown_words(tokenizer, "He is such a wonderful friend") == ["He", "wonderful"]
    assert unknown_words(tokenizer, "a wonderful wonderful friend") == ["wonderful"]  # listed once
    assert tokenizer.unk_token_id in tokenizer("a wonderful day")["input_ids"]


def test_bundled_model_and_sae_load_offline():
    from transformer_lens.model_bridge import TransformerBridge
    assert SAE_PATH.is_file(), f"missing {SAE_PATH}: run python -m saelab.tinyworld.build"
    bridge = TransformerBridge.boot_transformers(str(FILES_DIR), device="cpu")
    tokens = bridge.to_tokens("i hate him. he is such a")
    assert tokens[0, 0].item() == 0 and tokens.shape[1] == 9
    _, cache = bridge.run_with_cache(tokens, names_filter=[SAE_HOOK, MLP_HOOK])
    d_model = bridge.cfg.d_model
    assert bridge.cfg.n_layers == 4 and cache[SAE_HOOK].shape == (1, 9, d_model)
    assert cache[MLP_HOOK].shape == (1, 9, d_model)
    sae = load_sae_file(SAE_PATH)
    assert sae.hook_name == SAE_HOOK and sae.d_model == d_model and sae.activation == "topk"
    assert sae.encode(cache[SAE_HOOK]).shape == (1, 9, sae.n_latents)
    assert load_tokenizer().decode(tokens[0, 1:]) == "i hate him. he is such a"


def test_quick_build_writes_a_loadable_world(tmp_path):
    from transformers import GPT2LMHeadModel
    from saelab.tinyworld import build
    summary = build.main(["--out", str(tmp_path), "--quick"])
    assert summary["steps"] == 3
    for name in ("config.json", "model.safetensors", "tokenizer.json", "sae.pt", "sae.pt.json"):
        assert (tmp_path / name).is_file(), name
    model = GPT2LMHeadModel.from_pretrained(tmp_path)
    sae = load_sae_file(tmp_path / "sae.pt")
    assert sae.hook_name == SAE_HOOK and sae.d_model == model.config.n_embd
    with torch.no_grad():
        hidden = model(torch.tensor([[0, 5, 6]]), output_hidden_states=True).hidden_states[3]
    assert sae(hidden)[2].shape == hidden.shape


@pytest.mark.parametrize("concept, value", [("sentiment", "negative"), ("certainty", "hedged")])
def test_bundled_sae_has_a_latent_that_tells_the_concept_per_story(concept, value):
    """Issue #3's target: pick the latent on some stories, check it on others (AUROC of its per-story mean)."""
    from saelab.activations import story_activations
    from saelab.metrics import concept_auroc
    from saelab.models import load_model
    from saelab.pretrained import load_sae

    model, sae = load_model("tiny-world"), load_sae("tiny-world")

    def per_story_auroc(seed: int) -> torch.Tensor:
        stories = generate_stories(150, seed=seed)
        x, labels = story_activations(model, sae.hook_name, stories)
        story = torch.tensor([i for i, s in enumerate(stories) for _ in s.words])
        return concept_auroc(sae.encode(x), labels[concept], value, groups=story)

    best = int(per_story_auroc(2001).argmax())
    assert per_story_auroc(2002)[best] >= 0.9


BUNDLED = ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
           "sae.pt", "sae.pt.json", "build.json")


@pytest.mark.parametrize("name", BUNDLED)
def test_every_bundled_file_is_present_and_committed(name):
    """Every offline notebook and many tests need these files: missing, the build fails here (never a skip)."""
    import subprocess
    from pathlib import Path

    path = FILES_DIR / name
    assert path.is_file() and path.stat().st_size > 0, f"missing {path}: run python -m saelab.tinyworld.build"
    root = Path(__file__).resolve().parents[1]
    if (root / ".git").exists():  # a clean clone must have it too
        tracked = subprocess.run(["git", "ls-files", "--error-unmatch", str(path.relative_to(root))], cwd=root,
                                 capture_output=True)
        assert tracked.returncode == 0, f"{path.relative_to(root)} is not committed: `git add` it"
