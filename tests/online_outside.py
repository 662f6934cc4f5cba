"""Notebook 07's GPT-2 attribution graph, online against the stand-in and outside the 2 GiB cgroup.

Inside Binder's 2 GB (the cgroup run of `make notebooks-online`) notebook 07 skips GPT-2's graph before loading
anything, so that run never builds it. This run executes the whole notebook again where memory is plenty and fails
unless the graph was built from SAEs at all three layers (4, 8, 10) with feature nodes, was pruned and drawn, its
replacement and completeness scores are finite shares, and the share of influence through " love" was computed and
printed (a share in [0, 1]).

    python -m tests.standin run --budget smoke -- python -m tests.online_graph
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

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "07_circuits.ipynb"
PROBE = """import json as _json
print('@@GRAPH@@' + _json.dumps({
    "built": online is not None,
    "layers": list(ONLINE_LAYERS),
    "nodes": len(online.nodes) if online is not None else 0,
    "features": sum(n.kind == "feature" for n in online.nodes) if online is not None else 0,
    "scores": {k: float(v) for k, v in graphs.graph_scores(online).items()} if online is not None else {},
    "through_love": graphs.fraction_through(online, torch.tensor(
        [n.pos == online.str_tokens.index(" love") and n.kind != "logit" for n in online.nodes]))
        if online is not None else None,
}))"""


def main() -> int:
    if os.environ.get("SAELAB_OFFLINE"):
        print("online_graph: SAELAB_OFFLINE is set; run this under `python -m tests.standin run`", file=sys.stderr)
        return 2
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PROBE))
    start = time.perf_counter()
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs
                   if o.get("output_type") == "stream" and o.get("name") == "stdout")
    found = json.loads(text.split("@@GRAPH@@", 1)[1])
    print(f"online_graph: notebook 07 online in {time.perf_counter() - start:.0f} s: {found}")
    problems = []
    if not found["built"]:
        problems.append("GPT-2's graph was not built (skipped)")
    if found["layers"] != [4, 8, 10]:
        problems.append(f"SAE layers {found['layers']}, not (4, 8, 10): memory was thought short")
    if found["features"] == 0:
        problems.append("the graph has no feature nodes")
    scores = found["scores"]
    if set(scores) != {"replacement", "completeness"} or not all(
            math.isfinite(v) and 0 <= v <= 1 for v in scores.values()):
        problems.append(f"graph scores are not two finite shares: {scores}")
    share = found["through_love"]
    if share is None or not math.isfinite(share) or not 0 <= share <= 1:
        problems.append(f"the share of influence through ' love' is not a share: {share}")
    drawn = [c for c in nb.cells if c.cell_type == "code" and "online_pruned = graphs.prune(online" in c.source]
    if not drawn or not any("image/png" in o.get("data", {}) for o in drawn[0].outputs):
        problems.append("the pruned GPT-2 graph was not drawn")
    printed = "".join(o.get("text", "") for o in (drawn[0].outputs if drawn else []) if o.get("output_type") == "stream")
    if "influence through ' love':" not in printed:
        problems.append("the notebook did not print the share of influence through ' love'")
    for problem in problems:
        print(f"online_graph: FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
