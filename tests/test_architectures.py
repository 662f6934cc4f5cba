"""The newer SAE architectures: their rules, their training and their files."""
import json
import math

import pytest
import torch
from safetensors.torch import load_file

from saelab import architectures as arch
from saelab.sae import SAE, load_sae_file
from saelab.toy import make_toy_features, sample_toy_data
from saelab.training import train_sae

NEW = ("batchtopk", "matryoshka", "jumprelu", "gated")


def toy(n=4096, seed=0):
    x, codes = sample_toy_data(make_toy_features(32, 16, seed=seed), n, sparsity=0.05, seed=seed + 1)
    return x, codes


def make(name, n=64):
    """OpenAI's format does not store `normalize` (TopK files load normalised), so only the others turn it off."""
    normalize = None if name in arch.OPENAI_FORMAT else False
    return SAE(16, n, name, k=2 if name in arch.NEEDS_K else None, normalize=normalize, hook_name="blocks.0.hook_x")


@pytest.mark.parametrize("bad", ["topK2", "jump-relu", "", "standard"])
def test_unknown_architecture_gets_a_clear_error(bad):
    with pytest.raises(ValueError, match="unknown SAE architecture .*: activation must be one of relu, topk, batchtopk"):
        SAE(16, 64, bad)


def test_k_and_prefixes_only_where_they_apply():
    with pytest.raises(ValueError, match="needs 1 <= k"):
        SAE(16, 64, "batchtopk")
    with pytest.raises(ValueError, match="k only applies"):
        SAE(16, 64, "jumprelu", k=3)
    with pytest.raises(ValueError, match="prefixes only apply"):
        SAE(16, 64, "batchtopk", k=2, prefixes=(8, 64))
    with pytest.raises(ValueError, match="end at n_latents"):
        SAE(16, 64, "matryoshka", k=2, prefixes=(8, 32))
    assert SAE(16, 640, "matryoshka", k=2).prefixes == (40, 80, 160, 320, 640)


@pytest.mark.parametrize("name", arch.ARCHITECTURES)
def test_every_architecture_trains_and_round_trips_through_save_and_load(name, tmp_path):
    x, _ = toy()
    sae = make(name)
    kw = {"l0_coef": 1e-2} if name == "jumprelu" else {"l1_coef": 0.1}
    hist = train_sae(sae, x, n_steps=150, batch_size=256, lr=1e-2, log_every=50, precision="fp32", **kw)
    assert hist.fvu[-1] < 0.5 and hist.loss[-1] < hist.loss[0]
    path = sae.save(tmp_path / "sae")
    back = load_sae_file(path)
    assert back.activation == name and back.k == sae.k and back.hook_name == "blocks.0.hook_x"
    with torch.no_grad():
        assert torch.allclose(back.encode(x[:512]), sae.encode(x[:512]), atol=1e-6)
    if name in ("relu", "topk"):  # OpenAI's format: one .pt file with OpenAI's keys
        assert path.is_file()
        sd = torch.load(path, weights_only=True)
        assert {"pre_bias", "encoder.weight", "latent_bias", "decoder.weight"} <= set(sd)
    else:  # SAELens's layout: cfg.json + sae_weights.safetensors
        cfg = json.loads((path / "cfg.json").read_text())
        weights = load_file(str(path / "sae_weights.safetensors"))
        assert cfg["d_in"] == 16 and cfg["d_sae"] == 64 and cfg["saelab"]["architecture"] == name
        assert weights["W_enc"].shape == (16, 64) and weights["W_dec"].shape == (64, 16)
        assert cfg["architecture"] == ("gated" if name == "gated" else "jumprelu")
        assert ("r_mag" in weights) == (name == "gated") and ("threshold" in weights) == (name != "gated")


def test_batchtopk_keeps_k_per_token_on_average_in_training_and_uses_one_threshold_at_inference():
    pre = torch.tensor([[5.0, 4.0, 3.0, 0.1], [0.2, 0.3, 0.1, 0.0]])
    latents, smallest = arch.batch_topk_activation(pre, k=2)  # keeps the batch's 4 largest
    assert (latents > 0).sum() == 4 and latents[0, :3].tolist() == [5.0, 4.0, 3.0]
    assert latents[1].tolist() == pytest.approx([0.0, 0.3, 0.0, 0.0]) and smallest.item() == pytest.approx(0.3)
    x, _ = toy()
    sae = make("batchtopk")
    hist = train_sae(sae, x, n_steps=100, batch_size=256, lr=1e-2, log_every=10, precision="fp32")
    assert all(v == pytest.approx(2.0) for v in hist.l0)  # exactly k on average over each training batch
    assert sae.threshold > 0
    with torch.no_grad():  # inference does not depend on the batch: one token alone gets the same latents
        assert torch.allclose(sae.encode(x[:1]), sae.encode(x[:300])[:1], atol=1e-6)
        assert 1.0 < (sae.encode(x) > 0).sum(-1).float().mean() < 3.0


def test_jumprelu_straight_through_gradient_reaches_only_thresholds_near_the_pre_activation():
    log_threshold = torch.full((3,), math.log(1.0), requires_grad=True)
    pre = torch.tensor([[1.01, 2.0, 0.5]], requires_grad=True)
    out = arch._JumpReLU.apply(pre, log_threshold, 0.1)
    assert out[0].tolist() == pytest.approx([1.01, 2.0, 0.0])
    out.sum().backward()
    # latent 0: |pre - theta| = 0.01 < 0.05, so d/dtheta = -theta/eps = -10 and d/dlog = -10 * theta = -10
    assert log_threshold.grad.tolist() == pytest.approx([-10.0, 0.0, 0.0])
    assert pre.grad.tolist() == [[1.0, 1.0, 0.0]]
    log_threshold.grad = None
    arch._Step.apply(pre.detach(), log_threshold, 0.1).sum().backward()
    assert log_threshold.grad.tolist() == pytest.approx([-10.0, 0.0, 0.0])


def test_jumprelu_l0_penalty_lowers_l0():
    x, _ = toy()
    l0 = []
    for coef in (1e-3, 3e-1):
        sae = make("jumprelu")
        train_sae(sae, x, n_steps=300, batch_size=256, lr=1e-2, l0_coef=coef, precision="fp32")
        with torch.no_grad():
            l0.append((sae.encode(x) > 0).sum(-1).float().mean().item())
    assert l0[1] < 0.7 * l0[0]


def test_gated_latents_fire_only_where_the_gate_is_open():
    sae = make("gated")
    with torch.no_grad():
        sae.r_mag.fill_(math.log(2.0))
        sae.mag_bias.fill_(0.5)
    pre = torch.tensor([[-1.0, 0.0, 1.0]]).expand(1, 3)
    sae_small = SAE(2, 3, "gated", normalize=False)
    with torch.no_grad():
        sae_small.r_mag.fill_(math.log(2.0))
        sae_small.mag_bias.fill_(0.5)
        sae_small.latent_bias.fill_(0.25)
    out = arch.gated_activation(sae_small, pre)
    # gate: only pre > 0 opens; magnitude = relu(2 * (pre - 0.25) + 0.5) = 2.0 for pre = 1
    assert out.tolist() == [[0.0, 0.0, 2.0]]


def test_matryoshka_loss_is_the_mean_error_of_the_nested_prefixes():
    sae = SAE(2, 4, "matryoshka", k=1, prefixes=(1, 2, 4), normalize=False)
    with torch.no_grad():
        sae.decoder.weight.copy_(torch.tensor([[1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]]))
        sae.pre_bias.zero_()
    latents = torch.tensor([[1.0, 1.0, 1.0, 1.0]])
    y = torch.tensor([[2.0, 2.0]])
    # prefix 1: (1, 0) -> error 1 + 4 = 5; prefix 2: (1, 1) -> 2; prefix 4: (2, 2) -> 0; mean = 7 / 3
    assert arch.matryoshka_mse(sae, latents, y).item() == pytest.approx(7 / 3)


def test_relu_and_topk_state_dicts_keep_openai_keys_only():
    for name in ("relu", "topk"):
        keys = set(make(name).state_dict())
        assert keys == {"pre_bias", "encoder.weight", "latent_bias", "decoder.weight", "stats_last_nonzero",
                        "latents_activation_frequency", "latents_mean_square", "activation",
                        "activation_state_dict"}


def test_saving_a_new_architecture_onto_a_file_path_says_to_use_a_folder(tmp_path):
    f = tmp_path / "sae.pt"
    f.write_text("x")
    with pytest.raises(ValueError, match="saved as a folder"):
        make("jumprelu").save(f)
