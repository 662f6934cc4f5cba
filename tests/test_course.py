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
def test_notebook_is_stored_without_errors(name):
    for cell in load(name)["cells"]:
        for output in cell.get("outputs", []):
            assert output.get("output_type") != "error", f"{name} has a stored error"


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
