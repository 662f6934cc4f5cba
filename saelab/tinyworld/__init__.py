"""The tiny world: generated stories with known concepts, a word-level tokenizer, and a bundled model + SAE.

Everything the course needs offline: `FILES_DIR` holds a 4-layer GPT-2-style model (a Hugging Face
directory that TransformerLens can boot) and a TopK SAE trained on `SAE_HOOK`. Rebuild both with
`python -m saelab.tinyworld.build`.
"""
from pathlib import Path

from saelab.tinyworld.generator import (
    NEGATIVE_WORDS,
    POSITIVE_WORDS,
    Story,
    check_sentence,
    continuation_sentiment,
    generate_stories,
    generate_story,
    is_consistent,
    is_grammatical,
)
from saelab.models import unknown_words
from saelab.tinyworld.tokenizer import build_tokenizer, load_tokenizer

FILES_DIR = Path(__file__).resolve().parent / "files"
SAE_PATH = FILES_DIR / "sae.pt"
SAE_HOOK = "blocks.2.hook_resid_post"  # the tiny world's analogue of GPT-2's layer 8
MLP_HOOK = "blocks.3.hook_mlp_out"     # notebook 05's stand-in for DistilGPT2's last-block MLP output

__all__ = [
    "FILES_DIR", "SAE_PATH", "SAE_HOOK", "MLP_HOOK", "Story", "generate_story", "generate_stories",
    "POSITIVE_WORDS", "NEGATIVE_WORDS", "check_sentence", "is_grammatical", "is_consistent",
    "continuation_sentiment", "build_tokenizer", "load_tokenizer", "unknown_words",
]
