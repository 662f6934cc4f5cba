"""Claim tests for notebook 04_steering.ipynb: each result sentence, checked against the executed notebook (offline).

Runs natively and on a second CPU code path with another seed offset (see the Makefile's `claims-second-path`).
"""
from __future__ import annotations

import pytest

from tests.claims.harness import notebook_values, register

NOTEBOOK = "04_steering.ipynb"
VALUES = {
        "prompt": "PROMPT", "latents": "LATENTS", "latent_aurocs": "[float(auroc[i]) for i in LATENTS]",
        "magnitudes": "mags.tolist()",
        "cos_unit": "float(torch.cosine_similarity(vectors['unit'], vectors['ones'], dim=0))",
        "cos_measured": "float(torch.cosine_similarity(vectors['measured'], vectors['ones'], dim=0))",
        "before_after": "{k.split(' (')[0]: fraction_negative(v, METHOD) for k, v in cols.items()}",
        "hooks_left": "len(model.hook_dict[sae.hook_name].fwd_hooks)",
        "combos": "[(r[0], float(r[1].rstrip('%')) / 100) for r in rows]",
        "curves": "{m: [(p.negative, p.fluency) for p in pts] for m, pts in curves.items()}",
        "sweep": "[(p.scale, p.negative, p.fluency) for p in points]", "spot": "spot", "broken": "broken",
        "panel": "{k.split(' (')[0]: fraction_negative(v, METHOD) for k, v in panel.columns.items()}",
    }
register(NOTEBOOK, VALUES)


@pytest.fixture(scope="session")
def nb04() -> dict:
    return notebook_values(NOTEBOOK)


def test_04_settings_the_positive_context_stays_positive_unsteered(nb04):
    """ "it starts from a clearly positive context, "i love him. he is such a": unsteered, the model continues it
    positively" """
    assert nb04["prompt"] == "i love him. he is such a"
    assert nb04["sweep"][0][0] == 0 and nb04["sweep"][0][1] <= 0.1  # 24 samples at scale 0
    assert nb04["before_after"]["sampled, unsteered"] <= 0.25 and nb04["before_after"]["greedy, unsteered"] == 0


def test_04_latents_separate_perfectly_where_sentiment_is_known(nb04):
    """ "single latents of the tiny world's SAE separate negative from positive prompts perfectly (AUROC 1.0 for all
    four we use below)" """
    assert len(nb04["latents"]) == 4 and nb04["latent_aurocs"] == [1.0] * 4


def test_04_latents_fire_on_a_real_negative_sentence(nb04):
    """ "On a real negative sentence they fire with a typical size" """
    assert all(m > 0 for m in nb04["magnitudes"])


def test_04_vector_ones_and_unit_point_the_same_way(nb04):
    """ ""ones" and "unit" point the same way (they differ only in length); "measured" leans toward whichever latent
    fires harder" """
    assert nb04["cos_unit"] > 0.999 and nb04["cos_measured"] < 0.99


def test_04_before_after_steered_samples_turn_negative(nb04):
    """ "In the tiny world, from the positive context, the unsteered samples stay positive and most steered ones turn
    negative [...] The hook lives only inside the `with` block (0 hooks left after it)" """
    ba = nb04["before_after"]
    assert ba["sampled, unsteered"] <= 0.25 and ba["sampled, steered"] > 0.5
    assert nb04["hooks_left"] == 0


def test_04_combining_more_latents_usually_push_harder(nb04):
    """ "each added latent adds its own direction, so at a fixed scale more latents usually push harder" """
    shares = [share for _, share in nb04["combos"]]
    assert len(shares) == 4 and shares[-1] > shares[0]
    assert sum(b >= a for a, b in zip(shares, shares[1:])) >= len(shares) - 2


def test_04_magnitudes_ones_and_unit_coincide(nb04):
    """ "then "ones" and "unit" (same direction) must coincide" (plotted against the length added)"""
    ones, unit = nb04["curves"]["ones"], nb04["curves"]["unit"]
    assert [n for n, _ in ones] == [n for n, _ in unit]
    assert all(abs(a - b) < 0.05 for (_, a), (_, b) in zip(ones, unit))


def test_04_sweep_has_a_window(nb04):
    """ "Below it the effect is partial, inside it the sentiment flips while the text stays fluent (the sweet spot
    printed above), and beyond it fluency collapses even though the "negativity" stays high" """
    sweep, spot, broken = nb04["sweep"], nb04["spot"], nb04["broken"]
    base = sweep[0][2]
    at_spot = next(p for p in sweep if p[0] == spot)
    assert at_spot[1] >= 0.9 and at_spot[2] >= base - 1.0
    assert all(p[1] < at_spot[1] for p in sweep if p[0] < spot)
    assert broken is not None and broken > spot
    beyond = [p for p in sweep if p[0] >= broken]
    assert all(p[2] < base - 1.0 and p[1] >= 0.9 for p in beyond)


def test_04_panel_default_run_shows_the_difference(nb04):
    """ "The panel opens with its default run: the positive prompt of section 1, unsteered and steered side by side"
    (issue #14: the default run should differ visibly)"""
    panel = nb04["panel"]
    assert panel["sampled, unsteered"] <= 0.25 and panel["sampled, steered"] >= panel["sampled, unsteered"] + 0.5
