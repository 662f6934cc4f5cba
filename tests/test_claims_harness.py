"""The claim harness notices a solution cell that does not pass its check (e.g. turned back into its stub), runs
notebooks early in worker processes when asked, and runs a notebook once more after a cell ran past its timeout."""
import nbformat
import pytest
from nbclient.exceptions import CellTimeoutError

from tests.claims import harness
from tests.claims.harness import solution_failures


def notebook(solution_source: str, printed: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(solution_source)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=printed)]
    nb.cells = [nbformat.v4.new_code_cell("def f(x):\n    raise NotImplementedError\ncheck_f(f)"), cell]
    return nb


def test_a_passing_solution_is_accepted():
    assert solution_failures(notebook("# @title Solution\ndef f(x):\n    return x\ncheck_f(f)", "✓ check_f: correct\n")) == []


def test_a_solution_turned_back_into_its_stub_is_named():
    stub = "# @title Solution\ndef f(x):\n    raise NotImplementedError\ncheck_f(f)"
    problems = solution_failures(notebook(stub, "… check_f: not done yet\n"))
    assert problems == ["cell 1: '… check_f: not done yet'"]


def test_a_composite_check_passes_with_one_success_line_per_part():
    source = "# @title Solution\ncheck_both(f, g)"
    assert solution_failures(notebook(source, "✓ check_f: correct\n✓ check_g: correct\n")) == []
    assert solution_failures(notebook(source, "✓ check_f: correct\n✗ check_g: wrong\n")) == [
        "cell 1: '✗ check_g: wrong'"]


def test_a_solution_that_prints_no_verdict_is_named():
    assert solution_failures(notebook("# @title Solution\ncheck_f(f)", "")) == [
        "cell 1: 1 check(s) called (check_f) but 0 success line(s) printed"]


def test_a_solution_that_calls_no_check_is_named():
    assert solution_failures(notebook("# @title Solution\ndef f(x):\n    return x", "")) == [
        "cell 1: a solution cell that calls no check"]


# --- running notebooks: early, in workers (make unit), and once more after a kernel that stopped answering ---------
def write_notebook(path, *sources: str) -> str:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return str(path)  # an absolute path: the harness reads notebooks/<name>, and notebooks/ + absolute = absolute


@pytest.fixture
def fresh_harness(monkeypatch):
    """The harness's registries empty, and no executed copy written over the test's notebooks."""
    monkeypatch.delenv("SAELAB_CLAIMS_EXECUTED_DIR", raising=False)
    for table in ("_REGISTERED", "_RESULTS", "_FAILED", "_PENDING"):
        monkeypatch.setattr(harness, table, {})
    return harness


def test_prefetched_notebooks_run_in_workers_with_one_thread_and_a_failure_names_its_cause(fresh_harness, tmp_path,
                                                                                         monkeypatch):
    monkeypatch.setenv("SAELAB_BUDGET", "smoke")  # never reaches a claim run's kernel
    good = write_notebook(tmp_path / "good.ipynb", "import os\nthreads = os.environ.get('OMP_NUM_THREADS')\n"
                          "budget = os.environ.get('SAELAB_BUDGET')\nstrict = os.environ.get('SAELAB_CHECKS_STRICT')")
    bad = write_notebook(tmp_path / "bad.ipynb", "1 / 0")
    fresh_harness.register(good, {"threads": "threads", "budget": "budget", "strict": "strict"})
    fresh_harness.prefetch([good, bad, good], workers=2)
    assert set(fresh_harness._PENDING) == {good, bad}  # each notebook once
    values = fresh_harness.notebook_values(good)
    assert (values["threads"], values["budget"], values["strict"]) == ("1", None, "1")
    with pytest.raises(RuntimeError, match="bad.ipynb failed in a claim-run worker(.|\n)*ZeroDivisionError"):
        fresh_harness.notebook_values(bad)
    with pytest.raises(RuntimeError):  # and again for its next test, without running it again
        fresh_harness.notebook_values(bad)


def test_a_notebook_whose_cell_runs_past_the_timeout_runs_once_more_then_fails(fresh_harness, tmp_path, monkeypatch):
    monkeypatch.setenv("SAELAB_CLAIMS_CELL_TIMEOUT", "3")
    marker = tmp_path / "first-attempt"
    once = write_notebook(tmp_path / "once.ipynb",  # hangs on its first run only, as an idle kernel would
                          f"import pathlib, time\nm = pathlib.Path({str(marker)!r})\n"
                          "if not m.exists():\n    m.touch()\n    time.sleep(60)\nanswer = 42")
    fresh_harness.register(once, {"answer": "answer"})
    assert fresh_harness.notebook_values(once)["answer"] == 42
    always = write_notebook(tmp_path / "always.ipynb", "import time\ntime.sleep(60)")
    with pytest.raises(CellTimeoutError):
        fresh_harness.notebook_values(always)
