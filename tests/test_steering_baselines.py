import warnings

import pytest
import torch

from saelab import steering, steering_baselines as sb

pytestmark = pytest.mark.usefixtures("one_thread")

HOOK = "blocks.1.hook_resid_post"
PROMPT = "i love him. he is a"


@pytest.fixture(scope="module")
def model(small_hf_dir):
    from saelab.models import load_model
    return load_model(str(small_hf_dir))


def test_random_unit_direction_is_unit_seeded_and_isotropic():
    a, b = sb.random_unit_direction(64, 1), sb.random_unit_direction(64, 2)
    assert a.shape == (64,) and abs(float(a.norm()) - 1) < 1e-5
    torch.testing.assert_close(a, sb.random_unit_direction(64, 1))
    assert not torch.allclose(a, b)
    mean = torch.stack([sb.random_unit_direction(64, s) for s in range(400)]).mean(0)
    assert float(mean.norm()) < 0.15  # no preferred direction (400 unit vectors: expected norm 0.05)


def test_labelled_prompts_tiny_world_are_labelled_fresh_per_seed_and_end_where_steering_acts():
    from saelab.tinyworld.generator import continuation_sentiment

    sets = sb.labelled_prompts("tiny-world", 16, 0)
    assert {k: len(v) for k, v in sets.items()} == {"negative": 16, "positive": 16}
    for sentiment, prompts in sets.items():
        assert all(p.endswith(" he is such a") for p in prompts)
        assert all(continuation_sentiment(p) == sentiment for p in prompts)
    assert sb.labelled_prompts("tiny-world", 16, 0) == sets
    assert set(sb.labelled_prompts("tiny-world", 16, 1)["negative"]) != set(sets["negative"])


def test_labelled_prompts_gpt2_sample_the_hand_written_sets_and_refuse_too_many():
    from saelab.prompts import NEGATIVE_PROMPTS, POSITIVE_PROMPTS

    sets = sb.labelled_prompts("gpt2", 8, 3)
    assert set(sets["negative"]) <= set(NEGATIVE_PROMPTS) and set(sets["positive"]) <= set(POSITIVE_PROMPTS)
    assert len(set(sets["negative"])) == 8
    with pytest.raises(ValueError, match="12 prompts each"):
        sb.labelled_prompts("gpt2", 13, 0)
    with pytest.raises(ValueError, match="at least one"):
        sb.labelled_prompts("tiny-world", 0, 0)


def test_last_token_residuals_match_one_run_per_prompt_in_order(model):
    prompts = ["i love him", "he is a good", "he", "i love him. he is a"]  # three lengths, one repeated
    got = sb.last_token_residuals(model, HOOK, prompts)
    assert got.shape == (4, model.cfg.d_model)
    for row, p in zip(got, prompts):
        _, cache = model.run_with_cache(p, names_filter=HOOK)
        torch.testing.assert_close(row, cache[HOOK][0, -1], atol=1e-5, rtol=1e-5)


def test_difference_of_means_is_negative_mean_minus_positive_mean(model):
    neg, pos = ["he is bad", "i love him. he is a bad"], ["he is good", "he is a good"]
    want = sb.last_token_residuals(model, HOOK, neg).mean(0) - sb.last_token_residuals(model, HOOK, pos).mean(0)
    torch.testing.assert_close(sb.difference_of_means(model, HOOK, neg, pos), want)
    with pytest.raises(ValueError, match="at least one negative and one positive"):
        sb.difference_of_means(model, HOOK, [], pos)


def test_prompted_scores_are_scored_as_continuations_of_the_prompt_alone(model):
    got = sb.prompted_scores(model, "he is bad.", PROMPT, seed=5, n=3, max_new_tokens=2)
    want = steering.generate(model, "he is bad. " + PROMPT, n=3, max_new_tokens=2, seed=5)
    assert got.texts == want.texts
    again = steering.score_samples(model, steering.Samples(PROMPT, want.texts, want.tokens))
    assert got.fluency == pytest.approx(again.fluency) and got.negative == again.negative


def test_negative_prefix_is_a_negative_sentence():
    from saelab.tinyworld.generator import continuation_sentiment

    for seed in range(3):
        assert continuation_sentiment(sb.negative_prefix("tiny-world", seed)) == "negative"
        assert sb.negative_prefix("gpt2", seed).endswith(".")


def test_compare_arms_adds_the_same_length_along_each_direction(model, monkeypatch):
    added = []
    real = steering.steered_scores

    def spy(model, hook_name, vector, scale, *args, **kwargs):
        added.append(float(vector.norm()) * scale)
        return real(model, hook_name, vector, scale, *args, **kwargs)

    monkeypatch.setattr(sb, "steered_scores", spy)
    monkeypatch.setattr(sb, "negative_prefix", lambda world, seed: "he is bad.")  # the test model reads 16 tokens
    sae_direction = 3.0 * sb.random_unit_direction(model.cfg.d_model, 99)
    with warnings.catch_warnings():  # GPT-2's labelled prompts hold words the test model reads as <unk>
        warnings.simplefilter("ignore")
        out = sb.compare_arms(model, HOOK, sae_direction, 5.0, PROMPT, [0, 1], "gpt2", n_labelled=2, n=2,
                              max_new_tokens=2, progress=False)
    assert list(out["scores"]) == list(sb.ARMS) and all(len(v) == 2 for v in out["scores"].values())
    assert added == pytest.approx([0.0, 5.0, 5.0, 5.0] * 2, abs=1e-4)  # unsteered, random, diff-means, SAE
    assert len(out["prefixes"]) == 2 and len(out["directions"]["random"]) == 2
    assert not torch.allclose(*out["directions"]["random"])  # a new random direction per seed


def test_compare_arms_refuses_bad_input(model):
    v = sb.random_unit_direction(model.cfg.d_model, 0)
    with pytest.raises(ValueError, match="at least one seed"):
        sb.compare_arms(model, HOOK, v, 5.0, PROMPT, [], "gpt2")
    with pytest.raises(ValueError, match="length must be positive"):
        sb.compare_arms(model, HOOK, v, 0.0, PROMPT, [0], "gpt2")


def test_arms_table_and_plot_show_every_arm_and_seed():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scores = {arm: [steering.Scores(0.1 * i, 0.9, -1.5), steering.Scores(0.2, 1.0, -1.6)]
              for i, arm in enumerate(sb.ARMS)}
    rows = sb.arms_table(scores)
    assert [r["arm"] for r in rows] == list(sb.ARMS) and rows[2]["negative"] == [pytest.approx(0.2), 0.2]
    fig, axes = plt.subplots(1, 2)
    sb.plot_arms(axes, scores)
    assert [t.get_text() for t in axes[0].get_xticklabels()] == list(sb.ARMS)
    assert axes[1].get_ylabel() == "share well formed" and len(axes[0].lines) == len(sb.ARMS)
    plt.close(fig)
