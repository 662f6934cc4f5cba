"""Notebook 06's panel: pick an architecture, a size and a sparsity; it trains on the toy in seconds and shows
the metric card (every ground-truth metric, absorption included) next to the SAE's L0 and FVU.

Controls only: the experiment is `saelab.saebench.train_toy_sae` + `toy_card`.
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt

from saelab import saebench
from saelab.architectures import ARCHITECTURES, NEEDS_K

# What the sparsity slider means for each architecture (k for the TopK family, a coefficient otherwise).
SPARSITY_OPTIONS = {"k": [1, 2, 3, 4, 6, 8], "coef": [0.01, 0.03, 0.1, 0.3, 1.0, 3.0]}


def metric_card(card: dict[str, float], title: str) -> str:
    """The card as one small HTML table."""
    rows = "".join(f"<tr><td>{k}</td><td style='text-align:right'>{v:.3f}</td></tr>" for k, v in card.items())
    return f"<b>{title}</b><table>{rows}</table>"


def evaluation_panel(seed: int = 0, n_steps: int = 300) -> widgets.Widget:
    """Architecture, dictionary size and sparsity controls; "Train" trains one toy SAE and shows its card.

    Pass `saelab.seeds.seed(0)` as `seed` so `SAELAB_SEED` shifts it too.
    """
    data = saebench.toy_world(seed)
    arch = widgets.Dropdown(options=list(ARCHITECTURES), value="matryoshka", description="architecture")
    size = widgets.Dropdown(options=[32, 64, 128], value=64, description="latents")
    sparsity = widgets.SelectionSlider(options=SPARSITY_OPTIONS["k"], value=2, description="k",
                                       continuous_update=False)
    button = widgets.Button(description="Train", button_style="primary")
    card = widgets.HTML()
    out = widgets.Output()

    def on_arch(change=None) -> None:
        is_k = arch.value in NEEDS_K
        sparsity.options = SPARSITY_OPTIONS["k" if is_k else "coef"]
        sparsity.value = 2 if is_k else (0.03 if arch.value == "jumprelu" else 0.3)
        sparsity.description = "k" if is_k else ("L0 coef" if arch.value == "jumprelu" else "L1 coef")

    def train(_=None) -> None:
        sae = saebench.train_toy_sae(arch.value, data, seed=seed, n_latents=size.value, sparsity=sparsity.value,
                                     n_steps=n_steps)
        panel.last_card = saebench.toy_card(sae, data)
        card.value = metric_card(panel.last_card, f"{saebench.LABELS[arch.value]}, {size.value} latents, "
                                                  f"{sparsity.description} = {sparsity.value}")
        out.clear_output(wait=True)
        with out:
            fig, ax = plt.subplots(figsize=(4, 2.5))
            names = ["mcc", "f1", "uniqueness", "absorption"]
            ax.bar(names, [panel.last_card[n] for n in names])
            ax.set_ylim(0, 1)
            ax.set_ylabel("score")
            ax.set_title("ground-truth metrics of this SAE")
            plt.show()

    arch.observe(on_arch, names="value")
    button.on_click(train)
    on_arch()
    panel = widgets.VBox([widgets.HBox([arch, size]), widgets.HBox([sparsity, button]), widgets.HBox([card, out])])
    panel.train = train  # the notebook presses it once so the card is there without a click
    panel.card = card
    panel.last_card = {}
    return panel
