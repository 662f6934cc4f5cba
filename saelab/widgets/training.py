"""A widget to train an SAE live: pick expansion, ReLU + L1 or TopK, steps; Train and Stop.

Training runs in a background thread so that the kernel stays free to receive the Stop click
(widget callbacks run on the kernel's main thread: a loop there would block the click until it ended).
The trainer's `callback` redraws the plot after every log step; Stop sets the trainer's `stop` event.
"""
from __future__ import annotations

import io
import threading
import time
from typing import Any

import torch

from saelab.plots import plot_history
from saelab.sae import SAE
from saelab.training import History, train_sae

REDRAW_SECONDS = 1.0  # the live plot is redrawn at most this often


def history_png(history: History, title: str = "") -> bytes:
    """`plot_history` rendered to PNG bytes without pyplot (safe from a background thread)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(14, 3.2), dpi=80)
    FigureCanvasAgg(fig)
    plot_history(history, title, fig=fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def make_sae(d_model: int, expansion: int, activation: str, k: int, hook_name: str | None) -> SAE:
    """A fresh ReLU or TopK SAE with `expansion * d_model` latents."""
    n_latents = expansion * d_model
    if activation == "topk":
        return SAE(d_model, n_latents, "topk", k=min(k, n_latents), normalize=False, hook_name=hook_name)
    return SAE(d_model, n_latents, "relu", hook_name=hook_name)


class TrainingWidget:
    """Controls + live plot for `train_sae` on `data` ([n_tokens, d_model] or an ActivationSource).

    After a run, `.sae` and `.history` hold the result; `.thread` is the running background thread.
    """

    def __init__(self, data: torch.Tensor | Any, d_model: int | None = None, hook_name: str | None = None,
                 l1_coef: float = 1e-3, steps: int = 300, batch_size: int = 1024, lr: float = 1e-3,
                 seed: int = 0) -> None:
        import ipywidgets as w

        self.data, self.hook_name, self.batch_size, self.lr = data, hook_name, batch_size, lr
        self.d_model = d_model or int(data.shape[-1])
        self.sae: SAE | None = None
        self.history: History | None = None
        self.thread: threading.Thread | None = None
        self.stop_event = threading.Event()
        style = {"description_width": "110px"}
        self.expansion = w.Dropdown(options=[2, 4, 8, 16], value=8, description="expansion", style=style)
        self.activation = w.ToggleButtons(options=[("ReLU + L1", "relu"), ("TopK", "topk")], value="relu",
                                          description="activation", style=style)
        self.l1 = w.FloatLogSlider(value=l1_coef, base=10, min=-5, max=1, step=0.25, description="L1 coefficient",
                                   style=style, readout_format=".1e")
        self.k = w.IntSlider(value=8, min=1, max=64, description="k (TopK)", style=style, disabled=True)
        self.steps = w.IntSlider(value=steps, min=50, max=5000, step=50, description="steps", style=style)
        self.seed = w.IntText(value=seed, description="seed", style=style,
                              layout=w.Layout(width="220px"))  # one run is one seed: try another before concluding
        self.train_button = w.Button(description="Train", button_style="success", icon="play")
        self.stop_button = w.Button(description="Stop", button_style="danger", icon="stop", disabled=True)
        self.status = w.HTML("Pick the settings and press Train.")
        self.image = w.Image(format="png", layout=w.Layout(display="none"))  # shown from the first drawing on
        self.activation.observe(self._on_activation, names="value")
        self.train_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        self.box = w.VBox([w.HBox([self.expansion, self.steps, self.seed]), self.activation, w.HBox([self.l1, self.k]),
                           w.HBox([self.train_button, self.stop_button]), self.status, self.image])

    def _draw(self, png: bytes) -> None:
        self.image.value = png
        self.image.layout.display = ""

    def _on_activation(self, change: dict) -> None:
        self.l1.disabled, self.k.disabled = change["new"] == "topk", change["new"] == "relu"

    def _ipython_display_(self) -> None:
        from IPython.display import display
        display(self.box)

    def start(self) -> threading.Thread:
        """Train a fresh SAE with the current settings in a background thread (returns the thread)."""
        if self.thread is not None and self.thread.is_alive():
            self.status.value = "Already training: press Stop first."
            return self.thread
        self.stop_event.clear()
        self.sae = make_sae(self.d_model, self.expansion.value, self.activation.value, self.k.value, self.hook_name)
        self.train_button.disabled, self.stop_button.disabled = True, False
        self.status.value = f"Training {self.sae} ..."
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self.thread

    def stop(self) -> None:
        """Ask the running training to stop after its current step."""
        self.stop_event.set()
        self.status.value = "Stopping ..."

    def _run(self) -> None:
        title = f"{self.sae.n_latents} latents, {self.activation.label}"
        log_every = max(1, self.steps.value // 30)

        last_draw = [0.0]

        def callback(history: History, sae: SAE) -> bool:
            if time.perf_counter() - last_draw[0] > REDRAW_SECONDS:  # drawing costs more than a toy step
                self._draw(history_png(history, title))
                last_draw[0] = time.perf_counter()
            last = history.last()
            self.status.value = (f"step {last['step']}/{self.steps.value} in {history.precision}: "
                                 f"loss {last['loss']:.4g}, L0 {last['l0']:.1f}, FVU {last['fvu']:.3f}")
            return self.stop_event.is_set()

        try:
            self.history = train_sae(self.sae, self.data, n_steps=self.steps.value, batch_size=self.batch_size,
                                     lr=self.lr, l1_coef=self.l1.value, seed=int(self.seed.value), log_every=log_every,
                                     ortho_every=None, resample_every=max(100, self.steps.value // 4),
                                     dead_after=max(50, self.steps.value // 8), callback=callback,
                                     stop=self.stop_event)
            last = self.history.last()
            if last:
                self._draw(history_png(self.history, title))
            if not last:
                self.status.value = "Stopped before the first log step: nothing to show."
                return
            self.status.value = (f"{'Stopped' if self.history.stopped else 'Done'} at step {last['step']} "
                                 f"(seed {int(self.seed.value)}): "
                                 f"L0 {last['l0']:.1f}, FVU {last['fvu']:.3f}, dead {last['dead_fraction']:.1%} "
                                 f"({self.history.tokens_per_s:,.0f} tokens/s in {self.history.precision}). "
                                 f"The SAE is in `.sae`.")
        except Exception as err:  # show it: an exception in a thread would otherwise vanish
            self.status.value = f"Training failed: {type(err).__name__}: {err}"
        finally:
            self.train_button.disabled, self.stop_button.disabled = False, True


def training_widget(data: torch.Tensor | Any, **kwargs: Any) -> TrainingWidget:
    """Build a `TrainingWidget` for `data` [n_tokens, d_model]; display it as the cell's last line."""
    return TrainingWidget(data, **kwargs)
