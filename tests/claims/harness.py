"""Run a notebook offline, exactly as a student would, and read values out of its kernel for the claim tests.

Each notebook runs once per test session in a fresh kernel (tiny world, `SAELAB_OFFLINE=1`,
`SAELAB_CHECKS_STRICT=1` so every reference solution must pass its check). A first cell counts every matplotlib
figure the notebook creates; after the run the images in the executed notebook (cell outputs and widget output
areas) are counted, so a figure that would not reach `build/` fails a test. `SAELAB_SEED`, `OMP_NUM_THREADS` and
the CPU code path reach the kernel through the environment (the Makefile's second claim run sets them).
A cell may run for `SAELAB_CLAIMS_CELL_TIMEOUT` seconds (900 unless set; a sweep on a shared machine sets more);
a notebook whose cell runs past it runs once more (a kernel that went idle without answering), then fails.
`SAELAB_BUDGET` never reaches the kernel: the claims are about the notebooks' own budgets, never CI's smoke budget.

With `SAELAB_CLAIMS_WORKERS=2` (`make unit`) the notebooks start at collection, two at a time in worker processes
with one thread per kernel (a configuration the claims sweep covers), while the unit tests run; small tensors keep
one kernel from filling two cores, so the course's claim run then takes about the time of its longest notebooks.
"""
from __future__ import annotations

import copy
import json
import multiprocessing
import os
import re
import sys
import traceback
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"

_REGISTERED: dict[str, dict[str, str]] = {}
_RESULTS: dict[str, dict] = {}
_FAILED: dict[str, BaseException] = {}  # a notebook that failed once is not run again for each of its tests
_PENDING: dict[str, Future] = {}  # notebooks started early by `prefetch`

COUNT_FIGURES = """\
import matplotlib.figure as _saelab_mfig
_saelab_figures_created = [0]
_saelab_figure_init = _saelab_mfig.Figure.__init__
def _saelab_counting_init(self, *args, **kwargs):
    _saelab_figures_created[0] += 1
    _saelab_figure_init(self, *args, **kwargs)
_saelab_mfig.Figure.__init__ = _saelab_counting_init
"""


def register(name: str, values: dict[str, str]) -> None:
    """Declare which expressions (evaluated in the executed notebook's kernel, JSON-able) the claims of `name` need."""
    _REGISTERED.setdefault(name, {}).update(values)


def count_images(nb: nbformat.NotebookNode) -> int:
    """Images in an executed notebook: PNG/SVG outputs and data-URI images in HTML, in cells and widget output areas."""
    def images(outputs) -> int:
        data = [o.get("data", {}) for o in outputs]
        return (sum(1 for d in data if "image/png" in d or "image/svg+xml" in d)  # a figure shown as an image
                + sum("".join(d.get("text/html", "")).count("data:image/png;base64") for d in data))  # inside a card

    n = sum(images(c.get("outputs", [])) for c in nb.cells if c.cell_type == "code")
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    return n + sum(images(w.get("state", {}).get("outputs", [])) for w in state.values())


SOLUTION = "# @title Solution"


def solution_failures(nb: nbformat.NotebookNode) -> list[str]:
    """Solution cells (first line `# @title Solution`) that did not pass every check they call.

    In strict mode a wrong answer raises; this also catches a solution that prints "not done yet" or nothing (output
    swallowed), so every verdict line under a solution cell must be "✓ ...", at least one per check it calls.
    """
    problems = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or not cell.source.startswith(SOLUTION):
            continue
        checks = sorted(set(re.findall(r"\b(check_\w+)\(", cell.source)))
        text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream")
        if not checks:
            problems.append(f"cell {index}: a solution cell that calls no check")
        verdicts = [line for line in text.splitlines() if line.startswith(("✓ ", "✗ ", "… "))]
        if any(not line.startswith("✓ ") for line in verdicts):  # "not done yet" or a wrong answer
            problems.append(f"cell {index}: {next(v for v in verdicts if not v.startswith('✓ '))!r}")
        elif len(verdicts) < len(checks):  # a check that printed nothing (check_l0_and_fvu prints one line per part)
            problems.append(f"cell {index}: {len(checks)} check(s) called ({', '.join(checks)}) but "
                            f"{len(verdicts)} success line(s) printed")
    return problems


def save_executed(nb: nbformat.NotebookNode, name: str) -> None:
    """Keep the executed notebook (probe cells removed) where `SAELAB_CLAIMS_EXECUTED_DIR` says, if it says: `make unit`
    keeps them in build/claims/notebooks/ so that the slides' browser test can build its decks from this run's figures
    instead of executing the course once more. Written atomically: a half-written notebook never stays behind."""
    folder = os.environ.get("SAELAB_CLAIMS_EXECUTED_DIR")
    if not folder:
        return
    path = Path(folder) if Path(folder).is_absolute() else ROOT / folder
    path.mkdir(parents=True, exist_ok=True)
    tmp = path / f".{name}.tmp"
    nbformat.write(nb, tmp)
    tmp.replace(path / name)


def notebook_values(name: str) -> dict:
    """Run notebook `name` offline (once per session); return its registered values plus figure counts."""
    if name in _FAILED:
        raise _FAILED[name]
    if name not in _RESULTS:
        try:
            if name in _PENDING:
                outcome = _PENDING.pop(name).result()
                if isinstance(outcome, str):  # the worker's traceback: its exception may not survive pickling
                    raise RuntimeError(f"{name} failed in a claim-run worker:\n{outcome}")
                _RESULTS[name] = outcome
            else:
                _RESULTS[name] = _run(name, _REGISTERED.get(name, {}))
        except BaseException as err:
            _FAILED[name] = err
            raise
    return _RESULTS[name]


def prefetch(names: list[str], workers: int) -> None:
    """Start running `names` (longest first) in `workers` processes, one thread per kernel; `notebook_values` waits
    for each. The pool is left to finish its queue; nothing is started twice."""
    todo = sorted((n for n in dict.fromkeys(names) if n not in _RESULTS and n not in _PENDING),
                  key=lambda n: -_median_seconds(n))
    if not todo:
        return
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_one_thread_per_kernel)
    for name in todo:
        _PENDING[name] = pool.submit(_run_reporting, name, dict(_REGISTERED.get(name, {})))
    pool.shutdown(wait=False)


def _median_seconds(name: str) -> float:
    """The notebook's median run time in the claims sweep's report (0 if it has none)."""
    report = Path(__file__).with_name("SWEEP.md")
    text = report.read_text() if report.exists() else ""
    found = re.search(rf"## {re.escape(name)}\n.*?median run (\d+) s", text, re.S)
    return float(found.group(1)) if found else 0.0


def _one_thread_per_kernel() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"  # kernels inherit it: two at a time on two cores


def _run_reporting(name: str, wanted: dict[str, str]) -> dict | str:
    """`_run` in a worker: its values, or the formatted traceback if it failed."""
    try:
        return _run(name, wanted)
    except BaseException:
        return traceback.format_exc()


def _run(name: str, registered: dict[str, str]) -> dict:
    """Execute notebook `name` with the probe cells; return the `registered` values and the harness's own."""
    wanted = dict(registered)
    wanted["__figures_created__"] = "_saelab_figures_created[0]"
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    probe = "import json as _json\nprint('@@VALUES@@' + _json.dumps({%s}))" % ", ".join(
        f"{key!r}: {expr}" for key, expr in wanted.items())
    nb.cells.insert(0, nbformat.v4.new_code_cell(COUNT_FIGURES))
    nb.cells.append(nbformat.v4.new_code_cell(probe))
    os.environ["SAELAB_OFFLINE"] = "1"
    os.environ["SAELAB_CHECKS_STRICT"] = "1"
    os.environ.pop("SAELAB_BUDGET", None)
    if os.environ.get("MPLBACKEND", "").lower() == "agg":  # Agg in the kernel would swallow every figure
        del os.environ["MPLBACKEND"]
    timeout = int(os.environ.get("SAELAB_CLAIMS_CELL_TIMEOUT", "900"))
    for attempt in (1, 2):
        run = copy.deepcopy(nb)
        try:
            NotebookClient(run, timeout=timeout, kernel_name="python3",
                           resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
            break
        except CellTimeoutError:
            # ipykernel 7 now and then goes idle without answering, so that a cell "runs" until the timeout (seen in
            # the sweep; ipython/ipykernel#1471). That is no claim failing: run the notebook once more; a second
            # timeout fails.
            if attempt == 2:
                raise
            print(f"{name}: a cell ran past {timeout} s; running the notebook once more", file=sys.stderr, flush=True)
    nb = run
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs  # stdout only: a warning goes to stderr
                   if o.get("output_type") == "stream" and o.get("name") == "stdout")
    values = json.loads(text.split("@@VALUES@@", 1)[1])
    nb.cells.pop()
    nb.cells.pop(0)
    save_executed(nb, name)
    values["__images__"] = count_images(nb)
    values["__solution_failures__"] = solution_failures(nb)
    values["__solutions__"] = sum(1 for c in nb.cells if c.cell_type == "code" and c.source.startswith(SOLUTION))
    return values
