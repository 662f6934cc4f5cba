import warnings

import pytest
import torch
from transformers import GPT2LMHeadModel

from saelab import models


def test_short_and_official_names_resolve():
    assert models.resolve_model_name("gpt2") == "openai-community/gpt2"
    assert models.resolve_model_name("distilgpt2") == "distilbert/distilgpt2"
    assert models.resolve_model_name("openai-community/gpt2") == "openai-community/gpt2"
    assert models.resolve_model_name("tiny-world") == str(models.TINY_WORLD_DIR)
    with pytest.raises(ValueError, match="non-empty"):
        models.resolve_model_name("  ")


def test_device_is_picked_or_respected():
    assert models.pick_device("cpu") == "cpu"
    assert models.pick_device() in {"cuda", "mps", "cpu"}


def test_local_directory_loads_with_raw_hf_weights(small_hf_dir):
    model = models.load_model(str(small_hf_dir), device="cpu")
    tokens = models.to_tokens(model, "i love him. he is a good")
    _, cache = model.run_with_cache(tokens, names_filter=["blocks.0.hook_resid_post"], stop_at_layer=1)
    hf = GPT2LMHeadModel.from_pretrained(small_hf_dir).eval()
    hidden = hf(tokens, output_hidden_states=True).hidden_states[1]
    torch.testing.assert_close(cache["blocks.0.hook_resid_post"], hidden, atol=1e-5, rtol=1e-5)


def test_offline_hub_name_fails_fast_with_a_helpful_message(monkeypatch, tmp_path):
    monkeypatch.setenv("SAELAB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(models.ModelLoadError, match="tiny-world") as info:
        models.load_model("gpt2")
    assert "SAELAB_OFFLINE=1" in str(info.value)


def test_broken_directory_gives_one_paragraph_not_a_deep_traceback(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(models.ModelLoadError, match="Could not load the model") as info:
        models.load_model(str(tmp_path))
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_prompt_problems_are_reported(small_hf_dir):
    model = models.load_model(str(small_hf_dir), device="cpu")
    with pytest.raises(ValueError, match="prompt is empty"):
        models.to_tokens(model, "   ")
    with pytest.raises(ValueError, match="at most 16"):
        models.to_tokens(model, "he is a good " * 10)
    with pytest.warns(UserWarning, match="zebra, quickly"):
        tokens = models.to_tokens(model, "he is a zebra quickly")
    assert tokens.shape == (1, 6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        models.to_tokens(model, "he is a good")


def test_kv_cache_gives_the_same_next_token_logits(small_hf_dir):
    """Generation's KV cache must reach the bridge's attention (transformers 5 renamed the argument)."""
    model = models.load_model(str(small_hf_dir), device="cpu")
    tokens = models.to_tokens(model, "i love him. he is a good")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = model.original_model(input_ids=tokens).logits[0, -1]
        prefix = model.original_model(input_ids=tokens[:, :-1], use_cache=True)
        cached = model.original_model(input_ids=tokens[:, -1:], past_key_values=prefix.past_key_values,
                                      use_cache=True).logits[0, -1]
    assert prefix.past_key_values.get_seq_length() == tokens.shape[1]  # extended in place by the cached step
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=1e-5)
