import pytest
import torch

from saelab import features
from saelab.checks.features import check_auroc_by_hand
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


def test_check_auroc_by_hand_passes_the_right_answer_and_explains_wrong_ones(capsys):
    def right(a, b):
        return ((a[:, None] > b[None]).float().mean() + 0.5 * (a[:, None] == b[None]).float().mean()).item()

    def says(fn):
        check_auroc_by_hand(fn)
        return capsys.readouterr().out

    assert says(right).startswith("Correct!")
    assert "Not yet" in (out := says(lambda a, b: 1 - right(a, b))) and "1 - AUROC" in out
    assert "ties must count half" in says(lambda a, b: (a[:, None] > b[None]).float().mean().item())
    assert "divide by len(a) * len(b)" in says(lambda a, b: (a[:, None] > b[None]).float().sum().item())
    assert "return one number" in says(lambda a, b: None)

    def stub(a, b):
        raise NotImplementedError

    assert "NotImplementedError" in says(stub)


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
