"""How good is the bundled tiny world? Prints numbers (not a test); every check uses held-out seeds.

    python benchmarks/tinyworld_quality.py [--dir saelab/tinyworld/files] [--scales 0 2 4 8]

1. greedy completions of story prefixes follow the grammar            target >= 95 %
2. a logistic-regression probe reads sentiment at blocks.2 after the first sentence   >= 95 %
3. the SAE: FVU <= 0.10 at L0 = k, dead latents <= 10 %, a latent with AUROC >= 0.9 for sentiment and certainty
4. steering "he is such a" with the negative-sentiment latents: >= 80 % negative (from <= 50 %)
"""
from __future__ import annotations

import argparse
import random
import time

import torch

from saelab.sae import load_sae_file
from saelab.steering import steer, steering_vector
from saelab.tinyworld import FILES_DIR, NEGATIVE_WORDS, POSITIVE_WORDS, SAE_HOOK, generate_stories
from saelab.tinyworld.generator import continuation_sentiment, is_consistent, is_grammatical

# TransformerBridge 4.3's KV-cached generate() goes wrong on this model after the first new token
# (HF's own generate and the bridge without cache agree), so generation here runs without the cache.
KV_CACHE = False
EVAL_SEED = 1000  # the build uses seeds 0-2; everything here is drawn from 1000 on


def load(files_dir):
    from transformer_lens.model_bridge import TransformerBridge
    bridge = TransformerBridge.boot_transformers(str(files_dir), device="cpu")
    return bridge, load_sae_file(files_dir / "sae.pt")


def decode_new(bridge, tokens: torch.Tensor, n_prompt: int) -> str:
    """The generated text after the prompt, cut at the first end-of-text."""
    new = tokens[n_prompt:].tolist()
    if 0 in new:
        new = new[:new.index(0)]
    return bridge.tokenizer.decode(new)


@torch.no_grad()
def greedy_grammar(bridge, n: int = 200) -> dict[str, float]:
    rng = random.Random(EVAL_SEED)
    ok = consistent = 0
    bad = []
    for story in generate_stories(n, seed=EVAL_SEED):
        cut = rng.randint(1, len(story.words) - 1)
        prompt = bridge.tokenizer.decode(bridge.tokenizer(story.text, add_special_tokens=False)["input_ids"][:cut])
        tokens = bridge.to_tokens(prompt)
        room = min(50, bridge.cfg.n_ctx - tokens.shape[1])  # never run past the learned positions
        out = bridge.generate(tokens, max_new_tokens=room, do_sample=False, verbose=False, stop_at_eos=True,
                              use_past_kv_cache=KV_CACHE)
        text = prompt + decode_new(bridge, out[0], tokens.shape[1])
        ok += is_grammatical(text)
        consistent += is_consistent(text)
        if not is_grammatical(text) and len(bad) < 5:
            bad.append(text)
    for b in bad:
        print("   ungrammatical:", b)
    return {"grammatical": ok / n, "consistent": consistent / n}


@torch.no_grad()
def activations(bridge, stories) -> tuple[torch.Tensor, list[dict[str, str]]]:
    """Residual stream at SAE_HOOK for every word of every story ([tokens, d_model], bos dropped) + labels."""
    acts, labels = [], []
    for b in range(0, len(stories), 64):
        chunk = stories[b:b + 64]
        ids = [bridge.tokenizer(s.text, add_special_tokens=False)["input_ids"] for s in chunk]
        n = max(map(len, ids)) + 1
        tokens = torch.zeros(len(chunk), n, dtype=torch.long)
        for i, x in enumerate(ids):
            tokens[i, 1:len(x) + 1] = torch.tensor(x)
        _, cache = bridge.run_with_cache(tokens, names_filter=[SAE_HOOK], stop_at_layer=3)
        a = cache[SAE_HOOK]
        for i, s in enumerate(chunk):
            acts.append(a[i, 1:len(ids[i]) + 1])
            first_end = s.words.index(".")
            for p in range(len(s.words)):
                nxt = s.words[p + 1] if p + 1 < len(s.words) else ""
                labels.append({c: s.labels[c][p] for c in s.labels} | {"after_first": str(p > first_end),
                               "before_sentiment_word": str(nxt in POSITIVE_WORDS or nxt in NEGATIVE_WORDS)})
    return torch.cat(acts), labels


def probe_accuracy(x_train, y_train, x_test, y_test, steps: int = 500) -> float:
    """Logistic regression (standardised features, Adam, small L2) -> test accuracy."""
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    x_train, x_test = (x_train - mu) / sd, (x_test - mu) / sd
    torch.manual_seed(0)
    w = torch.zeros(x_train.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([w, b], lr=0.05)
    for _ in range(steps):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x_train @ w + b, y_train) + 1e-3 * w.pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return ((x_test @ w + b > 0).float() == y_test).float().mean().item()


def concept_probe(bridge, concept: str = "sentiment", value: str = "negative", where: str = "after_first") -> float:
    """Probe accuracy for `concept` == `value` at positions `where` is true and the label is defined."""
    def data(seed):
        x, labels = activations(bridge, generate_stories(1500, seed=seed))
        keep = [i for i, l in enumerate(labels) if l[where] == "True" and l[concept] != "none"]
        y = torch.tensor([labels[i][concept] == value for i in keep], dtype=torch.float32)
        return x[keep], y
    return probe_accuracy(*data(EVAL_SEED + 1), *data(EVAL_SEED + 2))


def auroc_per_latent(scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """AUROC of each column of `scores` [n, n_latents] for binary y [n] (ties get average ranks): [n_latents]."""
    n_pos, n_neg = y.sum(), (1 - y).sum()
    out = torch.empty(scores.shape[1])
    for j in range(scores.shape[1]):
        s = scores[:, j]
        order = s.argsort()
        sorted_s = s[order]
        ranks = torch.empty(len(s))
        ranks[order] = torch.arange(1, len(s) + 1, dtype=torch.float32)
        uniq, inverse, counts = torch.unique_consecutive(sorted_s, return_inverse=True, return_counts=True)
        ends = counts.cumsum(0).float()
        avg = ends - (counts.float() - 1) / 2  # average rank of each run of ties
        ranks[order] = avg[inverse]
        out[j] = (ranks[y.bool()].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return out


@torch.no_grad()
def sae_quality(bridge, sae) -> dict:
    stories = generate_stories(2000, seed=EVAL_SEED + 3)
    x, labels = activations(bridge, stories)
    _, latents, recons = sae(x)
    fvu = ((x - recons).pow(2).sum() / (x - x.mean(0)).pow(2).sum()).item()
    fired = (latents > 0).any(0)
    res = {"tokens": len(x), "fvu": fvu, "l0": (latents > 0).float().sum(-1).mean().item(),
           "k": sae.k, "dead_fraction": 1 - fired.float().mean().item()}
    for concept, (a, b), where in [("sentiment", ("positive", "negative"), None),
                                   ("certainty", ("hedged", "confident"), None),
                                   ("sentiment_before_sentiment_word", ("positive", "negative"), "before_sentiment_word")]:
        name, concept = concept, concept.split("_")[0]
        keep = [i for i, l in enumerate(labels) if l[concept] != "none" and (where is None or l[where] == "True")]
        y = torch.tensor([labels[i][concept] == b for i in keep], dtype=torch.float32)
        auc = auroc_per_latent(latents[keep], y)
        best_b, best_a = int(auc.argmax()), int(auc.argmin())
        res[name] = {f"best_{b}_latent": best_b, f"auroc_{b}": auc[best_b].item(),
                        f"best_{a}_latent": best_a, f"auroc_{a}": 1 - auc[best_a].item(),
                        f"top5_{b}": auc.topk(5).indices.tolist(), "positions": len(keep)}
    res["residual_std"] = x.std(-1).mean().item()
    res["residual_norm"] = x.norm(dim=-1).median().item()
    return res


@torch.no_grad()
def steering(bridge, sae, latents: list[int], scales: list[float], n: int = 200) -> dict[float, dict]:
    vector = steering_vector(sae, latents)
    tokens = bridge.to_tokens("he is such a").repeat(n, 1)
    out = {}
    for scale in scales:
        torch.manual_seed(0)
        with steer(bridge, SAE_HOOK, vector, scale):
            gen = bridge.generate(tokens, max_new_tokens=20, do_sample=True, temperature=0.7, verbose=False,
                                     use_past_kv_cache=KV_CACHE)
        texts = [decode_new(bridge, g, tokens.shape[1]) for g in gen]
        sentiments = [continuation_sentiment(t) for t in texts]
        out[scale] = {"negative": sentiments.count("negative") / n, "positive": sentiments.count("positive") / n,
                      "grammatical": sum(is_grammatical("he is such a" + t) for t in texts) / n,
                      "examples": texts[:3]}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", default=str(FILES_DIR))
    p.add_argument("--scales", type=float, nargs="+", default=[0, 2, 4, 6, 8, 12])
    p.add_argument("--n-latents", type=int, default=1, help="how many top negative latents to steer with")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from pathlib import Path
    start = time.time()
    bridge, sae = load(Path(args.dir))
    print(f"model: {sum(p.numel() for p in bridge.parameters())} parameters; SAE: {sae}")
    g = greedy_grammar(bridge)
    print(f"1. greedy completions grammatical: {g['grammatical']:.1%} (consistent: {g['consistent']:.1%})")
    print(f"2. sentiment probe accuracy at {SAE_HOOK} after sentence 1: {concept_probe(bridge):.1%} "
          f"(certainty, for comparison: {concept_probe(bridge, 'certainty', 'hedged'):.1%}); sentiment at the "
          f"positions that predict a sentiment word: {concept_probe(bridge, where='before_sentiment_word'):.1%}")
    q = sae_quality(bridge, sae)
    print(f"3. SAE on {q['tokens']} held-out tokens: FVU {q['fvu']:.4f}, L0 {q['l0']:.1f} (k={q['k']}), "
          f"dead {q['dead_fraction']:.1%}")
    for concept in ("sentiment", "certainty", "sentiment_before_sentiment_word"):
        print(f"   {concept}: {q[concept]}")
    neg = q["sentiment"]["top5_negative"][:args.n_latents]
    std = q["residual_std"]
    print(f"4. steering with negative latent(s) {neg}; scale in units of the residual std ({std:.2f}), "
          f"median residual norm {q['residual_norm']:.1f}")
    for scale, r in steering(bridge, sae, neg, [s * std for s in args.scales]).items():
        print(f"   scale {scale / std:4.1f} x std = {scale:6.2f}: negative {r['negative']:.0%}, "
              f"positive {r['positive']:.0%}, grammatical {r['grammatical']:.0%}  e.g. {r['examples']}")
    print(f"({time.time() - start:.0f}s)")


if __name__ == "__main__":
    main()
