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
