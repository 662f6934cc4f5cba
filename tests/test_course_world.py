"""course.load_world: online against a local stand-in (a random 9-block GPT-2 + an OpenAI-format SAE served on
127.0.0.1), the fallback to the tiny world with its banner, and SAELAB_REQUIRE_ONLINE=1, which raises instead."""
from __future__ import annotations

import pytest
import torch

from saelab import course
from tests.standin import serve
from tests.standin.build import write_sae

D_MODEL, N_LATENTS = 32, 64


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    """A random GPT-2 with 9 blocks (OpenAI's SAE reads block 8) as a local Hugging Face directory."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from saelab.tinyworld.tokenizer import build_tokenizer

    tok = build_tokenizer()
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=D_MODEL, n_layer=9, n_head=2,
                        bos_token_id=0, eos_token_id=0)
    path = tmp_path_factory.mktemp("gpt2_nine_blocks")
    GPT2LMHeadModel(config).eval().save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def sae_server(tmp_path_factory):
    """OpenAI's file layout (<base>/resid_post_mlp_v5_32k/autoencoders/8.pt) served by the stand-in's server."""
    root = tmp_path_factory.mktemp("sae_server")
    write_sae(root / "sae" / "resid_post_mlp_v5_32k" / "autoencoders" / "8.pt", N_LATENTS, d_model=D_MODEL)
    with serve(root) as url:
        yield url


@pytest.fixture
def online(monkeypatch, tmp_path):
    """Online settings (SAELAB_OFFLINE unset), a fresh SAE cache; returns a function that sets the SAE URL."""
    monkeypatch.delenv("SAELAB_OFFLINE", raising=False)
    monkeypatch.delenv(course.REQUIRE_ONLINE, raising=False)
    monkeypatch.setenv("SAELAB_CACHE", str(tmp_path / "cache"))
    return lambda url: monkeypatch.setenv("SAELAB_OPENAI_SAE_URL", url)


def test_online_world_is_the_model_and_the_served_sae(online, gpt2_dir, sae_server, tmp_path):
    online(sae_server)
    world = course.load_world(str(gpt2_dir), sae_size="32k", device="cpu")
    assert world.name == str(gpt2_dir) and not world.offline
    assert world.model.cfg.n_layers == 9 and world.model.cfg.d_model == D_MODEL
    assert world.sae.n_latents == N_LATENTS and world.sae.hook_name == "blocks.8.hook_resid_post"
    assert (tmp_path / "cache" / "openai" / "resid_post_mlp_v5_32k" / "8.pt").is_file()  # really downloaded
    assert world.banner() == f"Using {gpt2_dir} (SAE: {N_LATENTS} latents at blocks.8.hook_resid_post). (online)"
    _, cache = world.model.run_with_cache(torch.tensor([[0, 5, 6, 7]]), names_filter=world.sae.hook_name)
    assert world.sae.encode(cache[world.sae.hook_name]).shape == (1, 4, N_LATENTS)  # the SAE reads the model


def test_online_required_and_online_returns_the_online_world(online, gpt2_dir, sae_server, monkeypatch):
    online(sae_server)
    monkeypatch.setenv(course.REQUIRE_ONLINE, "1")
    world = course.load_world(str(gpt2_dir), sae_size="32k", device="cpu")
    assert not world.offline and world.sae.n_latents == N_LATENTS


def test_online_without_sae_needs_no_server(online, gpt2_dir, monkeypatch):
    online("http://127.0.0.1:9")  # nothing listens there: asking for the SAE would fail
    monkeypatch.setenv(course.REQUIRE_ONLINE, "1")
    world = course.load_world(str(gpt2_dir), with_sae=False, device="cpu")
    assert world.name == str(gpt2_dir) and world.sae is None and world.banner().endswith("(no SAE). (online)")


def test_sae_server_down_falls_back_to_the_tiny_world_and_says_why(online, gpt2_dir):
    online("http://127.0.0.1:9")
    world = course.load_world(str(gpt2_dir), sae_size="32k", device="cpu")
    assert world.offline and world.name == "tiny-world"
    assert world.sae is not None and world.model.cfg.d_model == world.sae.d_model  # the bundled pair
    banner = world.banner()
    assert banner.startswith("Using tiny-world (SAE: ")
    assert f"{gpt2_dir} could not be loaded (" in banner and banner.endswith("so we use the offline tiny world.")


def test_offline_setting_gives_the_tiny_world_with_its_reason(monkeypatch):
    monkeypatch.setenv("SAELAB_OFFLINE", "1")
    monkeypatch.delenv(course.REQUIRE_ONLINE, raising=False)
    world = course.load_world(with_sae=False, device="cpu")
    assert world.offline and world.sae is None
    assert world.banner() == ("Using tiny-world (no SAE). "
                              "SAELAB_OFFLINE=1 is set, so we use the bundled offline tiny world.")


def test_required_online_raises_with_the_reason_when_the_sae_server_is_down(online, gpt2_dir, monkeypatch):
    online("http://127.0.0.1:9")
    monkeypatch.setenv(course.REQUIRE_ONLINE, "1")
    with pytest.raises(course.OnlineWorldError) as info:
        course.load_world(str(gpt2_dir), sae_size="32k", device="cpu")
    message = str(info.value)
    assert message.startswith("SAELAB_REQUIRE_ONLINE=1 is set, so load_world does not fall back")
    assert "DownloadError" in message and "127.0.0.1:9" in message  # the reason: which download failed
    assert "unset SAELAB_REQUIRE_ONLINE" in message


def test_required_online_raises_when_the_model_cannot_load(online, tmp_path, monkeypatch):
    broken = tmp_path / "broken_model"
    broken.mkdir()
    (broken / "config.json").write_text("{}")  # a directory that is no model
    online("http://127.0.0.1:9")
    monkeypatch.setenv(course.REQUIRE_ONLINE, "1")
    with pytest.raises(course.OnlineWorldError, match=r"failed to load: ModelLoadError: Could not load the model"):
        course.load_world(str(broken), device="cpu")


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_required_online_and_offline_together_is_a_clear_error(monkeypatch, value):
    monkeypatch.setenv("SAELAB_OFFLINE", "1")
    monkeypatch.setenv(course.REQUIRE_ONLINE, value)
    with pytest.raises(course.OnlineWorldError, match="SAELAB_OFFLINE=1 are both set.*Unset one"):
        course.load_world(device="cpu")


@pytest.mark.parametrize("value", ["", "0", "no"])
def test_require_online_off_values_allow_the_fallback(monkeypatch, value):
    monkeypatch.setenv(course.REQUIRE_ONLINE, value)
    assert not course.online_required()
