"""SAELens's layout as saelab writes it: cfg.json keeps to SAELens's documented fields and types (never a null where
SAELens reads a string), and the folder loads back into the same SAE, with or without a hook."""
import json

import pytest
import torch

from saelab.sae import SAE, load_sae_file
from saelab.sae_formats import CFG

# SAELens's cfg.json (its SAEConfig, docs and saved files of SAELens 6): field -> type. hook_name sits at the top
# level in pre-6.0 files (SAELens's loader then does `"hook_z" in cfg["hook_name"]`) and under metadata in 6.x.
SAELENS_FIELDS = {
    "architecture": str, "d_in": int, "d_sae": int, "dtype": str, "device": str, "apply_b_dec_to_input": bool,
    "normalize_activations": str, "reshape_activations": str, "hook_name": str, "metadata": dict, "k": int,
}
REQUIRED = ("architecture", "d_in", "d_sae", "dtype", "device", "apply_b_dec_to_input", "normalize_activations")
ARCHITECTURES = ("standard", "gated", "jumprelu", "topk", "transcoder")  # names SAELens knows (a few of them)
NORMALIZATIONS = ("none", "expected_average_only_in", "constant_norm_rescale", "layer_norm")
SAELENS_LAYOUT = ("batchtopk", "matryoshka", "jumprelu", "gated")  # saelab's architectures saved in this layout


def make(name, hook_name=None, normalize=False):
    torch.manual_seed(0)
    sae = SAE(8, 16, name, k=2 if name in ("batchtopk", "matryoshka") else None, normalize=normalize,
              hook_name=hook_name, prefixes=(4, 16) if name == "matryoshka" else None)
    with torch.no_grad():
        for p in sae.parameters():
            p.normal_(0, 0.3)
        if hasattr(sae, "threshold"):
            sae.threshold.fill_(0.1)
    return sae


def has_type(value, kind) -> bool:
    """isinstance, except that a bool is no int (JSON's true is not a width)."""
    return isinstance(value, kind) and not (kind is int and isinstance(value, bool))


def nulls(value, where="cfg") -> list[str]:
    if value is None:
        return [where]
    if isinstance(value, dict):
        return [n for key, v in value.items() for n in nulls(v, f"{where}.{key}")]
    return []


@pytest.mark.parametrize("hook_name", [None, "blocks.0.hook_resid_post"])
@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("name", SAELENS_LAYOUT)
def test_cfg_json_keeps_to_saelens_fields_and_types(name, normalize, hook_name, tmp_path):
    path = make(name, hook_name, normalize).save(tmp_path / "sae")
    cfg = json.loads((path / CFG).read_text())
    assert nulls(cfg) == [], f"null fields in cfg.json: {nulls(cfg)}"
    assert set(REQUIRED) <= set(cfg), sorted(set(REQUIRED) - set(cfg))
    for key, value in cfg.items():
        if key == "saelab":  # saelab's own block, which SAELens's loader drops
            assert isinstance(value, dict)
            continue
        assert key in SAELENS_FIELDS, f"cfg.json has {key!r}, which SAELens's config does not know"
        assert has_type(value, SAELENS_FIELDS[key]), f"{key} = {value!r}: SAELens expects {SAELENS_FIELDS[key]}"
    assert cfg["architecture"] in ARCHITECTURES and cfg["normalize_activations"] in NORMALIZATIONS
    assert (cfg["d_in"], cfg["d_sae"], cfg["dtype"]) == (8, 16, "float32")
    assert cfg.get("hook_name") == hook_name  # left out when the SAE has no hook
    for key, value in cfg.get("metadata", {}).items():
        assert key != "hook_name" or isinstance(value, str)


@pytest.mark.parametrize("hook_name", [None, "blocks.0.hook_resid_post"])
@pytest.mark.parametrize("name", SAELENS_LAYOUT)
def test_the_folder_loads_back_into_the_same_sae(name, hook_name, tmp_path):
    sae = make(name, hook_name)
    back = load_sae_file(sae.save(tmp_path / "sae"))
    assert (back.activation, back.k, back.hook_name) == (name, sae.k, hook_name)
    assert getattr(back, "prefixes", None) == getattr(sae, "prefixes", None)
    x = torch.randn(5, 8)
    with torch.no_grad():
        torch.testing.assert_close(back.encode(x), sae.encode(x))
        torch.testing.assert_close(back(x)[2], sae(x)[2])


@pytest.mark.parametrize("hook_name", [None, "blocks.0.hook_resid_post"])
@pytest.mark.parametrize("name", SAELENS_LAYOUT)
def test_saelens_itself_opens_the_folder_where_it_is_installed(name, hook_name, tmp_path):
    """SAELens is not a dependency of the course (it pins an older TransformerLens); where it is installed, its own
    reader must open what saelab writes and encode and decode as saelab does."""
    sae_lens = pytest.importorskip("sae_lens")
    sae = make(name, hook_name)
    lens = sae_lens.SAE.load_from_disk(str(sae.save(tmp_path / "sae")), device="cpu")
    x = torch.randn(5, 8)
    with torch.no_grad():
        latents = sae.encode(x)
        torch.testing.assert_close(lens.encode(x), latents, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(lens.decode(latents), sae.decode(latents), atol=1e-5, rtol=1e-4)
