"""saelab.download against a local HTTP server on 127.0.0.1: a body that is not the file is never marked complete."""
import pytest

from saelab import download, pretrained
from saelab.sae import SAE
from tests.local_server import Server

HTML = (b"<!DOCTYPE html>\n<html><head><title>Sign in to the network</title></head>"
        b"<body>Please accept the terms to continue.</body></html>\n")
JSON_ERROR = b'{"error": {"code": "BlobNotFound", "message": "The specified blob does not exist."}}'


@pytest.fixture
def server():
    servers = []

    def start(body: bytes, content_type: str = "application/octet-stream") -> Server:
        servers.append(Server(body, content_type))
        return servers[-1]
    yield start
    for s in servers:
        s.close()


@pytest.fixture
def sae_bytes(tmp_path, openai_state_dict):
    return SAE.from_state_dict(openai_state_dict(d=16, n=64)).save(tmp_path / "served.pt").read_bytes()


def nothing_saved(dest):
    return not download.is_complete(dest) and [p.name for p in dest.parent.iterdir()] == []


@pytest.mark.parametrize("body,content_type", [(HTML, "text/html; charset=utf-8"), (HTML, "application/octet-stream"),
                                               (JSON_ERROR, "application/json")])
def test_a_web_page_with_status_200_is_never_marked_complete(server, tmp_path, body, content_type):
    s = server(body, content_type)
    dest = tmp_path / "cache" / "8.pt"
    for attempt in (1, 2):  # not even for one call: each call fetches again and fails again
        with pytest.raises(download.DownloadError, match="not the file") as err:
            download.download(s.url + "/8.pt", dest, progress=False)
        assert nothing_saved(dest)
        assert s.requests == attempt
    assert "captive portal" in str(err.value)


def test_a_file_that_fails_validation_is_never_marked_complete(server, tmp_path, sae_bytes):
    s = server(sae_bytes[: len(sae_bytes) // 2])  # a truncated zip whose Content-Length matches what was sent
    dest = tmp_path / "cache" / "8.pt"
    with pytest.raises(download.DownloadError, match="not a usable file"):
        download.download(s.url, dest, progress=False, validate=pretrained._loads_as_sae)
    assert nothing_saved(dest)


def test_a_good_file_is_validated_then_recorded(server, tmp_path, sae_bytes):
    s = server(sae_bytes)
    dest = tmp_path / "cache" / "8.pt"
    checked = []
    download.download(s.url, dest, progress=False, validate=lambda p: checked.append(p.name))
    assert download.is_complete(dest) and dest.read_bytes() == sae_bytes
    assert checked and checked[0] != dest.name  # validated before it took its final name
    download.download(s.url, dest, progress=False)
    assert s.requests == 1  # complete: not fetched again


def test_load_openai_sae_says_what_happened_and_keeps_nothing(server, tmp_path, monkeypatch):
    monkeypatch.setenv("SAELAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SAELAB_OFFLINE", raising=False)
    s = server(HTML, "text/html")
    with pytest.raises(download.DownloadError, match="answered with an HTML page") as err:
        pretrained.load_openai_sae(8, "resid_post_mlp", "32k", base_url=s.url, progress=False)
    assert "SAELAB_OFFLINE=1" in str(err.value)  # what to do instead
    folder = tmp_path / "cache" / "openai" / "resid_post_mlp_v5_32k"
    assert not folder.exists() or list(folder.iterdir()) == []
    monkeypatch.setenv("SAELAB_OFFLINE", "1")  # offline, nothing counts as cached
    with pytest.raises(download.DownloadError, match="not cached yet"):
        pretrained.load_openai_sae(8, "resid_post_mlp", "32k", base_url=s.url, progress=False)


def test_a_stale_record_is_dropped_when_the_file_is_fetched_again(server, tmp_path, sae_bytes):
    dest = tmp_path / "cache" / "8.pt"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"old")
    download._record_path(dest).write_text('{"url": "x", "bytes": 999}')  # does not match: incomplete
    s = server(HTML, "text/html")
    with pytest.raises(download.DownloadError):
        download.download(s.url, dest, progress=False)
    assert nothing_saved(dest)


def test_zip_files_served_as_text_are_accepted(server, tmp_path, sae_bytes):
    """Some servers label binary files text/xml; the body decides."""
    s = server(sae_bytes, "text/xml")
    dest = tmp_path / "cache" / "8.pt"
    download.download(s.url, dest, progress=False, validate=pretrained._loads_as_sae)
    assert download.is_complete(dest)
