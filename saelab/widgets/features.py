"""An ipywidgets panel for notebook 02: type a prompt, see its top latents; pick a latent, see what it does.

Controls only: every number comes from `saelab.features`. Bad input shows a message in the panel.
"""
from __future__ import annotations

import html
import warnings
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
from IPython.display import display

from saelab import features
from saelab.dashboard import feature_dashboard, plot_token_heatmap, plot_top_features
from saelab.sae import SAE


class FeatureExplorer(widgets.VBox):
    """Prompt -> top latents (bar chart) and the strongest one's per-token heatmap;
    latent -> its card on `corpus` (`feature_dashboard`: density, histogram, top contexts, logit effects and,
    online for OpenAI's GPT-2 SAEs, its Neuronpedia page)."""

    def __init__(self, model: Any, sae: SAE, corpus: features.TokenLatents | None = None,
                 prompt: str = "", k: int = 10) -> None:
        self.model, self.sae, self.corpus = model, sae, corpus
        self.k_slider = widgets.IntSlider(value=min(k, sae.k or k), min=1, max=max(k, sae.k or k),
                                          description="top k:", continuous_update=False)
        self.prompt_box = widgets.Text(value=prompt, description="Prompt:", layout={"width": "60%"},
                                       continuous_update=False)
        self.prompt_button = widgets.Button(description="Top latents")
        self.latent_box = widgets.IntText(value=0, description="Latent:")
        self.latent_button = widgets.Button(description="Explain latent")
        self.message = widgets.HTML()
        self.prompt_out, self.latent_out = widgets.Output(), widgets.Output()
        self.prompt_button.on_click(lambda _: self.show_prompt())
        self.latent_button.on_click(lambda _: self.show_latent())
        self.prompt_box.observe(lambda _: self.show_prompt(), names="value")
        self.k_slider.observe(lambda _: self.show_prompt(), names="value")
        super().__init__([widgets.HBox([self.prompt_box, self.k_slider, self.prompt_button]), self.prompt_out,
                          widgets.HBox([self.latent_box, self.latent_button]), self.message, self.latent_out])

    def _say(self, text: str, error: bool = False) -> None:
        color = "#b00020" if error else "#555"
        self.message.value = f"<span style='color:{color}'>{html.escape(text)}</span>" if text else ""

    def show_prompt(self) -> bool:
        """Draw the prompt's top latents and the heatmap of the strongest; False (and a message) on bad input."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                top = features.top_features(self.model, self.sae, self.prompt_box.value, k=self.k_slider.value)
                if not top.latents:
                    raise ValueError("no latent fires at the last token of this prompt")
                tokens, acts = features.latent_activations(self.model, self.sae, self.prompt_box.value,
                                                           top.latents[0])
            except ValueError as err:
                self._say(str(err), error=True)
                return False
        self._say(" ".join(str(w.message) for w in caught))
        with self.prompt_out:
            self.prompt_out.clear_output(wait=True)
            fig, (ax_bar, ax_heat) = plt.subplots(2, 1, figsize=(8, 5.5), height_ratios=(3, 1.3))
            plot_top_features(top, ax=ax_bar)
            plot_token_heatmap(tokens, acts, top.latents[0], ax=ax_heat)
            fig.tight_layout()
            display(fig)
            plt.close(fig)
        self.latent_box.value = top.latents[0]
        return self.show_latent()

    def show_latent(self) -> bool:
        """Show the latent's card (`feature_dashboard`) when there is a corpus, else its logit effects and link;
        False (and a message) on bad input."""
        latent = self.latent_box.value
        try:
            if self.corpus is not None:
                card = feature_dashboard(self.model, self.sae, latent, self.corpus, n_contexts=8)
            promoted, suppressed = features.logit_effects(self.model, self.sae, latent, n=8)
            url = features.neuronpedia_url_for(self.sae, latent)
        except ValueError as err:
            self._say(str(err), error=True)
            return False
        with self.latent_out:
            self.latent_out.clear_output(wait=True)
            if self.corpus is not None:
                display(card)
                return True
            print(f"Latent {latent}")
            print("promotes:  " + ", ".join(f"{t!r} {v:+.2f}" for t, v in promoted))
            print("suppresses:" + ", ".join(f" {t!r} {v:+.2f}" for t, v in suppressed))
            print(f"Neuronpedia: {url}" if url else "Neuronpedia: none (only OpenAI's GPT-2 SAEs have pages)")
        return True


def feature_explorer(model: Any, sae: SAE, corpus: features.TokenLatents | None = None,
                     prompt: str = "", k: int = 10) -> FeatureExplorer:
    """The panel, filled in for `prompt` when one is given."""
    panel = FeatureExplorer(model, sae, corpus, prompt, k)
    if prompt:
        panel.show_prompt()
    return panel
