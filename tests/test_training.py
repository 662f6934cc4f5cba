import threading

import pytest
import torch

from saelab.sae import SAE
from saelab.toy import make_toy_features, sample_toy_data
from saelab.training import History, resample_dead_latents, train_sae


def toy_data(n=4096, seed=0):
    x, _ = sample_toy_data(make_toy_features(32, 16, seed=seed), n, sparsity=0.05, seed=seed + 1)
    return x


def test_same_seed_same_weights_and_other_seed_differs():
    x = toy_data()
    saes = [SAE(16, 32), SAE(16, 32), SAE(16, 32)]
    for sae, seed in zip(saes, (0, 0, 1)):
        train_sae(sae, x, n_steps=30, batch_size=128, lr=1e-2, l1_coef=0.1, seed=seed, log_every=10)
    assert torch.equal(saes[0].W_dec, saes[1].W_dec)
    assert not torch.equal(saes[0].W_dec, saes[2].W_dec)


def test_loss_decreases_and_history_is_complete():
    hist = train_sae(SAE(16, 64), toy_data(), n_steps=300, batch_size=256, lr=1e-2, l1_coef=0.1,
                     log_every=10, ortho_every=100)
    assert isinstance(hist, History)
    assert hist.step == list(range(10, 301, 10))
    assert hist.loss[-1] < 0.5 * hist.loss[0]
    assert len(hist.ortho) == 3 and 0 <= hist.ortho[-1] <= 1
    assert hist.tokens == 300 * 256 and hist.tokens_per_s > 0
    assert set(hist.last()) >= {"loss", "mse", "l1", "l0", "fvu", "dead_fraction"}


def test_decoder_columns_stay_unit_norm():
    sae = SAE(16, 64)
    train_sae(sae, toy_data(), n_steps=50, batch_size=256, lr=1e-2, l1_coef=0.1)
    assert torch.allclose(sae.W_dec.norm(dim=0), torch.ones(64), atol=1e-5)


def test_topk_l0_equals_k():
    sae = SAE(16, 64, "topk", k=3, normalize=False)
    hist = train_sae(sae, toy_data(), n_steps=100, batch_size=256, lr=1e-2, log_every=20)
    assert all(v == 3 for v in hist.l0)
    assert hist.l1 and hist.loss == hist.mse  # TopK trains on MSE only


@pytest.mark.parametrize("strategy", ["reinit", "high_loss"])
def test_dead_latent_comes_back_after_resampling(strategy):
    x = toy_data()
    sae = SAE(16, 32)
    train_sae(sae, x, n_steps=20, batch_size=256, lr=1e-2, l1_coef=0.1)
    with torch.no_grad():  # kill latent 5: it can never fire on any input
        sae.encoder.weight[5] = 0.0
        sae.latent_bias[5] = -100.0
    hist = train_sae(sae, x, n_steps=60, batch_size=256, lr=1e-3, l1_coef=0.1, init=False,
                     resample_every=20, dead_after=20, resample_strategy=strategy)
    assert hist.resampled and hist.resampled[0][0] == 20
    assert sae.latent_bias[5] > -1.0
    assert (sae.encode(x)[:, 5] > 0).any()  # alive again
    assert sae.stats_last_nonzero[5] < 20


def test_resample_resets_adam_state_of_the_resampled_latent_only():
    x = toy_data(512)
    sae = SAE(16, 32)
    opt = torch.optim.Adam(sae.parameters(), lr=1e-3)
    loss = sae(x)[2].pow(2).sum()
    loss.backward()
    opt.step()
    dead = torch.zeros(32, dtype=torch.bool)
    dead[[1, 7]] = True
    assert resample_dead_latents(sae, opt, dead, x, "high_loss") == 2
    state = opt.state[sae.decoder.weight]["exp_avg"]
    assert state[:, [1, 7]].abs().sum() == 0 and state[:, 0].abs().sum() > 0
    assert torch.allclose(sae.W_dec[:, [1, 7]].norm(dim=0), torch.ones(2))


def test_callback_and_stop_event_stop_training():
    x = toy_data()
    hist = train_sae(SAE(16, 32), x, n_steps=500, batch_size=64, log_every=10,
                     callback=lambda h, sae: h.step[-1] >= 30)
    assert hist.stopped and hist.step[-1] == 30
    stop = threading.Event()
    stop.set()
    hist = train_sae(SAE(16, 32), x, n_steps=500, batch_size=64, stop=stop)
    assert hist.stopped and hist.tokens == 64


def test_iterator_data_and_checkpoint(tmp_path):
    x = toy_data()
    batches = (x[i:i + 256] for i in range(0, 2048, 256))  # 8 batches, then it runs out
    path = tmp_path / "sae.pt"
    hist = train_sae(SAE(16, 32), batches, n_steps=100, log_every=4, checkpoint_path=path, checkpoint_every=4)
    assert hist.tokens == 2048 and path.is_file()


@pytest.mark.parametrize("aux_k", [0, 8])
def test_aux_k_loss_gives_a_dead_topk_latent_gradient(aux_k):
    x = toy_data()
    sae = SAE(16, 64, "topk", k=3, normalize=False)
    train_sae(sae, x, n_steps=20, batch_size=256, lr=1e-2)
    with torch.no_grad():  # latent 5: far too weak to make the top 3, so TopK never lets it fire
        sae.encoder.weight[5] = 1e-3 * sae.encoder.weight[5] / sae.encoder.weight[5].norm()
        sae.latent_bias[5] = 0.0
        sae.stats_last_nonzero[5] = 1000
    before = sae.encoder.weight[5].clone()
    train_sae(sae, x, n_steps=10, batch_size=256, lr=1e-2, init=False, aux_k=aux_k, dead_after=5)
    moved = not torch.equal(sae.encoder.weight[5], before)
    assert moved == bool(aux_k)  # only the AuxK loss reaches a latent that never fires


def test_bad_arguments_say_what_to_do():
    with pytest.raises(ValueError, match="aux_k is the AuxK loss of TopK SAEs"):
        train_sae(SAE(16, 32), toy_data(), n_steps=1, aux_k=8)
    with pytest.raises(ValueError, match="resample_strategy must be one of"):
        train_sae(SAE(16, 32), toy_data(), n_steps=1, resample_strategy="anthropic")
    with pytest.raises(ValueError, match="no batches"):
        train_sae(SAE(16, 32), iter([]), n_steps=1)


def test_orthogonality_switches_to_the_sampled_estimate_for_big_dictionaries():
    from saelab import metrics
    from saelab.training import decoder_orthogonality_auto
    W = torch.randn(8, 300, generator=torch.Generator().manual_seed(0))
    assert decoder_orthogonality_auto(W, exact_max=512) == metrics.decoder_orthogonality(W)
    sampled = decoder_orthogonality_auto(W, exact_max=100, seed=3)
    assert sampled == metrics.decoder_orthogonality_sampled(W, n_pairs=16384, seed=3)
    assert sampled == pytest.approx(metrics.decoder_orthogonality(W), rel=0.05)


def test_batches_with_a_position_axis_are_flattened():
    x = toy_data(2048).reshape(8, 16, 16, 16)  # 8 batches of [16 sequences, 16 positions, d=16]
    hist = train_sae(SAE(16, 32), iter(x), n_steps=8, log_every=4)
    assert hist.tokens == 2048 and len(hist.step) == 2
