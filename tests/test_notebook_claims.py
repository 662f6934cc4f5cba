"""Every sentence of a notebook that states a result is checked here against what the notebook computes offline.

Each notebook runs once per test session in a fresh kernel (tiny world, `SAELAB_OFFLINE=1`), exactly as a
student runs it; then the expressions listed for it in `VALUES` are evaluated in that kernel. One test per
claim; its name gives the notebook and section, its docstring quotes the claim.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

# notebook -> {name: Python expression evaluated in the executed notebook's kernel; must give JSON}
VALUES: dict[str, dict[str, str]] = {
    # --- notebook 01 ---
    "01_sae_theory.ipynb": {},
    # --- notebook 02 ---
    "02_finding_features.ipynb": {},
    # --- notebook 03 ---
    "03_activation_patching.ipynb": {},
    # --- notebook 04 ---
    "04_steering.ipynb": {},
    # --- notebook 05 ---
    "05_training_saes.ipynb": {},
}
_RESULTS: dict[str, dict] = {}


def notebook_values(name: str) -> dict:
    """Run notebook `name` offline (once per session) and return the values `VALUES[name]` asks for."""
    if name not in _RESULTS:
        wanted = VALUES[name]
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        probe = "import json as _json\nprint('@@VALUES@@' + _json.dumps({%s}))" % ", ".join(
            f"{key!r}: {expr}" for key, expr in wanted.items())
        nb.cells.append(nbformat.v4.new_code_cell(probe))
        os.environ["SAELAB_OFFLINE"] = "1"
        os.environ.setdefault("MPLBACKEND", "Agg")
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
        text = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.get("output_type") == "stream")
        _RESULTS[name] = json.loads(text.split("@@VALUES@@", 1)[1])
    return _RESULTS[name]


@pytest.fixture(scope="session")
def nb01() -> dict:
    return notebook_values("01_sae_theory.ipynb")


@pytest.fixture(scope="session")
def nb02() -> dict:
    return notebook_values("02_finding_features.ipynb")


@pytest.fixture(scope="session")
def nb03() -> dict:
    return notebook_values("03_activation_patching.ipynb")


@pytest.fixture(scope="session")
def nb04() -> dict:
    return notebook_values("04_steering.ipynb")


@pytest.fixture(scope="session")
def nb05() -> dict:
    return notebook_values("05_training_saes.ipynb")


# ================================ notebook 01: SAE theory ================================


# ============================ notebook 02: finding features ==============================


# ========================== notebook 03: activation patching =============================


# ================================= notebook 04: steering =================================


# ============================== notebook 05: training SAEs ===============================
