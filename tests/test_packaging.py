"""environment.yml and binder/ cannot be solved here (no conda channel, no Binder), so check that they
name the same packages and version ranges as pyproject.toml, the one source of truth."""
import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
CONDA_TO_PYPI = {"pytorch-cpu": "torch"}
NOT_PACKAGES = {"python", "pip"}


def ranges(lines):
    out = {}
    for line in lines:
        if re.split(r"[<>=!~ ]", line, maxsplit=1)[0] in NOT_PACKAGES:
            continue
        req = Requirement(line)
        out[canonicalize_name(CONDA_TO_PYPI.get(req.name, req.name))] = str(req.specifier)
    return out


def pyproject_ranges(extras=("dev",)):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in extras:
        lines += project["optional-dependencies"][extra]
    return ranges(lines)


def test_environment_yml_matches_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    lines = []
    for dep in env["dependencies"]:
        lines += dep["pip"] if isinstance(dep, dict) else [dep]
    assert "conda-forge" in env["channels"]
    assert ranges(lines) == pyproject_ranges()


def test_binder_requirements_match_pyproject():
    text = (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    lines = [l for l in text if l.strip() and not l.startswith(("#", "-"))]
    assert ranges(lines) == pyproject_ranges(extras=())
    assert "download.pytorch.org/whl/cpu" in "\n".join(text), "Binder must take CPU-only torch wheels"


def test_makefile_pins_the_tested_torch():
    assert "torch==2.13.0" in (ROOT / "Makefile").read_text()
    torch_range = pyproject_ranges()["torch"]
    from packaging.specifiers import SpecifierSet
    assert "2.13.0" in SpecifierSet(torch_range)
