import copy
import re
import warnings
from pathlib import Path

import pytest
import torch

from saelab import sparse_topk
from saelab.losses import batch_losses, fired_latents, loss_settings, mean_l0
from saelab.sae import SAE, load_sae_file
from saelab.toy import make_toy_features, sample_toy_data
from saelab.training import init_sae_, train_sae

FAMILY = ("topk", "batchtopk", "matryoshka")
WEIGHT_TOL = 1e-5  # max |dense - sparse| of any weight after 300 steps (measured: <= 7.2e-7; weights ~0.1-1)


def toy_data(n=8192, seed=0):
    x, _ = sample_toy_data(make_toy_features(64, 32, seed=seed), n, sparsity=0.05, seed=seed + 1)
    return x


def random_sae(activation, d=32, n=256, k=8, seed=0):
    """An SAE with random biases and counters, so every path (AuxK included) has work to do."""
    sae = init_sae_(SAE(d, n, activation, k=k, normalize=False), seed)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        sae.latent_bias.copy_(torch.randn(n, generator=g) * 0.3)
        sae.pre_bias.copy_(torch.randn(d, generator=g))
        sae.stats_last_nonzero.copy_(torch.randint(0, 10, (n,), generator=g))
    return sae


def one_step(sae, x, decoder, aux_k):
    """(loss, mse, l1, latents, x_hat, gradients by name) of one forward + backward on a copy of `sae`."""
    s = copy.deepcopy(sae)
    if decoder == "sparse":
        sparse_topk.column_major_(s.decoder.weight)
    loss, mse, l1, latents, x_hat = batch_losses(s, x, x, loss_settings(s, 0.0, 0.0, aux_k, 0.5, 5), decoder)
    loss.backward()
    return loss, mse, l1, latents, x_hat, {name: p.grad for name, p in s.named_parameters()}


def test_gather_sum_is_a_sparse_matrix_times_a_table():
    g = torch.Generator().manual_seed(0)
    out_rows, in_rows = torch.randint(0, 5, (40,), generator=g), torch.randint(0, 7, (40,), generator=g)
    weights, table = torch.randn(40, generator=g), torch.randn(7, 3, generator=g)
    dense = torch.zeros(5, 7).index_put_((out_rows, in_rows), weights, accumulate=True)
    torch.testing.assert_close(sparse_topk.gather_sum(out_rows, in_rows, weights, table, 5), dense @ table)


@pytest.mark.parametrize("activation", FAMILY)
@pytest.mark.parametrize("aux_k", [0, 4])
def test_sparse_losses_and_gradients_equal_the_dense_ones(activation, aux_k):
    """The sparse decoder and the encoder's sparse backward give the dense step's numbers, up to float rounding."""
    sae, x = random_sae(activation), torch.randn(64, 32, generator=torch.Generator().manual_seed(1))
    dense, sparse = one_step(sae, x, "dense", aux_k), one_step(sae, x, "sparse", aux_k)
    for i, name in enumerate(("loss", "mse", "l1")):
        torch.testing.assert_close(sparse[i], dense[i], rtol=1e-5, atol=0, msg=name)
    torch.testing.assert_close(sparse[4], dense[4], rtol=0, atol=1e-5)
    assert torch.equal(sparse[3].to_dense(), dense[3])  # the same latents chosen, the same values
    for name, grad in dense[5].items():
        if grad is not None:  # relative to the gradient's size: float32 sums in another order
            assert (sparse[5][name] - grad).abs().max() <= 1e-5 * grad.abs().max(), name
    assert sparse[5]["encoder.weight"].abs().sum(dim=1).count_nonzero() < sae.n_latents  # unselected rows: zero


def test_sparse_latents_say_which_fired_and_their_l0_like_dense_ones():
    sae, x = random_sae("batchtopk"), torch.randn(16, 32, generator=torch.Generator().manual_seed(2))
    dense, sparse = one_step(sae, x, "dense", 0)[3], one_step(sae, x, "sparse", 0)[3]
    assert torch.equal(fired_latents(sparse), fired_latents(dense))
    assert mean_l0(sparse) == mean_l0(dense) == 8.0


def kill_latents(sae, n_dead=64):
    """Latents that cannot fire: after `dead_after` steps they are dead, and AuxK must revive them."""
    with torch.no_grad():
        sae.latent_bias[:n_dead] = -5.0


@pytest.mark.parametrize("activation, kwargs", [("topk", dict(aux_k=16, dead_after=5)),
                                                ("batchtopk", dict(aux_k=16, dead_after=5)),
                                                ("matryoshka", dict(aux_k=16, dead_after=5)),
                                                ("topk", dict(resample_every=50, dead_after=20))])
def test_sparse_and_dense_training_give_the_same_weights(activation, kwargs):
    """Issue 30: the same initial weights and batches, 300 steps, fp32: every weight within WEIGHT_TOL."""
    x = toy_data()
    start = init_sae_(SAE(32, 256, activation, k=8, normalize=False), 0)
    kill_latents(start)
    runs = {}
    for decoder in ("dense", "sparse"):
        sae = copy.deepcopy(start)
        hist = train_sae(sae, x, n_steps=300, batch_size=128, lr=1e-3, init=False, log_every=25, precision="fp32",
                         decoder=decoder, **kwargs)
        assert hist.decoder == decoder
        runs[decoder] = sae, hist
    (dense, hd), (sparse, hs) = runs["dense"], runs["sparse"]
    if "aux_k" in kwargs:
        assert any(loss > mse for loss, mse in zip(hs.loss, hs.mse))  # AuxK really took part
    else:
        assert hs.resampled == hd.resampled != []
    assert torch.equal(sparse.stats_last_nonzero, dense.stats_last_nonzero)
    assert hs.l0 == hd.l0 and hs.dead_fraction == hd.dead_fraction
    for key, value in dense.state_dict().items():
        if torch.is_tensor(value) and value.is_floating_point():
            assert (sparse.state_dict()[key] - value).abs().max() <= WEIGHT_TOL, key
    assert not torch.equal(sparse.W_dec, start.W_dec)  # it trained
    assert sparse.W_dec.is_contiguous()  # the column-major layout of the sparse step is undone at the end
    torch.testing.assert_close(sparse.W_dec.norm(dim=0), torch.ones(256))


def test_a_sparse_checkpoint_resumes_to_the_weights_of_an_uninterrupted_sparse_run(tmp_path):
    x = toy_data()
    kw = dict(n_steps=40, batch_size=128, lr=1e-2, seed=3, log_every=5, resample_every=10, dead_after=5, aux_k=4,
              precision="fp32", decoder="sparse")
    make = lambda: SAE(32, 64, "batchtopk", k=3, normalize=False)  # noqa: E731
    whole = make()
    train_sae(whole, x, **kw)

    def power_cut(history, sae):
        if history.step[-1] == 25:
            raise RuntimeError("power cut")
    path = tmp_path / "run"
    with pytest.raises(RuntimeError, match="power cut"):
        train_sae(make(), x, checkpoint_path=path, checkpoint_every=10, callback=power_cut, **kw)
    assert torch.load(f"{path}.train", weights_only=True)["decoder"] == "sparse"
    assert load_sae_file(path).W_dec.is_contiguous()
    resumed = make()
    hist = train_sae(resumed, x, checkpoint_path=path, checkpoint_every=10, resume=True,
                     **{**kw, "decoder": "auto"})
    assert hist.decoder == "sparse" and hist.decoder_note == "resumed"
    for key, value in whole.state_dict().items():
        if torch.is_tensor(value):
            assert torch.equal(resumed.state_dict()[key], value), key


@pytest.mark.parametrize("activation", ["relu", "jumprelu", "gated"])
def test_sparse_decoder_for_an_sae_without_k_is_a_clear_error(activation):
    with pytest.raises(ValueError, match=r'decoder="sparse" trains topk, batchtopk, matryoshka SAEs only'):
        train_sae(SAE(16, 32, activation), toy_data(256), n_steps=1, decoder="sparse")
    with pytest.raises(ValueError, match="decoder must be one of"):
        train_sae(SAE(16, 32, "topk", k=2), toy_data(256), n_steps=1, decoder="embedding_bag")


@pytest.fixture
def no_timing(monkeypatch):
    """Fail the test if "auto" times anything."""
    def time_steps(*args, **kwargs):
        raise AssertionError("auto timed steps")
    monkeypatch.setattr(sparse_topk.amp, "time_steps", time_steps)


@pytest.mark.parametrize("activation, n", [("topk", 2048), ("matryoshka", 4095), ("relu", 4096), ("jumprelu", 8192)])
def test_auto_keeps_dense_without_timing_below_the_threshold_and_without_k(no_timing, activation, n):
    sae = SAE(8, n, activation, k=4 if activation in FAMILY else None)
    hist = train_sae(sae, toy_data(256)[:, :8], n_steps=1, batch_size=64, log_every=1, precision="fp32")
    assert hist.decoder == "dense"
    assert ("dense without timing" in hist.decoder_note) and (str(n) in hist.decoder_note or activation in
                                                              hist.decoder_note)


@pytest.mark.parametrize("sparse_s, expected", [(0.4, "sparse"), (2.0, "dense")])
def test_auto_above_the_threshold_times_both_and_keeps_the_faster(monkeypatch, sparse_s, expected):
    monkeypatch.setattr(sparse_topk, "DECODER_TIMINGS", {})
    timed = {}

    def time_steps(steps, **kwargs):
        for name, fn in steps.items():
            fn()  # the real steps run, on copies of the SAE
            timed[name] = True
        return {"dense": 1.0, "sparse": sparse_s}
    monkeypatch.setattr(sparse_topk.amp, "time_steps", time_steps)
    sae = SAE(8, sparse_topk.SPARSE_MIN_LATENTS, "topk", k=4, normalize=False)
    init_sae_(sae, 0)
    before = copy.deepcopy(sae.state_dict())
    hist = train_sae(sae, toy_data(256)[:, :8], n_steps=0, batch_size=64, lr=1e-2, init=False, precision="fp32")
    assert timed == {"dense": True, "sparse": True}
    assert hist.decoder == expected and f"kept {expected}" in hist.decoder_note
    assert re.search(r"timed \d+ ms sparse vs \d+ ms dense", hist.decoder_note)
    for key, value in before.items():  # the timed steps ran on copies
        assert torch.equal(sae.state_dict()[key], value) if torch.is_tensor(value) else True, key


def test_a_backend_without_the_op_falls_back_to_dense_and_says_so(monkeypatch):
    monkeypatch.setattr(sparse_topk, "_BACKEND", {})

    def no_embedding_bag(*args, **kwargs):
        raise NotImplementedError("embedding_bag is not implemented for this backend")
    monkeypatch.setattr(sparse_topk, "gather_sum", no_embedding_bag)
    with pytest.warns(RuntimeWarning, match='decoder="sparse" falls back to dense'):
        hist = train_sae(SAE(16, 64, "topk", k=4), toy_data(512)[:, :16], n_steps=3, batch_size=64, log_every=1,
                         decoder="sparse")
    assert hist.decoder == "dense" and "embedding_bag is not implemented" in hist.decoder_note
    assert len(hist.loss) == 3  # it trained, dense


def test_bf16_sparse_keeps_float32_parameters_and_trains_like_fp32():
    x = toy_data()
    out = {}
    for p in ("fp32", "bf16"):
        sae = SAE(32, 256, "topk", k=8, normalize=False)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no fallback on this machine: the sparse parts run in float32
            hist = train_sae(sae, x, n_steps=200, batch_size=256, lr=1e-3, log_every=200, precision=p,
                             decoder="sparse")
        assert hist.precision == p and hist.decoder == "sparse"
        assert all(t.dtype == torch.float32 for t in sae.parameters())
        out[p] = hist.fvu[-1]
    assert out["bf16"] < 1.1 * out["fp32"] + 0.01, out


def _peak_kib(fn) -> int:
    """Peak resident memory that `fn()` adds (kiB): /proc's high-water mark, reset first."""
    def status(field):
        return int(re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = status("VmRSS")
    fn()
    return status("VmHWM") - before


def test_the_sparse_step_peaks_at_no_more_memory_than_the_dense_step():
    """[batch, n_latents] = 64 MB: allocations that big are mmapped and returned, so RSS follows live memory."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pytest.skip("no /proc/self/clear_refs on this system: the benchmark measures peak memory instead")
    sae, x = init_sae_(SAE(16, 16384, "topk", k=16, normalize=False), 0), torch.randn(1024, 16)
    settings = loss_settings(sae, 0.0, 0.0, 32, 1 / 32, 0)
    peaks = {}
    for decoder in ("dense", "sparse"):
        s = copy.deepcopy(sae)
        if decoder == "sparse":
            sparse_topk.column_major_(s.decoder.weight)

        def step():
            s.zero_grad(set_to_none=True)
            batch_losses(s, x, x, settings, decoder)[0].backward()
        step()  # the gradients' first allocation is not the step's working memory
        peaks[decoder] = min(_peak_kib(step) for _ in range(2))
    assert peaks["dense"] > 2 * 64 * 1024, peaks  # the measurement sees the dense step's [batch, n] tensors
    assert peaks["sparse"] <= peaks["dense"], peaks
    print(f"peak memory of one step: dense {peaks['dense'] / 1024:.0f} MiB, sparse {peaks['sparse'] / 1024:.0f} MiB")
