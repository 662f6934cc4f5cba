import types

import pytest
import torch

from saelab import features
from saelab.dashboard import FeatureCard, feature_dashboard
from saelab.features import collect_latents
from saelab.sae import SAE

HOOK = "blocks.1.hook_resid_post"
TEXTS = ["he is a good", "i love him", "he is a bad", "i love him he is a good"]


@pytest.fixture(scope="module")
def model(small_hf_dir):
    from saelab.models import load_model
    return load_model(str(small_hf_dir), device="cpu")


@pytest.fixture(scope="module")
def sae():
    torch.manual_seed(0)
    sae = SAE(32, 64, "topk", k=4, hook_name=HOOK)
    with torch.no_grad():
        sae.latent_bias.normal_(0, 0.2)
    return sae


def fired_latent(corpus):
    """A latent that fires on some but not all tokens of the corpus."""
    counts = torch.bincount(corpus.indices[corpus.values > 0], minlength=corpus.n_latents)
    return int(((counts > 0) & (counts < len(corpus))).nonzero()[0])


def test_offline_card_has_density_histogram_contexts_and_logits(model, sae):
    corpus = collect_latents(model, sae, TEXTS)
    latent = fired_latent(corpus)
    card = feature_dashboard(model, sae, latent, corpus, n_contexts=3, n_logits=4)
    acts = corpus.dense([latent])[:, 0]
    assert card.n_tokens == len(corpus) and card.density == pytest.approx(float((acts > 0).float().mean()))
    assert card.density == pytest.approx(corpus.density(latent))
    assert sorted(card.activations.tolist()) == sorted(acts[acts > 0].tolist())
    top = features.top_activating_tokens(corpus, latent, n=3)  # the same tokens, strongest first
    assert [round(v, 5) for v, *_ in card.contexts] == [round(r["value"], 5) for r in top]
    assert [t for _, _, t, _ in card.contexts] == [r["token"] for r in top]
    assert (card.promoted, card.suppressed) == features.logit_effects(model, sae, latent, n=4)
    page = card._repr_html_()
    assert f"Latent {latent}" in page and f"{card.density:.2%}" in page
    assert "data:image/png;base64," in page and page.count("<mark") == len(card.contexts)
    assert "<iframe" not in page and "No Neuronpedia page" in page  # offline and not OpenAI's: all local
    assert "density" in str(card) and repr(card) == str(card)


def test_card_from_texts_equals_card_from_collected_latents(model, sae):
    corpus = collect_latents(model, sae, TEXTS)
    latent = fired_latent(corpus)
    a, b = feature_dashboard(model, sae, latent, TEXTS), feature_dashboard(model, sae, latent, corpus)
    assert a.contexts == b.contexts and torch.equal(a.activations, b.activations)


def test_a_latent_that_never_fires_gets_a_card_that_says_so(model, sae):
    corpus = collect_latents(model, sae, TEXTS)
    silent = int((torch.bincount(corpus.indices[corpus.values > 0], minlength=64) == 0).nonzero()[0])
    card = feature_dashboard(model, sae, silent, corpus)
    assert card.density == 0 and card.contexts == [] and "never fires" in card._repr_html_()


def openai_like_card(monkeypatch, offline: bool) -> FeatureCard:
    """A card for a random SAE shaped like OpenAI's 32k layer-8 SAE (no download: a fake GPT-2 unembedding)."""
    from transformers import PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models

    monkeypatch.setenv("SAELAB_OFFLINE", "1" if offline else "0")
    torch.manual_seed(0)
    sae = SAE(768, 2**15, "topk", k=32, hook_name="blocks.8.hook_resid_post")
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"a": 0, "b": 1, "<unk>": 2},
                                                                             unk_token="<unk>")))
    gpt2 = types.SimpleNamespace(W_U=torch.randn(768, 3), tokenizer=tok)  # all the card needs without texts
    corpus = features.TokenLatents([["<bos>", "a", "b"]], torch.tensor([0, 0]), torch.tensor([1, 2]),
                                   torch.tensor([[2.0], [0.5]]), torch.tensor([[62556 % 2**15], [7]]), 2**15)
    return feature_dashboard(gpt2, sae, 62556 % 2**15, corpus, n_logits=2)


def test_online_card_embeds_the_neuronpedia_page_of_an_openai_sae(monkeypatch):
    card = openai_like_card(monkeypatch, offline=False)
    url = "https://www.neuronpedia.org/gpt2-small/8-res_post_32k-oai/29788"
    assert card.neuronpedia == url and card.embed
    page = card._repr_html_()
    assert f"<iframe src='{url}?embed=true" in page and f"href='{url}'" in page
    assert card.contexts[0][2] == "a" and card.density == 0.5


def test_offline_card_of_an_openai_sae_links_but_does_not_embed(monkeypatch):
    card = openai_like_card(monkeypatch, offline=True)
    assert card.neuronpedia and not card.embed
    page = card._repr_html_()
    assert "<iframe" not in page and "offline" in page


def test_bad_latent_or_corpus_says_what_to_do(model, sae):
    corpus = collect_latents(model, sae, TEXTS)
    for bad in (64, -1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="latent must be an integer from 0 to 63"):
            feature_dashboard(model, sae, bad, corpus)
    with pytest.raises(ValueError, match="non-empty list of strings"):
        feature_dashboard(model, sae, 0, "he is a good")
    other = SAE(32, 128, "topk", k=4, hook_name=HOOK)
    with pytest.raises(ValueError, match="collect_latents\\(model, sae, texts\\) with this SAE"):
        feature_dashboard(model, other, 0, corpus)
