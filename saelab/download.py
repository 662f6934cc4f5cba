"""Downloading big files into a cache so that a half-written file is never used."""
from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from tqdm.auto import tqdm

from saelab.files import atomic_path

CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A download failed; the message says why and what to do."""


def cache_dir() -> Path:
    """Where downloads live: $SAELAB_CACHE, else ~/.cache/saelab."""
    return Path(os.environ.get("SAELAB_CACHE") or Path.home() / ".cache" / "saelab").expanduser()


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + ".download.json")


def is_complete(path: Path) -> bool:
    """True when `path` was fully downloaded: its size matches the size the server announced."""
    record = _record_path(path)
    if not (path.is_file() and record.is_file()):
        return False
    try:
        expected = json.loads(record.read_text())["bytes"]
    except (ValueError, KeyError):
        return False
    return path.stat().st_size == expected


def download(url: str, dest: str | os.PathLike, progress: bool = True, timeout: float = 60.0) -> Path:
    """Fetch `url` to `dest` unless a complete copy is already there; return `dest`.

    The bytes go to a temporary file that is renamed only when the size matches the server's
    Content-Length, so an interrupted download never leaves a file that looks usable.
    """
    dest = Path(dest)
    if is_complete(dest):
        return dest
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": "saelab"}),
                                          timeout=timeout)
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise DownloadError(f"could not reach {url} ({reason}).") from None
    with response:
        total = int(response.headers.get("Content-Length") or 0) or None
        received = 0
        with atomic_path(dest) as tmp, open(tmp, "wb") as out:
            bar = tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, disable=not progress)
            with bar:
                while True:
                    try:
                        chunk = response.read(CHUNK)
                    except (OSError, ValueError) as err:
                        raise DownloadError(f"the download of {url} broke off after {received} bytes "
                                            f"({err}); run again to retry.") from None
                    if not chunk:
                        break
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            out.flush()
            if total is not None and received != total:
                raise DownloadError(f"the download of {url} stopped at {received} of {total} bytes; "
                                    "run again to retry.")
    with atomic_path(_record_path(dest)) as tmp:
        tmp.write_text(json.dumps({"url": url, "bytes": received}))
    return dest


def forget(path: str | os.PathLike) -> None:
    """Remove a cached file and its record (e.g. when it turned out to be corrupt)."""
    path = Path(path)
    for p in (path, _record_path(path)):
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
