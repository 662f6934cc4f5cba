"""Notebook 06's panel: pick the toy or the tiny world, an architecture, a size and a sparsity; it trains one SAE in
seconds and shows its metric card: every ground-truth metric on the toy, the label metrics on the tiny world.

Controls only: the experiments are `saelab.saebench.train_toy_sae` + `toy_card` and
`saelab.worldbench.train_world_sae` + `world_card`.
"""
from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt

from saelab import saebench, worldbench
from saelab.architectures import ARCHITECTURES, NEEDS_K

# Per world: dictionary sizes, what the sparsity slider offers (k for the TopK family, a coefficient otherwise),
# each architecture's default setting, and the metrics the bar chart shows.
WORLDS: dict[str, dict[str, Any]] = {
    "toy": {"sizes": [32, 64, 128], "size": 64, "k": [1, 2, 3, 4, 6, 8],
            "coef": [0.01, 0.03, 0.1, 0.3, 1.0, 3.0], "settings": saebench.TOY_SETTINGS,
            "bars": ["mcc", "f1", "uniqueness", "absorption"], "title": "ground-truth metrics of this SAE"},
    "tiny world": {"sizes": [160, 320, 640], "size": worldbench.WORLD_LATENTS, "k": [2, 4, 8, 16, 32],
                   "coef": [0.3, 0.5, 1.0, 1.5, 1.8, 2.0, 3.0, 5.0], "settings": worldbench.WORLD_SETTINGS,
                   "bars": ["probe k=2", "absorption", "detection", "simulation"], "title": "label metrics of this SAE"},
}


def metric_card(card: dict[str, float], title: str) -> str:
    """The card as one small HTML table."""
    rows = "".join(f"<tr><td>{k}</td><td style='text-align:right'>{v:.3f}</td></tr>" for k, v in card.items())
    return f"<b>{title}</b><table>{rows}</table>"


def evaluation_panel(seed: int = 0, n_steps: int = 300, task: worldbench.WorldTask | None = None
                     ) -> widgets.Widget:
    """World, architecture, dictionary size and sparsity controls; "Train" trains one SAE and shows its card.

    Pass `saelab.seeds.seed(0)` as `seed` so `SAELAB_SEED` shifts it too, and a `worldbench.world_task` as `task`
    to offer the tiny world (it trains with `worldbench.WORLD_BUDGET`; `n_steps` is the toy's).
    """
    data = saebench.toy_world(seed)
    world = widgets.ToggleButtons(options=["toy"] + (["tiny world"] if task is not None else []), value="toy",
                                  description="world")
    arch = widgets.Dropdown(options=list(ARCHITECTURES), value="matryoshka", description="architecture")
    size = widgets.Dropdown(options=WORLDS["toy"]["sizes"], value=64, description="latents")
    sparsity = widgets.SelectionSlider(options=WORLDS["toy"]["k"], value=2, description="k",
                                       continuous_update=False)
    button = widgets.Button(description="Train", button_style="primary")
    card = widgets.HTML()
    out = widgets.Output()

    def on_choice(change=None) -> None:
        spec = WORLDS[world.value]
        if list(size.options) != spec["sizes"]:
            size.options, size.value = spec["sizes"], spec["size"]
        is_k = arch.value in NEEDS_K
        sparsity.options = spec["k" if is_k else "coef"]
        sparsity.value = next(iter(spec["settings"][arch.value].values()))
        sparsity.description = "k" if is_k else ("L0 coef" if arch.value == "jumprelu" else "L1 coef")

    def train(_=None) -> None:
        if world.value == "toy":
            sae = saebench.train_toy_sae(arch.value, data, seed=seed, n_latents=size.value,
                                         sparsity=sparsity.value, n_steps=n_steps)
            panel.last_card = saebench.toy_card(sae, data)
        else:
            sae = worldbench.train_world_sae(arch.value, task, seed=seed, n_latents=size.value,
                                             sparsity=sparsity.value)
            panel.last_card = worldbench.world_card(sae, task, seed=seed)
        spec = WORLDS[world.value]
        card.value = metric_card(panel.last_card, f"{world.value}: {saebench.LABELS[arch.value]}, {size.value} "
                                                  f"latents, {sparsity.description} = {sparsity.value}")
        out.clear_output(wait=True)
        with out:
            fig, ax = plt.subplots(figsize=(4, 2.5))
            ax.bar(spec["bars"], [panel.last_card[n] for n in spec["bars"]])
            ax.set_ylim(0, 1)
            ax.set_ylabel("score")
            ax.set_title(spec["title"])
            plt.show()

    world.observe(on_choice, names="value")
    arch.observe(on_choice, names="value")
    button.on_click(train)
    on_choice()
    panel = widgets.VBox([world, widgets.HBox([arch, size]), widgets.HBox([sparsity, button]),
                          widgets.HBox([card, out])])
    panel.train = train  # the notebook presses it once so the card is there without a click
    panel.card = card
    panel.world = world
    panel.last_card = {}
    return panel
