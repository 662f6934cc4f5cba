"""Notebook 06's experiment helpers: the hierarchical toy, the shared budget, the cards and the bad-input errors."""
import pytest
import torch

from saelab import ground_truth as gt
from saelab import saebench


def test_toy_world_makes_parents_present_wherever_a_child_is():
    toy = saebench.toy_world(seed=0, n_samples=2048)
    for parent, children in saebench.PARENTS.items():
        child = (toy.codes[:, children] > 0).any(1)
        assert (toy.codes[child, parent] > 0).all()
    assert torch.allclose(toy.x, toy.codes @ toy.features)


def test_add_hierarchy_by_hand_and_its_error():
    codes = torch.tensor([[0.0, 0.7, 0.0], [0.2, 0.0, 0.0], [0.5, 0.0, 0.9]])
    want = torch.tensor([[0.7, 0.7, 0.0], [0.2, 0.0, 0.0], [0.9, 0.0, 0.9]])
    assert torch.equal(gt.add_hierarchy(codes, {0: [1, 2]}), want)
    with pytest.raises(ValueError, match="children other than itself"):
        gt.add_hierarchy(codes, {0: [0]})


def test_train_toy_sae_and_card_for_a_topk_sae():
    toy = saebench.toy_world(seed=0, n_samples=2048)
    sae = saebench.train_toy_sae("topk", toy, seed=0, n_steps=100)
    card = saebench.toy_card(sae, toy)
    assert set(card) == {"L0", "FVU", "dead", "mcc", "precision", "recall", "f1", "uniqueness", "shrinkage",
                         "absorption"}
    assert 1.5 <= card["L0"] <= 2.0 and 0 < card["FVU"] < 1 and 0 <= card["absorption"] <= 1


def test_make_sae_sparsity_means_k_or_a_coefficient():
    sae, setting = saebench.make_sae("batchtopk", 16, 64, sparsity=3)
    assert sae.k == 3 and setting == saebench.AUXK  # the TopK family trains with AuxK
    sae, setting = saebench.make_sae("jumprelu", 16, 64, sparsity=0.1)
    assert sae.k is None and setting == {"l0_coef": 0.1}
    with pytest.raises(ValueError, match="unknown SAE architecture 'vanilla'"):
        saebench.make_sae("vanilla", 16, 64)


def test_an_sae_of_the_wrong_width_for_the_hook_gets_a_clear_error():
    sae, _ = saebench.make_sae("relu", 16, 64, hook_name="blocks.2.hook_resid_post")
    with pytest.raises(ValueError, match="width 32 but this SAE reads 16 .*wrong width for the hook"):
        saebench.check_fits(sae, torch.zeros(5, 32))


def test_spreads_and_table():
    cards = {"topk": [{"L0": 2.0, "FVU": 0.1}, {"L0": 2.0, "FVU": 0.2}]}
    table = saebench.spreads(cards)
    assert table["topk"]["FVU"].lo == 0.1 and table["topk"]["FVU"].hi == 0.2
    text = saebench.format_table(table)
    assert "TopK" in text and "0.15 (0.10-0.20)" in text


def test_at_l0_interpolates_one_seeds_curve_and_refuses_to_extrapolate():
    assert saebench.at_l0([1.0, 2.0, 4.0], [0.5, 0.3, 0.1], 3.0) == pytest.approx(0.2)
    assert saebench.at_l0([4.0, 1.0, 2.0], [0.1, 0.5, 0.3], 1.5) == pytest.approx(0.4)  # any order of settings
    with pytest.raises(ValueError, match="outside this curve's range"):
        saebench.at_l0([1.0, 2.0], [0.5, 0.3], 2.5)


def test_matched_reads_every_metric_at_one_l0_per_seed():
    curves = {"a": [[{"L0": 1.0, "m": 0.0}, {"L0": 1.0, "m": 1.0}],
                    [{"L0": 3.0, "m": 1.0}, {"L0": 5.0, "m": 3.0}]]}
    out = saebench.matched(curves, l0=2.0)
    assert out["a"]["m"].values == pytest.approx((0.5, 1.5)) and out["a"]["L0"].values == (2.0, 2.0)


def test_sweep_toy_trains_each_setting_on_each_seed():
    toys = {s: saebench.toy_world(seed=s) for s in (0, 1)}
    curves = saebench.sweep_toy(toys, {"topk": (1, 3)}, progress=False, n_steps=30)
    assert len(curves["topk"]) == 2 and all(len(cards) == 2 for cards in curves["topk"])
    assert all(abs(c["L0"] - k) < 0.3 for k, cards in zip((1, 3), curves["topk"]) for c in cards)
