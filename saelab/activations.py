"""Activations to train an SAE on: text streamed through a language model, cut at one hook, shuffled.

    text -> tokens [bos, t1, ..., tn] -> model, stopped after the hook's block -> acts at t1..tn -> buffer

The BOS position is dropped (GPT-2's activations there are huge outliers that no SAE should spend
latents on), and so is the right padding of a batch. Right padding is harmless for a causal model:
a real token never attends to the padding after it, and positions start at 0 in every row.
Tokens from one text are strongly correlated, so batches come from a shuffled buffer that mixes
many texts (seeded: the same seed gives the same batches).
"""
from __future__ import annotations

import itertools
import os
import random
from typing import Any, Iterable, Iterator

import torch

from saelab import precision as amp
from saelab.memory import fit_texts_per_forward
from saelab.texts import TEXTS_SETTING, local_texts


# Text sources for `text_stream`: name -> (Hugging Face dataset, config, split, text fields).
DATASETS = {
    # ~10k documents of the Pile (English web, books, code...): small, public, parquet, streams quickly.
    "pile-10k": ("NeelNanda/pile-10k", None, "train", ("text",)),
    # The blog's choice: Korean instruction data (GPT-2's tokenizer reads it as bytes); fields joined.
    "kocommercial": ("MarkrAI/KoCommercial-Dataset", None, "train", ("instruction", "input", "output")),
}
DEFAULT_DATASET = "pile-10k"


# --- text ------------------------------------------------------------------------------------------
def tinyworld_texts(seed: int = 0) -> Iterator[str]:
    """An endless stream of tiny-world stories (seeded): the offline text source."""
    from saelab.tinyworld.generator import generate_story

    rng = random.Random(seed)
    while True:
        yield generate_story(rng).text


def hf_texts(dataset: str = DEFAULT_DATASET, seed: int = 0, shuffle_buffer: int = 10_000) -> Iterator[str]:
    """Texts streamed from a Hugging Face dataset (a `DATASETS` short name or 'org/name'); needs network.
    With `SAELAB_TEXTS` set, texts come from that local file instead (see `local_texts`)."""
    if os.environ.get(TEXTS_SETTING):
        yield from local_texts(os.environ[TEXTS_SETTING], seed)
        return
    from datasets import load_dataset

    repo, config, split, fields = DATASETS.get(dataset, (dataset, None, "train", ("text",)))
    stream = load_dataset(repo, config, split=split, streaming=True)
    stream = stream.shuffle(seed=seed, buffer_size=shuffle_buffer)
    for row in stream:
        missing = [f for f in fields if f not in row]
        if missing:
            raise ValueError(f"dataset {repo!r} has no field(s) {missing}; its fields are {sorted(row)}. "
                             f"Add it to saelab.activations.DATASETS with the right text fields.")
        text = "\n".join(str(row[f]) for f in fields if row[f])
        if text.strip():
            yield text


def text_stream(source: str = "auto", seed: int = 0) -> Iterator[str]:
    """Texts for training: 'tiny-world' (offline), a dataset name, or 'auto' (tiny world when offline).
    A dataset name reads the local file `SAELAB_TEXTS` instead of the hub when that setting is given."""
    from saelab.models import is_offline

    if source == "auto":
        source = "tiny-world" if is_offline() else DEFAULT_DATASET
    if source in {"tiny-world", "tiny_world", "tinyworld"}:
        return tinyworld_texts(seed)
    if os.environ.get(TEXTS_SETTING):
        return local_texts(os.environ[TEXTS_SETTING], seed)
    if is_offline():
        raise ValueError(f"SAELAB_OFFLINE=1 is set, so the dataset {source!r} cannot be streamed; "
                         "use text_stream('tiny-world') or unset SAELAB_OFFLINE on a machine with network")
    return hf_texts(source, seed)


# --- tokens and activations ------------------------------------------------------------------
def bos_id(model: Any) -> int:
    """The id the model's sequences start with (GPT-2: <|endoftext|>)."""
    tok = model.tokenizer
    for attr in ("bos_token_id", "eos_token_id"):
        if getattr(tok, attr, None) is not None:
            return int(getattr(tok, attr))
    raise ValueError("the model's tokenizer has neither a BOS nor an EOS token; cannot mark text starts")


def tokenize_texts(model: Any, texts: list[str], max_length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens [batch, pos] = [bos, text..., padding], mask [batch, pos]: True at real tokens, BOS included)."""
    if not texts:
        raise ValueError("tokenize_texts needs at least one text")
    max_length = min(max_length or model.cfg.n_ctx, model.cfg.n_ctx)
    if max_length < 2:
        raise ValueError(f"max_length must be >= 2 (BOS + one token); got {max_length}")
    ids = model.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    bos = bos_id(model)
    seqs = [[bos, *x[:max_length - 1]] for x in ids]
    n = max(len(s) for s in seqs)
    tokens = torch.full((len(seqs), n), bos, dtype=torch.long)
    mask = torch.zeros((len(seqs), n), dtype=torch.bool)
    for i, s in enumerate(seqs):
        tokens[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = True
    return tokens, mask


def hook_layer(hook_name: str) -> int:
    """The block index in a TransformerLens hook name: 'blocks.8.hook_resid_post' -> 8."""
    parts = hook_name.split(".")
    if len(parts) < 3 or parts[0] != "blocks" or not parts[1].isdigit():
        raise ValueError(f"expected a hook like 'blocks.8.hook_resid_post'; got {hook_name!r}")
    return int(parts[1])


class _StopForward(Exception):
    """Raised by the capture hook to end the forward pass as soon as the hook has fired."""


@torch.no_grad()
def hook_activations(model: Any, hook_name: str, tokens: torch.Tensor, stop_early: bool = True,
                     precision: str = "fp32") -> torch.Tensor:
    """Activations at `hook_name` for tokens [batch, pos] -> [batch, pos, d_model], always float32.

    `precision` "bf16" / "fp16" runs the forward pass under autocast (see `saelab.precision`): the matmuls in
    reduced precision, the activations handed back as float32.

    With `stop_early` the forward pass ends as soon as the hook fires: later blocks and the unembedding (the most
    expensive part of a small model) never run. TransformerLens's `stop_at_layer=L+1` does this too, but (TL 4.3)
    still runs the unembedding when L is the last block, so we stop from inside the hook instead.
    """
    tokens = tokens.to(model.cfg.device)
    if not stop_early:
        with amp.autocast(precision, model.cfg.device):
            _, cache = model.run_with_cache(tokens, names_filter=[hook_name])
        if hook_name not in cache:
            raise ValueError(f"the model has no hook {hook_name!r}; try e.g. 'blocks.0.hook_mlp_out'")
        return cache[hook_name].float()
    captured = []

    def grab(activation: torch.Tensor, hook: Any) -> None:
        captured.append(activation)
        raise _StopForward

    try:
        with model.hooks(fwd_hooks=[(hook_name, grab)]), amp.autocast(precision, model.cfg.device):
            model(tokens, return_type=None)  # the hook is removed again on the way out
    except _StopForward:
        pass
    if not captured:
        raise ValueError(f"the hook {hook_name!r} never fired; try e.g. 'blocks.0.hook_mlp_out'")
    return captured[0].float()  # a no-op for float32; bf16 hooks (e.g. hook_mlp_out) come back float32


def text_activations(model: Any, hook_name: str, texts: list[str], max_length: int | None = None,
                     skip_bos: bool = True, stop_early: bool = True, precision: str = "fp32") -> torch.Tensor:
    """Activations at every real token of `texts` (BOS and padding dropped): [n_tokens, d_model], float32."""
    tokens, mask = tokenize_texts(model, texts, max_length)
    acts = hook_activations(model, hook_name, tokens, stop_early, precision)
    if skip_bos:
        mask[:, 0] = False
    return acts[mask.to(acts.device)]


# --- the streaming source --------------------------------------------------------------------------
class ActivationSource:
    """Stream texts through `model` and yield shuffled batches of activations at `hook_name`: [batch, d_model].

    Use it directly as `train_sae(sae, data=source, ...)`, or `source.collect(n_tokens)` for a fixed
    tensor. The buffer holds `buffer_tokens` activations; once full it is shuffled, half of it is handed
    out as batches and refilled, so every batch mixes tokens from many texts. `precision` ("auto", "fp32",
    "bf16", "fp16") is what the forward passes run in; "auto" is resolved at the first forward (by timing
    it, see `saelab.precision`) and `.precision` then says what ran. Activations are float32 either way.
    """

    def __init__(self, model: Any, hook_name: str, texts: Iterable[str] | str = "auto", *,
                 batch_size: int = 4096, buffer_tokens: int = 65_536, texts_per_forward: int = 32,
                 max_length: int | None = 128, skip_bos: bool = True, seed: int = 0,
                 progress: bool = True, max_tokens: int | None = None, precision: str = "auto") -> None:
        hook_layer(hook_name) if hook_name.startswith("blocks.") else None  # validates the name
        if batch_size < 1 or buffer_tokens < 2 * batch_size:
            raise ValueError(f"need batch_size >= 1 and buffer_tokens >= 2 * batch_size; got batch_size="
                             f"{batch_size}, buffer_tokens={buffer_tokens}")
        self.precision = amp.check_precision(precision, model.cfg.device)
        self.model, self.hook_name = model, hook_name
        self.texts = text_stream(texts, seed) if isinstance(texts, str) else texts
        self.batch_size, self.buffer_tokens = batch_size, buffer_tokens
        self.texts_per_forward, self.max_length = texts_per_forward, max_length
        self.skip_bos, self.seed, self.progress, self.max_tokens = skip_bos, seed, progress, max_tokens
        self.tokens_read = 0  # activations produced so far (before shuffling)

    @property
    def d_model(self) -> int:
        return self.model.cfg.d_model

    def _chunks(self) -> Iterator[torch.Tensor]:
        """Activations [n, d_model] of successive groups of texts, until the texts or max_tokens run out."""
        texts = iter(self.texts)
        # Fewer texts per forward pass where memory is short (a forward costs ~200 KB per token at GPT-2's width).
        per_forward = fit_texts_per_forward(self.texts_per_forward, self.model.cfg, self.max_length or 128)
        while self.max_tokens is None or self.tokens_read < self.max_tokens:
            group = list(itertools.islice(texts, per_forward))
            if not group:
                return
            if self.precision == "auto":
                self.precision = self._pick_precision(group)
            acts = text_activations(self.model, self.hook_name, group, self.max_length, self.skip_bos,
                                    precision=self.precision)
            if self.max_tokens is not None:
                acts = acts[:self.max_tokens - self.tokens_read]
            self.tokens_read += len(acts)
            yield acts

    def __iter__(self) -> Iterator[torch.Tensor]:
        """Shuffled batches [batch_size, d_model]; the last partial buffer is shuffled and used too."""
        g = torch.Generator().manual_seed(self.seed)
        bar = self._bar(self.max_tokens, "activations")
        buffer: list[torch.Tensor] = []
        held = 0
        chunks = self._chunks()
        while True:
            for acts in chunks:
                buffer.append(acts)
                held += len(acts)
                if bar is not None:
                    bar.update(len(acts))
                if held >= self.buffer_tokens:
                    break
            if held < self.batch_size:
                break
            data = torch.cat(buffer)
            data = data[torch.randperm(len(data), generator=g).to(data.device)]
            exhausted = held < self.buffer_tokens
            n_out = (len(data) if exhausted else len(data) // 2) // self.batch_size * self.batch_size
            for i in range(0, n_out, self.batch_size):
                yield data[i:i + self.batch_size]
            buffer, held = [data[n_out:]], len(data) - n_out
            if exhausted:
                break
        if bar is not None:
            bar.close()

    def collect(self, n_tokens: int) -> torch.Tensor:
        """A fixed, shuffled tensor of `n_tokens` activations [n_tokens, d_model] (for evaluation or epochs)."""
        if n_tokens < 1:
            raise ValueError(f"n_tokens must be >= 1; got {n_tokens}")
        bar = self._bar(n_tokens, "collecting activations")
        out, got = [], 0
        saved, self.max_tokens = self.max_tokens, (self.tokens_read + n_tokens)
        try:
            for acts in self._chunks():
                out.append(acts)
                got += len(acts)
                if bar is not None:
                    bar.update(len(acts))
        finally:
            self.max_tokens = saved
            if bar is not None:
                bar.close()
        if not out:
            raise ValueError("the text source is empty: no activations collected")
        data = torch.cat(out)
        g = torch.Generator().manual_seed(self.seed)
        return data[torch.randperm(len(data), generator=g).to(data.device)]

    def _pick_precision(self, texts: list[str]) -> str:
        """What "auto" means for this model and hook: forwards of these texts timed in each precision."""
        tokens, _ = tokenize_texts(self.model, texts, self.max_length)

        def make_step(p: str):
            return lambda: hook_activations(self.model, self.hook_name, tokens, precision=p)
        cfg = self.model.cfg
        key = (self.hook_name, cfg.d_model, cfg.n_layers, tuple(tokens.shape), torch.get_num_threads())
        return amp.pick_precision("activations", make_step, cfg.device, key,
                                  work=tokens.numel() * cfg.d_model * 4 * cfg.d_model)  # the MLP's matmul

    def _bar(self, total: int | None, desc: str):
        if not self.progress:
            return None
        from tqdm.auto import tqdm
        return tqdm(total=total, desc=f"{desc} at {self.hook_name}", unit="tok", unit_scale=True)

    def __repr__(self) -> str:
        return (f"ActivationSource(hook_name={self.hook_name!r}, batch_size={self.batch_size}, "
                f"buffer_tokens={self.buffer_tokens}, seed={self.seed}, tokens_read={self.tokens_read}, "
                f"precision={self.precision!r})")


# --- labelled activations (tiny world) -------------------------------------------------------------
def story_activations(model: Any, hook_name: str, stories: list, batch_size: int = 64
                      ) -> tuple[torch.Tensor, dict[str, list[str]]]:
    """Tiny-world stories -> (activations [n_tokens, d_model], labels: concept -> one label per token).

    The tiny world's tokenizer has one token per word, so `story.labels` line up with the tokens after BOS.
    """
    acts, labels = [], {}
    for b in range(0, len(stories), batch_size):
        group = stories[b:b + batch_size]
        tokens, mask = tokenize_texts(model, [s.text for s in group])
        if (mask.sum(1) - 1).tolist() != [len(s.words) for s in group]:
            raise ValueError("tokens and story words do not line up: use the tiny world's model and tokenizer")
        mask[:, 0] = False
        h = hook_activations(model, hook_name, tokens)
        acts.append(h[mask.to(h.device)])
        for s in group:
            for concept, values in s.labels.items():
                labels.setdefault(concept, []).extend(values)
    return torch.cat(acts), labels
