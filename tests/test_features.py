import warnings

import pytest
import torch

from saelab import features
from saelab.features import (TokenLatents, auroc, collect_latents, contrast_latents, encode_prompt,
                             label_auroc, latent_activations, logit_effects, neuronpedia_url,
                             neuronpedia_url_for, recurring_latents, top_activating_tokens, top_features)
from saelab.sae import SAE

HOOK = "blocks.1.hook_resid_post"


@pytest.fixture(scope="module")
def model(small_hf_dir):
    from saelab.models import load_model
    return load_model(str(small_hf_dir), device="cpu")


def make_sae(activation="topk", k=4, n=64, seed=0):
    torch.manual_seed(seed)
    sae = SAE(32, n, activation, k=k if activation == "topk" else None, hook_name=HOOK)
    with torch.no_grad():
        sae.latent_bias.normal_(0, 0.2)
    return sae


@pytest.mark.parametrize("activation,k", [("topk", 10), ("topk", 2), ("relu", 5)])
def test_top_features_equal_the_dense_encodes_top_k(model, activation, k):
    sae = make_sae(activation)
    top = top_features(model, sae, "he is a good", k=k)
    _, dense = encode_prompt(model, sae, "he is a good")
    values, indices = dense[-1].topk(min(k, sae.k or k))
    keep = values > 0
    assert top.latents == indices[keep].tolist()
    assert torch.allclose(torch.tensor(top.values), values[keep])
    assert top.token == " good" and top.position == 4
    assert len(top.latents) <= (sae.k or k)


def test_top_features_at_another_position_and_from_token_ids(model):
    sae = make_sae()
    _, dense = encode_prompt(model, sae, "he is a good")
    top = top_features(model, sae, "he is a good", position=2)
    assert top.token == " is" and top.latents == dense[2].topk(4).indices[dense[2].topk(4).values > 0].tolist()
    ids = model.to_tokens("he is a good")[0]
    assert top_features(model, sae, ids).latents == top_features(model, sae, "he is a good").latents
    assert top_features(model, sae, ids, stop_early=False).values == pytest.approx(
        top_features(model, sae, ids).values, abs=1e-5)


def test_top_features_input_errors(model):
    sae = make_sae()
    with pytest.raises(ValueError, match="empty"):
        top_features(model, sae, "   ")
    with pytest.raises(ValueError, match="at most 16"):
        top_features(model, sae, " ".join(["he is a good"] * 5))
    with pytest.raises(ValueError, match="position must be an integer from -5 to 4"):
        top_features(model, sae, "he is a good", position=5)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        top_features(model, sae, "he is a good", k=0)
    sae.hook_name = None
    with pytest.raises(ValueError, match="which hook"):
        top_features(model, sae, "he is a good")


def test_collect_latents_leaves_out_bos_and_matches_single_prompts(model):
    sae = make_sae()
    texts = ["he is a good", "i love him", "he is bad"]
    collected = collect_latents(model, sae, texts, batch_size=2)  # the batch pads the shorter text
    assert len(collected) == 4 + 3 + 3 and collected.positions.min() == 1
    for t, text in enumerate(texts):
        _, dense = encode_prompt(model, sae, text)
        assert torch.allclose(collected.dense(range(64))[collected.text_ids == t], dense[1:], atol=1e-5)
    with pytest.raises(ValueError, match="non-empty list"):
        collect_latents(model, sae, "he is a good")


def synthetic(n_tokens, planted=None, seed=0, n_latents=50, k=3):
    """Random sparse latents; `planted` also fires (strongly, in slot 0) on every token."""
    g = torch.Generator().manual_seed(seed)
    indices = torch.stack([torch.randperm(n_latents - 1, generator=g)[:k] for _ in range(n_tokens)])
    values = torch.rand(n_tokens, k, generator=g) * 3
    indices[indices >= 7] += 1  # latent 7 never fires at random
    if planted is not None:
        indices[:, 0], values[:, 0] = planted, 0.5 + torch.rand(n_tokens, generator=g)
    return TokenLatents([["<bos>"] + ["w"] * n_tokens], torch.zeros(n_tokens, dtype=torch.long),
                        torch.arange(1, n_tokens + 1), values, indices, n_latents)


@pytest.mark.parametrize("by", ["auroc", "mean_diff"])
def test_contrast_ranks_a_planted_latent_first(by):
    negative, positive = synthetic(60, planted=7, seed=1), synthetic(50, seed=2)
    rows = contrast_latents(negative, positive, top=5, by=by)
    assert rows[0]["latent"] == 7 and rows[0]["auroc"] == pytest.approx(1.0)
    assert rows[0]["mean_b"] == 0 and rows[0]["mean_diff"] == pytest.approx(rows[0]["mean_a"])
    reverse = contrast_latents(positive, negative, top=100)
    assert reverse[-1]["latent"] == 7 and reverse[-1]["auroc"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="by must be"):
        contrast_latents(negative, positive, by="max")


def test_label_auroc_leaves_out_unlabelled_tokens():
    tl = synthetic(6)
    acts = tl.dense([3])[:, 0]
    labels = ["none", "negative", "positive", "negative", "positive", "none"]
    keep = torch.tensor([1, 2, 3, 4])
    want = auroc(acts[keep], torch.tensor([True, False, True, False]))
    assert label_auroc(tl, 3, labels, "negative") == pytest.approx(float(want))
    with pytest.raises(ValueError, match="one label per token"):
        label_auroc(tl, 3, labels[:-1], "negative")


def test_label_auroc_per_text_scores_each_text_by_its_mean():
    # 4 texts of 3 tokens; latent 5 fires on one token of each negative text and nowhere in positive ones:
    # per token it misses most negative tokens, per text it separates them perfectly.
    text_ids = torch.arange(4).repeat_interleave(3)
    values = torch.tensor([[2.0], [0.0], [0.0], [0.0], [0.0], [0.0], [0.0], [1.0], [0.0], [0.0], [0.0], [0.0]])
    tl = TokenLatents([["<bos>", "a", "b", "c"]] * 4, text_ids, torch.arange(1, 4).repeat(4), values,
                      torch.full((12, 1), 5), 8)
    labels = ["negative"] * 3 + ["positive"] * 3 + ["none", "negative", "negative"] + ["positive"] * 3
    assert label_auroc(tl, 5, labels, "negative", per="text") == 1.0
    assert label_auroc(tl, 5, labels, "negative") == pytest.approx(0.5 + 0.5 * 2 / 5)  # 2 of 5 fire
    with pytest.raises(ValueError, match="per must be"):
        label_auroc(tl, 5, labels, "negative", per="story")


def test_recurring_latents():
    tops = [features.TopFeatures("p", "t", 1, [5, 9, 2], [3.0, 2.0, 1.0]),
            features.TopFeatures("q", "t", 1, [9, 5, 7], [3.0, 2.0, 1.0]),
            features.TopFeatures("r", "t", 1, [9, 1], [3.0, 2.0])]
    assert recurring_latents(tops) == [(9, 3), (5, 2)]
    assert recurring_latents(tops, min_count=3) == [(9, 3)]


def test_logit_effects_match_a_direct_matmul(model):
    sae = make_sae()
    promoted, suppressed = logit_effects(model, sae, 3, n=4)
    logits = sae.W_dec[:, 3] @ model.W_U
    up, down = logits.topk(4), logits.topk(4, largest=False)
    assert [v for _, v in promoted] == pytest.approx(up.values.tolist(), abs=1e-6)
    assert [v for _, v in suppressed] == pytest.approx(down.values.tolist(), abs=1e-6)
    assert [t for t, _ in promoted] == [model.tokenizer.decode([int(i)]) for i in up.indices]
    with pytest.raises(ValueError, match="latent must be an integer from 0 to 63"):
        logit_effects(model, sae, 64)


def test_latent_activations_and_top_activating_tokens(model):
    for sae in (make_sae(), make_sae("relu")):
        tokens, dense = encode_prompt(model, sae, "he is a good")
        latent = int(dense[1:].sum(0).argmax())
        got_tokens, acts = latent_activations(model, sae, "he is a good", latent)
        assert got_tokens == tokens and torch.allclose(acts, dense[:, latent], atol=1e-5)
    collected = collect_latents(model, sae, ["he is a good", "i love him"])
    rows = top_activating_tokens(collected, latent, n=3)
    assert rows[0]["value"] == pytest.approx(float(collected.dense([latent]).max()))
    assert "[[" in rows[0]["context"] and rows[0]["token"] in rows[0]["context"]
    with pytest.raises(ValueError, match="latent must be"):
        latent_activations(model, sae, "he is a good", -1)


def test_neuronpedia_urls():
    assert neuronpedia_url(62556) == "https://www.neuronpedia.org/gpt2-small/8-res_post_128k-oai/62556"
    assert neuronpedia_url(5, layer=3, size="32k").endswith("/gpt2-small/3-res_post_32k-oai/5")
    with torch.device("meta"):
        gpt2_sae = SAE(768, 2**17, "topk", k=32, hook_name="blocks.8.hook_resid_post")
    assert neuronpedia_url_for(gpt2_sae, 79394) == neuronpedia_url(79394)
    assert neuronpedia_url_for(make_sae(), 3) is None  # not one of OpenAI's GPT-2 SAEs
    for bad in (dict(latent=2**17), dict(latent=2**15, size="32k"), dict(latent=1, size="64k"),
                dict(latent=1, location="resid")):
        with pytest.raises(ValueError):
            neuronpedia_url(**bad)


def test_tiny_world_prompts_use_its_vocabulary_and_labels_align_with_tokens():
    from saelab.prompts import TINY_BLOG_PROMPTS, prompt_sets, tinyworld_stories, token_labels
    from saelab.tinyworld import build_tokenizer, unknown_words

    tok = build_tokenizer()
    sets = prompt_sets("tiny-world", n=5)
    assert sets["blog"] == list(TINY_BLOG_PROMPTS)
    for text in TINY_BLOG_PROMPTS + tuple(sets["positive"]) + tuple(sets["corpus"]):
        assert unknown_words(tok, text) == []
    stories = tinyworld_stories(8, "negative", seed=5)
    assert all(s.concepts["sentiment"] == "negative" for s in stories)
    n_tokens = sum(len(ids) for ids in tok([s.text for s in stories], add_special_tokens=False)["input_ids"])
    assert len(token_labels(stories)) == n_tokens
    assert len(prompt_sets("gpt2")["blog"]) == 3


def test_feature_explorer_shows_messages_not_tracebacks(model):
    from saelab.widgets.features import feature_explorer

    sae = make_sae()
    corpus = collect_latents(model, sae, ["he is a good", "i love him"])
    panel = feature_explorer(model, sae, corpus)
    panel.prompt_box.value = ""
    assert panel.show_prompt() is False and "empty" in panel.message.value
    panel.prompt_box.value = " ".join(["he is a good"] * 5)
    assert panel.show_prompt() is False and "at most 16" in panel.message.value
    panel.latent_box.value = 64
    assert panel.show_latent() is False and "0 to 63" in panel.message.value
    panel.prompt_box.value = "he is a good"
    assert panel.show_prompt() is True and panel.latent_box.value == top_features(model, sae, "he is a good").latents[0]


# --- ranking where the concept is known, comparing prompts -------------------------------------------------
def test_last_tokens_keep_each_texts_last_token_and_density_counts_firing_tokens(model):
    sae = make_sae()
    tl = collect_latents(model, sae, ["he is a good", "i love him", "he"])
    last = tl.last_tokens()
    assert last.positions.tolist() == [4, 3, 1] and last.text_ids.tolist() == [0, 1, 2]
    for row, text in enumerate(["he is a good", "i love him", "he"]):
        top = top_features(model, sae, text, k=sae.k)
        assert sorted(last.indices[row][last.values[row] > 0].tolist()) == sorted(top.latents)
    latent = int(last.indices[0, 0])
    assert tl.density(latent) == pytest.approx(float((tl.dense([latent])[:, 0] > 0).float().mean()))
    with pytest.raises(ValueError, match="latent must be an integer"):
        tl.density(64)


def test_separation_is_one_latents_auroc_between_two_groups():
    from saelab.features import separation

    def group(rows):  # one token per row, each with its latents {index: value}
        n = len(rows)
        idx = torch.tensor([list(r.keys()) + [63] * (2 - len(r)) for r in rows])
        val = torch.tensor([list(r.values()) + [0.0] * (2 - len(r)) for r in rows])
        return TokenLatents([["<bos>", "x"]] * n, torch.arange(n), torch.ones(n, dtype=torch.long), val, idx, 64)

    a, b = group([{3: 2.0}, {3: 1.0}]), group([{3: 0.5}, {5: 1.0}])
    assert separation(a, b, 3) == 1.0 and separation(b, a, 3) == 0.0 and separation(a, b, 5) == 0.25


def test_prompt_differences_rank_latents_by_their_mean_difference_at_the_last_token(model):
    from saelab.features import prompt_differences

    sae = make_sae()
    a, b = ["he is a good", "i love him"], ["he is a bad"]
    rows = prompt_differences(model, sae, a, b, top=5)
    last = lambda p: encode_prompt(model, sae, p)[1][-1]
    want = (last(a[0]) + last(a[1])) / 2 - last(b[0])
    assert [abs(r["diff"]) for r in rows] == sorted((abs(r["diff"]) for r in rows), reverse=True)
    assert rows[0]["diff"] == pytest.approx(float(want[want.abs().argmax()]), abs=1e-5)
    for r in rows:
        assert r["diff"] == pytest.approx(r["mean_a"] - r["mean_b"], abs=1e-5) and r["diff"] != 0
    with pytest.raises(ValueError, match="non-empty lists"):
        prompt_differences(model, sae, "he is a good", b)


def test_tiny_world_prompts_state_their_sentiment_and_ranges_do_not_overlap():
    from saelab.prompts import prompt_sets, tinyworld_prompts
    from saelab.tinyworld import continuation_sentiment

    first, later = tinyworld_prompts("negative", 30), tinyworld_prompts("negative", 30, start=30)
    assert not set(first) & set(later) and len(set(first)) == 30
    assert all(continuation_sentiment(t) == "negative" for t in first)
    assert all(continuation_sentiment(t) == "positive" for t in tinyworld_prompts("positive", 30))
    assert tinyworld_prompts("positive", 2, then=" he is such a")[0].endswith(". he is such a")
    with pytest.raises(ValueError, match="'positive' or 'negative'"):
        tinyworld_prompts("angry", 3)
    with pytest.raises(ValueError, match="start \\+ n"):
        tinyworld_prompts("positive", 10, start=10_000)
    for world in ("tiny-world", "gpt2"):
        sets = prompt_sets(world, n=10)
        assert not set(sets["positive"]) & set(sets["held_out_positive"])
        assert not set(sets["negative"]) & set(sets["held_out_negative"])


# --- OpenAI's SAEs saw 64-token contexts ---------------------------------------------------------------------
def test_encoding_text_longer_than_the_saes_context_warns_once(model, monkeypatch):
    monkeypatch.setattr(features, "_warned_long_context", False)
    sae = make_sae()
    sae.context_size = 3  # what load_openai_sae sets to 64 for OpenAI's SAEs; 3 fits this small model
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        top_features(model, sae, "he is a")           # 3 tokens after BOS: within the context
        assert caught == []
        top_features(model, sae, "he is a good")      # 4 tokens: warns
        collect_latents(model, sae, ["he is a good bad"])
        encode_prompt(model, sae, "he is a good")
    assert len(caught) == 1 and "trained on 3-token contexts" in str(caught[0].message)
    assert "4 tokens" in str(caught[0].message) and "chunks of at most 3" in str(caught[0].message)


def test_saes_without_a_known_context_never_warn(model, monkeypatch):
    monkeypatch.setattr(features, "_warned_long_context", False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        top_features(model, make_sae(), "he is a good he is a good")  # no context_size: the tiny world, your own


def test_load_openai_sae_marks_the_sae_with_its_64_token_context(tmp_path, monkeypatch, openai_state_dict):
    from saelab import download, pretrained

    def fake_download(url, path, progress=True, **checks):  # stands in for OpenAI's blob store (validate=...)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(openai_state_dict(), path)

    monkeypatch.setenv("SAELAB_CACHE", str(tmp_path))
    monkeypatch.delenv("SAELAB_OFFLINE", raising=False)
    monkeypatch.setattr(download, "download", fake_download)
    path = tmp_path / "openai" / "resid_post_mlp_v5_32k" / "8.pt"
    sae = pretrained.load_openai_sae(8, "resid_post_mlp", "32k", progress=False)
    assert path.is_file() and sae.context_size == pretrained.OPENAI_CONTEXT_SIZE == 64


def test_feature_explorer_shows_the_latents_card(model, monkeypatch):
    from saelab.dashboard import FeatureCard
    from saelab.widgets import features as panel_module

    shown = []
    monkeypatch.setattr(panel_module, "display", shown.append)
    sae = make_sae()
    corpus = collect_latents(model, sae, ["he is a good", "i love him"])
    panel = panel_module.feature_explorer(model, sae, corpus)
    panel.latent_box.value = int(corpus.indices[0, 0])
    assert panel.show_latent() is True
    assert isinstance(shown[-1], FeatureCard) and shown[-1].latent == panel.latent_box.value
