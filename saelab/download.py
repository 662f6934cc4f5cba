"""Downloading big files into a cache so that a half-written file is never used."""
from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

from saelab.files import atomic_path

CHUNK = 1 << 20
# Bodies that are a web page or an error message, not a file (a captive portal, a proxy's or a server's error page).
TEXT_TYPES = ("text/html", "application/json", "application/xml", "text/xml")
TEXT_STARTS = (b"<!doctype", b"<html", b"<?xml", b"<head", b"<body", b"{", b"[")
BINARY_STARTS = (b"PK\x03\x04", b"\x80")  # a zip (torch.save) or a pickle (older torch.save)


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


def not_a_file(url: str, content_type: str, head: bytes) -> str | None:
    """Why a body is a web page or an error message rather than the file asked for, or None when it may be the file."""
    kind = content_type.split(";")[0].strip().lower()
    start = head.lstrip()[:16].lower()
    if start.startswith(TEXT_STARTS) or (kind in TEXT_TYPES and not head.startswith(BINARY_STARTS)):
        what = "an HTML page" if "html" in kind or start.startswith((b"<!doctype", b"<html", b"<head", b"<body")) \
            else f"text ({kind or 'no content type'})"
        shown = head.lstrip()[:120].decode("utf-8", errors="replace").replace("\n", " ")
        return (f"{url} answered with {what}, not the file (it begins {shown!r}): a captive portal (log in to the "
                "network first), a proxy's or the server's error page. Open the address in a browser to see it")
    return None


def download(url: str, dest: str | os.PathLike, progress: bool = True, timeout: float = 60.0,
             validate: Callable[[Path], None] | None = None) -> Path:
    """Fetch `url` to `dest` unless a complete copy is already there; return `dest`.

    The bytes go to a temporary file that becomes `dest`, and is recorded as complete, only when its size matches
    the server's Content-Length, it is not a web page or error message, and `validate(temporary path)` (e.g. "it
    loads as an SAE") does not raise. So an interrupted download or a proxy's error page is never marked complete.
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
    forget(dest)  # whatever was there is incomplete (is_complete said so): never leave its record behind
    with response:
        total = int(response.headers.get("Content-Length") or 0) or None
        content_type = response.headers.get("Content-Type") or ""
        received = 0
        with atomic_path(dest) as tmp:
            with open(tmp, "wb") as out:
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
            with open(tmp, "rb") as f:
                problem = not_a_file(url, content_type, f.read(512))
            if problem:
                raise DownloadError(f"{problem}; nothing was saved.")
            if validate is not None:
                try:
                    validate(tmp)
                except (ValueError, OSError) as err:
                    raise DownloadError(f"{url} sent {received:,} bytes that are not a usable file ({err}); "
                                        "nothing was saved: run again to retry.") from None
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
