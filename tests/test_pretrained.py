import pytest
import torch

from saelab import download, pretrained
from saelab.sae import SAE
from tests.local_server import Server


@pytest.fixture
def served_sae(tmp_path, openai_state_dict, monkeypatch):
    monkeypatch.setenv("SAELAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SAELAB_OFFLINE", raising=False)
    path = SAE.from_state_dict(openai_state_dict(d=16, n=64)).save(tmp_path / "served.pt")
    server = Server(path.read_bytes(), content_type=None)
    yield server
    server.close()


def cached_file(tmp_path):
    return tmp_path / "cache" / "openai" / "resid_post_mlp_v5_32k" / "8.pt"


def test_hook_names_follow_transformer_lens():
    assert pretrained.hook_name(8, "resid_post_mlp") == "blocks.8.hook_resid_post"
    assert pretrained.hook_name(0, "resid_post_attn") == "blocks.0.hook_resid_mid"
    assert pretrained.hook_name(11, "resid_delta_mlp") == "blocks.11.hook_mlp_out"
    assert pretrained.hook_name(3, "resid_delta_attn") == "blocks.3.hook_attn_out"


def test_url_matches_openai_layout():
    assert pretrained.openai_sae_url(8, "resid_post_mlp", "128k") == (
        "https://openaipublic.blob.core.windows.net/sparse-autoencoder/gpt2-small/"
        "resid_post_mlp_v5_128k/autoencoders/8.pt")


@pytest.mark.parametrize("kwargs,message", [
    (dict(location="resid"), "location must be one of"),
    (dict(layer=12), "layer must be an integer from 0 to 11"),
    (dict(layer=-1), "layer must be an integer"),
    (dict(size="64k"), "size must be one of"),
])
def test_bad_choices_name_the_valid_ones(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pretrained.load_openai_sae(**kwargs)


def test_download_then_reuse_the_cache(served_sae, tmp_path):
    sae = pretrained.load_openai_sae(8, "resid_post_mlp", "32k", base_url=served_sae.url, progress=False)
    assert sae.hook_name == "blocks.8.hook_resid_post" and sae.n_latents == 64
    assert cached_file(tmp_path).is_file()
    pretrained.load_openai_sae(8, "resid_post_mlp", "32k", base_url=served_sae.url, progress=False)
    assert served_sae.requests == 1


def test_interrupted_download_leaves_no_usable_file(served_sae, tmp_path):
    served_sae.cut_at = 1000
    with pytest.raises(download.DownloadError, match="run again to retry"):
        pretrained.load_openai_sae(8, "resid_post_mlp", "32k", base_url=served_sae.url, progress=False)
    folder = cached_file(tmp_path).parent
    leftovers = list(folder.iterdir()) if folder.exists() else []
    assert leftovers == []
    served_sae.cut_at = None  # the next try succeeds
    pretrained.load_openai_sae(8, "resid_post_mlp", "32k", base_url=served_sae.url, progress=False)
    assert served_sae.requests == 2


def test_truncated_cached_file_is_fetched_again(served_sae, tmp_path):
    pretrained.load_openai_sae(8, "resid_post_mlp", "32k", base_url=served_sae.url, progress=False)
    path = cached_file(tmp_path)
    path.write_bytes(path.read_bytes()[:500])
    sae = pretrained.load_openai_sae(8, "resid_post_mlp", "32k", base_url=served_sae.url, progress=False)
    assert served_sae.requests == 2 and sae.n_latents == 64


def test_corrupt_cached_file_of_the_right_size_is_fetched_again(served_sae, tmp_path):
    pretrained.load_openai_sae(8, "resid_post_mlp", "32k", base_url=served_sae.url, progress=False)
    path = cached_file(tmp_path)
    path.write_bytes(b"\0" * path.stat().st_size)
    pretrained.load_openai_sae(8, "resid_post_mlp", "32k", base_url=served_sae.url, progress=False)
    assert served_sae.requests == 2


def test_unreachable_server_explains_how_to_work_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("SAELAB_CACHE", str(tmp_path))
    monkeypatch.delenv("SAELAB_OFFLINE", raising=False)
    with pytest.raises(download.DownloadError, match="tiny-world"):
        pretrained.load_openai_sae(base_url="http://127.0.0.1:9", progress=False)


def test_offline_mode_refuses_to_download(tmp_path, monkeypatch):
    monkeypatch.setenv("SAELAB_CACHE", str(tmp_path))
    monkeypatch.setenv("SAELAB_OFFLINE", "1")
    with pytest.raises(download.DownloadError, match="SAELAB_OFFLINE=1"):
        pretrained.load_openai_sae(size="32k")


def test_auto_size_picks_32k_when_memory_is_short(monkeypatch):
    monkeypatch.setattr(pretrained, "free_memory_bytes", lambda: 1 * 2**30)
    assert pretrained.auto_size() == "32k"
    monkeypatch.setattr(pretrained, "free_memory_bytes", lambda: 16 * 2**30)
    assert pretrained.auto_size() == "128k"


def test_load_sae_rejects_unknown_names():
    with pytest.raises(ValueError, match="tiny-world"):
        pretrained.load_sae("gpt2-sae-that-does-not-exist")


@pytest.fixture
def fresh_imports(monkeypatch):
    import sys
    for name in ("sparse_autoencoder", "sparse_autoencoder.model"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    yield
    for name in ("sparse_autoencoder", "sparse_autoencoder.model"):
        sys.modules.pop(name, None)


def test_pypi_sparse_autoencoder_is_called_out(tmp_path, monkeypatch, fresh_imports):
    fake = tmp_path / "sparse_autoencoder"
    fake.mkdir()
    (fake / "__init__.py").write_text("# PyPI's unrelated package has no model.Autoencoder.from_state_dict\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cls, message = pretrained.openai_autoencoder_class()
    assert cls is None and "PyPI's unrelated package" in message


def test_openai_package_class_is_found_when_installed(tmp_path, monkeypatch, fresh_imports):
    pkg = tmp_path / "sparse_autoencoder"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "model.py").write_text("class Autoencoder:\n    @classmethod\n    def from_state_dict(cls, sd): ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cls, message = pretrained.openai_autoencoder_class()
    assert cls is not None and cls.__name__ == "Autoencoder"
