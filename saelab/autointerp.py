"""Automatic interpretation without any API: explanations are predicates over the tiny world's known facts.

    fact         what is known at a token: its word, and each concept's label there ("sentiment" = "negative")
    explanation  one fact or a conjunction of two: `sentiment = negative and word = "."`
    explainer    shows the top-activating, random and near-miss tokens of a latent; picks the explanation with
                 the best F1 at telling the top-activating ones from the others
    scorers      after EleutherAI's delphi, on other tokens than the explainer saw:
      detection   per activation quantile: balanced accuracy of "the explanation holds" at telling that
                  quantile's tokens from tokens where the latent is off
      fuzzing     contexts with highlighted tokens, highlighted either where the latent fires or at random
                  tokens where it is off; "correct" if the explanation holds on every highlighted token;
                  balanced accuracy over the two kinds of highlighting
      simulation  predicted activation = the explanation's indicator; Pearson correlation with the true one
Calibration: a too broad explanation (drop a term, or keep only the concept) and a too narrow one (add a term)
should both score worse than a good one. When the broader one scores better on the explainer's own tokens, the
explanation was too narrow for this latent: `widen` lets the explainer take it.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import combinations
from typing import Sequence

import torch

Term = tuple[str, str]  # (fact, value), e.g. ("word", "."), ("sentiment", "negative")


@dataclass(frozen=True)
class Explanation:
    """A conjunction of terms; str() reads like `sentiment = negative and word = "."`."""
    terms: tuple[Term, ...]

    def __str__(self) -> str:
        def term(k: str, v: str) -> str:
            if v == "*":
                return "any token" if k == "word" else f"{k} is known"
            return f'{k} = "{v}"' if k == "word" else f"{k} = {v}"
        return " and ".join(term(k, v) for k, v in self.terms)

    def holds(self, facts: "Facts") -> torch.Tensor:
        """Where the explanation is true: bool [n_tokens]."""
        out = torch.ones(facts.n, dtype=torch.bool)
        for term in self.terms:
            out &= facts.mask(term)
        return out


class Facts:
    """What is known at every token: {"word": [...], "sentiment": [...], ...}, one entry per token."""

    def __init__(self, facts: dict[str, Sequence[str]]) -> None:
        lengths = {k: len(v) for k, v in facts.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"every fact needs one value per token; got lengths {lengths}")
        self.facts = {k: list(v) for k, v in facts.items()}
        self.n = next(iter(lengths.values()))
        self._masks: dict[Term, torch.Tensor] = {}

    def mask(self, term: Term) -> torch.Tensor:
        if term not in self._masks:
            key, value = term
            if key not in self.facts:
                raise ValueError(f"unknown fact {key!r}; known: {sorted(self.facts)}")
            if value == "*":  # the concept is known here, whatever its value
                self._masks[term] = torch.tensor([v != "none" for v in self.facts[key]])
            else:
                self._masks[term] = torch.tensor([v == value for v in self.facts[key]])
        return self._masks[term]

    def terms_at(self, rows: Sequence[int]) -> list[Term]:
        """Every (fact, value) true at some of these rows ("none" labels excluded)."""
        seen = {(k, vals[i]) for k, vals in self.facts.items() for i in rows}
        return sorted(t for t in seen if t[1] != "none")


def _check(activations: torch.Tensor, facts: Facts) -> None:
    if activations.ndim != 1 or len(activations) != facts.n:
        raise ValueError(f"pass one latent's activations [n_tokens]; got shape {tuple(activations.shape)} for "
                         f"{facts.n} tokens of facts")
    if not (activations > 0).any():
        raise ValueError("this latent never fires on these tokens: there is nothing to explain")


def _f1(pred: torch.Tensor, truth: torch.Tensor) -> float:
    tp = (pred & truth).sum().item()
    return 2 * tp / max(pred.sum().item() + truth.sum().item(), 1)


def examples(activations: torch.Tensor, facts: Facts, n_top: int = 30, n_random: int = 30, n_near: int = 30,
             seed: int = 0) -> dict[str, list[int]]:
    """The explainer's view: top-activating rows, random rows where the latent is off, and near misses
    (rows where it is off that share a word with a top-activating row)."""
    _check(activations, facts)
    firing = int((activations > 0).sum())
    top = activations.topk(min(n_top, firing)).indices.tolist()
    off = (activations <= 0).nonzero().squeeze(1).tolist()
    rng = random.Random(seed)
    top_words = {facts.facts["word"][i] for i in top} if "word" in facts.facts else set()
    near = [i for i in off if facts.facts.get("word", [""] * facts.n)[i] in top_words]
    return {"top": top, "random": rng.sample(off, min(n_random, len(off))),
            "near": rng.sample(near, min(n_near, len(near)))}


def explain(activations: torch.Tensor, facts: Facts, max_terms: int = 2, n_singles: int = 15,
            seed: int = 0, **example_sizes: int) -> Explanation:
    """The predicate with the best F1 at telling the top-activating examples from random and near-miss ones.
    Single terms first, then conjunctions of the `n_singles` best singles; ties go to fewer terms."""
    ex = examples(activations, facts, seed=seed, **example_sizes)
    rows = torch.tensor(ex["top"] + ex["random"] + ex["near"])
    truth = torch.zeros(len(rows), dtype=torch.bool)
    truth[:len(ex["top"])] = True

    def score(terms: tuple[Term, ...]) -> float:
        return _f1(Explanation(terms).holds(facts)[rows], truth)

    singles = sorted(((score((t,)), t) for t in facts.terms_at(ex["top"])), key=lambda s: (-s[0], s[1]))
    best_score, best = singles[0][0], (singles[0][1],)
    if max_terms >= 2:
        for (_, a), (_, b) in combinations(singles[:n_singles], 2):
            if a[0] == b[0]:
                continue  # two values of one fact never hold together
            s = score(tuple(sorted((a, b))))
            if s > best_score + 1e-9:
                best_score, best = s, tuple(sorted((a, b)))
    return Explanation(best)


def detection_score(activations: torch.Tensor, explanation: Explanation, facts: Facts, n_quantiles: int = 5
                    ) -> dict[str, float | list[float]]:
    """Balanced accuracy per activation quantile (lowest first) and their mean."""
    _check(activations, facts)
    holds = explanation.holds(facts)
    on = (activations > 0).nonzero().squeeze(1)
    tnr = (~holds[activations <= 0]).float().mean().item() if (activations <= 0).any() else 1.0
    order = on[activations[on].argsort()]
    chunks = [c for c in torch.tensor_split(order, n_quantiles) if len(c)]
    per = [0.5 * (holds[c].float().mean().item() + tnr) for c in chunks]
    return {"per_quantile": per, "mean": sum(per) / len(per)}


def fuzzing_score(activations: torch.Tensor, explanation: Explanation, facts: Facts, story_ids: torch.Tensor,
                  n_contexts: int = 200, seed: int = 0) -> float:
    """Balanced accuracy of judging highlighted contexts: right highlights (where the latent fires) vs wrong
    ones (as many random tokens of the same story where it is off); a context is judged right when the
    explanation holds on every highlighted token."""
    _check(activations, facts)
    if len(story_ids) != facts.n:
        raise ValueError(f"story_ids has {len(story_ids)} entries for {facts.n} tokens")
    holds = explanation.holds(facts)
    rng = random.Random(seed)
    stories = sorted(set(story_ids[activations > 0].tolist()))
    rng.shuffle(stories)
    right, wrong = [], []
    for s in stories[:n_contexts]:
        rows = (story_ids == s).nonzero().squeeze(1)
        fire = rows[activations[rows] > 0]
        off = rows[activations[rows] <= 0].tolist()
        right.append(bool(holds[fire].all()))
        if len(off) >= len(fire):
            wrong.append(not bool(holds[torch.tensor(rng.sample(off, len(fire)))].all()))
    if not wrong:
        return sum(right) / len(right)
    return 0.5 * (sum(right) / len(right) + sum(wrong) / len(wrong))


def simulation_score(activations: torch.Tensor, explanation: Explanation, facts: Facts) -> float:
    """Pearson correlation of the explanation's indicator with the latent's activations (0 if either is constant)."""
    _check(activations, facts)
    pred = explanation.holds(facts).float()
    a = activations.float()
    if pred.std() == 0 or a.std() == 0:
        return 0.0
    return torch.corrcoef(torch.stack([pred, a]))[0, 1].item()


def too_broad(explanation: Explanation) -> Explanation:
    """A deliberately too broad explanation: of two terms keep the label and drop the word; a single label
    ("sentiment = negative") becomes "the concept is known at all" (value "*"), a single word "any token"."""
    labels = [t for t in explanation.terms if t[0] != "word"]
    if len(explanation.terms) >= 2:
        return Explanation(tuple((labels or list(explanation.terms))[:1]))
    key, value = explanation.terms[0]
    if value == "*":
        raise ValueError(f"{explanation} cannot be broadened any further")
    return Explanation(((key, "*"),))  # a word widens to "any token", a label to "the concept is known"


def too_narrow(explanation: Explanation, activations: torch.Tensor, facts: Facts) -> Explanation:
    """Add the term that keeps the fewest of the latent's firing tokens while still holding on one of them:
    an explanation that is true where it speaks but covers only a sliver of what the latent does."""
    _check(activations, facts)
    holds = explanation.holds(facts) & (activations > 0)
    rows = holds.nonzero().squeeze(1).tolist()
    if not rows:
        raise ValueError(f"{explanation} never holds where the latent fires; nothing to narrow")
    keys = {k for k, _ in explanation.terms}
    options = [t for t in facts.terms_at(rows) if t[0] not in keys]
    if not options:
        raise ValueError(f"{explanation} uses every fact already; nothing to add")
    coverage = [((facts.mask(t) & holds).sum().item(), t) for t in options]
    _, term = min(coverage)
    return Explanation(tuple(sorted(explanation.terms + (term,))))


def widen(explanation: Explanation, activations: torch.Tensor, facts: Facts, story_ids: torch.Tensor,
          min_wins: int = 2) -> tuple[Explanation, list[str]]:
    """Let the scorers widen a too narrow explanation: while its `too_broad` variant beats it on at least
    `min_wins` of the three scores (on these tokens, the explainer's own: never the held-out ones), take the
    broader one. Returns (the explanation, one line per step saying why it was widened or kept)."""
    log = []
    while True:
        try:
            broader = too_broad(explanation)
        except ValueError:
            log.append(f"kept {explanation}: it cannot be broadened further")
            return explanation, log
        now, wide = (score_all(activations, e, facts, story_ids) for e in (explanation, broader))
        wins = [k for k in now if wide[k] > now[k]]
        if len(wins) < min_wins:
            log.append(f"kept {explanation}: {broader} wins on {len(wins)} of 3 scores ({', '.join(wins) or 'none'})")
            return explanation, log
        log.append(f"widened {explanation} -> {broader}: it wins on {', '.join(wins)}")
        explanation = broader


def calibration_variants(explanation: Explanation, activations: torch.Tensor, facts: Facts
                         ) -> dict[str, Explanation]:
    """{"explanation", "too broad", "too narrow"}: the explanation and its two deliberately wrong variants (a variant
    that cannot be built, e.g. a broader one than "sentiment is known", is left out)."""
    out = {"explanation": explanation}
    for name, make in (("too broad", lambda: too_broad(explanation)),
                       ("too narrow", lambda: too_narrow(explanation, activations, facts))):
        try:
            out[name] = make()
        except ValueError:
            pass
    return out


def score_all(activations: torch.Tensor, explanation: Explanation, facts: Facts, story_ids: torch.Tensor
              ) -> dict[str, float]:
    """The three scores of one explanation: {"detection", "fuzzing", "simulation"}."""
    return {"detection": detection_score(activations, explanation, facts)["mean"],
            "fuzzing": fuzzing_score(activations, explanation, facts, story_ids),
            "simulation": simulation_score(activations, explanation, facts)}
