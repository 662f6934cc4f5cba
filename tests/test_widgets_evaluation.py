"""Notebook 06's panel: pressing Train trains a toy SAE and shows its card; the sparsity control follows the
architecture."""
import matplotlib

matplotlib.use("Agg")

from saelab.widgets.evaluation import evaluation_panel  # noqa: E402


def test_panel_trains_and_shows_the_card():
    panel = evaluation_panel(seed=0, n_steps=50)
    assert panel.card.value == ""
    panel.train()
    assert "Matryoshka, 64 latents, k = 2" in panel.card.value
    assert "mcc" in panel.card.value and "absorption" in panel.card.value
    assert 1.5 < panel.last_card["L0"] < 2.5 and 0 <= panel.last_card["mcc"] <= 1


def test_sparsity_control_follows_the_architecture():
    panel = evaluation_panel(seed=0, n_steps=10)
    arch = panel.children[0].children[0]
    sparsity = panel.children[1].children[0]
    arch.value = "jumprelu"
    assert sparsity.description == "L0 coef" and sparsity.value == 0.03
    arch.value = "topk"
    assert sparsity.description == "k" and sparsity.value == 2
