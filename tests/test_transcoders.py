"""Transcoders on the tiny world: the MLP pairs, the skip term, training, splicing and the feature card."""
from __future__ import annotations

import pytest
import torch

from saelab import metrics
from saelab.activations import tinyworld_texts
from saelab.models import load_model
from saelab.replacement import gpt2_weights
from saelab.transcoders import (Transcoder, corpus, explain_features, feature_card, fit_skip, linear_stand_in,
                                load_transcoders, mlp_hooks, mlp_pairs, promoted_word, replacement_lm_loss,
                                save_transcoders, sentiment_features, spliced_lm_loss, top_token, train_transcoder,
                                transcoder_fvu)


@pytest.fixture(scope="module")
def model():
    return load_model("tiny-world")


@pytest.fixture(scope="module")
def texts():
    stream = tinyworld_texts(seed=5)
    return [next(stream) for _ in range(160)]


@pytest.fixture(scope="module")
def pairs(model, texts):
    return mlp_pairs(model, texts, [1])


@pytest.fixture(scope="module")
def trained(pairs):
    x, y = pairs[1]
    return train_transcoder(x[:3000], y[:3000], 1, n_latents=128, k=8, n_steps=150, batch_size=256, seed=0)


def test_mlp_pairs_match_the_models_hooks(model, texts, pairs):
    tokens = model.to_tokens(texts[0])
    _, cache = model.run_with_cache(tokens, names_filter=list(mlp_hooks(1)))
    n = tokens.shape[1] - 1
    assert torch.allclose(pairs[1][0][:n], cache[mlp_hooks(1)[0]][0, 1:], atol=1e-4)
    assert torch.allclose(pairs[1][1][:n], cache[mlp_hooks(1)[1]][0, 1:], atol=1e-4)


def test_fit_skip_recovers_a_linear_map():
    g = torch.Generator().manual_seed(0)
    x, W = torch.randn(500, 6, generator=g), torch.randn(4, 6, generator=g)
    assert torch.allclose(fit_skip(x, x @ W.T + 3.0), W, atol=1e-4)


def test_training_learns_the_mlp(pairs, trained):
    x, y = pairs[1]
    tc, history = trained
    held_x, held_y = x[3000:4000], y[3000:4000]
    untrained, _ = train_transcoder(x[:3000], y[:3000], 1, n_latents=128, k=8, n_steps=1, batch_size=256, seed=0)
    assert transcoder_fvu(tc, held_x, held_y) < 0.5 * transcoder_fvu(untrained, held_x, held_y)
    assert transcoder_fvu(tc, held_x, held_y) < 0.1
    assert (tc.encode(held_x) > 0).sum(-1).max() <= 8


def test_without_skip_the_output_is_features_plus_bias(trained, pairs):
    tc, _ = trained
    assert tc.W_skip is None
    assert torch.allclose(tc.output_without_features(pairs[1][0][:3]), tc.sae.pre_bias.expand(3, -1))


def test_with_skip_the_output_adds_the_linear_map(pairs):
    x, y = pairs[1]
    tc, _ = train_transcoder(x[:1000], y[:1000], 1, n_latents=32, k=2, skip=True, n_steps=5, batch_size=128)
    assert torch.allclose(tc.W_skip, fit_skip(x[:1000], y[:1000]))
    assert torch.allclose(tc.output_without_features(x[:3]), tc.sae.pre_bias + x[:3] @ tc.W_skip.T, atol=1e-5)


def test_save_and_load_round_trip(trained, pairs, tmp_path):
    tc, _ = trained
    again = load_transcoders(save_transcoders({1: tc}, tmp_path / "t.pt"))[1]
    assert again.layer == 1 and again.W_skip is None
    assert torch.allclose(again(pairs[1][0][:5]), tc(pairs[1][0][:5]))
    with pytest.raises(FileNotFoundError, match="transcoders-only"):
        load_transcoders(tmp_path / "missing.pt")


def test_shape_mismatch_is_refused(pairs):
    x, y = pairs[1]
    with pytest.raises(ValueError, match="same shape"):
        train_transcoder(x[:10], y[:9], 1)


def test_replacement_loss_is_worse_than_exact_and_splicing_is_undone(model, texts, trained):
    tc, _ = trained
    before = replacement_lm_loss(model, {1: tc}, texts[:20])
    assert before["replacement"] > before["exact"]
    again = replacement_lm_loss(model, {}, texts[:20])  # hooks removed after the context
    assert again["replacement"] == pytest.approx(before["exact"], abs=1e-5)


def test_feature_card_shows_contexts_where_it_fires(model, texts, trained):
    tc, _ = trained
    data = corpus(model, texts[:40], [1])
    latent = int((tc.encode(data.inputs[1]) > 0).flatten(0, 1).sum(0).argmax())
    card = feature_card(model, gpt2_weights(model), tc, latent, data)
    assert card.contexts and all(v > 0 for v, *_ in card.contexts)
    assert len(card.promoted) == 5 and card.promoted[0][1] >= card.promoted[-1][1]
    with pytest.raises(ValueError, match="latent must be in"):
        feature_card(model, gpt2_weights(model), tc, 10_000, data)


def test_transcoder_call_is_features_plus_rest(trained, pairs):
    tc, _ = trained
    x = pairs[1][0][:5]
    assert isinstance(tc, Transcoder)
    assert torch.allclose(tc(x), tc.encode(x) @ tc.sae.W_dec.T + tc.output_without_features(x), atol=1e-6)


def test_spliced_loss_agrees_with_the_replacement_loss_and_its_baselines(model, texts, pairs, trained):
    tc, _ = trained
    base = replacement_lm_loss(model, {1: tc}, texts[:20])
    assert spliced_lm_loss(model, texts[:20], {}) == pytest.approx(base["exact"], abs=1e-5)
    assert spliced_lm_loss(model, texts[:20], {1: tc}) == pytest.approx(base["replacement"], abs=1e-5)
    x, y = pairs[1]
    linear = spliced_lm_loss(model, texts[:20], {1: linear_stand_in(x, y)})
    zero = spliced_lm_loss(model, texts[:20], {1: lambda a: 0 * a})
    assert abs(linear - base["exact"]) < 0.05 and linear < zero  # a fitted linear map loses less than zero ablation


def test_linear_stand_in_recovers_an_affine_map():
    g = torch.Generator().manual_seed(0)
    x, W, b = torch.randn(500, 6, generator=g), torch.randn(4, 6, generator=g), torch.randn(4, generator=g)
    fn = linear_stand_in(x, x @ W.T + b)
    assert torch.allclose(fn(x[:7]), x[:7] @ W.T + b, atol=1e-4)


def test_feature_descriptions(model, texts, trained):
    tc, _ = trained
    data = corpus(model, texts[:40], [1])
    acts = tc.encode(data.inputs[1]).masked_fill(~data.mask[..., None], 0)
    latent = int((acts > 0).flatten(0, 1).sum(0).argmax())
    row, pos = divmod(int(acts[..., latent].flatten().argmax()), acts.shape[1])
    word = top_token(tc, latent, data, n=1)
    assert word == repr(data.str_tokens[row][pos])  # with n=1: the token of its strongest activation
    assert isinstance(promoted_word(model, gpt2_weights(model), tc, latent), str)


def test_sentiment_features_and_their_explanations(model):
    from saelab.prompts import tinyworld_stories

    stories = tinyworld_stories(60, seed=3)
    tcs = load_transcoders()
    pairs = mlp_pairs(model, [s.text for s in stories], [0])
    found = sentiment_features({0: tcs[0]}, pairs, stories)
    assert found and set(found.values()) <= {"positive", "negative"}
    feature = next(iter(found))
    explained = explain_features({0: tcs[0]}, pairs, stories, [feature])
    assert set(explained) == {feature} and str(explained[feature])
