"""A stand-in for the online world (hub models, OpenAI's SAE server, a hub dataset), for tests and `make test`.

    python -m tests.standin build                 build it once (cached under build/standin/)
    python -m tests.standin run -- CMD ARGS...    serve it on 127.0.0.1 and run CMD with the online settings

`standin_env` lists the settings: SAELAB_OFFLINE unset, the hub in offline mode reading the stand-in's
Hugging Face cache, SAELAB_OPENAI_SAE_URL at the local server, SAELAB_TEXTS at the local text set.
"""
from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import threading
from pathlib import Path
from typing import Iterator

from .build import ROOT, build  # noqa: F401  (re-exported)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # no line per request on stderr
        pass


@contextlib.contextmanager
def serve(root: Path) -> Iterator[str]:
    """Serve `root`/sae over HTTP on 127.0.0.1 (a free port) while the block runs; yield its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(Path(root) / "sae"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def standin_env(root: Path, url: str, cache: Path, budget: str | None = "smoke") -> dict[str, str]:
    """os.environ changed to the online world of the stand-in (a copy; SAELAB_OFFLINE removed)."""
    env = {k: v for k, v in os.environ.items() if k != "SAELAB_OFFLINE"}
    env.update({
        "HF_HOME": str(Path(root) / "hf"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1", "SAELAB_OPENAI_SAE_URL": url, "SAELAB_CACHE": str(cache),
        "SAELAB_TEXTS": str(Path(root) / "texts.jsonl"),
    })
    if budget:
        env["SAELAB_BUDGET"] = budget
    else:
        env.pop("SAELAB_BUDGET", None)
    return env


def fresh_cache(name: str = "online-cache") -> Path:
    """An empty SAELAB_CACHE under build/: every run downloads the SAEs from the local server again."""
    cache = ROOT / "build" / "standin" / name
    if cache.exists():
        shutil.rmtree(cache)
    cache.mkdir(parents=True)
    return cache
