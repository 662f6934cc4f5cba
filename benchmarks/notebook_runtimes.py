"""Wall time, kernel CPU time and kernel peak RSS of every notebook, offline and online against the stand-in.

Online means the notebooks' GPT-2 / DistilGPT2 branch, run on tests/standin: random weights shaped like GPT-2
small and DistilGPT2, OpenAI-format random SAEs downloaded from 127.0.0.1, a local text set. Same shapes as the
real thing, so the same compute; the downloads are local, so real download time is not included.
Notebook 05 runs with the budget its device picks (SAELAB_BUDGET unset; on this CPU: 'cpu'), not 'smoke'.
On a shared machine wall time is inflated; kernel CPU time / 2 is what the run needs on 2 free cores.
Usage: python benchmarks/notebook_runtimes.py [--offline-only | --online-only] [--budget NAME] [NOTEBOOK ...]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def kernel_stats(pid: int) -> tuple[int, float]:
    """(peak RSS in bytes, CPU seconds used so far) of a running process."""
    with open(f"/proc/{pid}/status") as f:
        peak = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM"))
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    return peak, cpu


def run_notebook(path: Path) -> tuple[float, float, int]:
    """Execute a notebook cell by cell in a fresh kernel: (wall seconds, kernel CPU seconds, kernel peak RSS)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=1800, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    with client.setup_kernel():
        pid = client.km.provisioner.process.pid
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        peak, cpu = kernel_stats(pid)
    return time.perf_counter() - start, cpu, peak


@contextlib.contextmanager
def environment(changes: dict[str, str]):
    """os.environ replaced by `changes` inside the block (kernels inherit it), restored after."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(changes)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def report(world: str, paths: list[Path]) -> None:
    from nbclient.exceptions import CellExecutionError

    for path in paths:
        try:
            wall, cpu, peak = run_notebook(path)
        except CellExecutionError as err:  # report it and go on with the other notebooks
            print(f"{world:<8} {path.name:<30} FAILED: {err.ename}: {err.evalue[:120]}", flush=True)
            continue
        print(f"{world:<8} {path.name:<30} {wall:>8.1f} {cpu:>9.1f} {cpu / 2:>12.1f} {peak / 2**20:>9.0f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--offline-only", action="store_true")
    group.add_argument("--online-only", action="store_true")
    parser.add_argument("--budget", default="", help="SAELAB_BUDGET online (default: unset, the device's budget)")
    parser.add_argument("notebooks", nargs="*", help="notebook file names (default: all)")
    args = parser.parse_args()
    paths = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if args.notebooks:
        paths = [p for p in paths if p.name in args.notebooks or p.stem in args.notebooks]
    os.environ.pop("MPLBACKEND", None)  # Agg in a kernel would swallow every figure
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    print(f"{'world':<8} {'notebook':<30} {'wall s':>8} {'kernel CPU s':>9} {'CPU s / 2':>12} {'peak MiB':>9}")
    if not args.online_only:
        with environment(dict(os.environ, SAELAB_OFFLINE="1")):
            report("offline", paths)
    if not args.offline_only:
        from tests.standin import build, fresh_cache, serve, standin_env

        root = build(log=lambda line: print(line, file=sys.stderr))
        with serve(root) as url, environment(standin_env(root, url, fresh_cache("bench-cache"), args.budget or None)):
            report("online", paths)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
