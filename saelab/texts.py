"""A local text set in place of a hub dataset: the `SAELAB_TEXTS` setting.

Point `SAELAB_TEXTS` at a `.jsonl` file (one {"text": ...} per line) or a `.txt` file (one text per line) and
every dataset name given to `saelab.activations.text_stream` / `hf_texts` reads that file instead of the hub:
for a classroom without network, or for the test suite's stand-in of the online world.
"""
from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Iterator

TEXTS_SETTING = "SAELAB_TEXTS"


def local_texts(path: str | os.PathLike, seed: int = 0) -> Iterator[str]:
    """Texts from a local file in a seeded shuffled order: `.jsonl` (one {"text": ...} per line) or `.txt`
    (one text per line). What `SAELAB_TEXTS` points at."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ValueError(f"SAELAB_TEXTS points at {str(path)!r}, which is not a file: give a .jsonl file with one "
                         '{"text": ...} per line or a .txt file with one text per line, or unset SAELAB_TEXTS')
    with open(path, encoding="utf-8") as f:
        lines = [line.strip() for line in f if line.strip()]
    if path.suffix == ".jsonl":
        try:
            lines = [str(json.loads(line)["text"]) for line in lines]
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{path} is not JSON Lines with a 'text' field on every line; "
                             'write one {"text": "..."} per line, or use a .txt file') from None
    if not lines:
        raise ValueError(f"{path} holds no texts")
    random.Random(seed).shuffle(lines)
    return iter(lines)
