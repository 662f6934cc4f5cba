import threading

import pytest
import torch

from saelab.sae import SAE
from saelab.toy import make_toy_features, sample_toy_data
from saelab.training import History, init_sae_, resample_dead_latents, train_sae


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


# --- precision (issue 15) -------------------------------------------------------------------------------
from saelab import precision  # noqa: E402


@pytest.fixture
def fresh_auto(monkeypatch):
    """Empty "auto" caches for one test; returns a function that fakes the timings "auto" sees."""
    monkeypatch.setattr(precision, "_CHOSEN", {})
    monkeypatch.setattr(precision, "_PROBED", {("bf16", "cpu"): 2.0})  # the hardware screen lets bf16 through

    def fake(seconds):
        def time_steps(steps, **kwargs):
            for fn in steps.values():
                fn()  # the timing steps really run (on copies of the SAE)
            return {name: seconds[name] for name in steps}
        monkeypatch.setattr(precision, "time_steps", time_steps)
    return fake


def mid_data(n=2048, d=64, seed=0, n_features=256, sparsity=0.02):
    """Big enough for "auto" to time steps (batch x d x n_latents >= precision.TOY_WORK)."""
    x, _ = sample_toy_data(make_toy_features(n_features, d, seed=seed), n, sparsity=sparsity, seed=seed + 1)
    return x


def test_auto_that_keeps_fp32_is_bit_identical_to_fp32(fresh_auto):
    """Issue 15: where "auto" keeps float32, results are bit-identical to today's (timing runs on copies)."""
    fresh_auto({"fp32": 1.0, "bf16": 0.9})  # bf16 "only" 1.1x faster: auto keeps fp32
    x = mid_data()
    a, b = SAE(64, 512), SAE(64, 512)
    ha = train_sae(a, x, n_steps=4, batch_size=512, lr=1e-3, l1_coef=1e-2, log_every=3, precision="fp32")
    hb = train_sae(b, x, n_steps=4, batch_size=512, lr=1e-3, l1_coef=1e-2, log_every=3, precision="auto")
    assert precision.TIMINGS  # "auto" really timed both precisions before choosing
    assert ha.precision == hb.precision == "fp32"
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]) if torch.is_tensor(value) else value == b.state_dict()[key]
    assert ha.loss == hb.loss and ha.fvu == hb.fvu


def test_auto_picks_bf16_when_faster_and_says_so_in_the_history(fresh_auto):
    fresh_auto({"fp32": 1.0, "bf16": 0.4})
    hist = train_sae(SAE(64, 512), mid_data(), n_steps=2, batch_size=512, log_every=1, precision="auto")
    assert hist.precision == "bf16"


def test_bf16_keeps_parameters_and_metrics_float32():
    x = toy_data()
    fp32, bf16 = SAE(16, 64), SAE(16, 64)
    train_sae(fp32, x, n_steps=20, batch_size=256, lr=1e-2, l1_coef=0.1, precision="fp32")
    seen = {}
    hist = train_sae(bf16, x, n_steps=20, batch_size=256, lr=1e-2, l1_coef=0.1, log_every=10, precision="bf16",
                     callback=lambda h, sae: seen.setdefault("dtypes", {p.dtype for p in sae.parameters()}))
    assert hist.precision == "bf16" and seen["dtypes"] == {torch.float32}
    assert all(p.dtype == torch.float32 for p in bf16.parameters())
    assert torch.allclose(bf16.W_dec.norm(dim=0), torch.ones(64), atol=1e-5)  # norm constraint in float32
    assert all(isinstance(v, float) for k, v in hist.last().items() if k != "step")
    assert not torch.equal(fp32.W_dec, bf16.W_dec)  # the matmuls really ran in bfloat16 (quality: tests below)


def test_fp16_on_cpu_is_a_clear_error():
    with pytest.raises(ValueError, match="'fp16' needs a CUDA GPU"):
        train_sae(SAE(16, 32), toy_data(), n_steps=1, precision="fp16")
    with pytest.raises(ValueError, match="precision must be one of"):
        train_sae(SAE(16, 32), toy_data(), n_steps=1, precision="float16")


def final_quality(sae, x):
    """(FVU, L0, dead fraction) of a trained SAE on x, computed in float32."""
    from saelab import metrics
    with torch.no_grad():
        latents = sae.encode(x)
        fvu = metrics.fraction_variance_unexplained(x, sae.decode(latents))
    return fvu, metrics.l0(latents), (latents.amax(dim=0) == 0).float().mean().item()


def assert_same_quality(x, d, n, **kwargs):
    """The quality guard: the same seeded run in bf16 and fp32 ends within 2% (relative) on FVU, L0, dead."""
    saes = {p: SAE(d, n) for p in ("fp32", "bf16")}
    for p, sae in saes.items():
        assert train_sae(sae, x, seed=0, log_every=10**6, ortho_every=None, precision=p, **kwargs).precision == p
    (fvu32, l0_32, dead32), (fvu16, l0_16, dead16) = (final_quality(saes[p], x) for p in ("fp32", "bf16"))
    start_fvu, start_l0, _ = final_quality(init_sae_(SAE(d, n), 0, x), x)
    assert fvu32 < 0.5 * start_fvu and l0_32 < 0.5 * start_l0  # both runs really trained: a real comparison
    assert fvu16 == pytest.approx(fvu32, rel=0.02)
    assert l0_16 == pytest.approx(l0_32, rel=0.02)
    assert dead16 == pytest.approx(dead32, rel=0.02)


def test_bf16_reaches_the_same_quality_on_tiny_world_activations(one_thread):
    """Issue 15 quality guard on the tiny world's MLP output (d_model 160, 640 latents)."""
    from saelab.activations import ActivationSource
    from saelab.models import load_model
    from saelab.tinyworld import FILES_DIR, MLP_HOOK
    model = load_model(str(FILES_DIR), device="cpu")
    x = ActivationSource(model, MLP_HOOK, "tiny-world", batch_size=128, progress=False,
                         precision="fp32").collect(4096)
    assert_same_quality(x, 160, 640, n_steps=80, batch_size=128, lr=2e-3,
                        l1_coef=0.2 * x.norm(dim=-1).mean().item())


def test_bf16_reaches_the_same_quality_on_gpt2_shaped_activations(one_thread):
    """Issue 15 quality guard on 768-d activations with GPT-2's traits: sparse features, a large mean, outliers."""
    x = mid_data(4096, 768, n_features=128, sparsity=0.03)
    x = x + 3 * torch.randn(768, generator=torch.Generator().manual_seed(2))  # a large mean, like GPT-2's
    x[:, :4] *= 10  # and a few outlier dimensions
    assert_same_quality(x, 768, 256, n_steps=60, batch_size=64, lr=3e-3, l1_coef=0.1)
