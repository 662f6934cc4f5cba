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
