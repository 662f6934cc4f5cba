import math

import pytest
import torch

from saelab import steering
from saelab.sae import SAE
from saelab.steering import steer, steering_vector

pytestmark = pytest.mark.usefixtures("one_thread")

HOOK = "blocks.1.hook_resid_post"


@pytest.fixture(scope="module")
def model(small_hf_dir):
    from saelab.models import load_model
    return load_model(str(small_hf_dir))


@pytest.fixture(scope="module")
def sae():
    torch.manual_seed(0)
    s = SAE(32, 64, "topk", k=4, hook_name=HOOK)
    with torch.no_grad():
        s.pre_bias.normal_()  # a bias that must NOT end up in the steering vector
    return s


def n_hooks(model, name=HOOK):
    return len(model.hook_dict[name].fwd_hooks)


# --- steering_vector --------------------------------------------------------------------------------------------
def test_steering_vector_modes_match_a_direct_computation(sae):
    W = sae.decoder.weight.detach()  # [d_model, n_latents]
    ones = steering_vector(sae, [3, 9])
    assert ones.shape == (32,)
    torch.testing.assert_close(ones, W[:, 3] + W[:, 9])
    torch.testing.assert_close(steering_vector(sae, [3, 9], "ones"), ones)
    torch.testing.assert_close(steering_vector(sae, 3), W[:, 3])
    torch.testing.assert_close(steering_vector(sae, [3, 9], [2.0, 0.5]), 2 * W[:, 3] + 0.5 * W[:, 9])
    torch.testing.assert_close(steering_vector(sae, [3, 9], torch.tensor([2.0, 0.5])), 2 * W[:, 3] + 0.5 * W[:, 9])
    unit = steering_vector(sae, [3, 9], "unit")
    torch.testing.assert_close(unit, ones / ones.norm())
    assert unit.norm().item() == pytest.approx(1.0)


def test_steering_vector_bad_input_says_what_to_do(sae):
    with pytest.raises(ValueError, match=r"unknown latent\(s\) \[64\].*0\.\.63"):
        steering_vector(sae, [1, 64])
    with pytest.raises(ValueError, match="at least one latent"):
        steering_vector(sae, [])
    with pytest.raises(ValueError, match="one per latent"):
        steering_vector(sae, [1, 2], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="latent_magnitudes"):
        steering_vector(sae, [1], "measured")


def test_measured_magnitudes_are_the_latents_max_activation(model, sae):
    from saelab.features import encode_prompt

    _, acts = encode_prompt(model, sae, "i love him")
    top = acts.max(0).values.argsort(descending=True)[:2].tolist()
    mags = steering.latent_magnitudes(model, sae, top, "i love him")
    torch.testing.assert_close(mags, acts[:, top].max(0).values)
    vectors = steering.steering_vectors(model, sae, top, "i love him")
    assert set(vectors) == {"ones", "measured", "unit"}
    torch.testing.assert_close(vectors["measured"], sae.W_dec[:, top].detach() @ mags)


# --- the hook -----------------------------------------------------------------------------------------------------
def test_steer_adds_the_vector_and_removes_the_hook(model, sae):
    tokens = model.to_tokens("he is a")
    seen = {}

    def record(act, hook):
        seen["x"] = act.clone()

    vector = steering_vector(sae, [5])
    with model.hooks(fwd_hooks=[("blocks.1.hook_resid_post", record)]):
        model(tokens)
    plain = seen["x"]
    assert n_hooks(model) == 0
    with steer(model, HOOK, vector, 3.0):
        assert n_hooks(model) == 1
        # a later hook at the same point sees the steered residual
        with model.hooks(fwd_hooks=[("blocks.1.hook_resid_post", record)]):
            model(tokens)
    assert n_hooks(model) == 0
    torch.testing.assert_close(seen["x"], plain + 3.0 * vector)


def test_steer_removes_the_hook_after_an_exception(model, sae):
    vector = steering_vector(sae, [5])
    with pytest.raises(RuntimeError, match="boom"):
        with steer(model, HOOK, vector, 10.0):
            assert n_hooks(model) == 1
            steering.generate(model, "he is", max_new_tokens=2)
            raise RuntimeError("boom")
    assert n_hooks(model) == 0
    # and the model generates exactly as before steering
    assert steering.generate(model, "he is", greedy=True, max_new_tokens=3).texts == \
        steering.generate(model, "he is", greedy=True, max_new_tokens=3).texts


def test_steer_rejects_bad_scale_hook_and_vector(model, sae):
    vector = steering_vector(sae, [5])
    for bad in (float("nan"), float("inf"), 1e9, "big"):
        with pytest.raises(ValueError, match="scale"):
            with steer(model, HOOK, vector, bad):
                pass
    with pytest.raises(ValueError, match="no hook"):
        with steer(model, "blocks.9.hook_resid_post", vector, 1.0):
            pass
    with pytest.raises(ValueError, match=r"shape \[d_model\]"):
        with steer(model, HOOK, torch.zeros(7), 1.0):
            pass
    assert n_hooks(model) == 0


# --- generating -----------------------------------------------------------------------------------------------------
def test_seeded_generation_is_reproducible_and_the_seed_matters(model, sae):
    a = steering.generate(model, "he is", n=4, max_new_tokens=6, seed=1, temperature=1.0)
    b = steering.generate(model, "he is", n=4, max_new_tokens=6, seed=1, temperature=1.0)
    c = steering.generate(model, "he is", n=4, max_new_tokens=6, seed=2, temperature=1.0)
    assert a.texts == b.texts and torch.equal(a.tokens, b.tokens)
    assert a.tokens.shape == (4, 6) and a.tokens.tolist() != c.tokens.tolist()
    v = steering_vector(sae, [5])
    s1 = steering.steered_generate(model, HOOK, v, 50.0, "he is", n=4, max_new_tokens=6, seed=1)
    s2 = steering.steered_generate(model, HOOK, v, 50.0, "he is", n=4, max_new_tokens=6, seed=1)
    assert s1.texts == s2.texts


def test_generation_leaves_the_global_rng_alone(model):
    torch.manual_seed(123)
    want = torch.rand(3)
    torch.manual_seed(123)
    steering.generate(model, "he is", n=2, max_new_tokens=3, seed=7)
    torch.testing.assert_close(torch.rand(3), want)


def test_before_after_and_table(model, sae):
    cols = steering.before_after(model, HOOK, steering_vector(sae, [5]), 20, "he is", n=3, max_new_tokens=3)
    assert [len(v) for v in cols.values()] == [1, 3, 3]
    table = steering.side_by_side_html("he is", cols)
    assert table.count("<tr>") == 4 and "steered (scale 20)" in table


def point(scale, negative, quality, online=False):
    """A sweep point with one Scores per seed: per-seed negative shares and well-formed shares (or fluency)."""
    runs = [steering.Scores(n, None if online else q, q if online else -1.0) for n, q in zip(negative, quality)]
    return steering.SweepPoint(scale, runs)


def test_scale_sweep_scores_every_seed(model, sae):
    points = steering.scale_sweep(model, HOOK, steering_vector(sae, [5]), "i love him. he is", [0, 10, 1000],
                                  seeds=[0, 1], n=3, max_new_tokens=3, method="tiny-world")
    assert [p.scale for p in points] == [0, 10, 1000]
    for p in points:
        assert len(p.runs) == 2 and len(p.texts) == 3
        assert all(0 <= x <= 1 for x in p.negative + p.well_formed) and all(f < 0 for f in p.fluency)
    online = steering.scale_sweep(model, HOOK, steering_vector(sae, [5]), "he is", [0], seeds=[0], n=2,
                                  max_new_tokens=2, method="vader")
    assert online[0].well_formed == [None] and steering.quality(online[0])[0] == "fluency"


def test_sweet_spot_uses_seed_means_and_the_worlds_quality():
    # tiny world: well-formed share; the spot is the first scale within 0.05 of the best mean negativity
    pts = [point(0, [0.0, 0.1, 0.0], [1, 1, 1]), point(5, [0.6, 0.9, 0.9], [1, 1, 0.9]),
           point(10, [0.9, 0.95, 1.0], [0.9, 0.9, 0.9]), point(20, [1, 1, 1], [0.5, 0.4, 0.6])]
    assert steering.sweet_spot(pts) == (10, 20)
    # online: fluency in nats, limit 1 nat/token below scale 0's mean
    pts = [point(0, [0, 0, 0], [-2, -2, -2], True), point(5, [0.8, 0.9, 1], [-2.5, -2.4, -2.6], True),
           point(10, [1, 1, 1], [-3.5, -3.4, -3.0], True)]
    assert steering.sweet_spot(pts) == (5, 10)
    assert steering.sweet_spot(pts[:2]) == (5, None)


def test_spread_and_its_text():
    assert steering.spread([0.5, 0.25, 1.0]) == (pytest.approx(0.5833, abs=1e-4), 0.25, 1.0)
    assert steering.fmt_spread([0.5, 0.25, 1.0]) == "58% (25%-100%)"
    assert steering.fmt_spread([-2.0, -1.0], percent=False) == "-1.50 (-2.00 to -1.00)"
    with pytest.raises(ValueError, match="no values"):
        steering.spread([None])


def test_unsteered_and_steered_share_the_seeds(model, sae):
    runs = steering.unsteered_and_steered(model, HOOK, steering_vector(sae, [5]), 30.0, "he is", [3, 4], n=2,
                                          max_new_tokens=3, method="tiny-world")
    plain = [steering.generate(model, "he is", n=2, max_new_tokens=3, seed=s).texts for s in (3, 4)]
    assert [r.texts for r in runs["unsteered"]] == plain  # scale 0 adds nothing
    assert len(runs["steered"]) == 2
    with pytest.raises(ValueError, match="at least one seed"):
        steering.steered_scores(model, HOOK, steering_vector(sae, [5]), 1.0, "he is", [])


def test_plot_sweep_has_labels_and_shows_the_spread(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    pts = [point(s, n, q) for s, n, q in [(0, [0.1, 0.0], [1, 1]), (4, [0.8, 0.7], [1, 0.9]), (8, [1, 1], [0.2, 0.3])]]
    fig = steering.plot_sweep(pts, title="t")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "steering scale" and ax.get_title() == "t" and ax.get_ylabel()
    assert len(ax.collections) == 2  # a min-max band for negativity and for the well-formed share
    online = [point(s, n, q, True) for s, n, q in [(0, [0.1, 0.0], [-2, -2]), (4, [0.8, 0.7], [-4, -5])]]
    fig2 = steering.plot_sweep(online, title="t")
    assert "fluency" in fig2.axes[1].get_ylabel()
    fig.savefig(tmp_path / "sweep.png")


# --- the widget panel ---------------------------------------------------------------------------------------------
def test_panel_generates_and_reports_bad_input(model, sae):
    from saelab.widgets.steering import SteeringPanel, parse_latents

    assert parse_latents("3, 7 9", 64) == [3, 7, 9]
    panel = SteeringPanel(model, sae, prompt="he is", latents=[3], ranked=[(7, 0.9), (3, 0.8)], scale=5,
                          max_new_tokens=3, method="tiny-world", measure_on="i love him")
    panel.n.value = 2
    panel.generate()
    assert "<table>" in panel.table.value and "#b00020" not in panel.message.value
    panel.ranked.value = (7, 3)
    assert panel.latents.value == "7, 3"
    for mode in ("measured", "unit"):
        panel.mode.value = mode
        panel.generate()
        assert "#b00020" not in panel.message.value, panel.message.value
    for change, msg in [(dict(scale=float("nan")), "finite"), (dict(scale=1e6), "absurd"),
                        (dict(prompt="  "), "prompt is empty")]:
        panel.generate(**change)
        assert msg in panel.message.value and "#b00020" in panel.message.value
    panel.latents.value = "3, 999"
    panel.generate()
    assert "unknown latent &#x27;999&#x27;" in panel.message.value
    panel.latents.value = "3"
    panel.sweep(n_scales=2)
    assert "swept scales 0, 5" in panel.message.value and "3 seeds" in panel.message.value


def test_steered_generation_keeps_the_kv_cache(model, sae):
    shapes = []

    def record(act, hook):
        shapes.append(act.shape[1])

    with steer(model, HOOK, steering_vector(sae, [5]), 2.0):
        with model.hooks(fwd_hooks=[(HOOK, record)]):
            steering.generate(model, "he is a", n=2, max_new_tokens=4)
    prompt_len = model.to_tokens("he is a").shape[1]
    assert shapes == [prompt_len, 1, 1, 1]  # after the prompt, one new position per step: the cache is used


def test_residual_std_matches_the_activations(model):
    from saelab.activations import hook_activations

    resid = hook_activations(model, HOOK, model.to_tokens("he is a good"))[0, 1:]
    assert steering.residual_std(model, HOOK, "he is a good") == pytest.approx(resid.std(-1).mean().item())


# --- the real effect, offline: the tiny world -----------------------------------------------------------------
def test_tiny_world_steering_turns_he_is_such_a_negative():
    from saelab.models import TINY_WORLD_DIR, load_model
    from saelab.pretrained import load_sae
    from saelab.sentiment import fraction_negative

    assert (TINY_WORLD_DIR / "sae.pt").is_file(), "the tiny world's SAE is missing: python -m saelab.tinyworld.build"
    model, sae = load_model("tiny-world"), load_sae("tiny-world")
    ranked, auroc = steering.rank_sentiment_latents(model, sae)  # chosen by measurement, where sentiment is known
    latents = ranked[:steering.TINY_WORLD_N_LATENTS]
    assert auroc[latents].min() == 1.0  # each separates "i hate ..." from "i love ..." prompts perfectly
    vector = steering_vector(sae, latents)
    kw = dict(n=100, max_new_tokens=5, temperature=0.7, seed=0)
    for prompt, most_before, least_after in [("he is such a", 0.6, 0.8), ("i love him. he is such a", 0.1, 0.7)]:
        before = steering.generate(model, prompt, **kw).texts
        after = steering.steered_generate(model, sae.hook_name, vector, steering.TINY_WORLD_SCALE, prompt, **kw).texts
        # "he is such a" opens positive and negative stories alike (about half negative unsteered);
        # after "i love him." nearly every unsteered sample is positive
        assert fraction_negative(before, "tiny-world") <= most_before, (prompt, before)
        assert fraction_negative(after, "tiny-world") >= least_after, (prompt, latents, after)


def test_rank_sentiment_latents_rejects_a_bad_sentiment(model, sae):
    with pytest.raises(ValueError, match="'positive' or 'negative'"):
        steering.rank_sentiment_latents(model, sae, sentiment="angry")


def test_panel_generate_again_draws_new_samples(model, sae):
    """A second press must show new samples (a student pressing Generate expects fresh ones), and each run's
    message names the seed that reproduces it."""
    from saelab.widgets.steering import SteeringPanel

    panel = SteeringPanel(model, sae, prompt="he is", latents=[3], scale=5, max_new_tokens=6, seed=10)
    panel.n.value, panel.temperature.value = 3, 1.0
    panel.generate()
    first, first_message = panel.table.value, panel.message.value
    assert "seed 10 (table)" in first_message and "over seeds 10-12" in first_message
    assert {k: len(v) for k, v in panel.shares.items()} == {"unsteered": 3, "steered": 3}
    panel.generate()
    assert "seed 13" in panel.message.value
    assert panel.table.value != first
    panel.generate(seed=10)  # the seed in the message gives the same samples back
    assert panel.table.value == first
