"""Notebook 03's panel: heatmap on creation, Patch greyed out until the boxes change, latents on request,
bad input as a message in the panel."""
import pytest

from saelab.models import load_model
from saelab.pretrained import load_sae
from saelab.widgets.patching import patching_explorer, sae_row

CLEAN, CORRUPTED = "i love him. he is such a", "i hate him. he is such a"


def shown_png(panel) -> bytes:
    """The heatmap's PNG as the panel's output area holds it (what an executed notebook saves)."""
    import base64

    (output,) = panel.heatmap.outputs
    return base64.b64decode(output["data"]["image/png"])


@pytest.fixture(scope="module")
def world():
    return load_model("tiny-world", device="cpu"), load_sae("tiny-world", device="cpu")


def test_panel_draws_the_heatmap_and_lists_latents_on_click(world, one_thread):
    panel = patching_explorer(*world, CLEAN, CORRUPTED)
    assert shown_png(panel).startswith(b"\x89PNG") and panel.table.value == ""
    assert panel.patch_button.disabled and not panel.latents_button.disabled  # the browser test clicks the latter
    assert panel.position.value == panel.position.max == 8 and "a" in panel.token.value
    panel.latents_button.click()
    assert "<table>" in panel.table.value and "attribution" in panel.table.value and "promotes" in panel.table.value
    assert "24 latents fire there" in panel.message.value


def test_editing_a_box_enables_patch_and_bad_input_is_reported(world, one_thread):
    panel = patching_explorer(*world, CLEAN, CORRUPTED)
    before = shown_png(panel)
    panel.corrupted.value = "i hate him. he is such a bad"
    assert not panel.patch_button.disabled
    panel.patch_button.click()
    assert "same number of tokens" in panel.message.value and "#b00020" in panel.message.value
    assert shown_png(panel) == before  # the old map stays
    panel.corrupted.value, panel.negative.value = CORRUPTED, "rude, xyzzy"
    panel.patch_button.click()
    assert "xyzzy" in panel.message.value
    panel.negative.value = ""
    panel.patch_button.click()
    assert "answer set is empty" in panel.message.value


def test_new_prompts_redraw_and_move_the_slider(world, one_thread):
    panel = patching_explorer(*world, CLEAN, CORRUPTED)
    panel.clean.value, panel.corrupted.value = "i love him.", "i hate him."
    assert panel.draw() and panel.position.max == 4 and panel.patch_button.disabled
    assert len(panel.heatmap.outputs) == 1 and shown_png(panel).startswith(b"\x89PNG")  # replaced, not added
    panel.position.value = 2
    assert panel.list_latents() and "love" in panel.table.value


def test_sae_row_is_the_block_after_a_resid_post_hook(world):
    sae = world[1]
    assert sae_row(sae, 4) == 3 and sae_row(sae, 3) is None
