"""saelab.patching and saelab.sae_patching: results against independent computations, and error messages."""
import pytest
import torch

from saelab.sae_patching import (
    LatentEffects,
    attribution_agreement,
    latent_ablation,
    latent_attribution,
    latent_patching,
    sae_splice_hook,
)
from saelab.models import load_model
from saelab.patching import (
    LogitDiff,
    answer_ids,
    check_position,
    logit_diff_metric,
    pair_tokens,
    patch_residual,
    residual_attribution,
)
from saelab.sae import SAE

CLEAN, CORRUPTED = "i love him. he is a", "i bad him. he is a"  # words of conftest's small vocabulary


@pytest.fixture(scope="module")
def small(small_hf_dir):
    """(TransformerBridge, the same weights as a plain Hugging Face model) for the random 2-layer GPT-2."""
    from transformers import GPT2LMHeadModel

    return load_model(str(small_hf_dir), device="cpu"), GPT2LMHeadModel.from_pretrained(small_hf_dir).eval()


@pytest.fixture(scope="module")
def metric(small):
    return logit_diff_metric(small[0], ["good", "love"], ["bad"])


def random_sae(d_model: int, normalize: bool, hook: str = "blocks.0.hook_resid_post", seed: int = 0) -> SAE:
    torch.manual_seed(seed)
    sae = SAE(d_model, 24, "topk", k=4, normalize=normalize, hook_name=hook)
    with torch.no_grad():
        sae.pre_bias.normal_(0, 0.1)
        sae.latent_bias.normal_(0, 0.1)
    return sae


@torch.no_grad()
def hf_metric(hf, tokens, metric, layer=None, position=None, replacement=None):
    """The metric from the plain HF model, with block `layer`'s input at `position` replaced (a torch pre-hook)."""
    handle = None
    if layer is not None:
        def pre_hook(module, args, kwargs):
            hidden = args[0].clone()
            hidden[:, position] = replacement
            return (hidden, *args[1:]), kwargs
        handle = hf.transformer.h[layer].register_forward_pre_hook(pre_hook, with_kwargs=True)
    try:
        return float(metric(hf(tokens).logits)[0])
    finally:
        if handle is not None:
            handle.remove()


# --- the metric ---------------------------------------------------------------------------------------
def test_logit_diff_is_logsumexp_difference_at_the_last_position():
    logits = torch.randn(2, 3, 6)
    got = LogitDiff((1, 2), (4,))(logits)
    want = torch.logsumexp(logits[:, -1, [1, 2]], -1) - logits[:, -1, 4]
    assert torch.allclose(got, want)


def test_answer_ids_reads_words_after_a_space(small):
    model = small[0]
    assert answer_ids(model, ["good", "bad"]) == [model.tokenizer.convert_tokens_to_ids("Ġgood"),
                                                  model.tokenizer.convert_tokens_to_ids("Ġbad")]
    assert answer_ids(model, "good, bad") == answer_ids(model, ["good", "bad"])


def test_answer_word_that_is_not_one_token_is_listed(small, random_tinyworld_model):
    with pytest.raises(ValueError, match=r"' nope' is not in the model's vocabulary.*' zilch'"):
        answer_ids(small[0], ["good", "nope", "zilch"])
    # a byte-level BPE splits long words: the pieces are shown
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2TokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(["he is good. he is bad."] * 50, vocab_size=300, min_frequency=1)

    class Fake:
        tokenizer = GPT2TokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<|endoftext|>")
    with pytest.raises(ValueError, match=r"' wonderful' is \d+ tokens \["):
        answer_ids(Fake(), ["good", "wonderful"])


def test_empty_and_overlapping_answer_sets_are_refused(small):
    with pytest.raises(ValueError, match="answer set is empty"):
        logit_diff_metric(small[0], [], ["bad"])
    with pytest.raises(ValueError, match="answer set is empty"):
        logit_diff_metric(small[0], "good", " , ")
    with pytest.raises(ValueError, match="in both sets"):
        logit_diff_metric(small[0], ["good", "bad"], ["bad"])


# --- prompts and positions ----------------------------------------------------------------------------
def test_prompts_of_different_lengths_show_both_token_lists(small, metric):
    with pytest.raises(ValueError, match=r"clean has 8: \[.*' love'.*corrupted has 7: \[.*"):
        patch_residual(small[0], CLEAN, "i bad him. he is", metric)


def test_position_out_of_range_says_which_exist(small, metric):
    with pytest.raises(ValueError, match=r"from -8 to 7 .*got 8"):
        latent_patching(small[0], random_sae(32, False), CLEAN, CORRUPTED, metric, position=8)
    with pytest.raises(ValueError, match="position must be an integer"):
        check_position(1.5, 4)
    assert check_position(-1, 4) == 3


def test_identical_prompts_have_nothing_to_restore(small, metric):
    with pytest.raises(ValueError, match="same metric"):
        patch_residual(small[0], CLEAN, CLEAN, metric)


def test_metric_must_keep_the_batch(small, metric):
    with pytest.raises(ValueError, match="one value per batch row"):
        patch_residual(small[0], CLEAN, CORRUPTED, lambda logits: metric(logits).sum())


def test_unknown_component_and_bad_batch_size(small, metric):
    with pytest.raises(ValueError, match="component must be one of"):
        patch_residual(small[0], CLEAN, CORRUPTED, metric, component="resid_mid")
    with pytest.raises(ValueError, match="batch_size"):
        patch_residual(small[0], CLEAN, CORRUPTED, metric, batch_size=0)


# --- residual patching --------------------------------------------------------------------------------
def test_patch_residual_matches_a_hand_computed_patch_on_the_plain_hf_model(small, metric):
    model, hf = small
    clean, corrupted = pair_tokens(model, CLEAN, CORRUPTED)
    heat = patch_residual(model, CLEAN, CORRUPTED, metric)
    assert heat.shape == (2, clean.shape[1])
    with torch.no_grad():
        hidden_clean = hf(clean, output_hidden_states=True).hidden_states  # [embeddings, block 0 out, ...]
    m_clean, m_corrupted = hf_metric(hf, clean, metric), hf_metric(hf, corrupted, metric)
    for layer in range(2):
        for position in range(clean.shape[1]):
            patched = hf_metric(hf, corrupted, metric, layer, position, hidden_clean[layer][0, position])
            want = (patched - m_corrupted) / (m_clean - m_corrupted)
            assert heat[layer, position] == pytest.approx(want, abs=1e-4), (layer, position)
    assert heat[:, 0].abs().max() < 1e-5  # BOS is the same in both prompts: patching it changes nothing
    assert heat[0, 2] != pytest.approx(0, abs=1e-3)  # the changed word does matter before block 0


@pytest.mark.parametrize("component", ["resid_pre", "attn_out", "mlp_out"])
def test_batched_patching_equals_transformer_lens(small, metric, component):
    model = small[0]
    ours = patch_residual(model, CLEAN, CORRUPTED, metric, component=component, batch_size=5)
    theirs = patch_residual(model, CLEAN, CORRUPTED, metric, component=component, method="transformer_lens")
    assert torch.allclose(ours, theirs, atol=1e-4)


def test_token_tensors_work_like_text(small, metric):
    model = small[0]
    clean, corrupted = pair_tokens(model, CLEAN, CORRUPTED)
    assert torch.allclose(patch_residual(model, clean[0], corrupted, metric),
                          patch_residual(model, CLEAN, CORRUPTED, metric))


def test_residual_attribution_is_the_first_order_term(small, metric):
    """grad . (clean - corrupted) equals the limit of small patches in the same direction (finite difference)."""
    model, hf = small
    clean, corrupted = pair_tokens(model, CLEAN, CORRUPTED)
    estimate = residual_attribution(model, CLEAN, CORRUPTED, metric)
    with torch.no_grad():
        h_clean = hf(clean, output_hidden_states=True).hidden_states
        h_corrupted = hf(corrupted, output_hidden_states=True).hidden_states
    m_clean, m_corrupted = hf_metric(hf, clean, metric), hf_metric(hf, corrupted, metric)
    eps, layer, position = 0.25, 1, clean.shape[1] - 1  # the random model is nearly linear; float32 needs a big step
    step = eps * (h_clean[layer][0, position] - h_corrupted[layer][0, position])
    slope = (hf_metric(hf, corrupted, metric, layer, position, h_corrupted[layer][0, position] + step)
             - hf_metric(hf, corrupted, metric, layer, position, h_corrupted[layer][0, position] - step)) / (2 * eps)
    assert estimate[layer, position] == pytest.approx(slope / (m_clean - m_corrupted), rel=0.02, abs=1e-3)


# --- SAE latents --------------------------------------------------------------------------------------
@pytest.mark.parametrize("normalize", [False, True])
def test_splicing_the_sae_in_changes_nothing(small, normalize):
    model = small[0]
    tokens = pair_tokens(model, CLEAN, CORRUPTED)[1]
    sae = random_sae(32, normalize)
    with torch.no_grad():
        spliced = model.run_with_hooks(tokens, fwd_hooks=[(sae.hook_name, sae_splice_hook(sae))])
        assert (spliced - model(tokens)).abs().max() < 1e-4


@pytest.mark.parametrize("normalize", [False, True])
def test_latent_patching_equals_editing_the_spliced_latent(small, metric, normalize):
    model = small[0]
    sae = random_sae(32, normalize)
    clean, corrupted = pair_tokens(model, CLEAN, CORRUPTED)
    effects = latent_patching(model, sae, CLEAN, CORRUPTED, metric)
    assert len(effects) >= sae.k and effects.method == "patching"
    with torch.no_grad():
        z_clean = sae.encode(model.run_with_cache(clean, names_filter=[sae.hook_name])[1][sae.hook_name])
        m_clean, m_corrupted = float(metric(model(clean))[0]), float(metric(model(corrupted))[0])
        for latent, effect in zip(effects.latents[:3].tolist(), effects.effects[:3].tolist()):
            def edit(z, latent=latent):
                z[:, -1, latent] = z_clean[:, -1, latent]
                return z
            logits = model.run_with_hooks(corrupted, fwd_hooks=[(sae.hook_name, sae_splice_hook(sae, edit))])
            want = (float(metric(logits)[0]) - m_corrupted) / (m_clean - m_corrupted)
            assert effect == pytest.approx(want, abs=1e-4)
    assert effects.effects.abs().tolist() == sorted(effects.effects.abs().tolist(), reverse=True)


def test_latent_patching_batched_equals_one_at_a_time(small, metric):
    sae = random_sae(32, True)
    batched = latent_patching(small[0], sae, CLEAN, CORRUPTED, metric, position=-2, batch_size=64)
    single = latent_patching(small[0], sae, CLEAN, CORRUPTED, metric, position=-2, batch_size=1)
    assert torch.equal(batched.latents, single.latents) or set(batched.latents.tolist()) == set(single.latents.tolist())
    assert torch.allclose(batched.effect_of(single.latents), single.effects, atol=1e-5)


def test_latent_ablation_zeroes_the_latent_in_the_clean_run(small, metric):
    model = small[0]
    sae = random_sae(32, True)
    clean, corrupted = pair_tokens(model, CLEAN, CORRUPTED)
    effects = latent_ablation(model, sae, CLEAN, CORRUPTED, metric)
    assert (effects.clean != 0).all() and effects.method == "ablation"
    latent, effect = int(effects.latents[0]), float(effects.effects[0])

    def edit(z):
        z[:, -1, latent] = 0
        return z
    with torch.no_grad():
        m_clean, m_corrupted = float(metric(model(clean))[0]), float(metric(model(corrupted))[0])
        logits = model.run_with_hooks(clean, fwd_hooks=[(sae.hook_name, sae_splice_hook(sae, edit))])
    assert effect == pytest.approx((float(metric(logits)[0]) - m_clean) / (m_clean - m_corrupted), abs=1e-4)


def test_latent_attribution_is_the_first_order_term(small, metric):
    """attribution = d metric / d z . (z_clean - z_corrupted): check it by a small step along that direction."""
    model = small[0]
    sae = random_sae(32, True)
    clean, corrupted = pair_tokens(model, CLEAN, CORRUPTED)
    estimate = latent_attribution(model, sae, CLEAN, CORRUPTED, metric)
    assert estimate.method == "attribution"
    with torch.no_grad():
        z_clean = sae.encode(model.run_with_cache(clean, names_filter=[sae.hook_name])[1][sae.hook_name])
        z_corrupted = sae.encode(model.run_with_cache(corrupted, names_filter=[sae.hook_name])[1][sae.hook_name])
        m_clean, m_corrupted = float(metric(model(clean))[0]), float(metric(model(corrupted))[0])
        latent, eps = int(estimate.latents[0]), 0.5  # the random model barely tells the prompts apart: a big step

        def nudged(sign: float) -> float:  # the metric after a small step along (z_clean - z_corrupted)
            def edit(z):
                z[:, -1, latent] += sign * eps * (z_clean[0, -1, latent] - z_corrupted[0, -1, latent])
                return z
            logits = model.run_with_hooks(corrupted, fwd_hooks=[(sae.hook_name, sae_splice_hook(sae, edit))])
            return float(metric(logits)[0])
        slope = (nudged(1) - nudged(-1)) / (2 * eps) / (m_clean - m_corrupted)  # central difference
    assert float(estimate.effects[0]) == pytest.approx(slope, rel=0.05, abs=1e-4)


def test_latent_functions_refuse_bad_input(small, metric):
    sae = random_sae(32, False)
    with pytest.raises(ValueError, match="latents must be"):
        latent_patching(small[0], sae, CLEAN, CORRUPTED, metric, latents=[99])
    sae.hook_name = None
    with pytest.raises(ValueError, match="which hook"):
        latent_attribution(small[0], sae, CLEAN, CORRUPTED, metric)


def test_effects_table_and_agreement():
    effects = LatentEffects(torch.tensor([5, 2, 9]), torch.tensor([0.5, -0.3, 0.1]), torch.ones(3), torch.zeros(3),
                            4, " a", "patching")
    assert effects.top(2) == [5, 2]
    assert effects.effect_of([9, 7]).tolist() == pytest.approx([0.1, 0.0])
    assert "latent patching at position 4" in str(effects) and effects.rows(1)[0]["latent"] == 5
    same = attribution_agreement(effects, effects, top=3)
    assert same["correlation"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 3"):
        attribution_agreement(effects, effects, top=2)


# --- the tiny world's ground truth --------------------------------------------------------------------
def test_tiny_world_patching_finds_the_revealing_word_then_the_last_position():
    from saelab.patching import prompt_pair
    from saelab.tinyworld.generator import make_story

    model = load_model("tiny-world", device="cpu")
    clean, corrupted = prompt_pair("tiny-world")
    heat = patch_residual(model, clean, corrupted, logit_diff_metric(model))
    labels = make_story(clean).labels["sentiment"]
    reveal = 1 + next(i for i, label in enumerate(labels) if label != "none")
    assert int(heat[0].argmax()) == reveal and heat[0, reveal] > 0.9
    assert (heat[1:, -1] > 0.9).all()


# --- the heatmap's colour scale ---------------------------------------------------------------------------
def test_plot_patching_scale_reaches_an_overshoot_and_can_be_shared():
    import matplotlib
    import matplotlib.pyplot as plt

    from saelab.patching import plot_patching

    matplotlib.use("Agg")
    values = torch.tensor([[0.2, 0.98], [0.0, 1.43]])
    ax = plot_patching(values, ["a", "b"])
    assert ax.images[0].get_clim() == pytest.approx((-1.43, 1.43))  # not clipped at 1: 1.43 darker than 0.98
    ax = plot_patching(values / 2, ["a", "b"])
    assert ax.images[0].get_clim() == (-1.0, 1.0)  # within [-1, 1] the scale stays at 1 (clean = 1)
    ax = plot_patching(values / 2, ["a", "b"], limit=2.0)
    assert ax.images[0].get_clim() == (-2.0, 2.0)  # a shared scale for maps compared side by side
    with pytest.raises(ValueError, match="limit must be a positive number"):
        plot_patching(values, ["a", "b"], limit=0)
    plt.close("all")
