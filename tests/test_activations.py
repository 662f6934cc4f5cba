import pytest
import torch

from saelab.activations import (ActivationSource, hook_activations, story_activations, text_activations,
                                text_stream, tinyworld_texts, tokenize_texts)
from saelab.sae import SAE
from saelab.tinyworld.generator import generate_stories
from saelab.training import train_sae


@pytest.fixture(scope="module")
def model(random_tinyworld_model):
    return random_tinyworld_model(n_layer=3, n_embd=32)


HOOK = "blocks.1.hook_mlp_out"
TEXTS = [s.text for s in generate_stories(12, seed=3)]


def test_tokenize_texts_starts_with_bos_and_pads_on_the_right(model):
    tokens, mask = tokenize_texts(model, ["i love him.", "he is such a kind friend."])
    assert tokens.shape == mask.shape == (2, 8)
    assert (tokens[:, 0] == 0).all() and mask[:, 0].all()
    assert mask.sum(1).tolist() == [5, 8]  # bos + 4 words, bos + 7 words (". " is a token)


def test_text_activations_drop_bos_and_padding(model):
    tokens, mask = tokenize_texts(model, TEXTS)
    acts = text_activations(model, HOOK, TEXTS)
    assert acts.shape == (int(mask.sum()) - len(TEXTS), 32)
    full = hook_activations(model, HOOK, tokens, stop_early=False)
    bos_act = full[0, 0]
    assert torch.allclose(full[:, 0], bos_act.expand(len(TEXTS), -1), atol=1e-5)  # BOS: the same everywhere
    assert not any(torch.allclose(row, bos_act, atol=1e-4) for row in acts)
    with_bos = text_activations(model, HOOK, TEXTS, skip_bos=False)
    assert len(with_bos) == len(acts) + len(TEXTS)


def test_right_padding_does_not_change_activations(model):
    alone = text_activations(model, HOOK, TEXTS[:1])
    batched = text_activations(model, HOOK, TEXTS)
    assert torch.allclose(alone, batched[:len(alone)], atol=1e-5)


def test_stopping_early_gives_the_full_runs_activations_and_skips_later_blocks(model):
    tokens, _ = tokenize_texts(model, TEXTS[:4])
    early = hook_activations(model, HOOK, tokens, stop_early=True)
    full = hook_activations(model, HOOK, tokens, stop_early=False)
    assert torch.allclose(early, full, atol=1e-6)
    calls = []
    with model.hooks(fwd_hooks=[("blocks.2.hook_resid_post", lambda a, hook: calls.append(1))]):
        hook_activations(model, HOOK, tokens, stop_early=True)
        assert calls == []
        hook_activations(model, HOOK, tokens, stop_early=False)
        assert calls == [1]


def test_source_yields_seeded_shuffled_batches_of_every_token(model):
    def batches(seed):
        src = ActivationSource(model, HOOK, TEXTS, batch_size=16, buffer_tokens=64, texts_per_forward=4,
                               seed=seed, progress=False)
        return list(src)
    a, b, c = batches(0), batches(0), batches(1)
    assert all(x.shape == (16, 32) for x in a)
    assert all(torch.equal(x, y) for x, y in zip(a, b)) and len(a) == len(b)
    assert not torch.equal(torch.cat(a), torch.cat(c))
    every = text_activations(model, HOOK, TEXTS)
    got = torch.cat(a)
    assert len(every) - 16 < len(got) <= len(every)  # only the last partial batch is dropped
    assert not torch.equal(got, every[:len(got)])    # shuffled, not in text order
    rows = {tuple(r.tolist()) for r in every}
    assert all(tuple(r.tolist()) in rows for r in got)


def test_collect_returns_n_tokens_and_source_trains_an_sae(model):
    src = ActivationSource(model, HOOK, tinyworld_texts(seed=0), batch_size=32, buffer_tokens=128, progress=False)
    acts = src.collect(300)
    assert acts.shape == (300, 32)
    sae = SAE(32, 64, hook_name=HOOK)
    hist = train_sae(sae, src, n_steps=5, batch_size=32, log_every=5, ortho_every=None)
    assert hist.step == [5] and hist.tokens == 5 * 32


def test_max_tokens_ends_the_stream(model):
    src = ActivationSource(model, HOOK, "tiny-world", batch_size=10, buffer_tokens=40, max_tokens=95,
                           progress=False)
    assert sum(len(b) for b in src) == 90


def test_text_sources():
    a, b = tinyworld_texts(1), tinyworld_texts(1)
    assert [next(a) for _ in range(3)] == [next(b) for _ in range(3)]
    with pytest.raises(ValueError, match="SAELAB_OFFLINE"):
        text_stream("pile-10k")
    with pytest.raises(ValueError, match="buffer_tokens"):
        ActivationSource(None, HOOK, [], batch_size=64, buffer_tokens=64)


def test_story_activations_line_up_with_labels(model):
    stories = generate_stories(5, seed=0)
    acts, labels = story_activations(model, HOOK, stories)
    assert acts.shape == (sum(len(s.words) for s in stories), 32)
    assert set(labels) == {"sentiment", "certainty", "subject", "topic"}
    assert all(len(v) == len(acts) for v in labels.values())
