import os

import pytest
import torch

# The suite must never touch the network, whatever the machine has.
os.environ.setdefault("SAELAB_OFFLINE", "1")
torch.set_num_threads(min(2, torch.get_num_threads()))


def pytest_collection_modifyitems(session, config, items):
    """With SAELAB_CLAIMS_WORKERS (`make unit`): start the claim notebooks now, in worker processes, and run the
    claim tests last, so that the unit tests run while the notebooks execute."""
    workers = int(os.environ.get("SAELAB_CLAIMS_WORKERS", "0") or 0)
    claims = [item for item in items if item.path.parent.name == "claims" and item.path.parent.parent.name == "tests"]
    if workers < 2 or not claims:
        return
    from saelab.course import NOTEBOOKS
    from tests.claims import harness

    needed = []
    for item in claims:
        param = getattr(item, "callspec", None) and item.callspec.params.get("name")
        prefix = item.path.stem.removeprefix("test_")
        needed += [param] if param in NOTEBOOKS else [n for n in NOTEBOOKS if n.startswith(prefix + "_")]
    harness.prefetch(needed, workers)
    moved = set(map(id, claims))
    items[:] = [item for item in items if id(item) not in moved] + claims


@pytest.fixture(autouse=True)
def fresh_check_stubs(monkeypatch):
    """Each test starts as a fresh notebook kernel does: no check has printed its stub's "not done yet" yet."""
    from saelab.checks import report
    monkeypatch.setattr(report, "STUBS_SEEN", set())


@pytest.fixture
def openai_state_dict():
    """A random state dict with OpenAI's real key set, small shapes (TopK, k=4)."""
    def make(d=16, n=64, activation="TopK", k=4, seed=0):
        g = torch.Generator().manual_seed(seed)
        sd = {
            "pre_bias": torch.randn(d, generator=g),
            "encoder.weight": torch.randn(n, d, generator=g) / d**0.5,
            "latent_bias": torch.randn(n, generator=g) * 0.1,
            "decoder.weight": torch.randn(d, n, generator=g) / d**0.5,
            "stats_last_nonzero": torch.randint(0, 5, (n,), generator=g),
            "latents_activation_frequency": torch.rand(n, generator=g),
            "latents_mean_square": torch.rand(n, generator=g),
            "activation": activation,
            "activation_state_dict": {"k": k, "postact_fn": "ReLU"} if activation == "TopK" else {},
        }
        return sd
    return make


@pytest.fixture(scope="session")
def small_hf_dir(tmp_path_factory):
    """A random 2-layer GPT-2 saved as a local Hugging Face directory with a word-level tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    words = ["<|endoftext|>", "<unk>", "he", "Ġhe", "Ġis", "Ġa", "Ġgood", "Ġbad", ".", "i", "Ġlove", "Ġhim"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                   unk_token="<unk>", pad_token="<|endoftext|>")
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(words), n_positions=16, n_embd=32, n_layer=2, n_head=2,
                        bos_token_id=0, eos_token_id=0)
    path = tmp_path_factory.mktemp("small_gpt2")
    GPT2LMHeadModel(config).eval().save_pretrained(path)
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def random_tinyworld_model(tmp_path_factory):
    """make(n_layer, n_embd): a random GPT-2 that reads tiny-world stories (real tokenizer, tiny weights)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from saelab.models import load_model
    from saelab.tinyworld.tokenizer import build_tokenizer

    def make(n_layer: int = 2, n_embd: int = 16):
        tok = build_tokenizer()
        torch.manual_seed(0)
        config = GPT2Config(vocab_size=len(tok), n_positions=64, n_embd=n_embd, n_layer=n_layer, n_head=2,
                            bos_token_id=0, eos_token_id=0)
        path = tmp_path_factory.mktemp("tiny_world_random")
        GPT2LMHeadModel(config).eval().save_pretrained(path)
        tok.save_pretrained(path)
        return load_model(str(path), device="cpu")
    return make


@pytest.fixture(scope="module")
def one_thread():
    """For tiny models one thread is faster than two, and much faster on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
