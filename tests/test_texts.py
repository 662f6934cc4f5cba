import json

import pytest

from saelab.activations import hf_texts, text_stream
from saelab.texts import local_texts


@pytest.fixture
def jsonl(tmp_path):
    path = tmp_path / "texts.jsonl"
    path.write_text("".join(json.dumps({"text": f"text number {i}"}) + "\n" for i in range(20)))
    return path


def test_jsonl_and_txt_give_every_text_in_a_seeded_order(jsonl, tmp_path):
    a, b = list(local_texts(jsonl, seed=0)), list(local_texts(jsonl, seed=0))
    assert a == b and sorted(a) == sorted(f"text number {i}" for i in range(20))
    assert list(local_texts(jsonl, seed=1)) != a
    txt = tmp_path / "texts.txt"
    txt.write_text("first text\n\nsecond text\n")
    assert sorted(local_texts(txt)) == ["first text", "second text"]


def test_bad_files_say_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="not a file"):
        local_texts(tmp_path / "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"body": "no text field"}\n')
    with pytest.raises(ValueError, match="'text' field"):
        local_texts(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="no texts"):
        local_texts(empty)


def test_setting_replaces_the_hub_dataset(jsonl, monkeypatch):
    monkeypatch.setenv("SAELAB_TEXTS", str(jsonl))
    assert next(iter(hf_texts("pile-10k", seed=0))) == next(local_texts(jsonl, seed=0))
    monkeypatch.setenv("SAELAB_OFFLINE", "1")  # a local file needs no network
    assert sorted(text_stream("pile-10k")) == sorted(local_texts(jsonl))
    assert next(text_stream("tiny-world")) != next(local_texts(jsonl))  # the tiny world stays the tiny world


def test_without_the_setting_offline_datasets_still_refuse(monkeypatch):
    monkeypatch.delenv("SAELAB_TEXTS", raising=False)
    monkeypatch.setenv("SAELAB_OFFLINE", "1")
    with pytest.raises(ValueError, match="cannot be streamed"):
        text_stream("pile-10k")
