"""Offline autointerp on a hand-built latent whose truth is a known conjunction."""
import pytest
import torch

from saelab import autointerp as ai


def world(n=600):
    words = [["he", "is", "kind", ".", "sad", "."][i % 6] for i in range(n)]
    sentiment = ["negative" if (i // 6) % 2 else "positive" for i in range(n)]
    subject = ["she" if (i // 12) % 2 else "he" for i in range(n)]
    facts = ai.Facts({"word": words, "sentiment": sentiment, "subject": subject})
    truth = torch.tensor([w == "." and s == "negative" for w, s in zip(words, sentiment)])
    acts = truth.float() * (1 + torch.arange(n) % 5)  # fires on "." in negative stories, with varied strength
    stories = torch.arange(n) // 6
    return facts, acts, stories


def test_explainer_finds_the_conjunction():
    facts, acts, _ = world()
    exp = ai.explain(acts, facts)
    assert set(exp.terms) == {("word", "."), ("sentiment", "negative")}
    assert str(exp) == 'sentiment = negative and word = "."'


def test_scorers_give_the_true_explanation_full_marks_and_calibrate_against_broad_and_narrow():
    facts, acts, stories = world()
    good = ai.Explanation((("sentiment", "negative"), ("word", ".")))
    scores = ai.score_all(acts, good, facts, stories)
    assert scores["detection"] == pytest.approx(1.0) and scores["simulation"] > 0.85
    assert scores["fuzzing"] == pytest.approx(1.0)
    broad = ai.too_broad(good)
    assert broad.terms == (("sentiment", "negative"),)
    narrow = ai.too_narrow(good, acts, facts)
    assert len(narrow.terms) == 3 and "subject" in dict(narrow.terms)
    b = ai.score_all(acts, broad, facts, stories)
    assert b["detection"] < scores["detection"] and b["simulation"] < scores["simulation"]
    assert b["fuzzing"] < scores["fuzzing"]
    nar = ai.score_all(acts, narrow, facts, stories)
    assert nar["detection"] < scores["detection"] and nar["simulation"] < scores["simulation"]


def test_too_narrow_loses_recall_on_the_strong_quantiles():
    facts, acts, stories = world()
    single = ai.Explanation((("word", "."),))
    narrow = ai.Explanation((("sentiment", "negative"), ("word", "sad")))
    # never holds where it fires (TPR 0), and holds on 50 of the 500 silent tokens ("sad" in negative stories)
    assert ai.detection_score(acts, narrow, facts)["mean"] == pytest.approx(0.5 * (0 + 450 / 500))
    assert ai.simulation_score(acts, single, facts) < ai.simulation_score(
        acts, ai.Explanation((("sentiment", "negative"), ("word", "."))), facts)


def test_too_broad_of_single_terms():
    facts, acts, _ = world()
    word = ai.too_broad(ai.Explanation((("word", "."),)))
    assert str(word) == "any token" and bool(word.holds(facts).all())
    label = ai.too_broad(ai.Explanation((("sentiment", "negative"),)))
    assert str(label) == "sentiment is known"


def test_bad_input_gets_clear_errors():
    facts, acts, stories = world()
    with pytest.raises(ValueError, match="one latent's activations"):
        ai.explain(acts[:-1], facts)
    with pytest.raises(ValueError, match="never fires"):
        ai.explain(torch.zeros(len(acts)), facts)
    with pytest.raises(ValueError, match="one value per token"):
        ai.Facts({"word": ["a", "b"], "sentiment": ["x"]})
    with pytest.raises(ValueError, match="unknown fact 'topic'"):
        ai.Explanation((("topic", "food"),)).holds(facts)


def test_widen_takes_the_broader_explanation_when_the_scorers_say_so():
    """A latent that fires on every negative token: `sentiment = negative and word = "."` is too narrow for it, and
    widening drops the word; the right explanation is kept as it is."""
    facts, acts, stories = world()
    negative = torch.tensor([v == "negative" for v in facts.facts["sentiment"]]).float()
    narrow = ai.Explanation((("sentiment", "negative"), ("word", ".")))
    widened, why = ai.widen(narrow, negative * (1 + torch.arange(len(negative)) % 3), facts, stories)
    assert widened.terms == (("sentiment", "negative"),)
    assert why[0].startswith("widened") and why[-1].startswith("kept")
    kept, why = ai.widen(narrow, acts, facts, stories)
    assert kept == narrow and why[0].startswith("kept") and "wins on 0 of 3" in why[0]


def test_calibration_variants_leave_out_what_cannot_be_built():
    facts, acts, _ = world()
    good = ai.Explanation((("sentiment", "negative"), ("word", ".")))
    assert set(ai.calibration_variants(good, acts, facts)) == {"explanation", "too broad", "too narrow"}
    known = ai.Explanation((("sentiment", "*"),))
    assert "too broad" not in ai.calibration_variants(known, acts, facts)
