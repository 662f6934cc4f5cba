"""Notebook 06's panel: pick the toy or the tiny world, an architecture, a size and a sparsity; it trains one SAE in
seconds and shows its metric card: every ground-truth metric on the toy, the label metrics on the tiny world.

Controls only: the experiments are `saelab.saebench.train_toy_sae` + `toy_card` and
`saelab.worldbench.train_world_sae` + `world_card`.
"""
from __future__ import annotations

import time
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt

from saelab import saebench, worldbench
from saelab.architectures import ARCHITECTURES, NEEDS_K

# Per world: dictionary sizes, what the sparsity slider offers (k for the TopK family, a coefficient otherwise),
# each architecture's default setting, and the metrics the bar chart shows.
WORLDS: dict[str, dict[str, Any]] = {
    "toy": {"sizes": [32, 64, 128], "size": 64, "k": [1, 2, 3, 4, 6, 8],
            "coef": [0.01, 0.03, 0.1, 0.3, 0.5, 0.6, 1.0, 3.0], "settings": saebench.TOY_SETTINGS,
            "bars": ["mcc", "f1", "uniqueness"], "title": "ground truth", "seconds": 2},
    "tiny world": {"sizes": [160, 320, 640], "size": worldbench.WORLD_LATENTS, "k": [2, 4, 8, 16, 32],
                   "coef": [0.3, 0.5, 1.0, 1.5, 1.8, 2.0, 3.0, 5.0], "settings": worldbench.WORLD_SETTINGS,
                   "bars": ["probe k=2", "detection", "simulation"], "title": "labels", "seconds": 15},
}


def card_figure(card: dict[str, float], bars: list[str], title: str):
    """Higher-is-better metrics on one axis, absorption (lower is better) on its own beside them."""
    fig, (ax, ax_abs) = plt.subplots(1, 2, figsize=(4.8, 2.6), gridspec_kw={"width_ratios": [3, 1]})
    ax.bar(range(len(bars)), [card[n] for n in bars], color="tab:blue")
    ax.set_xticks(range(len(bars)), bars, rotation=25, ha="right", fontsize=8)
    ax.set(ylim=(0, 1), ylabel="score (higher is better)", title=title)
    ax_abs.bar([0], [card["absorption"]], color="tab:red")
    ax_abs.set_xticks([0], ["absorption"], rotation=25, ha="right", fontsize=8)
    ax_abs.set(ylim=(0, 1), title="lower is better")
    ax_abs.title.set_fontsize(8)
    fig.tight_layout()
    return fig


def metric_card(card: dict[str, float], title: str) -> str:
    """The card as one small HTML table."""
    rows = "".join(f"<tr><td>{k}</td><td style='text-align:right'>{v:.3f}</td></tr>" for k, v in card.items())
    return f"<b>{title}</b><table>{rows}</table>"


def evaluation_panel(seed: int = 0, n_steps: int | None = None, task: worldbench.WorldTask | None = None
                     ) -> widgets.Widget:
    """World, architecture, dictionary size and sparsity controls; "Train" trains one SAE and shows its card.

    Pass `saelab.seeds.seed(0)` as `seed` so `SAELAB_SEED` shifts it too, and a `worldbench.world_task` as `task`
    to offer the tiny world (it trains with `worldbench.WORLD_BUDGET`; `n_steps` is the toy's, default
    `saebench.TOY_BUDGET`'s). While it trains, the button is disabled and a status line says so.
    """
    data = saebench.toy_world(seed)
    world = widgets.ToggleButtons(options=["toy"] + (["tiny world"] if task is not None else []), value="toy",
                                  description="world")
    arch = widgets.Dropdown(options=list(ARCHITECTURES), value="matryoshka", description="architecture")
    size = widgets.Dropdown(options=WORLDS["toy"]["sizes"], value=64, description="latents")
    sparsity = widgets.SelectionSlider(options=WORLDS["toy"]["k"], value=2, description="k",
                                       continuous_update=False)
    button = widgets.Button(description="Train", button_style="primary")
    status = widgets.HTML()
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
        spec = WORLDS[world.value]
        title = (f"{world.value}: {saebench.LABELS[arch.value]}, {size.value} latents, "
                 f"{sparsity.description} = {sparsity.value}")
        button.disabled = True  # one run at a time; the status line says what is happening
        status.value = f"<i>training {title} (about {spec['seconds']} s on a quiet 2-core machine)…</i>"
        card.value = ""
        start = time.time()
        try:
            if world.value == "toy":
                sae = saebench.train_toy_sae(arch.value, data, seed=seed, n_latents=size.value,
                                             sparsity=sparsity.value,
                                             n_steps=n_steps or saebench.TOY_BUDGET["n_steps"])
                panel.last_card = saebench.toy_card(sae, data)
            else:
                sae = worldbench.train_world_sae(arch.value, task, seed=seed, n_latents=size.value,
                                                 sparsity=sparsity.value)
                panel.last_card = worldbench.world_card(sae, task, seed=seed)
        finally:
            button.disabled = False
        status.value = f"trained and scored in {time.time() - start:.0f} s"
        card.value = metric_card(panel.last_card, title)
        out.clear_output(wait=True)
        with out:
            card_figure(panel.last_card, spec["bars"], f"{spec['title']} of this SAE")
            plt.show()

    world.observe(on_choice, names="value")
    arch.observe(on_choice, names="value")
    button.on_click(train)
    on_choice()
    panel = widgets.VBox([world, widgets.HBox([arch, size]), widgets.HBox([sparsity, button]), status,
                          widgets.HBox([card, out])])
    panel.train = train  # the notebook presses it once so the card is there without a click
    panel.card = card
    panel.status = status
    panel.button = button
    panel.world = world
    panel.last_card = {}
    return panel
