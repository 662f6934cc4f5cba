import pytest
import torch

from saelab.sae import SAE, load_sae_file, topk_activation


def direct_latents(sd, x, normalize, k=None):
    """OpenAI's math written out by hand."""
    if normalize:
        mu = x.mean(-1, keepdim=True)
        xc = x - mu
        std = xc.std(-1, keepdim=True)
        x = xc / (std + 1e-5)
    pre = (x - sd["pre_bias"]) @ sd["encoder.weight"].T + sd["latent_bias"]
    if k is None:
        return pre.clamp(min=0)
    out = torch.zeros_like(pre)
    vals, idx = pre.topk(k, dim=-1)
    return out.scatter(-1, idx, vals.clamp(min=0))


def direct_recons(sd, x, latents, normalize):
    rec = latents @ sd["decoder.weight"].T + sd["pre_bias"]
    if normalize:
        mu = x.mean(-1, keepdim=True)
        std = (x - mu).std(-1, keepdim=True)
        rec = rec * std + mu
    return rec


@pytest.mark.parametrize("activation,k", [("TopK", 4), ("ReLU", None)])
def test_encode_decode_match_direct_computation(openai_state_dict, activation, k):
    sd = openai_state_dict(activation=activation, k=k or 4)
    sae = SAE.from_state_dict(dict(sd), hook_name="blocks.8.hook_resid_post")
    normalize = activation == "TopK"  # OpenAI's rule
    assert sae.normalize is normalize
    x = torch.randn(3, 7, 16) * 5 + 2
    want = direct_latents(sd, x, normalize, k if activation == "TopK" else None)
    torch.testing.assert_close(sae.encode(x), want)
    pre, latents, recons = sae(x)
    torch.testing.assert_close(latents, want)
    torch.testing.assert_close(recons, direct_recons(sd, x, want, normalize))
    x_in, info = sae.preprocess(x)
    torch.testing.assert_close(sae.decode(latents, info), recons)


def test_normalisation_off_for_relu_on_for_topk():
    x = torch.randn(5, 8) * 10 + 3
    relu = SAE(8, 16)
    assert not relu.normalize and torch.equal(relu.preprocess(x)[0], x)
    topk = SAE(8, 16, "topk", k=2)
    xn, info = topk.preprocess(x)
    torch.testing.assert_close(xn.mean(-1), torch.zeros(5), atol=1e-5, rtol=0)
    torch.testing.assert_close(xn.std(-1), torch.ones(5), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="pass info"):
        topk.decode(torch.zeros(5, 16))


def test_topk_keeps_exactly_the_k_largest():
    pre = torch.tensor([[3.0, -1.0, 5.0, 0.5, 4.0], [-3.0, -2.0, -1.0, -4.0, -5.0]])
    out = topk_activation(pre, 2)
    assert out.tolist() == [[0.0, 0.0, 5.0, 0.0, 4.0], [0.0, 0.0, 0.0, 0.0, 0.0]]
    sae = SAE(16, 64, "topk", k=5)
    lat = sae.encode(torch.randn(10, 16))
    assert ((lat != 0).sum(-1) <= 5).all()
    vals, idx = sae.encode_topk(torch.randn(10, 16))
    assert vals.shape == idx.shape == (10, 5)


def test_save_load_round_trip_keeps_openai_format(tmp_path, openai_state_dict):
    sd = openai_state_dict()
    sae = SAE.from_state_dict(dict(sd), hook_name="blocks.2.hook_resid_post")
    path = sae.save(tmp_path / "sae.pt")
    raw = torch.load(path, weights_only=True)
    assert set(raw) == set(sd)
    assert raw["activation"] == "TopK" and raw["activation_state_dict"] == {"k": 4, "postact_fn": "ReLU"}
    for key, value in sd.items():
        if torch.is_tensor(value):
            assert torch.equal(raw[key], value), key
    again = load_sae_file(path)
    assert again.hook_name == "blocks.2.hook_resid_post"
    x = torch.randn(4, 16)
    torch.testing.assert_close(again.reconstruct(x), sae.reconstruct(x))


def test_relu_state_dict_has_empty_activation_settings():
    sd = SAE(4, 8).state_dict()
    assert sd["activation"] == "ReLU" and sd["activation_state_dict"] == {}
    assert SAE.from_state_dict(sd).activation == "relu"


def test_forward_counts_steps_since_each_latent_fired():
    sae = SAE(4, 3)
    with torch.no_grad():
        sae.encoder.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 0]]))
    sae(torch.tensor([[1.0, 0, 0, 0]]))
    sae(torch.tensor([[1.0, 0, 0, 0]]))
    assert sae.stats_last_nonzero.tolist() == [1, 2, 2]


@pytest.mark.parametrize("mutate,message", [
    (lambda sd: sd.pop("decoder.weight"), "missing"),
    (lambda sd: sd.update(activation="GELU"), "activation must be one of"),
    (lambda sd: sd.update(activation_state_dict={"k": 1000, "postact_fn": "ReLU"}), "k"),
    (lambda sd: sd.update(pre_bias=torch.zeros(3)), "pre_bias has shape"),
])
def test_bad_state_dicts_name_the_problem(openai_state_dict, mutate, message):
    sd = openai_state_dict()
    mutate(sd)
    with pytest.raises(ValueError, match=message):
        SAE.from_state_dict(sd)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="k <= n_latents"):
        SAE(8, 16, "topk", k=17)
    with pytest.raises(ValueError, match="activation must be one of"):
        SAE(8, 16, "gelu")


def test_corrupt_file_gives_a_clear_error(tmp_path):
    path = SAE(4, 8).save(tmp_path / "s.pt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable SAE"):
        load_sae_file(path)


def test_interrupted_save_keeps_the_previous_file(tmp_path, monkeypatch):
    path = SAE(4, 8).save(tmp_path / "s.pt")
    before = path.read_bytes()

    def broken_save(obj, f, *a, **k):
        open(f, "wb").write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        SAE(4, 8).save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.pt", "s.pt.json"]  # no leftover temp file
