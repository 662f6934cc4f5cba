import math

import pytest
import torch

from saelab.sentiment import (fluency, fraction_negative, is_negative, is_well_formed, mean_fluency, method_for,
                              neutral_context, sentiment_score, share_well_formed, vader_compound)

pytestmark = pytest.mark.usefixtures("one_thread")

def test_vader_sign_on_clear_examples():
    assert vader_compound("he is such a good person") > 0.3
    assert vader_compound("he is such a shit I will never be able to do it again") < -0.3
    assert abs(vader_compound("he walks to the station")) < 0.05
    assert is_negative("i hate him, he is awful") and not is_negative("i love him, he is wonderful")


def test_tiny_world_scores_use_the_generator_words():
    assert sentiment_score(" rude man. i hate him.", "tiny-world") == -1.0
    assert sentiment_score(" kind friend.", "tiny-world") == 1.0
    assert sentiment_score(" he eats pizza.", "tiny-world") == 0.0
    assert fraction_negative([" rude man.", " kind girl.", " bully.", " eats soup"], "tiny-world") == 0.5
    assert fraction_negative([], "vader") == 0.0


def test_method_for_world_and_bad_method():
    assert method_for("tiny-world") == "tiny-world" and method_for("gpt2") == "vader"
    with pytest.raises(ValueError, match="method must be one of"):
        sentiment_score("x", "textblob")


@pytest.fixture(scope="module")
def small_model(small_hf_dir):
    from saelab.models import load_model
    return load_model(str(small_hf_dir))


def test_fluency_is_the_mean_log_likelihood_of_the_continuation(small_model):
    model = small_model
    cont = model.to_tokens(" is a good", prepend_bos=False)  # [1, 3]
    full = torch.cat([model.to_tokens("he"), cont], dim=1)
    with torch.no_grad():
        logp = model(full).log_softmax(-1)[0]
    want = sum(logp[i, full[0, i + 1]].item() for i in range(1, full.shape[1] - 1)) / cont.shape[1]
    got_tokens = fluency(model, "he", cont)
    got_texts = fluency(model, "he", [" is a good", ""])
    assert got_tokens[0] == pytest.approx(want, abs=1e-4)
    assert got_texts[0] == pytest.approx(want, abs=1e-4) and math.isnan(got_texts[1])
    assert got_tokens[0] < 0


def test_well_formed_is_the_grammar_checker_and_ignores_sentiment():
    prompt = "i love him. he is such a"
    assert is_well_formed(prompt, " rude man. he")            # negative after a positive context: still a sentence
    assert is_well_formed(prompt, " kind man. i")
    assert not is_well_formed(prompt, " rude rude rude rude")   # the sentence the prompt started never ends
    assert not is_well_formed(prompt, " kind liar. he")        # sentiment must agree within a sentence
    assert not is_well_formed(prompt, " man kind. he")
    assert not is_well_formed(prompt, " mean bully. of cruel")   # the next sentence cannot go on like this
    assert is_well_formed(prompt, " mean bully. of course")
    assert share_well_formed(prompt, [" rude man.", " man man man man", " bully. i", " kind woman."]) == 0.5
    assert share_well_formed(prompt, []) == 0.0


def test_neutral_context_drops_the_sentiment_sentence():
    assert neutral_context("i love him. he is such a") == "he is such a"
    assert neutral_context("he is such a") == "he is such a"
    with pytest.raises(ValueError, match="unfinished sentence"):
        neutral_context("i love him.")


def test_mean_fluency_skips_empty_continuations(small_model):
    scores = fluency(small_model, "he", [" is a good", ""])
    assert mean_fluency(small_model, "he", [" is a good", ""]) == pytest.approx(scores[0])
    assert math.isnan(mean_fluency(small_model, "he", [""]))
