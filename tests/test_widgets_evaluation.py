"""Notebook 06's panel: pressing Train trains an SAE on the chosen world and shows its card; the sparsity control
follows the world and the architecture."""
import matplotlib
import pytest

matplotlib.use("Agg")

from saelab import saebench, worldbench  # noqa: E402
from saelab.models import load_model  # noqa: E402
from saelab.tinyworld import generate_stories  # noqa: E402
from saelab.widgets.evaluation import evaluation_panel  # noqa: E402


@pytest.fixture(scope="module")
def task():
    return worldbench.world_task(load_model("tiny-world"), {"train": generate_stories(40, seed=1),
                                                            "test": generate_stories(30, seed=2)})


def controls(panel):
    world = panel.children[0]
    arch, size = panel.children[1].children
    sparsity = panel.children[2].children[0]
    return world, arch, size, sparsity


def test_panel_trains_and_shows_the_card():
    panel = evaluation_panel(seed=0, n_steps=50)
    assert panel.card.value == ""
    assert list(panel.world.options) == ["toy"]  # no task given: the toy only
    panel.train()
    assert "toy: Matryoshka, 64 latents, k = 2" in panel.card.value
    assert "mcc" in panel.card.value and "absorption" in panel.card.value
    assert 1.5 < panel.last_card["L0"] < 2.5 and 0 <= panel.last_card["mcc"] <= 1
    assert "trained and scored in" in panel.status.value and not panel.button.disabled


def test_button_is_disabled_and_status_says_training_while_it_works(monkeypatch):
    from saelab import saebench
    panel = evaluation_panel(seed=0, n_steps=10)
    seen = {}
    real = saebench.train_toy_sae

    def spy(*args, **kwargs):
        seen.update(disabled=panel.button.disabled, status=panel.status.value, card=panel.card.value)
        return real(*args, **kwargs)

    monkeypatch.setattr(saebench, "train_toy_sae", spy)
    panel.train()
    assert seen["disabled"] and "training toy: Matryoshka" in seen["status"] and seen["card"] == ""
    assert not panel.button.disabled


def test_sparsity_control_follows_the_architecture():
    panel = evaluation_panel(seed=0, n_steps=10)
    _, arch, _, sparsity = controls(panel)
    arch.value = "jumprelu"
    assert sparsity.description == "L0 coef" and sparsity.value == saebench.TOY_SETTINGS["jumprelu"]["l0_coef"]
    arch.value = "topk"
    assert sparsity.description == "k" and sparsity.value == 2


def test_tiny_world_trains_with_its_own_sizes_and_settings_and_shows_label_metrics(task, monkeypatch):
    monkeypatch.setitem(worldbench.WORLD_BUDGET, "n_steps", 30)
    panel = evaluation_panel(seed=0, n_steps=10, task=task)
    world, arch, size, sparsity = controls(panel)
    world.value = "tiny world"
    assert size.value == worldbench.WORLD_LATENTS and sparsity.value == 8
    arch.value = "gated"
    assert sparsity.description == "L1 coef" and sparsity.value == worldbench.WORLD_SETTINGS["gated"]["l1_coef"]
    arch.value = "topk"
    size.value = 160
    panel.train()
    assert "tiny world: TopK, 160 latents, k = 8" in panel.card.value
    assert {"probe k=2", "absorption", "simulation", "loss recovered"} <= set(panel.last_card)
    assert 7.5 < panel.last_card["L0"] <= 8.0
    world.value = "toy"
    assert size.value == 64 and sparsity.value == 2
