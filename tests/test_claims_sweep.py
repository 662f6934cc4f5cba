"""The claims sweep is current: every notebook was swept after its last change, and every run of its sweep passed.

A notebook's markdown, code or claim tests that changed after its sweep change its hash; then re-sweep that
notebook only: `NOTEBOOKS=05 make claims-sweep` (see tests/claims/sweep.py).
"""
import pytest

from tests.claims import sweep
from tests.claims.sweep_plugin import margin

RECORDED = sweep.sections(sweep.REPORT.read_text()) if sweep.REPORT.exists() else {}


@pytest.mark.parametrize("notebook", sweep.notebook_names())
def test_notebook_was_swept_after_its_last_change(notebook):
    entry = RECORDED.get(notebook)
    assert entry, f"tests/claims/SWEEP.md has no sweep of {notebook}: run NOTEBOOKS={notebook[:2]} make claims-sweep"
    assert entry["hash"] == sweep.notebook_hash(notebook), (
        f"{notebook} or its claim tests changed after its last sweep: run NOTEBOOKS={notebook[:2]} make claims-sweep")


@pytest.mark.parametrize("notebook", sweep.notebook_names())
def test_every_claim_test_passed_in_every_run_of_the_sweep(notebook):
    entry = RECORDED.get(notebook, {})
    # make claims-sweep makes 12 runs (sweep.MIN_RUNS); make test requires at least one run of each path x threads,
    # so a notebook swept in part still counts, and SWEEP.md says how many runs each notebook had
    assert entry.get("runs", 0) >= sweep.TESTED_RUNS, f"{notebook}: fewer than {sweep.TESTED_RUNS} runs in its sweep"
    assert {"native/1", "native/2", "second/1", "second/2"} <= set(entry["configs"]), entry["configs"]
    assert len(set(entry["offsets"])) == entry["runs"]
    assert entry["all_passed"], f"{notebook}: a claim test failed in some run; see tests/claims/SWEEP.md"


def test_runs_cover_both_paths_and_both_thread_counts_every_four_runs():
    settings = {(sweep.Run(i).path, sweep.Run(i).threads) for i in range(4)}
    assert settings == {("native", 1), ("native", 2), ("second", 1), ("second", 2)}
    assert len({sweep.Run(i).offset for i in range(sweep.MIN_RUNS)}) == sweep.MIN_RUNS
    assert {(sweep.Run(i).path, sweep.Run(i).threads) for i in range(sweep.TESTED_RUNS)} == settings


def test_hash_follows_markdown_code_and_claim_tests_not_outputs(tmp_path, monkeypatch):
    import json
    import shutil
    nb_dir, claims = tmp_path / "notebooks", tmp_path / "claims"
    nb_dir.mkdir(); claims.mkdir()
    shutil.copy(sweep.NOTEBOOKS_DIR / "01_sae_theory.ipynb", nb_dir)
    shutil.copy(sweep.CLAIMS / "test_01.py", claims)
    monkeypatch.setattr(sweep, "NOTEBOOKS_DIR", nb_dir)
    monkeypatch.setattr(sweep, "CLAIMS", claims)
    base = sweep.notebook_hash("01_sae_theory.ipynb")
    nb = json.loads((nb_dir / "01_sae_theory.ipynb").read_text())
    code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "other digits"}]
    (nb_dir / "01_sae_theory.ipynb").write_text(json.dumps(nb))
    assert sweep.notebook_hash("01_sae_theory.ipynb") == base  # outputs differ from run to run
    md = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
    md["source"] = "".join(md["source"]) + " lower"
    (nb_dir / "01_sae_theory.ipynb").write_text(json.dumps(nb))
    changed = sweep.notebook_hash("01_sae_theory.ipynb")
    assert changed != base
    (claims / "test_01.py").write_text((claims / "test_01.py").read_text() + "\n# changed\n")
    assert sweep.notebook_hash("01_sae_theory.ipynb") not in (base, changed)


def test_margin_reads_pytest_comparisons():
    assert margin("0.0062 < 0.0073") == pytest.approx(0.0011 / 0.0073)
    assert margin("0.9 > 0.5") == pytest.approx(0.4 / 0.9)
    assert margin("0.08 < 0.2 < 0.35") == pytest.approx(min(0.12 / 0.2, 0.15 / 0.35))
    assert margin("0.0074 < 0.0073") < 0  # a failing comparison has a negative margin
    assert margin("'lower' == 'lower'") is None
