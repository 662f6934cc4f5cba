"""Claim tests for notebook 02_finding_features.ipynb: each result sentence, checked against the executed notebook (offline).

Runs natively and on a second CPU code path with another seed offset (see the Makefile's `claims-second-path`).
"""
from __future__ import annotations

import pytest

from tests.claims.harness import notebook_values, register

NOTEBOOK = "02_finding_features.ipynb"
VALUES = {
        "k": "sae.k", "top_k": "len(tops[0].latents)", "shared": "len(shared)",
        "one_sided": "one_sided", "n_diffs": "len(diffs)",
        "bos_ratio": "bos_ratio",
        "most_firing_per_token": "[int((sae.encode(hook_activations(model, sae.hook_name, to_tokens(model, p))[0]) > 0)"
                                 ".sum(-1).max()) for p in prompts['blog']]",
        "n_rank_prompts": "[len(prompts['negative']), len(prompts['positive'])]",
        "best_last_auroc": "ranked[0]['auroc']", "n_perfect": "sum(r['auroc'] == 1.0 for r in ranked)",
        "best_every_auroc": "every[0]['auroc']",
        "n_held_out": "[len(held_negative), len(held_positive)]", "held_auroc": "held_auroc",
        "held_overlap": "len(set(prompts['negative'] + prompts['positive']) & "
                        "set(prompts['held_out_negative'] + prompts['held_out_positive']))",
        "card_contexts": "[(b, t) for _, b, t, _ in card.contexts]",
        "card_promoted": "[t.strip() for t, _ in card.promoted]",
        "per_token": "ours", "per_story": "per_story",
        "by_hand_last": "by_hand_last", "ranked_auroc": "ranked[0]['auroc']", "tied": "tied",
        "fired": "[len(fired), int(in_negative), int(at_stop)]", "probe": "probe",
        "best_token_latent_coverage": "float((held_out.dense([int(candidates[best])])[:, 0]"
                                      "[torch.tensor([x == 'negative' for x in labels])] > 0).float().mean())",
    }
register(NOTEBOOK, VALUES)


@pytest.fixture(scope="session")
def nb02() -> dict:
    return notebook_values(NOTEBOOK)


def test_02_top_latents_lists_look_alike(nb02):
    """ "In the tiny world the three top-10 lists are the same ten latents in a different order" """
    assert nb02["top_k"] == 10 and nb02["shared"] == 10


def test_02_top_latents_differences_are_one_sided(nb02):
    """ "most of the latents that differ most fire on one side only" """
    assert nb02["n_diffs"] >= 4 and nb02["one_sided"] > nb02["n_diffs"] / 2


def test_02_top_latents_a_handful_fire_at_each_token(nb02):
    """ "a handful of latents fire at each token (at most k: 32 for OpenAI's SAE, 16 for the tiny world's)" (counted
    at every token of the blog prompts)"""
    assert all(1 <= n <= 16 for n in nb02["most_firing_per_token"]) and max(nb02["most_firing_per_token"]) == 16


def test_02_bos_is_only_slightly_larger_in_the_tiny_world(nb02):
    """ "In the tiny world BOS is only slightly larger than the other positions" (GPT-2's outlier is the literature's,
    in prose; the cell prints only what it measured)"""
    assert 1.0 <= nb02["bos_ratio"] < 2.0


def test_02_contrast_single_latents_separate_at_the_last_token(nb02):
    """ "at the last token, where the sentiment is known, single latents separate negative from positive prompts
    perfectly (AUROC 1.0)" """
    assert nb02["best_last_auroc"] == 1.0 and nb02["n_perfect"] >= 2


def test_02_contrast_every_token_is_barely_above_chance(nb02):
    """ "over every token the best AUROC is barely above chance" """
    assert 0.5 < nb02["best_every_auroc"] < 0.65


def test_02_held_out_the_best_latent_separates_unseen_prompts(nb02):
    """ "the best one does so on held-out prompts too" (200 + 200 other generated prompts; issue #14: >= 0.9)"""
    assert nb02["n_rank_prompts"] == [40, 40] and nb02["n_held_out"] == [200, 200] and nb02["held_overlap"] == 0
    assert nb02["held_auroc"] == 1.0


def test_02_card_fires_at_the_end_of_negative_sentences(nb02):
    """ "In the tiny world this latent fires at the full stop that ends a negative sentence" """
    from saelab.tinyworld import continuation_sentiment

    assert len(nb02["card_contexts"]) >= 5
    for before, token in nb02["card_contexts"]:
        assert token == "." and continuation_sentiment(before.split(".")[-1]) == "negative", (before, token)


def test_02_card_promotes_negative_words(nb02):
    """ "the words it promotes most include negative ones (*sadly*, *unfortunately*, *grumpy*)" """
    assert {"sadly", "unfortunately", "grumpy"} <= set(nb02["card_promoted"])


def test_02_exercise_auroc_by_hand_matches_the_ranking_and_ties_are_most_pairs(nb02):
    """ "at their last token it should match the ranking. Over every token, most pairs are ties" """
    assert abs(nb02["by_hand_last"] - nb02["ranked_auroc"]) < 1e-6
    assert nb02["tied"] > 0.5


def test_02_truth_the_latent_is_a_conjunction(nb02):
    """ "About nine in ten of its firings are in negative stories, and most of them on a full stop: it is a
    conjunction latent" (offsets 0 / 1000 / 2000: 93.6% / 89.2% / 92.1% in negative stories, 84% / 86% / 85% on ".")"""
    n, in_negative, at_stop = nb02["fired"]
    assert n >= 50 and in_negative >= 0.85 * n and at_stop >= 0.75 * n


def test_02_truth_best_single_latent_covers_part_of_the_negative_tokens_a_probe_nearly_all(nb02):
    """ "Even the best single latent per token fires on only part of the negative tokens, while a linear probe reads
    the sentiment from nearly all of them (measured just above)": the probe is trained and scored in the run."""
    assert nb02["best_token_latent_coverage"] < 0.5
    assert nb02["probe"] >= 0.95


def test_02_truth_per_token_little_above_chance_per_story_clean(nb02):
    """ "per token it scores little above chance, per story it separates the sentiment cleanly" """
    assert 0.5 < nb02["per_token"] < 0.6
    assert nb02["per_story"] >= 0.9
