import pytest
import torch

from saelab import toy


def test_features_are_unit_norm_and_seeded():
    f = toy.make_toy_features(32, 16, seed=0)
    assert f.shape == (32, 16)
    assert torch.allclose(f.norm(dim=-1), torch.ones(32))
    assert torch.equal(f, toy.make_toy_features(32, 16, seed=0))


def test_sample_toy_data_shapes_sparsity_and_linearity():
    f = toy.make_toy_features(32, 16, seed=0)
    x, codes = toy.sample_toy_data(f, 20000, sparsity=0.1, seed=1)
    assert x.shape == (20000, 16) and codes.shape == (20000, 32)
    assert (codes != 0).float().mean().item() == pytest.approx(0.1, abs=0.01)
    assert torch.allclose(x, codes @ f, atol=1e-6)
    with pytest.raises(ValueError, match="probability"):
        toy.sample_toy_data(f, 10, sparsity=5)


def test_superposition_makes_neurons_polysemantic():
    f = toy.make_toy_features(32, 16, seed=0)
    assert toy.neuron_responses(f).shape == (16, 32)
    assert (toy.n_features_per_neuron(f, threshold=0.3) >= 2).all()
    assert toy.interference(f) > 0.1
    assert toy.interference(torch.eye(8)) == 0.0  # fewer features than dims: no interference


@pytest.mark.parametrize("activation", ["relu", "topk"])
def test_sae_recovers_toy_features(activation):
    result = toy.train_toy_sae(n_features=32, d=16, activation=activation, n_steps=1000, seed=0)
    assert result.recovery["mean_best_cos"] >= 0.9
    assert result.fvu < 0.3
    if activation == "topk":
        assert result.l0 <= 2  # TopK keeps k latents, then ReLU can zero a few more


def test_widget_panel_builds_and_trains_once():
    import matplotlib
    matplotlib.use("Agg")
    from saelab.widgets.theory import toy_sae_panel
    panel = toy_sae_panel(n_steps=20)
    assert len(panel.children) == 2  # the sliders and the output area


def test_best_linear_readout_separates_as_many_features_as_dimensions_but_not_more():
    own, leak = toy.best_linear_readout(toy.make_toy_features(16, 16, seed=0))
    assert own == pytest.approx(1.0, abs=1e-9) and leak < 1e-9
    own, leak = toy.best_linear_readout(toy.make_toy_features(32, 16, seed=0))
    assert own == pytest.approx(0.5, abs=1e-9)  # a rank-16 projection shared by 32 features: trace 16 / 32
    assert leak > 0.1


def test_collapsed_decoder_copies_columns_and_raises_orthogonality():
    from saelab import metrics
    W = torch.nn.functional.normalize(torch.randn(16, 64, generator=torch.Generator().manual_seed(0)), dim=0)
    collapsed = toy.collapsed_decoder(W, 4)
    assert collapsed.shape == W.shape
    assert torch.equal(collapsed[:, 4], W[:, 0]) and torch.equal(collapsed[:, 63], W[:, 3])
    assert metrics.decoder_orthogonality(collapsed) > metrics.decoder_orthogonality(W) + 0.1
    with pytest.raises(ValueError, match="n_directions"):
        toy.collapsed_decoder(W, 0)


def test_spread_mean_range_and_verdicts():
    a, b = toy.spread([0.1, 0.3, 0.2]), toy.spread([0.35, 0.5, 0.4])
    assert (a.mean, a.lo, a.hi) == (pytest.approx(0.2), 0.1, 0.3)
    assert a.clearly_below(b) and not b.clearly_below(a) and not a.overlaps(b)
    assert toy.spread([0.25, 0.6]).overlaps(a)
    assert a.format(2) == "0.20 (0.10-0.30)"
    with pytest.raises(ValueError, match="at least one value"):
        toy.spread([])


def test_train_toy_saes_runs_one_seed_each_and_the_seed_draws_everything():
    runs = toy.train_toy_saes([3, 4], activation="topk", k=2, n_steps=20, log_every=10)
    assert len(runs) == 2
    assert torch.equal(runs[0].features, toy.make_toy_features(32, 16, seed=3))
    assert not torch.equal(runs[0].features, runs[1].features)
    assert runs[0].history.step == [10, 20]
    again = toy.train_toy_sae(activation="topk", k=2, n_steps=20, log_every=10, seed=3)
    assert torch.equal(again.sae.W_dec, runs[0].sae.W_dec)
