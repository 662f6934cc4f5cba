"""The stand-in for the online world (tests/standin) and what `make notebooks-online` relies on.

The online runs happen in subprocesses and kernels: the hub reads HF_HOME when it is imported, so the
settings must be in place before Python starts.
"""
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from standin import build, fresh_cache, serve, standin_env

ROOT = Path(__file__).resolve().parents[1]

CHECK_LOADS = r"""
import json, torch, saelab
from saelab.activations import text_stream
from saelab.pretrained import load_openai_sae
gpt2, distil = saelab.load_model("gpt2"), saelab.load_model("distilgpt2")
sae = load_openai_sae(8, "resid_post_mlp", "32k", progress=False)
top = saelab.top_features(gpt2, sae, "he is such a rude man", k=5)
print(json.dumps({
    "gpt2": [gpt2.cfg.n_layers, gpt2.cfg.d_model, gpt2.cfg.d_vocab], "distil": distil.cfg.n_layers,
    "single": [len(gpt2.tokenizer(" " + w, add_special_tokens=False)["input_ids"]) for w in ("good", "nice", "kind", "rude", "mean", "bad")],
    "sae": [sae.n_latents, sae.d_model, sae.activation, sae.k, sae.normalize, sae.hook_name],
    "top": len(top.latents), "text": next(iter(text_stream("pile-10k")))[:40],
}))
"""


@pytest.fixture(scope="module")
def online():
    """(env, url): os.environ for the stand-in's online world while its SAE server runs."""
    root = build(log=lambda line: None)
    with serve(root) as url:
        yield standin_env(root, url, fresh_cache("test-cache")), url


def test_standin_loads_like_gpt2_and_openais_sae(online):
    env, url = online
    out = subprocess.run([sys.executable, "-c", CHECK_LOADS], env=env, cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["gpt2"] == [12, 768, 50257] and got["distil"] == 6
    assert got["single"] == [1] * 6  # the notebooks' answer and steering words are one token each
    assert got["sae"] == [2**15, 768, "topk", 32, True, "blocks.8.hook_resid_post"]
    assert got["top"] == 5 and got["text"]
    assert url.startswith("http://127.0.0.1:")


def test_standin_env_is_online_with_the_hub_offline(online):
    env, url = online
    assert "SAELAB_OFFLINE" not in env and env["HF_HUB_OFFLINE"] == "1"
    assert env["SAELAB_OPENAI_SAE_URL"] == url and Path(env["SAELAB_TEXTS"]).is_file()
    assert Path(env["SAELAB_CACHE"]).is_relative_to(ROOT / "build")


def test_online_run_fails_when_a_hook_name_breaks(online, tmp_path):
    """Done-when of issue #13: break the online branch's hook name in a copy of notebook 05; the online run fails."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    env, _ = online
    nb = nbformat.read(ROOT / "notebooks" / "05_training_saes.ipynb", as_version=4)
    hits = [c for c in nb.cells if c.cell_type == "code" and '"blocks.5.hook_mlp_out" if ONLINE' in c.source]
    assert len(hits) == 1, "notebook 05 no longer names its online hook as expected: update this test"
    hits[0].source = hits[0].source.replace('"blocks.5.hook_mlp_out" if ONLINE', '"blocks.5.hook_mlp_output" if ONLINE')
    env = dict(env, SAELAB_BUDGET="smoke")
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    with pytest.raises(CellExecutionError) as failure:
        client.execute(env=env)  # the kernel starts with the stand-in's online settings
    assert "blocks.5.hook_mlp_output" in failure.value.evalue, failure.value.evalue  # it failed on the hook
    ran = [c for c in nb.cells if c.cell_type == "code" and c.get("execution_count")]
    assert any("world.banner()" in c.source and "distilgpt2" in "".join(o.get("text", "") for o in c.outputs)
               for c in ran), "the copy did not take the online branch (DistilGPT2)"


def test_stand_in_is_rebuilt_when_the_notebooks_need_new_words():
    from standin.build import VERSION, cache_key, needed_words

    words = needed_words()
    assert {"good", "nice", "kind", "rude", "mean", "bad", "Good"} <= set(words)
    assert cache_key(words).startswith(f"v{VERSION}-") and cache_key(words) != cache_key(words + ["zebra"])
