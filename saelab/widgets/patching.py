"""An ipywidgets panel for notebook 03: type a clean and a corrupted prompt and the answer words, see the
residual-patching heatmap; pick a position to list the SAE latents there that move the answer most.

Controls only: every number comes from `saelab.patching` and `saelab.sae_patching`. Bad input shows a
message in the panel. The Patch button is greyed out while the heatmap shows what the boxes say.
"""
from __future__ import annotations

import html
import io
import warnings
from typing import Any, Sequence

import ipywidgets as w
import matplotlib.pyplot as plt
from IPython.display import Image

from saelab import patching, sae_patching
from saelab.activations import hook_layer
from saelab.features import logit_effects
from saelab.sae import SAE


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def sae_row(sae: SAE, n_layers: int) -> int | None:
    """The heatmap row (input to block L) holding the SAE's activation, or None when it has none."""
    layer, name = hook_layer(sae.hook_name), sae.hook_name.rsplit(".", 1)[-1]
    row = layer + 1 if name == "hook_resid_post" else layer if name == "hook_resid_pre" else None
    return row if row is not None and row < n_layers else None


class PatchingExplorer(w.VBox):
    """Prompts + answer words -> residual-patching heatmap; SAE + position -> that spot's most causal latents."""

    def __init__(self, model: Any, saes: SAE | Sequence[SAE], clean: str, corrupted: str,
                 positive: Sequence[str] = patching.POSITIVE_WORDS,
                 negative: Sequence[str] = patching.NEGATIVE_WORDS, n_latents: int = 8) -> None:
        self.model, self.n_latents = model, n_latents
        self.saes = [saes] if isinstance(saes, SAE) else list(saes)
        self.drawn: dict[str, Any] | None = None  # the prompts and metric behind the heatmap on show
        wide = {"width": "48%"}
        self.clean = w.Text(value=clean, description="Clean:", layout=wide)
        self.corrupted = w.Text(value=corrupted, description="Corrupted:", layout=wide)
        self.positive = w.Text(value=", ".join(positive), description="Positive:", layout=wide)
        self.negative = w.Text(value=", ".join(negative), description="Negative:", layout=wide)
        self.patch_button = w.Button(description="Patch", button_style="primary", disabled=True,
                                     tooltip="draw the heatmap for the prompts and words typed above")
        self.heatmap = w.Output()  # the map as a PNG output, so it is saved with the notebook like any figure
        self.sae_choice = w.Dropdown(options=[(s.hook_name, i) for i, s in enumerate(self.saes)],
                                     description="SAE at:")
        self.position = w.IntSlider(value=0, min=0, max=1, description="Position:", continuous_update=False)
        self.token = w.HTML()
        self.latents_button = w.Button(description="Causal latents",
                                       tooltip="patch each SAE latent at this position from clean into corrupted")
        self.message = w.HTML()
        self.table = w.HTML()
        for box in (self.clean, self.corrupted, self.positive, self.negative):
            box.observe(lambda _: self._inputs_changed(), names="value")
        self.position.observe(lambda _: self._show_token(), names="value")
        self.patch_button.on_click(lambda _: self.draw())
        self.latents_button.on_click(lambda _: self.list_latents())
        super().__init__([w.HBox([self.clean, self.corrupted]),
                          w.HBox([self.positive, self.negative, self.patch_button]), self.heatmap,
                          w.HBox([self.sae_choice, self.position, self.token, self.latents_button]),
                          self.message, self.table])

    def _say(self, text: str, error: bool = False) -> None:
        color = "#b00020" if error else "#555"
        self.message.value = f"<span style='color:{color}'>{html.escape(text)}</span>" if text else ""

    def _typed(self) -> dict[str, str]:
        return {"clean": self.clean.value, "corrupted": self.corrupted.value,
                "positive": self.positive.value, "negative": self.negative.value}

    def _inputs_changed(self) -> None:
        self.patch_button.disabled = self.drawn is not None and self.drawn["typed"] == self._typed()

    def _show_token(self) -> None:
        if self.drawn is not None:
            tok = self.drawn["tokens"][self.position.value]
            self.token.value = f"<code>{html.escape(repr(tok))}</code>"

    def draw(self) -> bool:
        """Patch every (layer, position) for the typed prompts and words and show the heatmap; False on bad input."""
        typed = self._typed()
        with warnings.catch_warnings(record=True) as caught:  # unknown words: shown as a message below
            warnings.simplefilter("always")
            try:
                metric = patching.logit_diff_metric(self.model, typed["positive"], typed["negative"])
                clean, _ = patching.pair_tokens(self.model, typed["clean"], typed["corrupted"])
                values = patching.patch_residual(self.model, typed["clean"], typed["corrupted"], metric)
            except ValueError as err:
                self._say(str(err), error=True)
                return False
        tokens = self.model.to_str_tokens(clean[0])
        self.drawn = {"typed": typed, "metric": metric, "tokens": tokens}
        row = sae_row(self.saes[self.sae_choice.value], self.model.cfg.n_layers)
        ax = patching.plot_patching(values, tokens, title="Patching the residual stream, clean -> corrupted",
                                    mark=None if row is None else (row, len(tokens) - 1))
        self.heatmap.outputs = ()
        self.heatmap.append_display_data(Image(data=_png(ax.figure), format="png"))
        self.position.max, self.position.value = len(tokens) - 1, len(tokens) - 1
        self._show_token()
        self.table.value = ""
        self.patch_button.disabled = True
        note = " ".join(str(c.message) for c in caught)
        self._say((note + " " if note else "") + "Outlined: the SAE's layer at the last position. Pick a position "
                  "and press 'Causal latents'.")
        return True

    def list_latents(self) -> bool:
        """Patch each SAE latent at the chosen position (real and attribution); show the strongest as a table."""
        if self.drawn is None:
            self._say("draw a heatmap first (press Patch)", error=True)
            return False
        sae, typed = self.saes[self.sae_choice.value], self.drawn["typed"]
        args = (self.model, sae, typed["clean"], typed["corrupted"], self.drawn["metric"], self.position.value)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                real = sae_patching.latent_patching(*args)
                estimate = sae_patching.latent_attribution(*args)
        except ValueError as err:
            self._say(str(err), error=True)
            return False
        if len(real) == 0:
            self._say(f"no latent of this SAE fires at position {self.position.value} in either prompt")
            self.table.value = ""
            return True
        rows = []
        for row in real.rows(self.n_latents):
            promoted = ", ".join(repr(t) for t, _ in logit_effects(self.model, sae, row["latent"], n=3)[0])
            rows.append({**row, "attribution": float(estimate.effect_of([row["latent"]])[0]), "promotes": promoted})
        self.table.value = _html_table(rows, f"Latents at position {real.position} ({real.token!r}), patched "
                                             f"one at a time from clean into corrupted (clean = 1)")
        self._say(f"{len(real)} latents fire there in either prompt; the table shows the {len(rows)} strongest.")
        return True


def _html_table(rows: list[dict[str, Any]], caption: str) -> str:
    cell = lambda v: f"{v:+.3f}" if isinstance(v, float) else html.escape(str(v))  # noqa: E731
    head = "".join(f"<th style='padding:2px 8px'>{html.escape(k)}</th>" for k in rows[0])
    body = "".join("<tr>" + "".join(f"<td style='padding:2px 8px;text-align:right'>{cell(v)}</td>" for v in r.values())
                   + "</tr>" for r in rows)
    return f"<table><caption>{html.escape(caption)}</caption><tr>{head}</tr>{body}</table>"


def patching_explorer(model: Any, saes: SAE | Sequence[SAE], clean: str, corrupted: str,
                      positive: Sequence[str] = patching.POSITIVE_WORDS,
                      negative: Sequence[str] = patching.NEGATIVE_WORDS) -> PatchingExplorer:
    """The panel with its heatmap drawn for the given prompts."""
    panel = PatchingExplorer(model, saes, clean, corrupted, positive, negative)
    panel.draw()
    return panel
