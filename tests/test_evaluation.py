import pytest
import torch

from saelab import metrics
from saelab.evaluation import (concept_latents, difference_verdict, evaluate_sae, lm_loss, lm_loss_recovered,
                               loss_recovered, probe_accuracy, seed_spread, summarise_arms,
                               sae_metrics, splice_costs, spliced, story_ids)
from saelab.activations import tokenize_texts
from saelab.sae import SAE
from saelab.tinyworld.generator import generate_stories

HOOK = "blocks.1.hook_mlp_out"
TEXTS = [s.text for s in generate_stories(6, seed=5)]


@pytest.fixture(scope="module")
def model(random_tinyworld_model):
    return random_tinyworld_model(n_layer=2, n_embd=16)


def identity_sae(d: int) -> SAE:
    """relu(x) - relu(-x) = x: a ReLU SAE with 2d latents that reconstructs perfectly."""
    sae = SAE(d, 2 * d, hook_name=HOOK)
    eye = torch.eye(d)
    with torch.no_grad():
        sae.encoder.weight.copy_(torch.cat([eye, -eye]))
        sae.decoder.weight.copy_(torch.cat([eye, -eye], dim=1))
        sae.pre_bias.zero_()
        sae.latent_bias.zero_()
    return sae


def zero_sae(d: int) -> SAE:
    sae = identity_sae(d)
    with torch.no_grad():
        sae.decoder.weight.zero_()
    return sae


def test_loss_recovered_formula():
    assert loss_recovered(clean=2.0, with_sae=2.0, zero=6.0) == 1.0
    assert loss_recovered(clean=2.0, with_sae=6.0, zero=6.0) == 0.0
    assert loss_recovered(clean=2.0, with_sae=3.0, zero=6.0) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="undefined"):
        loss_recovered(2.0, 2.5, 2.0)


def test_perfect_reconstruction_recovers_everything_and_zero_nothing(model):
    perfect = lm_loss_recovered(model, identity_sae(16), TEXTS)
    assert perfect["loss_sae"] == pytest.approx(perfect["loss_clean"], abs=1e-5)
    assert perfect["loss_zero"] != pytest.approx(perfect["loss_clean"], abs=1e-4)
    assert perfect["loss_recovered"] == pytest.approx(1.0, abs=1e-3)
    zero = lm_loss_recovered(model, zero_sae(16), TEXTS)
    assert zero["loss_recovered"] == pytest.approx(0.0, abs=1e-5)


def test_lm_loss_ignores_padding(model):
    tokens, mask = tokenize_texts(model, TEXTS[:1])
    alone = lm_loss(model, tokens, mask)
    tokens2, mask2 = tokenize_texts(model, [TEXTS[0], TEXTS[0] + " " + TEXTS[1]])
    assert lm_loss(model, tokens2[:1], mask2[:1]) == pytest.approx(alone, abs=1e-5)


def test_hook_is_removed_even_when_the_splice_fails(model):
    tokens, _ = tokenize_texts(model, TEXTS)
    clean = model(tokens)
    broken = identity_sae(16)
    broken.reconstruct = lambda x: (_ for _ in ()).throw(RuntimeError("boom"))
    with pytest.raises(RuntimeError, match="boom"):
        lm_loss_recovered(model, broken, TEXTS)
    assert torch.allclose(model(tokens), clean)
    with pytest.raises(KeyError):
        with spliced(model, HOOK, torch.zeros_like):
            raise KeyError("inside")
    assert torch.allclose(model(tokens), clean)


def test_spliced_keeps_bos_and_checks_shapes(model):
    tokens, _ = tokenize_texts(model, TEXTS[:2])
    seen = []
    with spliced(model, HOOK, torch.zeros_like):
        with model.hooks(fwd_hooks=[(HOOK, lambda a, hook: seen.append(a.clone()))]):
            model(tokens)
    assert (seen[0][:, 1:] == 0).all() and (seen[0][:, 0] != 0).any()
    with pytest.raises(ValueError, match="shape"):
        with spliced(model, HOOK, lambda a: a[:, :1]):
            model(tokens)


def test_sae_metrics_match_the_metric_functions():
    torch.manual_seed(0)
    sae = SAE(8, 32)
    with torch.no_grad():
        sae.encoder.weight.normal_()
        sae.latent_bias.fill_(-1.0)
        sae.latent_bias[:4] = -1e3  # 4 latents that can never fire
    x = torch.randn(1000, 8)
    got = sae_metrics(sae, x, batch_size=128)
    _, latents, x_hat = sae(x)
    assert got["l0"] == pytest.approx(metrics.l0(latents), rel=1e-5)
    assert got["fvu"] == pytest.approx(metrics.fraction_variance_unexplained(x, x_hat), rel=1e-4)
    assert got["dead_fraction"] == pytest.approx(metrics.dead_fraction(latents)) and got["dead_fraction"] >= 4 / 32


def test_concept_latents_finds_a_planted_detector():
    g = torch.Generator().manual_seed(0)
    values = ["none"] * 10 + ["positive", "negative"] * 45
    latents = torch.relu(torch.randn(100, 6, generator=g))
    latents[:, 4] = torch.tensor([5.0 if v == "positive" else 0.0 for v in values])
    rows = concept_latents(latents, {"sentiment": values}, top=2)
    best = {r["value"]: r for r in rows if r["latent"] == 4}
    assert best["positive"]["auroc_per_token"] == 1.0 and best["positive"]["ranked"] == "per token"
    assert [r["value"] for r in rows].count("positive") == 2


def test_concept_latents_ranks_story_level_concepts_per_story_and_reports_held_out():
    # 20 stories of 5 tokens; latent 2 fires on ONE token of each negative story: per token a weak detector,
    # per story a perfect one.
    ids = torch.arange(20).repeat_interleave(5)
    labels = ["negative" if i % 2 else "positive" for i in ids.tolist()]
    latents = torch.zeros(100, 3)
    latents[(ids % 2 == 1) & (torch.arange(100) % 5 == 0), 2] = 3.0
    rows = concept_latents(latents, {"sentiment": labels}, top=1, story_ids=ids, per_story=("sentiment",),
                           held_out=(latents, {"sentiment": labels}, ids))
    neg = next(r for r in rows if r["value"] == "negative")
    assert neg["ranked"] == "per story" and neg["latent"] == 2
    assert neg["auroc_per_story"] == 1.0 and neg["auroc_per_token"] < 0.8
    flipped = {"sentiment": ["positive" if v == "negative" else "negative" for v in labels]}
    held = concept_latents(latents, {"sentiment": labels}, top=1, story_ids=ids, per_story=("sentiment",),
                           held_out=(latents, flipped, ids))  # chosen here, scored there: the held-out labels count
    assert next(r for r in held if r["value"] == "negative")["auroc_per_story"] == 0.0
    with pytest.raises(ValueError, match="story_ids"):
        concept_latents(latents, {"sentiment": labels}, per_story=("sentiment",))


def test_story_ids_follow_story_lengths():
    stories = generate_stories(3, seed=0)
    ids = story_ids(stories)
    assert len(ids) == sum(len(s.words) for s in stories) and ids.unique().tolist() == [0, 1, 2]


def test_splice_costs_agree_with_lm_loss_recovered_and_are_zero_for_a_perfect_sae(model):
    perfect = splice_costs(model, identity_sae(16), TEXTS)
    assert perfect["ce_increase_sae"] == pytest.approx(0.0, abs=1e-5)
    assert perfect["kl_sae"] == pytest.approx(0.0, abs=1e-5)
    assert perfect["kl_zero"] > 1e-6 and perfect["ce_increase_zero"] == pytest.approx(
        perfect["loss_zero"] - perfect["loss_clean"])
    broken = splice_costs(model, zero_sae(16), TEXTS)
    reference = lm_loss_recovered(model, zero_sae(16), TEXTS)
    for key in ("loss_clean", "loss_sae", "loss_zero", "loss_recovered"):
        assert broken[key] == pytest.approx(reference[key], abs=1e-5)
    assert broken["kl_sae"] == pytest.approx(broken["kl_zero"], abs=1e-6) and broken["kl_sae"] > 0


def test_splice_costs_kl_is_the_mean_kl_of_the_next_token_distributions(model):
    sae = identity_sae(16)
    with torch.no_grad():
        sae.decoder.weight.mul_(0.5)  # a half-strength reconstruction
    got = splice_costs(model, sae, TEXTS[:2])
    tokens, mask = tokenize_texts(model, TEXTS[:2], 128)
    clean = model(tokens).log_softmax(-1)[:, :-1]
    with spliced(model, HOOK, lambda a: 0.5 * a):
        half = model(tokens).log_softmax(-1)[:, :-1]
    keep = mask[:, 1:]
    want = (clean.exp() * (clean - half)).sum(-1)[keep].mean().item()
    assert got["kl_sae"] == pytest.approx(want, rel=1e-4)


def test_evaluate_sae_adds_the_costs_when_asked(model):
    acts = torch.randn(50, 16)
    plain = evaluate_sae(model, identity_sae(16), acts, TEXTS[:2])
    full = evaluate_sae(model, identity_sae(16), acts, TEXTS[:2], costs=True)
    assert "kl_sae" not in plain and {"kl_sae", "kl_zero", "ce_increase_sae", "fvu"} <= set(full)


def test_evaluate_sae_shows_a_bar_over_its_forward_passes_only_when_asked(model, capsys):
    acts = torch.randn(50, 16)
    quiet = evaluate_sae(model, identity_sae(16), acts, TEXTS[:3], costs=True)
    assert "LM loss" not in capsys.readouterr().err
    shown = evaluate_sae(model, identity_sae(16), acts, TEXTS[:3], costs=True, progress=True)
    bar = capsys.readouterr().err
    assert "LM loss: clean, SAE, zero" in bar and "3/3" in bar  # one batch: the clean, SAE and zero passes
    assert shown == quiet
    splice_costs(model, identity_sae(16), TEXTS[:3], batch_size=2, progress=True)
    assert "6/6" in capsys.readouterr().err  # two batches


def test_label_free_card_shows_the_splice_passes_and_agrees_with_splice_costs(model, capsys):
    from saelab.saebench import label_free_card
    card = label_free_card(model, identity_sae(16), torch.randn(50, 16), TEXTS[:3])
    assert "LM loss: clean, SAE, zero" in capsys.readouterr().err
    costs = splice_costs(model, identity_sae(16), TEXTS[:3])
    assert card["KL"] == pytest.approx(costs["kl_sae"]) and card["loss recovered"] == costs["loss_recovered"]
    label_free_card(model, identity_sae(16), torch.randn(50, 16), TEXTS[:3], progress=False)
    assert "LM loss" not in capsys.readouterr().err


def test_seed_spread_and_difference_verdict():
    assert seed_spread([0.2, 0.1, 0.3]) == pytest.approx({"mean": 0.2, "min": 0.1, "max": 0.3})
    assert difference_verdict([0.1, 0.12], [0.2, 0.3]) == "lower"
    assert difference_verdict([0.4, 0.5], [0.2, 0.3]) == "higher"
    assert difference_verdict([0.1, 0.25], [0.2, 0.3]) == "no clear difference"
    with pytest.raises(ValueError, match="at least one seed"):
        difference_verdict([], [1.0])


def test_summarise_arms_gives_mean_and_range_per_arm():
    rows = [{"run": "a", "fvu": 0.1}, {"run": "a", "fvu": 0.3}, {"run": "b", "fvu": 0.5}]
    table = summarise_arms(rows, "run", ["fvu"], digits=2)
    assert table == [{"run": "a", "seeds": 2, "fvu": "0.20 (0.10-0.30)"}, {"run": "b", "seeds": 1, "fvu": "0.50 (0.50-0.50)"}]


def test_probe_accuracy_reads_a_linear_concept_and_not_noise():
    g = torch.Generator().manual_seed(0)
    acts = torch.randn(400, 6, generator=g)
    labels = ["none" if i % 10 == 0 else ("pos" if a > 0 else "neg") for i, a in enumerate(acts[:, 2].tolist())]
    assert probe_accuracy(acts[:200], labels[:200], acts[200:], labels[200:]) > 0.95
    noise = ["pos" if torch.rand(1, generator=g).item() > 0.5 else "neg" for _ in range(400)]
    assert probe_accuracy(acts[:200], noise[:200], acts[200:], noise[200:]) < 0.7
    with pytest.raises(ValueError, match="two values"):
        probe_accuracy(acts, ["a"] * 400, acts, ["a"] * 400)
