"""k-sparse probing and the linear-probe ceiling on separable data built by hand."""
import pytest
import torch

from saelab import probing


def separable(n=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2 == 0
    latents = torch.rand(n, 10, generator=g) * 0.1
    latents[:, 7] += y.float()  # latent 7 alone separates the classes
    latents[:, 3] += 0.5 * y.float() + 0.5 * torch.rand(n, generator=g)  # latent 3 is a noisy copy
    acts = torch.randn(n, 6, generator=g)
    acts[:, 0] += 4 * (y.float() - 0.5)
    return latents, acts, y


def test_k_sparse_probe_finds_the_separating_latent_and_scores_it_on_held_out_rows():
    latents, acts, y = separable()
    out = probing.k_sparse_probe(latents[:200], y[:200], latents[200:], y[200:], k=1)
    assert out["latents"] == [7] and out["accuracy"] == pytest.approx(1.0)
    two = probing.k_sparse_probe(latents[:200], y[:200], latents[200:], y[200:], k=2)
    assert two["latents"] == [7, 3]


def test_sparse_probing_reports_every_k_and_the_ceiling():
    latents, acts, y = separable()
    out = probing.sparse_probing(latents[:200], acts[:200], y[:200], latents[200:], acts[200:], y[200:])
    assert set(out) == {"k=1", "k=2", "k=5", "linear probe"}
    assert out["linear probe"] > 0.95 and out["k=1"] == pytest.approx(1.0)


def test_a_latent_with_no_signal_probes_at_chance():
    g = torch.Generator().manual_seed(1)
    y = torch.arange(2000) % 2 == 0
    noise = torch.rand(2000, 3, generator=g)
    acc = probing.k_sparse_probe(noise[:1000], y[:1000], noise[1000:], y[1000:], k=1)["accuracy"]
    assert 0.4 < acc < 0.6


def test_pool_by_story_averages_each_storys_rows():
    x = torch.tensor([[1.0], [3.0], [10.0]])
    assert probing.pool_by_story(x, torch.tensor([0, 0, 1])).tolist() == [[2.0], [10.0]]


def test_bad_labels_get_clear_errors():
    latents, acts, y = separable(n=20)
    with pytest.raises(ValueError, match="y has 19 entries but the activations have 20 rows"):
        probing.fit_probe(acts, y[:19])
    with pytest.raises(ValueError, match="only one class"):
        probing.fit_probe(acts, torch.ones(20, dtype=torch.bool))
    with pytest.raises(ValueError, match="only one class"):
        probing.binary_labels(["positive"] * 20, 20, positive="positive")
    with pytest.raises(ValueError, match="k must be in 1..10"):
        probing.k_sparse_probe(latents, y, latents, y, k=11)
