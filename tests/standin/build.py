"""Build the stand-in for the online world: what the notebooks download, with random weights.

    <root>/hf/hub/models--openai-community--gpt2/{refs/main, snapshots/<commit>/}   GPT-2 small's shapes
    <root>/hf/hub/models--distilbert--distilgpt2/{refs/main, snapshots/<commit>/}   DistilGPT2's shapes
    <root>/sae/resid_post_mlp_v5_{32k,128k}/autoencoders/8.pt                       OpenAI-format TopK SAEs
    <root>/sae/resid_post_mlp_v5_32k/autoencoders/{4,10}.pt                         (notebook 07's graph)
    <root>/texts.jsonl                                                              stands in for the hub dataset

Both models share one byte-level BPE tokenizer trained here (not GPT-2's files) with GPT-2's vocabulary
size, so the unembedding costs what GPT-2's does; every word the notebooks and saelab's prompts use is
one token (" good", " rude", ...). Nothing here is a real result: weights and texts are random.
"""
from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
import tempfile
import time
from pathlib import Path

import torch

# Bump when what `build` writes changes; the cache key also hashes the words the notebooks use.
VERSION = "2"
ROOT = Path(__file__).resolve().parents[2]
VOCAB_SIZE = 50257  # GPT-2's
EOS = "<|endoftext|>"
COMMIT = "0000000000000000000000000000000000standin"  # a fake commit id for refs/main
MODELS = {"openai-community/gpt2": 12, "distilbert/distilgpt2": 6}  # repository -> number of blocks
SAE_LAYER, SAE_LOCATION, SAE_K = 8, "resid_post_mlp", 32
SAE_SIZES = {"32k": 2**15, "128k": 2**17}
GRAPH_LAYERS = (4, 10)  # notebook 07 builds its online graph from 32k SAEs at layers 4, 8 and 10
N_TEXTS, WORDS_PER_TEXT = 6000, 160


def needed_words() -> list[str]:
    """Every word in the notebooks' code and saelab's prompt modules, plus the tiny world's vocabulary."""
    import nbformat

    from saelab.tinyworld.generator import vocabulary

    sources = [p.read_text() for p in (ROOT / "saelab").glob("*.py") if p.stem in {"prompts", "patching", "steering"}]
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        sources += [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    words = set(vocabulary()) | {w for s in sources for w in re.findall(r"[A-Za-z]+", s)}
    return sorted({v for w in words if w.isalpha() for v in (w.lower(), w.capitalize())})


def cache_key(words: list[str]) -> str:
    """VERSION plus a short hash of the words: a notebook that uses a new word gets a fresh stand-in."""
    return f"v{VERSION}-{hashlib.sha256(' '.join(words).encode()).hexdigest()[:10]}"


def pseudo_words(n: int, rng: random.Random) -> list[str]:
    """n distinct made-up words ("tekaro", ...): they fill the BPE vocabulary up to GPT-2's size."""
    syllables = [c + v for c in "bdfgklmnprstvz" for v in "aeiou"]
    out: set[str] = set()
    while len(out) < n:
        out.add("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    return sorted(out)


def train_tokenizer(words: list[str], fillers: list[str]):
    """A byte-level BPE with VOCAB_SIZE ids, EOS last (as in GPT-2); each of `words` is one token."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2TokenizerFast

    # BPE merges the most frequent pair first: the real words (x1000) finish merging before the fillers (x3).
    corpus = [" ".join([f" {w}"] * 1000) for w in words] + [" ".join([w] * 20) for w in words]
    corpus += [" " + " ".join(fillers[i:i + 1000] * 3) for i in range(0, len(fillers), 1000)]
    bpe = ByteLevelBPETokenizer(add_prefix_space=False)
    bpe.train_from_iterator(corpus, vocab_size=VOCAB_SIZE - 1, min_frequency=2, show_progress=False)
    bpe.add_special_tokens([EOS])
    tok = GPT2TokenizerFast(tokenizer_object=bpe._tokenizer, bos_token=EOS, eos_token=EOS, unk_token=EOS,
                            model_max_length=1024, clean_up_tokenization_spaces=False)
    split = [w for w in words if len(tok(" " + w)["input_ids"]) != 1]
    if split:
        raise RuntimeError(f"the stand-in tokenizer splits {split[:10]}: raise their count in train_tokenizer")
    return tok


def write_model(hub: Path, repo: str, n_layer: int, tok, seed: int) -> None:
    """A random GPT-2-family model in Hugging Face's cache layout (refs/main -> snapshots/<commit>/)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    folder = hub / f"models--{repo.replace('/', '--')}"
    snapshot = folder / "snapshots" / COMMIT
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=VOCAB_SIZE, n_layer=n_layer, bos_token_id=tok.eos_token_id,
                        eos_token_id=tok.eos_token_id)
    GPT2LMHeadModel(config).eval().save_pretrained(snapshot)
    tok.save_pretrained(snapshot)
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(COMMIT)


def write_sae(path: Path, n_latents: int, d_model: int = 768, seed: int = 0) -> None:
    """A random TopK(k=32) SAE in OpenAI's state-dict format (the keys of their v5 files)."""
    g = torch.Generator().manual_seed(seed)
    encoder = torch.randn(n_latents, d_model, generator=g) / d_model**0.5
    decoder = encoder.t().contiguous()
    decoder /= decoder.norm(dim=0, keepdim=True)  # unit decoder columns, like OpenAI's
    state = {"pre_bias": torch.zeros(d_model), "encoder.weight": encoder,
             "latent_bias": torch.zeros(n_latents), "decoder.weight": decoder,
             "stats_last_nonzero": torch.zeros(n_latents, dtype=torch.long),
             "latents_activation_frequency": torch.zeros(n_latents), "latents_mean_square": torch.zeros(n_latents),
             "activation": "TopK", "activation_state_dict": {"k": SAE_K, "postact_fn": "ReLU"}}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)


def write_texts(path: Path, words: list[str], fillers: list[str], rng: random.Random) -> None:
    """N_TEXTS documents of real and made-up words, one JSON object {"text": ...} per line."""
    from saelab.prompts import NEGATIVE_PROMPTS, POSITIVE_PROMPTS, TEXTS

    sentences = list(TEXTS + POSITIVE_PROMPTS + NEGATIVE_PROMPTS)
    common = [w for w in words if w.islower()]
    with open(path, "w") as f:
        for _ in range(N_TEXTS):
            parts = []
            while sum(len(p.split()) for p in parts) < WORDS_PER_TEXT:
                if rng.random() < 0.3:
                    parts.append(rng.choice(sentences).capitalize() + ".")
                else:
                    n = rng.randint(5, 14)
                    parts.append(" ".join(rng.choice(common if rng.random() < 0.7 else fillers)
                                          for _ in range(n)).capitalize() + ".")
            f.write(json.dumps({"text": " ".join(parts)}) + "\n")


def build(base: Path | None = None, log=print) -> Path:
    """Build the stand-in once under `base` (default build/standin/) and return its folder; reuse it after."""
    words = needed_words()
    base = Path(base or ROOT / "build" / "standin")
    root = base / cache_key(words)
    if (root / "DONE").is_file():
        (root / "DONE").touch()  # last used: see the clean-up below
        return root
    base.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=base, prefix=".building-"))  # renamed into place only when complete
    try:
        rng = random.Random(0)
        fillers = pseudo_words(80_000, rng)
        log(f"stand-in: training a byte-level BPE ({len(words)} words must be single tokens) ...")
        tok = train_tokenizer(words, fillers)
        for seed, (repo, n_layer) in enumerate(MODELS.items()):
            log(f"stand-in: random {repo} ({n_layer} blocks) ...")
            write_model(tmp / "hf" / "hub", repo, n_layer, tok, seed)
        for seed, (size, n) in enumerate(SAE_SIZES.items()):
            log(f"stand-in: random OpenAI-format SAE, {size} latents ...")
            write_sae(tmp / "sae" / f"{SAE_LOCATION}_v5_{size}" / "autoencoders" / f"{SAE_LAYER}.pt", n, seed=seed)
        for layer in GRAPH_LAYERS:
            log(f"stand-in: random OpenAI-format SAE, 32k latents, layer {layer} ...")
            write_sae(tmp / "sae" / f"{SAE_LOCATION}_v5_32k" / "autoencoders" / f"{layer}.pt", 2**15, seed=layer)
        write_texts(tmp / "texts.jsonl", words, fillers, rng)
        (tmp / "DONE").write_text(json.dumps({"version": VERSION, "words": len(words)}))
        if (root / "DONE").is_file():
            return root  # another process finished the same build first; ours is removed below
        if root.exists():
            shutil.rmtree(root)  # an incomplete earlier build (no DONE)
        tmp.rename(root)
        for old in base.glob("v*"):  # stand-ins for other words or an older VERSION, ~2 GB each, unused for 1 h
            if old != root and (old / "DONE").is_file() and time.time() - (old / "DONE").stat().st_mtime > 3600:
                shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    log(f"stand-in ready: {root}")
    return root
