"""Run a command inside a memory cgroup with a hard limit (the mechanism Binder's ~2 GB containers use).

    python -m tests.cgroup.run_limited [--limit 2G] [--notebooks DIR] [--max-kernel-peak 1.8G] -- CMD ARGS...

The command and everything it starts (pytest, one Jupyter kernel per notebook) run in a fresh child cgroup with
`--limit` of memory (v2 memory.max or v1 memory.limit_in_bytes); this process stays outside and watches. At the end
it prints, for each Jupyter kernel (= notebook, in the order nbval runs them), its wall time and peak resident
memory (VmHWM), the cgroup's peak while it ran (all processes + page cache), and the kernel's OOM kills. It fails
when the command fails, when the kernel OOM-killed anything, or when a kernel's peak passes `--max-kernel-peak`.

Creating a cgroup needs root and a cgroup memory controller. As root with a controller mounted, a cgroup that cannot
be created fails the run (the check must not silently vanish). Where none can exist (not root, or no controller) the
command still runs, once, WITHOUT a limit, and a loud SKIPPED line (first and last) says why.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

GiB = 2**30
NO_LIMIT_V1 = 2**60


def parse_size(text: str) -> int:
    """'2G', '1.8G', '512M' or a number of bytes -> bytes (G and M are GiB and MiB)."""
    m = re.fullmatch(r"\s*([0-9.]+)\s*([GgMmKk]?)i?[Bb]?\s*", text)
    if not m:
        raise argparse.ArgumentTypeError(f"a size such as 2G, 1.8G or 512M; got {text!r}")
    return int(float(m.group(1)) * {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[m.group(2).lower()])


@dataclass
class Kernel:
    """One Jupyter kernel seen in the cgroup: one notebook under nbval."""

    pid: int
    label: str = ""
    first_seen: float = 0.0
    last_seen: float = 0.0
    peak_rss: int = 0         # VmHWM: the kernel's own peak resident memory
    cgroup_peak: int | None = None  # the whole cgroup's peak while this kernel ran (v1: reset at its start)
    start_usage: int | None = None  # the cgroup's usage when the kernel appeared (what the notebook finds there)
    start_file_cache: int | None = None  # of which page cache (reclaimable unless mapped)

    @property
    def seconds(self) -> float:
        return self.last_seen - self.first_seen


@dataclass
class Cgroup:
    """A child memory cgroup with a limit, v1 or v2."""

    path: Path
    version: int
    limit: int
    kernels: list[Kernel] = field(default_factory=list)

    def _file(self, v1: str, v2: str) -> Path:
        return self.path / (v1 if self.version == 1 else v2)

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.path / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def peak(self) -> int | None:
        try:
            return int(self._file("memory.max_usage_in_bytes", "memory.peak").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def usage(self) -> tuple[int | None, int | None]:
        """(usage, page cache) in bytes now: memory.usage_in_bytes / memory.current and the file pages of memory.stat."""
        try:
            usage = int(self._file("memory.usage_in_bytes", "memory.current").read_text().split()[0])
            stat = dict(line.split() for line in self._file("memory.stat", "memory.stat").read_text().splitlines())
        except (OSError, ValueError, IndexError):
            return None, None
        keys = ("total_active_file", "total_inactive_file") if self.version == 1 else ("active_file", "inactive_file")
        return usage, sum(int(stat.get(key, 0)) for key in keys)

    def reset_peak(self) -> bool:
        """Start a new peak (v1: write 0 to max_usage_in_bytes); False where the kernel cannot."""
        try:
            self._file("memory.max_usage_in_bytes", "memory.peak").write_text("0")
            return True
        except OSError:
            return False

    def oom_kills(self) -> int:
        """OOM kills inside this cgroup so far (v1 memory.oom_control / v2 memory.events: oom_kill)."""
        try:
            text = self._file("memory.oom_control", "memory.events").read_text()
        except OSError:
            return 0
        m = re.search(r"^oom_kill (\d+)", text, re.M)
        return int(m.group(1)) if m else 0

    def join(self) -> None:
        """Move the calling process into this cgroup (run in the child just before exec)."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def remove(self) -> None:
        for _ in range(50):  # the last processes may take a moment to leave
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.1)


def _own_cgroup_paths(proc_cgroup: Path = Path("/proc/self/cgroup")) -> tuple[str | None, str | None]:
    v2 = v1 = None
    for line in proc_cgroup.read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            v2 = path
        elif "memory" in controllers.split(","):
            v1 = path
    return v2, v1


def memory_controller(root: Path = Path("/sys/fs/cgroup")) -> str | None:
    """Where a cgroup memory controller is mounted (v1 `memory/` or v2 with "memory" listed), or None."""
    if (root / "memory" / "memory.limit_in_bytes").is_file():
        return f"cgroup v1 at {root / 'memory'}"
    for mount in (root, root / "unified"):
        controllers = mount / "cgroup.controllers"
        if controllers.is_file() and "memory" in controllers.read_text().split():
            return f"cgroup v2 at {mount}"
    return None


def must_limit(root: Path = Path("/sys/fs/cgroup")) -> str | None:
    """Why a cgroup must be possible here (root, and a memory controller present), or None where none can exist."""
    where = memory_controller(root)
    return f"running as root with a {where}" if os.geteuid() == 0 and where else None


def create_cgroup(limit: int, root: Path = Path("/sys/fs/cgroup")) -> tuple[Cgroup | None, str]:
    """A fresh child cgroup of ours with `limit` bytes of memory, or (None, why that is impossible here)."""
    if os.geteuid() != 0:
        return None, "not root (creating a cgroup needs root)"
    try:
        v2_path, v1_path = _own_cgroup_paths()
    except OSError as err:
        return None, f"cannot read /proc/self/cgroup ({err})"
    name = f"saelab-limit-{os.getpid()}"
    problems = []
    v1_mount = root / "memory"
    if v1_path is not None and (v1_mount / "memory.limit_in_bytes").is_file():
        parent = v1_mount / v1_path.lstrip("/")
        if not parent.is_dir():
            parent = v1_mount
        try:
            path = parent / name
            path.mkdir()
            (path / "memory.limit_in_bytes").write_text(str(limit))
            if (path / "memory.memsw.limit_in_bytes").is_file():  # no swapping out of the limit either
                (path / "memory.memsw.limit_in_bytes").write_text(str(limit))
            return Cgroup(path, 1, limit), f"cgroup v1 {path}"
        except OSError as err:
            problems.append(f"cgroup v1 memory controller at {v1_mount}: {err}")
            Cgroup(parent / name, 1, limit).remove()
    for mount in (root, root / "unified"):
        if v2_path is None or not (mount / "cgroup.controllers").is_file():
            continue
        parent = mount / v2_path.lstrip("/")
        if not parent.is_dir():
            parent = mount
        if "memory" not in (parent / "cgroup.controllers").read_text().split():
            problems.append(f"cgroup v2 at {mount}: the memory controller is not available to {parent}")
            continue
        try:
            if "memory" not in (parent / "cgroup.subtree_control").read_text().split():
                (parent / "cgroup.subtree_control").write_text("+memory")
            path = parent / name
            path.mkdir()
            (path / "memory.max").write_text(str(limit))
            if (path / "memory.swap.max").is_file():
                (path / "memory.swap.max").write_text("0")
            return Cgroup(path, 2, limit), f"cgroup v2 {path}"
        except OSError as err:
            problems.append(f"cgroup v2 at {parent}: {err}")
            Cgroup(parent / name, 2, limit).remove()
    return None, "; ".join(problems) or "no cgroup memory controller is mounted under /sys/fs/cgroup"


def _status(pid: int) -> tuple[int, str]:
    """(VmHWM in bytes, command line) of a process; (0, '') once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return 0, ""
    m = re.search(r"VmHWM:\s+(\d+)", status)
    return (int(m.group(1)) * 1024 if m else 0), cmd


def watch(cgroup: Cgroup, stop: threading.Event, every: float = 0.2) -> None:
    """Follow the cgroup's Jupyter kernels until `stop`: their peaks, times, and the cgroup's peak per kernel."""
    live: dict[int, Kernel] = {}
    while not stop.is_set():
        now = time.time()
        seen = set()
        for pid in cgroup.pids():
            known = live.get(pid)
            if known is None:
                hwm, cmd = _status(pid)
                if "ipykernel" not in cmd:
                    continue
                for old in list(live.values()):  # a new kernel: the last one's cgroup peak ends here
                    if old.cgroup_peak is None:
                        old.cgroup_peak = cgroup.peak()
                cgroup.reset_peak()
                known = live[pid] = Kernel(pid, first_seen=now)
                known.start_usage, known.start_file_cache = cgroup.usage()
                cgroup.kernels.append(known)
            hwm, _ = _status(pid)
            if hwm:
                known.peak_rss, known.last_seen = max(known.peak_rss, hwm), now
                seen.add(pid)
        for pid, kernel in list(live.items()):
            if pid not in seen:  # the kernel has exited
                if kernel.cgroup_peak is None:
                    kernel.cgroup_peak = cgroup.peak()
                del live[pid]
        stop.wait(every)
    for kernel in live.values():
        if kernel.cgroup_peak is None:
            kernel.cgroup_peak = cgroup.peak()


def notebook_labels(folder: str | None, n: int) -> list[str]:
    """The notebooks nbval runs, in its order (sorted), when their number matches the kernels seen."""
    names = sorted(p.name for p in Path(folder).glob("*.ipynb")) if folder else []
    return names if len(names) == n else [f"kernel {i + 1}" for i in range(n)]


def gb(n: int | None) -> str:
    return "-" if n is None else f"{n / GiB:.2f} GB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.cgroup.run_limited", description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=parse_size, default=2 * GiB, help="memory limit of the cgroup (default 2G)")
    parser.add_argument("--max-kernel-peak", type=parse_size, default=None,
                        help="fail when a Jupyter kernel's peak resident memory passes this (e.g. 1.8G)")
    parser.add_argument("--notebooks", default=None, help="folder whose *.ipynb nbval runs, to name the kernels")
    parser.add_argument("--report", default=None, help="also write the measurements here as JSON")
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    args, command = parser.parse_args(argv[:split]), argv[split + 1:]
    if not command:
        parser.error("give the command after --, e.g. -- python -m pytest --nbval-lax notebooks")

    cgroup, where = create_cgroup(args.limit)
    if cgroup is None and (reason := must_limit()):
        print(f"run_limited: FAILED: a {gb(args.limit)} memory cgroup should be possible here ({reason}), but "
              f"creating it failed: {where}. Fix the cgroup set-up (or run as a user without the controller).",
              file=sys.stderr, flush=True)
        return 1
    if cgroup is None:
        skipped = (f"SKIPPED: the {gb(args.limit)} memory-limit check cannot run on this machine ({where}); "
                   "the command runs once WITHOUT a memory limit.")
        print(f"\n{'!' * 100}\n{skipped}\n{'!' * 100}\n", flush=True)
        code = subprocess.run(command).returncode
        print(f"\n{'!' * 100}\n{skipped}\n{'!' * 100}", flush=True)
        return code
    print(f"run_limited: {gb(args.limit)} memory limit ({where})", flush=True)
    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(cgroup, stop), daemon=True)
    started = time.time()
    try:
        process = subprocess.Popen(command, preexec_fn=cgroup.join)
        watcher.start()
        code = process.wait()
        code = 128 - code if code < 0 else code  # killed by a signal: as a shell reports it (137 = SIGKILL)
        stop.set()
        watcher.join()
        oom = cgroup.oom_kills()
    finally:
        stop.set()
        cgroup.remove()

    labels = notebook_labels(args.notebooks, len(cgroup.kernels))
    for kernel, label in zip(cgroup.kernels, labels):
        kernel.label = label
    print(f"\nInside a {gb(args.limit)} memory cgroup ({time.time() - started:.0f} s in all, OOM kills: {oom}):")
    print(f"{'notebook':<32} {'time':>7} {'kernel peak RSS':>16} {'cgroup peak (+ pytest, page cache)':>36} "
          f"{'cgroup at its start (page cache)':>34}")
    for k in cgroup.kernels:
        print(f"{k.label:<32} {k.seconds:>6.0f}s {gb(k.peak_rss):>16} {gb(k.cgroup_peak):>36} "
              f"{gb(k.start_usage):>22} ({gb(k.start_file_cache)})")
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(json.dumps({
            "limit": args.limit, "oom_kills": oom, "returncode": code,
            "kernels": [asdict(k) | {"seconds": k.seconds} for k in cgroup.kernels]}, indent=1))
    failures = []
    if oom:
        failures.append(f"the kernel OOM-killed {oom} process(es) inside the {gb(args.limit)} limit")
    if args.max_kernel_peak is not None:
        failures += [f"{k.label} peaked at {gb(k.peak_rss)} (bound {gb(args.max_kernel_peak)})"
                     for k in cgroup.kernels if k.peak_rss > args.max_kernel_peak]
    for failure in failures:
        print(f"run_limited: FAILED: {failure}", flush=True)
    return code or (1 if failures else 0)


if __name__ == "__main__":
    sys.exit(main())
