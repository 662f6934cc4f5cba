"""A widget panel for steering: pick latents, a magnitude mode and a scale, then compare before/after.

The callbacks only read the controls and call `saelab.steering`; bad input becomes a message in the panel.
"""
from __future__ import annotations

import html
from typing import Any, Sequence

import ipywidgets as w
import torch
from IPython.display import display

from saelab import steering
from saelab.prompts import STEERING_PROMPT
from saelab.sae import SAE
from saelab.sentiment import method_for


def parse_latents(text: str, n_latents: int) -> list[int]:
    """'12, 40 7' -> [12, 40, 7]; ValueError naming the bad entry and the valid range."""
    parts = [p for p in str(text).replace(",", " ").split() if p]
    if not parts:
        raise ValueError("type at least one latent index, e.g. 12 or 12, 40 (or pick from the ranked list)")
    latents = []
    for p in parts:
        if not p.lstrip("-").isdigit() or not 0 <= int(p) < n_latents:
            raise ValueError(f"unknown latent {p!r}: latents are whole numbers from 0 to {n_latents - 1}")
        latents.append(int(p))
    return latents


class SteeringPanel:
    """Controls + outputs; `generate()` and `sweep()` are what the buttons call (handy in tests too)."""

    def __init__(self, model: Any, sae: SAE, prompt: str = STEERING_PROMPT, latents: Sequence[int] = (),
                 ranked: Sequence[tuple[int, float]] = (), scale: float = 20.0, max_scale: float = 100.0,
                 measure_on: str = "i hate him. he is such a rude man.", method: str = "vader",
                 max_new_tokens: int = 10, n: int = 4, seed: int = 0, n_seeds: int = 3) -> None:
        self.model, self.sae, self.method, self.max_new_tokens = model, sae, method, max_new_tokens
        self.n_seeds = n_seeds
        style = {"description_width": "110px"}
        lay = w.Layout(width="460px")
        self.prompt = w.Text(value=prompt, description="prompt", style=style, layout=lay)
        self.latents = w.Text(value=", ".join(map(str, latents)), description="latents", style=style, layout=lay,
                              placeholder="e.g. 12, 40")
        self.ranked = w.SelectMultiple(options=[(f"latent {i} (AUROC {a:.2f})", i) for i, a in ranked],
                                       description="ranked", rows=min(6, max(1, len(ranked))), style=style, layout=lay)
        self.mode = w.Dropdown(options=steering.MAGNITUDE_MODES, value="ones", description="magnitudes", style=style)
        self.measure_on = w.Text(value=measure_on, description="measure on", style=style, layout=lay)
        self.scale = w.FloatSlider(value=scale, min=-max_scale, max=max_scale, step=0.5, description="scale",
                                   continuous_update=False, style=style, layout=lay)
        self.temperature = w.FloatSlider(value=0.7, min=0.1, max=2.0, step=0.1, description="temperature",
                                         style=style, layout=lay)
        self.seed = w.IntText(value=seed, description="seed", style=style)
        self.n = w.IntSlider(value=n, min=1, max=32, description="samples", style=style, layout=lay)
        self.go = w.Button(description="Generate", button_style="primary")
        self.sweep_button = w.Button(description="Sweep 0 → scale")
        self.message = w.HTML()
        self.columns: dict[str, list[str]] = {}
        self.shares: dict[str, list[float]] = {}  # share negative per seed, unsteered and steered
        self.table = w.HTML()
        self.plot = w.Output()
        self.ranked.observe(self._use_ranked, names="value")
        self.go.on_click(lambda _: self.generate())
        self.sweep_button.on_click(lambda _: self.sweep())
        controls = w.VBox([self.prompt, self.latents, self.ranked, w.HBox([self.mode, self.measure_on]),
                           self.scale, self.temperature, w.HBox([self.seed, self.n]),
                           w.HBox([self.go, self.sweep_button]), self.message])
        self.widget = w.VBox([controls, self.table, self.plot])

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:  # a notebook cell ending in the panel shows it
        return self.widget._repr_mimebundle_(**kwargs)

    def _use_ranked(self, change: dict) -> None:
        if change["new"]:
            self.latents.value = ", ".join(str(i) for i in change["new"])

    def _say(self, text: str, error: bool = False) -> None:
        color = "#b00020" if error else "#555"
        self.message.value = f"<span style='color:{color}'>{html.escape(text)}</span>"

    def vector(self) -> tuple[list[int], torch.Tensor]:
        """The chosen latents and their steering vector in the chosen magnitude mode."""
        latents = parse_latents(self.latents.value, self.sae.n_latents)
        if self.mode.value == "measured":
            if not self.measure_on.value.strip():
                raise ValueError("'measured' needs a prompt to measure the latents on (the 'measure on' box)")
            mags = steering.latent_magnitudes(self.model, self.sae, latents, self.measure_on.value)
            return latents, steering.steering_vector(self.sae, latents, mags)
        return latents, steering.steering_vector(self.sae, latents, self.mode.value)

    def _inputs(self, **overrides: Any) -> dict:
        values = {"prompt": self.prompt.value, "scale": self.scale.value, "temperature": self.temperature.value,
                  "seed": self.seed.value, "n": self.n.value, **overrides}
        if not values["prompt"].strip():
            raise ValueError("the prompt is empty: type the start of a sentence, e.g. 'he is such a'")
        values["scale"] = steering.check_scale(values["scale"])
        return values

    def generate(self, **overrides: Any) -> None:
        """Before/after samples side by side for the seed, and the share of negative samples unsteered and
        steered over `n_seeds` seeds from it (overrides: prompt, scale, temperature, seed, n)."""
        try:
            v = self._inputs(**overrides)
            latents, vector = self.vector()
            self._say(f"generating with latents {latents} ...")
            cols = steering.before_after(self.model, self.sae.hook_name, vector, v["scale"], v["prompt"], n=v["n"],
                                         max_new_tokens=self.max_new_tokens, temperature=v["temperature"],
                                         seed=v["seed"])
            seeds = list(range(v["seed"], v["seed"] + self.n_seeds))
            runs = steering.unsteered_and_steered(self.model, self.sae.hook_name, vector, v["scale"], v["prompt"],
                                                  seeds, n=v["n"], max_new_tokens=self.max_new_tokens,
                                                  temperature=v["temperature"], method=self.method)
        except ValueError as err:
            self._say(str(err), error=True)
            return
        self.columns = cols  # the last run's samples, by column (what the table shows)
        self.shares = {k: [r.negative for r in rs] for k, rs in runs.items()}
        self.table.value = steering.side_by_side_html(v["prompt"], cols)
        self._say(f"latents {latents}, magnitudes '{self.mode.value}', |vector| = {vector.norm():.2f}, "
                  f"scale {v['scale']:g}, seed {v['seed']} (table). Share negative over seeds "
                  f"{seeds[0]}-{seeds[-1]}, mean (min-max): unsteered {steering.fmt_spread(self.shares['unsteered'])}, "
                  f"steered {steering.fmt_spread(self.shares['steered'])}")
        self.seed.value = v["seed"] + self.n_seeds  # the next press draws new samples

    def sweep(self, n_scales: int = 6, **overrides: Any) -> None:
        """A small sweep from 0 to the chosen scale over `n_seeds` seeds: share of negative samples and quality."""
        import matplotlib.pyplot as plt

        try:
            v = self._inputs(**overrides)
            latents, vector = self.vector()
            scales = [v["scale"] * i / (n_scales - 1) for i in range(n_scales)]
            seeds = list(range(v["seed"], v["seed"] + self.n_seeds))
            points = steering.scale_sweep(self.model, self.sae.hook_name, vector, v["prompt"], scales, seeds,
                                          n=v["n"], max_new_tokens=self.max_new_tokens,
                                          temperature=v["temperature"], method=self.method)
        except ValueError as err:
            self._say(str(err), error=True)
            return
        self.plot.clear_output(wait=True)
        with self.plot:
            fig = steering.plot_sweep(points, title=f"Steering with latents {latents}")
            display(fig)
            plt.close(fig)
        self._say(f"swept scales {', '.join(f'{s:g}' for s in scales)} with {v['n']} samples for each of "
                  f"{self.n_seeds} seeds")


def steering_panel(world: Any, ranked: Sequence[tuple[int, float]] = (), **kwargs: Any) -> SteeringPanel:
    """The steering panel for a `load_world()` world (GPT-2 + VADER or the tiny world + its true labels)."""
    kwargs.setdefault("method", method_for(world.name))
    return SteeringPanel(world.model, world.sae, ranked=ranked, **kwargs)
