"""The course's notebooks: every one exists, opens in Colab from the one repository setting, installs saelab
only on Colab, and is stored without errors."""
import json
from pathlib import Path

import pytest

from saelab import course
from saelab.models import is_offline

ROOT = Path(__file__).resolve().parents[1]


def load(name):
    return json.loads((ROOT / "notebooks" / name).read_text())


def source(cell):
    return "".join(cell["source"])


@pytest.mark.parametrize("name", course.NOTEBOOKS)
def test_notebook_opens_in_colab_and_installs_only_there(name):
    nb = load(name)
    cells = nb["cells"]
    assert nb["metadata"]["kernelspec"]["name"] == "python3", "a notebook without a kernelspec asks for a kernel"
    assert course.colab_url(name) in source(cells[0]), "the first cell carries the Open in Colab badge"
    assert source(cells[0]).lstrip().startswith("# "), "the notebook opens with a title"
    setup = next(source(c) for c in cells if c["cell_type"] == "code")
    assert "google.colab" in setup and course.pip_install_url() in setup
    assert course.colab_url(name) in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("name", course.NOTEBOOKS)
def test_notebook_is_stored_without_outputs(name):
    """Stored clean: no outputs, no execution counts (so no stale numbers and never a stored error)."""
    for i, cell in enumerate(load(name)["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None, f"{name} cell {i} has outputs"


@pytest.mark.parametrize("name", course.NOTEBOOKS)
def test_notebook_is_valid_nbformat_with_unique_cell_ids(name):
    """nbformat 4.5: every cell has an id, and no two share one (a pasted cell without one warns, later fails)."""
    import nbformat

    nb = load(name)
    ids = [cell.get("id") for cell in nb["cells"]]
    assert None not in ids, f"{name}: cells {[i for i, x in enumerate(ids) if x is None]} have no id"
    assert len(set(ids)) == len(ids), f"{name}: repeated cell ids"
    nbformat.validate(nbformat.from_dict(nb))


def headings(cell, level):
    """The markdown headings of exactly `level` hashes in a cell."""
    return [line[level + 1:].strip() for line in source(cell).splitlines()
            if line.startswith("#" * level + " ")]


@pytest.mark.parametrize("name", course.NOTEBOOKS)
def test_sections_are_numbered_1_to_n_in_order(name):
    sections = [h for c in load(name)["cells"] if c["cell_type"] == "markdown" for h in headings(c, 2)]
    numbered = [h for h in sections if h[:1].isdigit()]
    assert numbered, f"{name} has no numbered sections"
    numbers = [int(h.split(".")[0]) for h in numbered]
    assert numbers == list(range(1, len(numbers) + 1)), f"{name}: sections numbered {numbers}"
    assert set(sections) - set(numbered) <= {"Summary"}, f"{name}: unnumbered sections {set(sections) - set(numbered)}"
    assert sections[-1] == "Summary", f"{name} ends with a Summary section"


def exercises(nb):
    """(heading cell index, stub cell, solution cell) for every exercise of a notebook."""
    cells, found = nb["cells"], []
    for i, cell in enumerate(cells):
        if cell["cell_type"] == "markdown" and any("Exercise" in h for h in headings(cell, 3)):
            code = [c for c in cells[i + 1:i + 6] if c["cell_type"] == "code"]
            found.append((i, code[0] if code else None, code[1] if len(code) > 1 else None))
    return found


@pytest.mark.parametrize("name", course.NOTEBOOKS)
def test_each_exercise_has_a_goal_a_check_and_a_folded_solution(name):
    nb = load(name)
    for i, stub, solution in exercises(nb):
        text = source(nb["cells"][i])
        assert "**Goal:**" in text, f"{name} cell {i}: the exercise states no goal"
        assert stub is not None and "check_" in source(stub), f"{name} cell {i}: no stub that calls a check"
        assert "NotImplementedError" in source(stub) or "TODO" in source(stub), f"{name} cell {i}: the stub is solved"
        assert solution is not None and source(solution).startswith("# @title Solution"), \
            f"{name} cell {i}: no solution cell after the stub (first line '# @title Solution')"
        assert solution["metadata"].get("jupyter", {}).get("source_hidden") is True, \
            f"{name} cell {i}: the solution is not folded in JupyterLab"
        assert solution["metadata"].get("cellView") == "form", f"{name} cell {i}: the solution is not folded in Colab"
        check_calls = [w.split("(")[0] for w in source(stub).split() if w.startswith("check_")]
        assert any(c in source(solution) for c in check_calls), f"{name} cell {i}: the solution does not run the check"


def test_the_course_has_at_least_12_exercises():
    assert sum(len(exercises(load(n))) for n in course.NOTEBOOKS) >= 12


@pytest.mark.parametrize("name", course.NOTEBOOKS)
def test_every_solution_cell_is_an_exercise_solution(name):
    """No solution sits in plain view: every '# @title Solution' cell is folded, every folded cell is a solution."""
    for i, cell in enumerate(load(name)["cells"]):
        folded = cell["metadata"].get("jupyter", {}).get("source_hidden") is True
        titled = cell["cell_type"] == "code" and source(cell).startswith("# @title Solution")
        assert folded == titled, f"{name} cell {i}: a solution must be both titled and folded"


def test_every_notebook_is_listed():
    on_disk = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert on_disk == sorted(course.NOTEBOOKS)


def test_offline_world_is_the_tiny_world(monkeypatch):
    monkeypatch.setenv("SAELAB_OFFLINE", "1")
    assert is_offline()
    world = course.load_world()
    assert world.name == "tiny-world" and world.offline
    assert world.sae.hook_name == "blocks.2.hook_resid_post"
    assert "SAELAB_OFFLINE=1" in world.banner()
