import threading

import pytest
import torch
import torch.nn.functional as F

from saelab.sae import SAE, load_sae_file
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
    with pytest.raises(ValueError, match="aux_k is the AuxK loss of .*use resample_every instead"):
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


def assert_same_quality(x, d, n, sae_kwargs=None, **kwargs):
    """The quality guard: bf16 must not make a seeded run worse than fp32 runs of other seeds can be.

    fp32 runs five seeds; R is their range (for the dead fraction at least one latent, 1/n). bf16 (seed 0) passes
    when its FVU and dead fraction are at most the worst fp32 seed plus R, and its L0 lies within the fp32 range
    widened by R on both sides. A bound of three seeds' range (the old guard) is too tight: a fourth draw from the
    same runs falls outside three seeds' range half the time, and it failed on an AMX CPU with bf16 at 0.492 dead
    vs fp32 0.527 (fewer dead latents, which is no loss of quality). Returns (fp32 results per seed, bf16 result),
    each (FVU, L0, dead fraction)."""
    def trained(seed, p):
        sae = SAE(d, n, **(sae_kwargs or {}))
        assert train_sae(sae, x, seed=seed, log_every=10**6, ortho_every=None, precision=p, **kwargs).precision == p
        return final_quality(sae, x)
    fp32 = [trained(seed, "fp32") for seed in range(5)]
    bf16 = trained(0, "bf16")  # forced: on a CPU without fast bf16 it still runs (slowly), so the guard runs too
    start_fvu, start_l0, _ = final_quality(init_sae_(SAE(d, n, **(sae_kwargs or {})), 0, x), x)
    assert fp32[0][0] < 0.5 * start_fvu  # the runs really trained: a real comparison
    if not sae_kwargs:  # ReLU: L1 must have made it sparse (TopK's L0 is k from the start)
        assert fp32[0][1] < 0.5 * start_l0
    for i, name in enumerate(("FVU", "L0", "dead fraction")):
        seeds = [result[i] for result in fp32]
        reach = max(max(seeds) - min(seeds), 1 / n if i == 2 else 1e-6)
        worst = f"{name}: bf16 {bf16[i]:.4f}; fp32 seeds 0-4 {min(seeds):.4f}-{max(seeds):.4f} (range {reach:.4f})"
        assert bf16[i] <= max(seeds) + reach, worst
        if name == "L0":
            assert bf16[i] >= min(seeds) - reach, worst
    return fp32, bf16


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


def test_bf16_keeps_the_dead_fraction_of_a_topk_sae_with_many_dead_latents(one_thread):
    """A case where latents die (TopK, k=4, 256 latents for 48 features: about half never fire), so the guard
    compares a real dead fraction, not 0 with 0."""
    x, _ = sample_toy_data(make_toy_features(48, 32, seed=0), 4096, sparsity=0.05, seed=1)
    fp32, bf16 = assert_same_quality(x, 32, 256, dict(activation="topk", k=4, normalize=False), n_steps=150,
                                     batch_size=256, lr=1e-2)
    assert min(result[2] for result in fp32) > 0.2 and bf16[2] > 0.2


# --- weak spots (issue 19): what each strategy sets, the AuxK value, real "auto" timings ------------------
def sae_that_reconstructs_all_but(hard: dict[int, float], n=64, d=8, n_latents=6):
    """A ReLU SAE whose latents never fire (x_hat = pre_bias) and a batch x where x - pre_bias is 0 except at the
    rows in `hard` (row -> size of its error along a row-specific direction); returns (sae, x, pre_bias)."""
    sae = SAE(d, n_latents, normalize=False)
    g = torch.Generator().manual_seed(0)
    pre_bias = torch.randn(d, generator=g)
    with torch.no_grad():
        sae.pre_bias.copy_(pre_bias)
        sae.encoder.weight.copy_(torch.randn(n_latents, d, generator=g))
        sae.latent_bias.fill_(-1e6)  # nothing fires: every row's error is |x - pre_bias|^2
        sae.decoder.weight.copy_(F.normalize(torch.randn(d, n_latents, generator=g), dim=0))
    x = pre_bias.repeat(n, 1)
    for row, size in hard.items():
        x[row] += size * F.normalize(torch.randn(d, generator=g), dim=0)
    return sae, x, pre_bias


def test_high_loss_picks_the_one_hard_input_and_sets_its_direction_and_encoder_scale():
    sae, x, pre_bias = sae_that_reconstructs_all_but({17: 3.0})
    with torch.no_grad():  # live encoder rows of norms 1, 2, 3, 6: their mean norm is 3
        for i, norm in zip((0, 2, 3, 5), (1.0, 2.0, 3.0, 6.0)):
            sae.encoder.weight[i] = norm * F.normalize(sae.encoder.weight[i], dim=0)
    dead = torch.tensor([False, True, False, False, True, False])
    assert resample_dead_latents(sae, None, dead, x, "high_loss", seed=0) == 2
    direction = F.normalize(x[17] - pre_bias, dim=0)  # every other row is reconstructed exactly
    for latent in (1, 4):
        assert torch.allclose(sae.W_dec[:, latent], direction, atol=1e-6)
        assert torch.allclose(sae.encoder.weight[latent], 0.2 * 3.0 * direction, atol=1e-6)
        assert sae.latent_bias[latent] == 0 and sae.stats_last_nonzero[latent] == 0
    assert sae.latent_bias[0] == -1e6  # live latents untouched


def test_high_loss_picks_inputs_in_proportion_to_their_squared_error():
    """Rows 3 and 40 have squared errors 1 and 9: over many draws row 40 is picked ~9x as often as row 3."""
    sae, x, pre_bias = sae_that_reconstructs_all_but({3: 1.0, 40: 3.0}, n_latents=2)
    targets = {row: F.normalize(x[row] - pre_bias, dim=0) for row in (3, 40)}
    counts = {3: 0, 40: 0}
    for seed in range(400):
        resample_dead_latents(sae, None, torch.tensor([True, False]), x, "high_loss", seed=seed)
        picked = [row for row, t in targets.items() if torch.allclose(sae.W_dec[:, 0], t, atol=1e-6)]
        assert len(picked) == 1, "the new direction must be one of the inputs with an error"
        counts[picked[0]] += 1
        with torch.no_grad():
            sae.latent_bias.fill_(-1e6)  # keep every latent silent for the next draw
    assert 0.85 <= counts[40] / 400 <= 0.95, counts  # expected 0.9; binomial sd 0.015


def test_reinit_ignores_the_errors():
    sae, x, pre_bias = sae_that_reconstructs_all_but({17: 3.0})
    dead = torch.zeros(6, dtype=torch.bool)
    dead[1] = True
    resample_dead_latents(sae, None, dead, x, "reinit", seed=0)
    direction = F.normalize(x[17] - pre_bias, dim=0)
    assert abs(float(sae.W_dec[:, 1].detach() @ direction)) < 0.99  # a random direction, not the hard input's
    assert torch.allclose(sae.encoder.weight[1], sae.W_dec[:, 1])  # encoder row = the same unit direction


def hand_sae():
    """A 2-d TopK SAE with 4 latents whose decoder columns are (1,0), (0,1), (1,1), (2,0)."""
    sae = SAE(2, 4, "topk", k=1, normalize=False)
    with torch.no_grad():
        sae.decoder.weight.copy_(torch.tensor([[1.0, 0.0, 1.0, 2.0], [0.0, 1.0, 1.0, 0.0]]))
    return sae


@pytest.mark.parametrize("aux_k, expected", [
    # token 0: dead pre-acts (l1, l2, l3) = (0.5, 2, -1); token 1: (4, -0.5, 1.5); residuals (1, 2) and (3, 3)
    # aux_k=2: t0 -> 0.5*(0,1) + 2*(1,1) = (2, 2.5), error 1 + 0.25; t1 -> 4*(0,1) + 1.5*(2,0) = (3, 4), error 1
    (2, (1.25 + 1.0) / 2 / ((5 + 18) / 2)),
    (3, (1.25 + 1.0) / 2 / ((5 + 18) / 2)),  # the third-strongest pre-acts are negative: ReLU drops them
    (1, (1.0 + 10.0) / 2 / ((5 + 18) / 2)),  # t0 -> 2*(1,1) = (2, 2), error 1; t1 -> 4*(0,1), error 9 + 1
])
def test_aux_k_loss_equals_a_hand_computation(aux_k, expected):
    from saelab.training import aux_k_loss
    pre_act = torch.tensor([[5.0, 0.5, 2.0, -1.0], [0.3, 4.0, -0.5, 1.5]])
    residual = torch.tensor([[1.0, 2.0], [3.0, 3.0]])
    dead = torch.tensor([False, True, True, True])  # latent 0 is live: it never takes part
    assert aux_k_loss(hand_sae(), pre_act, residual, dead, aux_k).item() == pytest.approx(expected, rel=1e-6)
    assert aux_k_loss(hand_sae(), pre_act, residual, torch.zeros(4, dtype=torch.bool), aux_k).item() == 0.0


def test_training_loss_is_mse_plus_aux_coef_times_aux_k_loss():
    """One step with lr=0 (weights unchanged): the logged loss minus the logged MSE is aux_coef x the AuxK loss."""
    from saelab.training import aux_k_loss
    x = toy_data(256)
    sae = init_sae_(SAE(16, 32, "topk", k=2, normalize=False), seed=0, x_sample=x)
    with torch.no_grad():
        sae.stats_last_nonzero[:16] = 100  # latents 0-15 count as dead (dead_after=50)
    with torch.no_grad():
        pre_act = sae.encode_pre_act(x)
        x_hat = sae.decode(sae.activate(pre_act))
        aux = aux_k_loss(sae, pre_act, x - x_hat, sae.stats_last_nonzero >= 50, 8).item()
    assert aux > 0.1
    hist = train_sae(sae, x, n_steps=1, batch_size=256, lr=0.0, init=False, aux_k=8, aux_coef=0.25,
                     dead_after=50, normalize_decoder=False, precision="fp32")
    assert hist.loss[0] - hist.mse[0] == pytest.approx(0.25 * aux, rel=1e-4)


@pytest.mark.parametrize("slow, expected", [("fp32", "bf16"), ("bf16", "fp32")])
def test_auto_picks_the_precision_that_really_runs_faster(monkeypatch, slow, expected):
    """No fake timer: every step in the `slow` precision sleeps 0.2 s, and "auto"'s real stopwatch must see it.
    A toy-sized SAE (each real step ~1 ms, even in this CPU's slow bf16) so the sleep decides."""
    import time as clock
    real_autocast = precision.autocast

    def autocast(p, device="cpu"):
        if p == slow:
            clock.sleep(0.2)
        return real_autocast(p, device)
    monkeypatch.setattr(precision, "autocast", autocast)
    monkeypatch.setattr(precision, "_CHOSEN", {})
    monkeypatch.setattr(precision, "TIMINGS", {})
    monkeypatch.setattr(precision, "TOY_WORK", 0)  # time even a toy-sized step
    # the hardware screen (a probe matmul, cached per process): this CPU's bf16 may be slow, so let it through
    monkeypatch.setattr(precision, "_PROBED", {("bf16", "cpu"): 2.0})
    hist = train_sae(SAE(16, 32), toy_data(), n_steps=2, batch_size=64, log_every=1, precision="auto")
    assert hist.precision == expected
    (seconds,) = precision.TIMINGS.values()  # the real step times "auto" measured on copies of the SAE
    assert seconds[slow] >= 0.2 > 1.2 * seconds[expected]


class PowerCut(Exception):
    """Stands in for a run killed mid-way (no final save)."""


@pytest.mark.parametrize("kind", ["relu", "topk"])
def test_a_checkpoint_resumes_to_the_weights_of_an_uninterrupted_run(tmp_path, kind):
    x = toy_data()
    kw = dict(n_steps=40, batch_size=128, lr=1e-2, seed=3, log_every=5, resample_every=10, dead_after=5,
              precision="fp32")
    kw.update(dict(aux_k=4) if kind == "topk" else dict(l1_coef=0.1))
    make = lambda: SAE(16, 32, "topk", k=3, normalize=False) if kind == "topk" else SAE(16, 32)  # noqa: E731
    whole = make()
    train_sae(whole, x, **kw)

    def power_cut(history, sae):
        if history.step[-1] == 25:
            raise PowerCut
    path = tmp_path / "run.pt"
    with pytest.raises(PowerCut):  # checkpoints at steps 10 and 20, killed at 25
        train_sae(make(), x, checkpoint_path=path, checkpoint_every=10, callback=power_cut, **kw)
    naive = load_sae_file(path)  # the step-20 weights without the run's state: a fresh Adam, batches from the start
    train_sae(naive, x, init=False, **{**kw, "n_steps": 20})

    resumed = make()
    hist = train_sae(resumed, x, checkpoint_path=path, checkpoint_every=10, resume=True, **kw)
    assert hist.step == [25, 30, 35, 40] and hist.tokens == 20 * 128
    for key, value in whole.state_dict().items():
        if torch.is_tensor(value):
            assert torch.equal(resumed.state_dict()[key], value), key
    assert not torch.equal(naive.W_dec, whole.W_dec)  # what the saved state is for
    assert torch.load(f"{path}.train", weights_only=True)["step"] == 40


def test_resume_without_a_saved_run_starts_afresh_and_needs_a_path(tmp_path):
    x = toy_data()
    a, b = SAE(16, 32), SAE(16, 32)
    train_sae(a, x, n_steps=10, batch_size=128, precision="fp32")
    train_sae(b, x, n_steps=10, batch_size=128, precision="fp32", checkpoint_path=tmp_path / "new.pt", resume=True)
    assert torch.equal(a.W_dec, b.W_dec)
    with pytest.raises(ValueError, match="resume=True continues the run saved at checkpoint_path"):
        train_sae(SAE(16, 32), x, n_steps=1, resume=True)
