"""The claim harness notices a solution cell that does not pass its check (e.g. turned back into its stub)."""
import nbformat

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
    assert problems == ["cell 1: no '✓ check_f' line in its output"]


def test_a_solution_that_calls_no_check_is_named():
    assert solution_failures(notebook("# @title Solution\ndef f(x):\n    return x", "")) == [
        "cell 1: a solution cell that calls no check"]
