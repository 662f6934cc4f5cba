"""A slider panel for the superposition toy: change the data or the SAE, it retrains and redraws.

Controls only: the experiment is `saelab.toy.train_toy_sae`, the picture `saelab.plots.plot_toy_result`.
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt

from saelab.plots import plot_toy_result
from saelab.toy import train_toy_sae


def _slider(kind, description: str, **kwargs):
    """A slider that only fires when released (each change retrains, ~1-2 s)."""
    return kind(description=description, continuous_update=False, style={"description_width": "130px"},
                layout=widgets.Layout(width="380px"), **kwargs)


def toy_sae_panel(n_steps: int = 400, seed: int = 0) -> widgets.Widget:
    """Sliders for sparsity, features vs dimensions, alpha (L1) or k, expansion; retrains on each change.

    Each setting is one run with `seed` (pass `saelab.seeds.seed(0)` so `SAELAB_SEED` shifts it too).
    """
    controls = {
        "sparsity": _slider(widgets.FloatLogSlider, "P(feature active)", value=0.05, base=10, min=-2, max=-0.3,
                            step=0.1, readout_format=".3f"),
        "n_features": _slider(widgets.IntSlider, "true features", value=32, min=4, max=64),
        "d": _slider(widgets.IntSlider, "dimensions d", value=16, min=2, max=32),
        "activation": widgets.ToggleButtons(options=["relu", "topk"], value="relu", description="activation"),
        "l1_coef": _slider(widgets.FloatLogSlider, "alpha (ReLU: L1)", value=0.3, base=10, min=-2, max=0.5,
                           step=0.1, readout_format=".3f"),
        "k": _slider(widgets.IntSlider, "k (TopK)", value=2, min=1, max=8),
        "expansion": _slider(widgets.IntSlider, "expansion n/d", value=4, min=1, max=8),
    }

    def run(**settings) -> None:
        result = train_toy_sae(n_steps=n_steps, seed=seed, **settings)
        plot_toy_result(result, title=f"{settings['n_features']} features in {settings['d']} dims, "
                                      f"{result.sae.n_latents} latents ({settings['activation']})")
        plt.show()

    out = widgets.interactive_output(run, controls)
    left = widgets.VBox([controls[k] for k in ("sparsity", "n_features", "d", "expansion")])
    right = widgets.VBox([controls[k] for k in ("activation", "l1_coef", "k")])
    return widgets.VBox([widgets.HBox([left, right]), out])
