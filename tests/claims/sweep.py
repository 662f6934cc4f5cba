"""The claims sweep: every notebook's claim tests at many seed offsets, on two CPU code paths, with 1 and 2 threads.

    python -m tests.claims.sweep                 # the whole course (make claims-sweep)
    NOTEBOOKS=05,06 python -m tests.claims.sweep # some notebooks only

A sentence that states a direction or a ranking stands only if its claim test passes in every run made here. Run r
uses seed offset 1000*r (`SAELAB_SEED`), the native CPU code path for even r and the second one (the Makefile's
`SECOND_PATH`) for odd r, and 2, 1, 1, 2 threads in turn, so every four runs cover each path with each thread count.
Runs go two at a time where their threads fit the cores. Each run's results are kept in build/sweep/<notebook>/
(written whole or not at all), so a stopped sweep resumes where it stopped; a run made on other notebook text or
other claim tests is made again. The report, tests/claims/SWEEP.md, says per claim test how many runs it passed and
the values that decided it in its closest run, plus the CPU, the commit and each notebook's hash; the sections of
notebooks not swept this time are kept as they were. tests/test_claims_sweep.py fails when a notebook changed after
its last sweep, or when its sweep has a failing run.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = ROOT / "notebooks"
CLAIMS = ROOT / "tests" / "claims"
REPORT = CLAIMS / "SWEEP.md"
STATE = ROOT / "build" / "sweep"
SECOND_PATH = {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}
THREADS = (2, 1, 1, 2)
MIN_RUNS = 12  # the sweep's default: a sentence stands only if its claim test passes in every one of these runs
TESTED_RUNS = 4  # what `make test` requires of every notebook's sweep at least: runs 0-3, one of each path x threads
RUN_TIMEOUT = int(os.environ.get("SWEEP_RUN_TIMEOUT", 1800))  # seconds before a run counts as hung
MARKER = re.compile(r"<!-- sweep: (\{.*\}) -->")


@dataclass(frozen=True)
class Run:
    """One setting of the sweep: a seed offset, a CPU code path and a thread count."""
    index: int

    @property
    def offset(self) -> int:
        return 1000 * self.index

    @property
    def path(self) -> str:
        return "native" if self.index % 2 == 0 else "second"

    @property
    def threads(self) -> int:
        return THREADS[self.index % 4]

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in SECOND_PATH and k != "MPLBACKEND"}
        env.update(SAELAB_OFFLINE="1", SAELAB_CHECKS_STRICT="1", SAELAB_SEED=str(self.offset),
                   OMP_NUM_THREADS=str(self.threads), MKL_NUM_THREADS=str(self.threads), PYTHONDONTWRITEBYTECODE="1",
                   # threads that sleep instead of spinning at a barrier: on a busy machine a spinning 2-thread run
                   # took 754 s against 250 s for a 1-thread one (the arithmetic is the same either way)
                   OMP_WAIT_POLICY="PASSIVE")
        if self.path == "second":
            env.update(SECOND_PATH)
        return env

    def describe(self) -> str:
        return f"run {self.index:02d} (offset {self.offset}, {self.path} path, {self.threads} thread(s))"


def notebook_names() -> list[str]:
    return sorted(p.name for p in NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


def claim_file(notebook: str) -> Path:
    return CLAIMS / f"test_{notebook[:2]}.py"


def notebook_hash(notebook: str) -> str:
    """A digest of what a sweep result depends on: the notebook's markdown and code, and its claim tests."""
    cells = json.loads((NOTEBOOKS_DIR / notebook).read_text())["cells"]
    h = hashlib.sha256()
    for cell in cells:
        if cell["cell_type"] in ("markdown", "code"):
            source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
            h.update(f"{cell['cell_type']}\0{source}\0".encode())
    h.update(claim_file(notebook).read_bytes())
    return h.hexdigest()[:16]


def sections(text: str) -> dict[str, dict]:
    """The machine-readable line of every notebook's section in a SWEEP.md text."""
    return {d["notebook"]: d for d in (json.loads(m.group(1)) for m in MARKER.finditer(text))}


# --- running ---------------------------------------------------------------------------------------------------
def result_path(notebook: str, run: Run) -> Path:
    return STATE / notebook[:-6] / f"run-{run.index:02d}.json"


def is_done(notebook: str, run: Run, digest: str) -> bool:
    path = result_path(notebook, run)
    if not path.exists():
        return False
    try:
        return json.loads(path.read_text()).get("hash") == digest
    except json.JSONDecodeError:
        return False


def start(notebook: str, run: Run, digest: str) -> subprocess.Popen:
    """Start one pytest process: the notebook's claim tests plus its figure test, recorded by the sweep plugin."""
    out = result_path(notebook, run)
    out.parent.mkdir(parents=True, exist_ok=True)
    raw = out.with_suffix(".pytest.json")
    raw.unlink(missing_ok=True)  # a killed earlier run may have left one behind
    env = run.env()
    env["SAELAB_SWEEP_OUT"] = str(raw)
    figures = [f"tests/claims/test_figures.py::{test}[{notebook}]" for test in (
        "test_every_figure_lands_in_the_executed_notebook", "test_every_solution_cell_prints_its_checks_success_line")]
    cmd = [sys.executable, "-m", "pytest", str(claim_file(notebook).relative_to(ROOT)), *figures, "-q",
           "-p", "no:cacheprovider", "-p", "tests.claims.sweep_plugin", "-o", "enable_assertion_pass_hook=true"]
    log = open(out.with_suffix(".log"), "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    proc.meta = {"notebook": notebook, "run": run, "hash": digest, "raw": raw, "out": out,  # type: ignore[attr-defined]
                 "started": time.time(), "log": log}
    return proc


def kill_tree(proc: subprocess.Popen) -> None:
    """Kill a run's pytest process and the Jupyter kernel it started (its own process group)."""
    try:
        os.killpg(proc.pid, 9)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def finish(proc: subprocess.Popen) -> str:
    """Turn a finished pytest process into the run's result file; return one line for the console."""
    meta = proc.meta  # type: ignore[attr-defined]
    meta["log"].close()
    run: Run = meta["run"]
    seconds = time.time() - meta["started"]
    if meta["raw"].exists():
        tests = json.loads(meta["raw"].read_text())["tests"]
        meta["raw"].unlink()
    else:  # pytest died before writing: every test of the notebook counts as failed in this run
        tail = meta["out"].with_suffix(".log").read_text()[-600:]
        tests = {"(the whole run)": {"outcome": "error", "message": tail, "asserts": [], "margin": None}}
    record = {"notebook": meta["notebook"], "hash": meta["hash"], "run": run.index, "offset": run.offset,
              "path": run.path, "threads": run.threads, "seconds": round(seconds, 1), "tests": tests}
    tmp = meta["out"].with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(meta["out"])
    failed = [t for t, r in tests.items() if r["outcome"] != "passed"]
    return (f"{meta['notebook']} {run.describe()}: {len(tests) - len(failed)}/{len(tests)} passed in {seconds:.0f} s"
            + (f"; FAILED: {', '.join(f.split('::')[-1] for f in failed)}" if failed else ""))


def sweep(notebooks: list[str], n_runs: int, cores: int) -> None:
    """Run every missing (notebook, run) pair, at most `cores` threads at a time."""
    todo = []
    for nb in notebooks:
        digest = notebook_hash(nb)
        todo += [(nb, Run(i), digest) for i in range(n_runs) if not is_done(nb, Run(i), digest)]
    print(f"claims sweep: {len(todo)} run(s) to make on {cores} core(s) for {', '.join(notebooks)}", flush=True)
    running: list[subprocess.Popen] = []
    retried: set[tuple[str, int]] = set()
    while todo or running:
        free = cores - sum(p.meta["run"].threads for p in running)  # type: ignore[attr-defined]
        # look ahead only within the first notebook left, so notebooks finish (and report) one after another
        fitting = [job for job in todo if job[0] == todo[0][0] and job[1].threads <= free] if todo else []
        if fitting:
            nb, run, _ = job = fitting[0]
            todo.remove(job)
            digest = notebook_hash(nb)  # now, not when planned: a notebook edited meanwhile is swept as it is now
            if not is_done(nb, run, digest):
                running.append(start(nb, run, digest))
            continue
        if not running and todo:  # a job wider than the machine: run it alone
            running.append(start(*todo.pop(0)))
            continue
        time.sleep(2)
        for proc in [p for p in running if p.poll() is None and time.time() - p.meta["started"] > RUN_TIMEOUT]:
            # a kernel that hangs idle while nbclient waits (seen a few times on a busy machine) is not a claim
            # failing: kill the run and make it again, once
            meta = proc.meta  # type: ignore[attr-defined]
            kill_tree(proc)
            running.remove(proc)
            meta["log"].close()
            key = (meta["notebook"], meta["run"].index)
            print(f"{meta['notebook']} {meta['run'].describe()}: no result after {RUN_TIMEOUT} s, killed"
                  + ("" if key in retried else "; it runs again"), flush=True)
            if key not in retried:
                retried.add(key)
                todo.insert(0, (meta["notebook"], meta["run"], meta["hash"]))
        for proc in [p for p in running if p.poll() is not None]:
            running.remove(proc)
            print(finish(proc), flush=True)
            write_report(notebooks)  # after every run, so a sweep cut short still leaves its report


# --- reporting -------------------------------------------------------------------------------------------------
def cpu_summary() -> str:
    model, flags = "unknown CPU", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    wanted = sorted(f for f in flags if f.startswith(("avx", "amx", "fma", "sse4")))
    return f"{model}, {os.cpu_count()} cores; flags: {' '.join(wanted) or 'unknown'}"


def commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "notebooks", "saelab", "tests"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return head + (" (plus uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def load_runs(notebook: str, digest: str) -> list[dict]:
    runs = []
    for path in sorted((STATE / notebook[:-6]).glob("run-[0-9][0-9].json")):
        record = json.loads(path.read_text())
        if record.get("hash") == digest:
            runs.append(record)
    return runs


def section(notebook: str, runs: list[dict], digest: str) -> str:
    """One notebook's part of SWEEP.md: a machine-readable line, the settings, and one row per claim test."""
    names = sorted({t for r in runs for t in r["tests"]})
    configs = sorted({(r["path"], r["threads"]) for r in runs})
    failing = {t for r in runs for t, res in r["tests"].items() if res["outcome"] != "passed"}
    marker = {"notebook": notebook, "hash": digest, "runs": len(runs), "all_passed": not failing and bool(runs),
              "configs": [f"{p}/{t}" for p, t in configs], "offsets": sorted(r["offset"] for r in runs)}
    seconds = sorted(r["seconds"] for r in runs)
    lines = [f"## {notebook}", "", f"<!-- sweep: {json.dumps(marker)} -->", "",
             f"- hash {digest} (markdown + code + `{claim_file(notebook).name}`); swept at commit {commit()}",
             f"- {cpu_summary()}",
             f"- {len(runs)} runs, offsets {marker['offsets'][0] if runs else '-'}..{marker['offsets'][-1] if runs else '-'}"
             f" step 1000; paths/threads {', '.join(marker['configs'])}; median run {seconds[len(seconds) // 2] if runs else 0:.0f} s",
             f"- **{'every claim test passed in every run' if marker['all_passed'] else 'FAILING: ' + ', '.join(sorted(t.split('::')[-1] for t in failing))}**",
             "", "| claim test | passed | closest run | what decided it there |", "|---|---|---|---|"]
    for name in names:
        results = [(r, r["tests"][name]) for r in runs if name in r["tests"]]
        passed = sum(res["outcome"] == "passed" for _, res in results)
        failed = [(r, res) for r, res in results if res["outcome"] != "passed"]
        if failed:
            r, res = failed[0]
            decided = "FAILED: " + res["message"].splitlines()[0][:160] if res["message"] else "FAILED"
        else:
            with_margin = [(res["margin"], r, res) for r, res in results if res["margin"] is not None]
            r, res = (min(with_margin, key=lambda x: x[0])[1:] if with_margin else results[-1])
            decided = "; ".join(a["values"] for a in res["asserts"]) or "(no comparison recorded)"
        decided = decided.replace("|", "\\|").replace("\n", " ")[:400]
        short = name.split("::")[-1]
        lines.append(f"| `{short}` | {passed}/{len(results)} | {r['run']:02d} ({r['path']}, {r['threads']}t, "
                     f"offset {r['offset']}) | {decided} |")
    return "\n".join(lines) + "\n"


def write_report(swept: list[str]) -> None:
    old = REPORT.read_text() if REPORT.exists() else ""
    kept = {m.group(1): m.group(0) for m in re.finditer(r"^## (\S+\.ipynb)\n.*?(?=^## |\Z)", old, re.S | re.M)}
    parts = []
    for nb in notebook_names():
        if nb in swept:
            digest = notebook_hash(nb)
            parts.append(section(nb, load_runs(nb, digest), digest))
        elif nb in kept:
            parts.append(kept[nb].rstrip() + "\n")
    head = ("# Claims sweep\n\nWritten by `make claims-sweep` (`python -m tests.claims.sweep`); do not edit by hand.\n"
            "Each notebook's claim tests ran at every seed offset below, on the native and the second CPU code path\n"
            "(`ATEN_CPU_CAPABILITY=default MKL_ENABLE_INSTRUCTIONS=SSE4_2`), with 1 and 2 threads. A sentence that\n"
            "states a direction or a ranking stands only if its test passed in every run. \"Closest run\" is the run\n"
            "where the test's comparisons sat nearest their line (relative gap); its values are pytest's own.\n")
    tmp = REPORT.with_suffix(".tmp")
    tmp.write_text(head + "\n" + "\n".join(parts))
    tmp.replace(REPORT)


def main() -> int:
    wanted = [w.strip() for w in os.environ.get("NOTEBOOKS", "").replace(" ", ",").split(",") if w.strip()]
    names = notebook_names()
    # in the order given (cheap notebooks first lets their sections land early), else the course's order
    notebooks = [nb for w in wanted for nb in names if w in (nb[:2], nb)] if wanted else names
    if wanted and not notebooks:
        print(f"NOTEBOOKS={os.environ['NOTEBOOKS']!r} names no notebook; use the numbers, e.g. NOTEBOOKS=05,06",
              file=sys.stderr)
        return 2
    n_runs = int(os.environ.get("SWEEP_RUNS", MIN_RUNS))
    cores = int(os.environ.get("SWEEP_CORES", os.cpu_count() or 2))
    sweep(notebooks, n_runs, cores)
    write_report(notebooks)
    found = sections(REPORT.read_text())
    bad = [nb for nb in notebooks if not found.get(nb, {}).get("all_passed")]
    print(f"wrote {REPORT.relative_to(ROOT)}; " + (f"claim tests failing in some run: {', '.join(bad)}" if bad
                                                  else "every claim test passed in every run"))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
