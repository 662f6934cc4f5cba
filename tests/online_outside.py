"""The online branches that need more than Binder's 2 GB, run against the stand-in outside the 2 GiB cgroup.

Inside the cgroup (`make notebooks-online`) `auto_size` picks the 32k SAE and notebook 07 skips GPT-2's graph, so the
branches students get on Colab would never run. Here, where memory is plenty, each notebook runs once more and fails
unless its big branch really ran:
- 02: the blog's 128k SAE is loaded (2**17 latents), the blog's latents are looked up and their dashboards drawn;
- 06: the loop over OpenAI's SAEs covers 32k and 128k, with finite label-free and probing scores for both;
- 07: GPT-2's graph is built from SAEs at layers 4, 8 and 10 with feature nodes, pruned and drawn, its replacement and
  completeness scores are finite shares, and the share through " love" was computed and printed.

    python -m tests.standin run --budget smoke -- python -m tests.online_outside [02 06 07]
"""
from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PROBE_02 = """import json as _json
print('@@FOUND@@' + _json.dumps({
    "n_latents": sae.n_latents, "blog_latents": list(BLOG_NEGATIVE_LATENTS),
}))"""
PROBE_06 = """import json as _json, math as _math
print('@@FOUND@@' + _json.dumps({
    "sizes": list(SIZES),
    "finite": {s: all(_math.isfinite(float(v)) for v in [*label_free[s].values(), *world_probes[s].values()])
               for s in label_free},
}))"""
PROBE_07 = """import json as _json
print('@@FOUND@@' + _json.dumps({
    "built": online is not None,
    "layers": list(ONLINE_LAYERS),
    "nodes": len(online.nodes) if online is not None else 0,
    "features": sum(n.kind == "feature" for n in online.nodes) if online is not None else 0,
    "scores": {k: float(v) for k, v in graphs.graph_scores(online).items()} if online is not None else {},
    "through_love": graphs.fraction_through(online, torch.tensor(
        [n.pos == online.str_tokens.index(" love") and n.kind != "logit" for n in online.nodes]))
        if online is not None else None,
}))"""


def run(name: str, probe: str) -> tuple[nbformat.NotebookNode, dict]:
    """Execute notebook `name` (online, the stand-in's settings) with `probe` appended; return it and the probe."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(probe))
    start = time.perf_counter()
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs
                   if o.get("output_type") == "stream" and o.get("name") == "stdout")
    found = json.loads(text.split("@@FOUND@@", 1)[1])
    print(f"online_outside: {name} online in {time.perf_counter() - start:.0f} s: {found}", flush=True)
    return nb, found


def cell_outputs(nb: nbformat.NotebookNode, marker: str) -> list[dict]:
    """The outputs of the first code cell whose source contains `marker` (empty if none)."""
    cells = [c for c in nb.cells if c.cell_type == "code" and marker in c.source]
    return list(cells[0].outputs) if cells else []


def printed(outputs: list[dict]) -> str:
    return "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")


def check_02() -> list[str]:
    nb, found = run("02_finding_features.ipynb", PROBE_02)
    problems = []
    if found["n_latents"] != 2**17:
        problems.append(f"02: the SAE has {found['n_latents']} latents, not the blog's 128k (2**17)")
    if "the blog's latents:" not in printed(cell_outputs(nb, "BLOG_NEGATIVE_LATENTS}")):
        problems.append("02: the blog's latents were not looked up in the top-k lists")
    dashboards = cell_outputs(nb, "display(feature_dashboard(model, sae, i, corpus))")
    if len(dashboards) < len(found["blog_latents"]):
        problems.append(f"02: {len(dashboards)} dashboard outputs for {len(found['blog_latents'])} blog latents")
    return problems


def check_06() -> list[str]:
    _, found = run("06_evaluating_saes.ipynb", PROBE_06)
    problems = []
    if found["sizes"] != ["32k", "128k"]:
        problems.append(f"06: the loop over OpenAI's SAEs ran {found['sizes']}, not 32k and 128k")
    problems += [f"06: non-finite scores for the {s} SAE" for s, ok in found["finite"].items() if not ok]
    return problems


def check_07() -> list[str]:
    nb, found = run("07_circuits.ipynb", PROBE_07)
    problems = []
    if not found["built"]:
        problems.append("07: GPT-2's graph was not built (skipped)")
    if found["layers"] != [4, 8, 10]:
        problems.append(f"07: SAE layers {found['layers']}, not (4, 8, 10): memory was thought short")
    if found["features"] == 0:
        problems.append("07: the graph has no feature nodes")
    scores = found["scores"]
    if set(scores) != {"replacement", "completeness"} or not all(
            math.isfinite(v) and 0 <= v <= 1 for v in scores.values()):
        problems.append(f"07: graph scores are not two finite shares: {scores}")
    share = found["through_love"]
    if share is None or not math.isfinite(share) or not 0 <= share <= 1:
        problems.append(f"07: the share of influence through ' love' is not a share: {share}")
    drawn = cell_outputs(nb, "online_pruned = graphs.prune(online")
    if not any("image/png" in o.get("data", {}) for o in drawn):
        problems.append("07: the pruned GPT-2 graph was not drawn")
    if "influence through ' love':" not in printed(drawn):
        problems.append("07: the notebook did not print the share of influence through ' love'")
    return problems


CHECKS = {"02": check_02, "06": check_06, "07": check_07}


def main(argv: list[str]) -> int:
    if os.environ.get("SAELAB_OFFLINE"):
        print("online_outside: SAELAB_OFFLINE is set; run this under `python -m tests.standin run`", file=sys.stderr)
        return 2
    wanted = argv or list(CHECKS)
    unknown = [w for w in wanted if w not in CHECKS]
    if unknown:
        print(f"online_outside: no check for {unknown}; choose from {list(CHECKS)}", file=sys.stderr)
        return 2
    problems = [p for name in wanted for p in CHECKS[name]()]
    for problem in problems:
        print(f"online_outside: FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
