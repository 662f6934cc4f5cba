"""Looking at latents: a prompt's top latents as bars, one latent per token as a heatmap, and a latent's card,
everything about one SAE latent in one view, as SAELens's and ARENA's dashboards show it.

    card = feature_dashboard(model, sae, latent, corpus)     # a notebook cell ending in `card` shows it

    density      the fraction of the corpus's tokens on which it fires
    histogram    its activation where it fires
    contexts     the corpus tokens where it fires most, the token highlighted
    logits       the tokens its decoder direction promotes and suppresses (W_dec[:, i] @ W_U, direct effect)
    Neuronpedia  online, for OpenAI's GPT-2 SAEs: the latent's page embedded (an IFrame); offline the card is local
"""
from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch

from saelab.features import (TokenLatents, TopFeatures, check_latent, collect_latents, logit_effects,
                             neuronpedia_url_for)
from saelab.models import is_offline
from saelab.sae import SAE

# Neuronpedia's embeddable page: explanation, plots and top activations on; its test box and steering off.
NEURONPEDIA_EMBED = "?embed=true&embedexplanation=true&embedplots=true&embedtest=false&embedsteer=false"


# --- plots ---------------------------------------------------------------------------------------------
def plot_top_features(top: TopFeatures, ax: Any = None) -> Any:
    """Bar chart of a TopFeatures result; returns the matplotlib Axes."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(7, 3))[1]
    ax.bar([str(i) for i in top.latents], top.values, color="tab:blue")
    ax.set(title=f"Top latents at {top.token!r} in {top.prompt!r}"[:90], xlabel="latent index",
           ylabel="activation")
    ax.tick_params(axis="x", rotation=45)
    return ax


def plot_token_heatmap(str_tokens: list[str], acts: torch.Tensor, latent: int, ax: Any = None) -> Any:
    """One latent's activation at each token of a prompt, as a one-row heatmap; returns the Axes."""
    import matplotlib.pyplot as plt

    ax = ax or plt.subplots(figsize=(max(4, 0.8 * len(str_tokens)), 1.8))[1]
    acts = acts.detach().float().reshape(-1).cpu()
    vmax = max(float(acts.max()), 1e-3)
    image = ax.imshow(acts.reshape(1, -1), cmap="Reds", aspect="auto", vmin=0, vmax=vmax)
    for x, v in enumerate(acts.tolist()):  # the value in each cell, white on dark red
        ax.text(x, 0, f"{v:.2g}" if v else "", ha="center", va="center", fontsize=8,
                color="white" if v > 0.6 * vmax else "black")
    ax.set_xticks(range(len(str_tokens)), [repr(t)[1:-1] for t in str_tokens], rotation=45, ha="right")
    ax.set_yticks([])
    ax.set(title=f"Latent {latent}: activation per token", xlabel="token")
    ax.figure.colorbar(image, ax=ax, label="activation", pad=0.01)
    return ax


# --- the card ------------------------------------------------------------------------------------------
@dataclass(repr=False)
class FeatureCard:
    """One latent's card. `activations` [n_fired]: its value on every corpus token where it fires."""
    latent: int
    n_tokens: int
    activations: torch.Tensor
    contexts: list[tuple[float, str, str, str]]   # (value, text before, the token, text after)
    promoted: list[tuple[str, float]]
    suppressed: list[tuple[str, float]]
    neuronpedia: str | None = None                 # the page's address (OpenAI's GPT-2 SAEs only)
    embed: bool = False                            # embed that page (online only)
    notes: list[str] = field(default_factory=list)

    @property
    def density(self) -> float:
        """Fraction of the corpus's tokens on which the latent fires."""
        return len(self.activations) / max(self.n_tokens, 1)

    def __str__(self) -> str:
        lines = [f"Latent {self.latent}: fires on {len(self.activations)} of {self.n_tokens} tokens "
                 f"(density {self.density:.2%})"]
        lines += [f"  {v:7.3f}  {before}[[{tok}]]{after}" for v, before, tok, after in self.contexts]
        lines.append("promotes:   " + ", ".join(f"{t!r} {v:+.2f}" for t, v in self.promoted))
        lines.append("suppresses: " + ", ".join(f"{t!r} {v:+.2f}" for t, v in self.suppressed))
        lines.append(f"Neuronpedia: {self.neuronpedia}" if self.neuronpedia else
                     "Neuronpedia: none (only OpenAI's GPT-2 SAEs have pages)")
        return "\n".join(lines + self.notes)

    __repr__ = __str__  # a plain-text front end shows the card as text

    def histogram_png(self) -> str:
        """The activation histogram as a base64 PNG (empty string when the latent never fires)."""
        if len(self.activations) == 0:
            return ""
        from matplotlib.figure import Figure  # no pyplot: the figure is drawn, saved and dropped here

        fig = Figure(figsize=(4.2, 2.4))
        ax = fig.add_subplot()
        ax.hist(self.activations.float().numpy(), bins=30, color="tab:red")
        ax.set(title=f"Latent {self.latent} where it fires", xlabel="activation", ylabel="tokens")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80)
        return base64.b64encode(buffer.getvalue()).decode()

    def _repr_html_(self) -> str:
        e = html.escape
        png = self.histogram_png()
        hist = f"<img src='data:image/png;base64,{png}'/>" if png else "<p>It never fires on this corpus.</p>"
        rows = "".join(f"<tr><td>{v:.3f}</td><td style='text-align:left'>{e(b)}<mark style='background:#f4a'>"
                       f"{e(t)}</mark>{e(a)}</td></tr>" for v, b, t, a in self.contexts)
        logits = "".join(f"<tr><td>{e(repr(pt))} {pv:+.2f}</td><td>{e(repr(st))} {sv:+.2f}</td></tr>"
                         for (pt, pv), (st, sv) in zip(self.promoted, self.suppressed))
        link = (f"<a href='{e(self.neuronpedia)}' target='_blank'>Neuronpedia page</a>" if self.neuronpedia
                else "No Neuronpedia page: only OpenAI's GPT-2 SAEs have one.")
        frame = (f"<iframe src='{e(self.neuronpedia + NEURONPEDIA_EMBED)}' width='100%' height='600' "
                 f"title='Neuronpedia: latent {self.latent}'></iframe>" if self.embed and self.neuronpedia else "")
        notes = "".join(f"<p>{e(n)}</p>" for n in self.notes)
        return (f"<div><h4>Latent {self.latent}</h4><p>density: fires on {len(self.activations)} of {self.n_tokens} "
                f"tokens ({self.density:.2%})</p><div style='display:flex;gap:2em;align-items:flex-start'>{hist}"
                f"<table><tr><th>activation</th><th style='text-align:left'>top contexts</th></tr>{rows}</table>"
                f"<table><tr><th>promotes</th><th>suppresses</th></tr>{logits}</table></div>"
                f"<p>{link}</p>{notes}{frame}</div>")


def _context(corpus: TokenLatents, row: int, before: int = 8, after: int = 3) -> tuple[str, str, str]:
    toks, p = corpus.str_tokens[int(corpus.text_ids[row])], int(corpus.positions[row])
    return "".join(toks[max(1, p - before):p]), toks[p], "".join(toks[p + 1:p + 1 + after])


def feature_dashboard(model: Any, sae: SAE, latent: int, corpus: TokenLatents | Sequence[str], n_contexts: int = 8,
                      n_logits: int = 8, embed: bool | None = None) -> FeatureCard:
    """The card of one latent on `corpus` (texts, or `collect_latents` of them). `embed`: embed its Neuronpedia
    page (default: when online and the SAE is one of OpenAI's GPT-2 SAEs)."""
    latent = check_latent(sae, latent)
    if not isinstance(corpus, TokenLatents):
        corpus = collect_latents(model, sae, corpus)  # a bad corpus gets collect_latents's message
    if corpus.n_latents != sae.n_latents:
        raise ValueError(f"the corpus was encoded with an SAE of {corpus.n_latents} latents, this one has "
                         f"{sae.n_latents}: run collect_latents(model, sae, texts) with this SAE")
    acts = corpus.dense([latent])[:, 0]
    values, rows = acts.topk(min(n_contexts, len(acts)))
    contexts = [(float(v), *_context(corpus, int(r))) for v, r in zip(values, rows) if v > 0]
    promoted, suppressed = logit_effects(model, sae, latent, n=n_logits)
    url = neuronpedia_url_for(sae, latent)
    embed = (url is not None and not is_offline()) if embed is None else bool(embed and url)
    notes = [] if not url or embed else ["(offline: Neuronpedia's page is not embedded; open the link online)"]
    return FeatureCard(latent, len(acts), acts[acts > 0], contexts, promoted, suppressed, url, embed, notes)
