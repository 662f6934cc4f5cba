"""A word-level Hugging Face tokenizer for the tiny world: one token per word, "." its own token.

Like GPT-2's byte-level BPE, a word after a space is a different token from the same word at the
start of the text ("Ġhe" vs "he"), so `decode(encode(text)) == text` exactly, spaces included.
"""
from __future__ import annotations

import os
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from saelab.tinyworld.generator import vocabulary

EOS = "<|endoftext|>"  # bos = eos = pad, id 0, as in GPT-2
UNK = "<unk>"
SPACE = "Ġ"            # how ByteLevel writes a leading space


def build_tokenizer(words: list[str] | None = None) -> PreTrainedTokenizerFast:
    """A `PreTrainedTokenizerFast` over `words` (default: the generator's whole vocabulary)."""
    words = vocabulary() if words is None else sorted(set(words))
    vocab = {EOS: 0, UNK: 1}
    for w in words:
        for piece in (w, SPACE + w) if w != "." else (w,):
            vocab.setdefault(piece, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOS, eos_token=EOS, pad_token=EOS,
                                   unk_token=UNK, clean_up_tokenization_spaces=False)


def load_tokenizer(path: str | os.PathLike | None = None) -> PreTrainedTokenizerFast:
    """The tokenizer saved in `path` (default: the bundled tiny-world files)."""
    from saelab.tinyworld import FILES_DIR
    return PreTrainedTokenizerFast.from_pretrained(str(Path(path or FILES_DIR)))
