"""How much memory this process may really use: the smaller of the machine's free memory and its container's room.

Inside a container (Binder, Docker, Kubernetes) `/proc/meminfo` describes the host, not the container: Binder's
~2 GB limit is invisible there. The limit lives in the process's memory cgroup:

    cgroup v2   <root>/<path>/memory.max ("max" = no limit), memory.current,
                memory.stat (active_file, inactive_file, file_mapped)
    cgroup v1   <root>/memory/<path>/memory.limit_in_bytes (a huge number = no limit), memory.usage_in_bytes,
                memory.stat (total_active_file, total_inactive_file, total_mapped_file)

where <path> is this process's line in /proc/self/cgroup. A cgroup counts the page cache it has read into its
usage (the model files an earlier notebook loaded, say). Before the kernel OOM-kills anything in a cgroup it takes
back that cache, active or inactive, unless a process has the file mapped; so usage here is
`usage - (active_file + inactive_file - mapped_file)`. (Kubernetes' "working set" subtracts only the inactive part;
in CI's 2 GiB run that left notebook 05 short of DistilGPT2's 1.2 GB by the cache earlier notebooks had read.)
Every level from the process's cgroup up to the root can hold a limit: the tightest wins.
Every function takes its roots as arguments, so tests give it fake cgroup files.
"""
from __future__ import annotations

import os
from pathlib import Path

GiB = 2**30
NO_LIMIT_V1 = 2**60  # cgroup v1 writes "no limit" as a page-rounded LONG_MAX (9223372036854771712)
PROC_MEMINFO = "/proc/meminfo"
CGROUP_ROOT = "/sys/fs/cgroup"
PROC_SELF_CGROUP = "/proc/self/cgroup"
CAP_SETTING = "SAELAB_MEMORY_GB"


def gib(n_bytes: float | None) -> str:
    """Bytes as '1.8 GB' (GiB, one decimal), or 'unknown' for None: how the course prints memory."""
    return "unknown" if n_bytes is None else f"{n_bytes / GiB:.1f} GB"


def meminfo_available(meminfo: str | os.PathLike = PROC_MEMINFO) -> int | None:
    """MemAvailable from /proc/meminfo in bytes (what the whole machine can still give), or None if unknown."""
    try:
        for line in Path(meminfo).read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _read_int(path: Path) -> int | None:
    """The integer in a one-line cgroup file; None when missing, unreadable or "max" (v2's no limit)."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _stat_value(path: Path, key: str) -> int:
    """One value of a cgroup's memory.stat (0 when missing)."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key and value.strip().isdigit():
                return int(value)
    except OSError:
        pass
    return 0


# memory.stat's keys for (active file cache, inactive file cache, file cache mapped by a process)
V2_CACHE_KEYS = ("active_file", "inactive_file", "file_mapped")
V1_CACHE_KEYS = ("total_active_file", "total_inactive_file", "total_mapped_file")


def reclaimable_cache(stat: Path, active_key: str, inactive_key: str, mapped_key: str) -> int:
    """Page cache the kernel gives back before it OOM-kills anything in the cgroup: file pages nobody maps."""
    active, inactive, mapped = (_stat_value(stat, key) for key in (active_key, inactive_key, mapped_key))
    return max(0, active + inactive - mapped)


def _own_paths(proc_cgroup: Path) -> tuple[str | None, str | None]:
    """(v2 path, v1 memory path) of this process from /proc/self/cgroup; None where that line is missing."""
    v2 = v1 = None
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None, None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            v2 = path
        elif "memory" in controllers.split(","):
            v1 = path
    return v2, v1


def _levels(mount: Path, path: str | None) -> list[Path]:
    """The cgroup folders from this process's own up to the mount's root, those that exist.

    In a container with its own cgroup namespace the path is "/" and the mount is already the container's cgroup;
    without one the path may not exist under the mount, and then the mount's root is all we can read.
    """
    levels = []
    parts = [p for p in (path or "").split("/") if p]
    for i in range(len(parts), -1, -1):
        folder = mount.joinpath(*parts[:i])
        if folder.is_dir():
            levels.append(folder)
    return levels


def cgroup_room(cgroup_root: str | os.PathLike = CGROUP_ROOT,
                proc_cgroup: str | os.PathLike = PROC_SELF_CGROUP) -> tuple[int | None, int | None]:
    """(limit, room) of this process's memory cgroup in bytes: room = limit - (usage - unmapped page cache).

    The tightest level wins. (None, None) when no level has a memory limit (or there is no cgroup to read).
    """
    root = Path(cgroup_root)
    v2_path, v1_path = _own_paths(Path(proc_cgroup))
    best: tuple[int, int] | None = None
    candidates = []
    if v2_path is not None:  # v2: memory.max / memory.current (a level without memory.max has no limit)
        candidates += [(d, "memory.max", "memory.current", V2_CACHE_KEYS) for d in _levels(root, v2_path)]
    v1_mount = root / "memory"
    if v1_path is not None or (v1_mount / "memory.limit_in_bytes").is_file():
        candidates += [(d, "memory.limit_in_bytes", "memory.usage_in_bytes", V1_CACHE_KEYS)
                       for d in _levels(v1_mount, v1_path)]
    for folder, limit_file, usage_file, cache_keys in candidates:
        limit = _read_int(folder / limit_file)
        if limit is None or limit >= NO_LIMIT_V1:
            continue
        usage = _read_int(folder / usage_file) or 0
        in_use = max(0, usage - reclaimable_cache(folder / "memory.stat", *cache_keys))
        room = max(0, limit - in_use)
        if best is None or room < best[1]:
            best = (limit, room)
    return best if best is not None else (None, None)


def available_memory_bytes(meminfo: str | os.PathLike | None = None, cgroup_root: str | os.PathLike | None = None,
                           proc_cgroup: str | os.PathLike | None = None) -> int | None:
    """Memory this process may still use, in bytes: min(MemAvailable, cgroup limit - usage); None if unknown.

    The paths default to this machine's (PROC_MEMINFO, CGROUP_ROOT, PROC_SELF_CGROUP).

    `SAELAB_MEMORY_GB` (e.g. "2") caps the answer: a way to see what the course does on a smaller machine.
    """
    room = cgroup_room(cgroup_root or CGROUP_ROOT, proc_cgroup or PROC_SELF_CGROUP)[1]
    known = [b for b in (meminfo_available(meminfo or PROC_MEMINFO), room) if b is not None]
    cap = os.environ.get(CAP_SETTING, "").strip()
    if cap:
        try:
            known.append(int(float(cap) * GiB))
        except ValueError:
            raise ValueError(f"{CAP_SETTING} must be a number of GB such as 2 or 1.5; got {cap!r}") from None
    return min(known) if known else None


def process_rss_bytes(status: str | os.PathLike = "/proc/self/status") -> int:
    """Resident memory of this process now (VmRSS), in bytes; 0 when unknown."""
    try:
        for line in Path(status).read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def fit_batch_size(wanted: int, bytes_per_item: int, share: float = 0.25, minimum: int = 1,
                   available: int | None = None) -> int:
    """`wanted`, or fewer so that one batch takes at most `share` of the available memory (never below `minimum`)."""
    if wanted < 1 or bytes_per_item < 1:
        raise ValueError(f"wanted and bytes_per_item must be >= 1; got {wanted}, {bytes_per_item}")
    available = available_memory_bytes() if available is None else available
    if available is None:
        return wanted
    return max(minimum, min(wanted, int(available * share) // bytes_per_item))


def forward_bytes_per_token(cfg: object, max_length: int = 128) -> int:
    """Peak bytes one token costs in a no-grad forward pass of a transformer with config `cfg` (d_model, d_mlp,
    n_heads): the MLP's hidden activations and GELU temporaries, attention scores over `max_length` positions and a
    few residual-stream copies. Measured on DistilGPT2 (768 wide): ~190 KB per token; this gives ~220 KB."""
    d_model = int(getattr(cfg, "d_model", 768))
    d_mlp = int(getattr(cfg, "d_mlp", None) or 4 * d_model)
    n_heads = int(getattr(cfg, "n_heads", 12))
    return 4 * (12 * d_mlp + 4 * n_heads * max_length + 16 * d_model)


def fit_texts_per_forward(wanted: int, cfg: object, max_length: int = 128, share: float = 0.25,
                          available: int | None = None) -> int:
    """How many texts of up to `max_length` tokens to run through the model at once: `wanted`, or fewer so that the
    forward pass takes at most `share` of the available memory (on Binder's 2 GB: ~8 instead of 64)."""
    return fit_batch_size(wanted, max_length * forward_bytes_per_token(cfg, max_length), share=share,
                          available=available)


LOW_MEMORY_BYTES = 4 * GiB  # below this, large freed blocks go straight back to the system (see below)
_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number


def return_freed_memory(threshold: int = 4 * 2**20) -> bool:
    """Give every freed block of `threshold` bytes or more straight back to the system (glibc only).

    By default glibc raises its mmap threshold each time a large block is freed, so later tensors come from a heap
    it never shrinks: a kernel keeps its highest use as resident memory long after. On a small machine that slack is
    what gets a kernel killed. Fixing the threshold (as MALLOC_MMAP_THRESHOLD_ does) keeps resident memory close to
    what is in use. Returns False where this is not glibc.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, int(threshold)))
    except (OSError, AttributeError):
        return False
