"""Claim tests for notebook 04_steering.ipynb: each result sentence, checked against the executed notebook (offline).

Runs natively and on a second CPU code path with another seed offset (see the Makefile's `claims-second-path`).
Every sampled comparison runs three seeds; a claim of a difference needs the seeds' ranges to separate.
"""
from __future__ import annotations

import pytest

from tests.claims.harness import notebook_values, register

NOTEBOOK = "04_steering.ipynb"
VALUES = {
        "prompt": "PROMPT", "neutral": "NEUTRAL", "seeds": "SEEDS", "latents": "LATENTS",
        "latent_aurocs": "[float(auroc[i]) for i in LATENTS]", "magnitudes": "mags.tolist()",
        "cos_measured": "float(torch.cosine_similarity(vectors['measured'], vectors['ones'], dim=0))",
        "bias": "{k: list(v) for k, v in bias.items()}",
        "hooks_left": "len(model.hook_dict[sae.hook_name].fwd_hooks)",
        "runs": "{k: [(s.negative, s.well_formed, s.fluency) for s in v] for k, v in runs.items()}",
        "combos": "{k: [s.negative for s in v] for k, v in combos.items()}",
        "combo_well_formed": "{k: [s.well_formed for s in v] for k, v in combos.items()}",
        "combo_fixed_lengths": "[SCALE * float(steering.steering_vector(sae, LATENTS[:k]).norm()) for k in combos]",
        "curves": "{m: [(p.negative, p.well_formed) for p in pts] for m, pts in curves.items()}",
        "sweep": "[(p.scale, p.negative, p.well_formed, p.fluency) for p in points]", "spot": "spot",
        "broken": "broken", "panel": "panel.shares",
        "base_seeds": "BASE_SEEDS", "base_length": "LENGTH",
        "arms": "{a: [(s.negative, s.well_formed, s.fluency) for s in r] for a, r in arms.items()}",
        "cos_dom_sae": "cos_dom_sae.tolist()",
    }
register(NOTEBOOK, VALUES)


def mean(xs):
    return sum(xs) / len(xs)


@pytest.fixture(scope="session")
def nb04() -> dict:
    return notebook_values(NOTEBOOK)


def test_04_every_comparison_runs_three_seeds(nb04):
    assert len(nb04["seeds"]) == 3
    assert all(len(v) == 3 for v in nb04["runs"].values()) and all(len(v) == 3 for v in nb04["combos"].values())
    assert all(len(neg) == 3 for _, neg, _, _ in nb04["sweep"]) and len(nb04["panel"]["steered"]) == 3


def test_04_fluency_after_the_full_prompt_penalises_negative_words(nb04):
    """ "after the full prompt, negative continuations of the same shape score far lower than positive ones (the gap
    printed above) [...] After "he is such a" alone the gap is much smaller" """
    assert nb04["prompt"] == "i love him. he is such a" and nb04["neutral"] == "he is such a"
    pos_full, neg_full = nb04["bias"][nb04["prompt"]]
    pos_neutral, neg_neutral = nb04["bias"][nb04["neutral"]]
    gap_full, gap_neutral = pos_full - neg_full, pos_neutral - neg_neutral
    assert gap_full >= 0.5 and abs(gap_neutral) <= 0.3 and abs(gap_neutral) < gap_full / 2


def test_04_latents_separate_perfectly_where_sentiment_is_known(nb04):
    """ "single latents of the tiny world's SAE separate negative from positive prompts perfectly (AUROC 1.0 for all
    four we use below). On a real negative sentence they all fire" """
    assert len(nb04["latents"]) == 4 and nb04["latent_aurocs"] == [1.0] * 4
    assert all(m > 0 for m in nb04["magnitudes"])


def test_04_measured_points_another_way(nb04):
    """ ""measured" [...] points in a different direction from "ones" (the cosine printed above)" """
    assert nb04["cos_measured"] < 0.99


def test_04_before_after_steered_samples_turn_negative_in_every_seed(nb04):
    """ "few unsteered samples are negative and most steered ones are, in every seed (the ranges printed above do
    not overlap), and the steered text stays well formed about as often as the model's own. The hook lives only
    inside the `with` block (0 hooks left after it)" """
    un = [neg for neg, _, _ in nb04["runs"]["unsteered"]]
    st = [neg for neg, _, _ in nb04["runs"]["steered"]]
    assert max(un) <= 0.25 and min(st) > 0.5 and max(un) < min(st)
    wf_un = [wf for _, wf, _ in nb04["runs"]["unsteered"]]
    wf_st = [wf for _, wf, _ in nb04["runs"]["steered"]]
    assert min(wf_st) >= 0.85 and mean(wf_un) - mean(wf_st) <= 0.1
    assert nb04["hooks_left"] == 0


def test_04_combinations_at_equal_length(nb04):
    """ "at a fixed scale, more latents also add more length (the lengths printed above grow with each latent) [...]
    one latent alone turns the fewest samples negative (its whole range lies below that of the best three), and a
    fourth latent adds no clear push (its mean is not above the range of three)" """
    lengths = nb04["combo_fixed_lengths"]
    assert len(lengths) == 4 and all(a < b for a, b in zip(lengths, lengths[1:]))
    combos = {int(k): v for k, v in nb04["combos"].items()}
    assert max(combos[1]) < min(combos[3])
    assert min(combos[1]) <= min(min(v) for v in combos.values())  # the fewest
    assert mean(combos[4]) <= max(combos[3])


def test_04_measured_magnitudes_steer_no_better_at_equal_length(nb04):
    """ "at every length the mean share of negative samples with "measured" stays within or below the range of
    "ones", and by the grammar checker its text breaks down no later" (breaks down: the mean well-formed share
    falls more than 0.25 below the unsteered one, the notebook's breakdown rule) """
    ones, measured = nb04["curves"]["ones"], nb04["curves"]["measured"]
    assert len(ones) == len(measured) >= 5
    for (neg_o, _), (neg_m, _) in zip(ones, measured):
        assert mean(neg_m) <= max(neg_o)

    def breakdown(curve):
        base = mean(curve[0][1])
        return next(i for i, (_, wf) in enumerate(curve) if mean(wf) < base - 0.25)

    assert breakdown(measured) <= breakdown(ones)


def test_04_sweep_has_a_window(nb04):
    """ "the share of negative samples climbs from the unsteered few to nearly all (90% or more at the sweet spot,
    on average over the seeds), while the text stays about as well formed as the model's own. Past the breakdown
    line the grammar checker rejects more and more samples, until at the largest scales none is well formed, yet
    every one still counts as "negative" [...] The fluency after the neutral context tells the same story (near the
    unsteered value at the sweet spot, several nats per token lower at the largest scales)" """
    sweep = {scale: (neg, wf, flu) for scale, neg, wf, flu in nb04["sweep"]}
    spot, broken = nb04["spot"], nb04["broken"]
    neg0, wf0, flu0 = sweep[0]
    neg_s, wf_s, flu_s = sweep[spot]
    assert mean(neg0) <= 0.25 and mean(neg_s) >= 0.9
    assert mean(wf_s) >= mean(wf0) - 0.1
    assert broken is not None and broken > spot
    largest = sorted(sweep)[-2:]
    for scale in largest:
        neg, wf, _ = sweep[scale]
        assert max(wf) == 0 and min(neg) == 1.0
    past = [mean(sweep[s][1]) for s in sorted(sweep) if s >= broken]
    assert all(a >= b for a, b in zip(past, past[1:]))  # fewer and fewer well formed
    assert abs(mean(flu_s) - mean(flu0)) <= 0.5
    assert all(mean(sweep[s][2]) <= mean(flu0) - 2.0 for s in largest)


def test_04_panel_default_run_shows_the_difference_in_every_seed(nb04):
    """ "in the default run the steered share of negative samples lies above the unsteered one in each of the three
    seeds" """
    panel = nb04["panel"]
    assert len(panel["unsteered"]) == 3 and max(panel["unsteered"]) < min(panel["steered"])



def _arm(nb04, arm, i):
    """Per-seed values of one baseline arm: i = 0 share negative, 1 share well formed, 2 fluency."""
    return [row[i] for row in nb04["arms"][arm]]


def test_04_baselines_run_five_seeds_at_the_length_of_section_4(nb04):
    assert len(nb04["base_seeds"]) == 5 and 20 < nb04["base_length"] < 40
    assert list(nb04["arms"]) == ["unsteered", "random", "difference of means", "SAE", "prompting"]
    assert all(len(v) == 5 for v in nb04["arms"].values())


def test_04_a_random_direction_changes_almost_nothing(nb04):
    """ "a random direction of the same length changes almost nothing. In every seed it turns far fewer
    continuations negative than the SAE vector, about as few as the unsteered model, and its text stays as well
    formed" """
    rand, sae, un = (_arm(nb04, a, 0) for a in ("random", "SAE", "unsteered"))
    assert max(rand) + 0.4 < min(sae)  # far fewer, in every seed
    assert abs(mean(rand) - mean(un)) <= 0.1 and max(rand) <= 0.3
    assert abs(mean(_arm(nb04, "random", 1)) - mean(_arm(nb04, "unsteered", 1))) <= 0.05


def test_04_a_difference_of_means_beats_the_sae_vector_in_every_seed(nb04):
    """ "the difference of means [...] does better than the SAE vector: in every seed it turns more continuations
    negative (nearly all), and its text stays about as well formed as the unsteered model's" (also the summary:
    "turns more continuations negative than the SAE vector, in every seed") """
    dom, sae = _arm(nb04, "difference of means", 0), _arm(nb04, "SAE", 0)
    assert min(dom) > max(sae) and mean(dom) >= 0.95
    wf_dom, wf_un = _arm(nb04, "difference of means", 1), _arm(nb04, "unsteered", 1)
    assert min(wf_dom) >= 0.85 and mean(wf_un) - mean(wf_dom) <= 0.1


def test_04_prompting_falls_short_of_the_difference_of_means_in_every_seed(nb04):
    """ "Prompting falls short of the difference of means in every seed" """
    assert max(_arm(nb04, "prompting", 0)) < min(_arm(nb04, "difference of means", 0))


def test_04_difference_of_means_shares_a_direction_with_the_sae_vector_but_is_not_it(nb04):
    """ "the two vectors share a direction but are not the same (the cosines printed above lie between 0.2 and
    0.9)" """
    assert len(nb04["cos_dom_sae"]) == 5 and all(0.2 < c < 0.9 for c in nb04["cos_dom_sae"])
