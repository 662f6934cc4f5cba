"""train_sae(..., target=...): an SAE that reads one tensor and reconstructs another (a transcoder)."""
import pytest
import torch

from saelab.sae import SAE
from saelab.toy import make_toy_features, sample_toy_data
from saelab.training import iterate_pairs, resample_dead_latents, train_sae


def mlp_pair(n=4096, seed=0):
    """Sparse toy inputs and a fixed linear map of them: a target no input-reconstructing SAE can fit."""
    x, _ = sample_toy_data(make_toy_features(32, 16, seed=seed), n, sparsity=0.05, seed=seed + 1)
    W = torch.randn(16, 16, generator=torch.Generator().manual_seed(seed + 2)) / 4
    return x, x @ W + 0.5


def test_transcoder_learns_the_target_not_the_input():
    x, y = mlp_pair()
    sae = SAE(16, 64, "topk", k=4, normalize=False)
    hist = train_sae(sae, x, target=y, n_steps=400, batch_size=256, lr=3e-3, log_every=50, precision="fp32")
    assert hist.fvu[-1] < 0.2  # FVU is measured against the target
    with torch.no_grad():
        out = sae.decode(sae.encode(x))
    err_target = (out - y).pow(2).sum(-1).mean()
    err_input = (out - x).pow(2).sum(-1).mean()
    assert err_target < 0.2 * err_input
    assert torch.allclose(sae.pre_bias, y.mean(0), atol=0.3)  # output bias lives near the target mean


def test_streamed_pairs_give_the_same_training_as_a_target_tensor_in_the_same_order():
    x, y = mlp_pair(n=1024)
    a, b = SAE(16, 32, "relu"), SAE(16, 32, "relu")
    train_sae(a, x[:1024], target=y[:1024], n_steps=4, batch_size=1024, l1_coef=1e-3, precision="fp32")
    stream = ((x, y) for _ in range(4))  # one full batch per step, same rows as the tensor path
    train_sae(b, stream, n_steps=4, batch_size=1024, l1_coef=1e-3, precision="fp32")
    # the tensor path shuffles rows within the batch; sums over the batch make the two equal up to rounding
    assert torch.allclose(a.W_dec, b.W_dec, atol=1e-5)


def test_target_none_and_target_equal_to_input_train_the_same_sae():
    x, _ = mlp_pair(n=2048)
    a, b = SAE(16, 32, "relu"), SAE(16, 32, "relu")
    ha = train_sae(a, x, n_steps=30, batch_size=256, l1_coef=1e-2, seed=1, precision="fp32")
    hb = train_sae(b, x, target=x.clone(), n_steps=30, batch_size=256, l1_coef=1e-2, seed=1, precision="fp32")
    assert torch.equal(a.W_dec, b.W_dec) and ha.loss == hb.loss


def test_iterate_pairs_keeps_rows_aligned():
    x = torch.arange(20.0).reshape(10, 2)
    batches = iterate_pairs(x, x * 10, batch_size=4, seed=0)
    for _ in range(5):
        xb, yb = next(batches)
        assert torch.equal(yb, xb * 10)


def test_high_loss_resampling_points_the_decoder_at_the_missed_target():
    x, y = mlp_pair(n=512)
    sae = SAE(16, 8, "relu")
    dead = torch.zeros(8, dtype=torch.bool)
    dead[3] = True
    assert resample_dead_latents(sae, None, dead, x, "high_loss", target=y) == 1
    col = sae.W_dec[:, 3]
    cos = torch.nn.functional.cosine_similarity(col[None], y - sae.pre_bias, dim=-1)
    assert cos.max() > 0.999  # the new column is one of the (normalised) targets


@pytest.mark.parametrize("make, match", [
    (lambda x, y: dict(data=x, target=y[:-1]), "one target row per input row"),
    (lambda x, y: dict(data=iter([x]), target=y), "yield \\(input, target\\) pairs"),
    (lambda x, y: dict(data=x, target=y[:, :8]), "width 8"),
    (lambda x, y: dict(data=iter([(x, y[:-3])]), target=None), "input rows"),
    (lambda x, y: dict(data=iter([(x, y, y)]), target=None), "\\(input, target\\) pair"),
])
def test_bad_targets_get_clear_errors(make, match):
    x, y = mlp_pair(n=256)
    with pytest.raises(ValueError, match=match):
        train_sae(SAE(16, 32, "relu"), n_steps=2, batch_size=64, **make(x, y))


def test_normalising_sae_refuses_a_target():
    x, y = mlp_pair(n=256)
    with pytest.raises(ValueError, match="normalize=False"):
        train_sae(SAE(16, 32, "topk", k=2), x, target=y, n_steps=2, batch_size=64)
