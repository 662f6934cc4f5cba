"""Notebook 06's tiny-world bench: the task's labels, one shared budget per architecture, the card, the errors."""
import math

import pytest
import torch

from saelab import worldbench as wb
from saelab.sae import SAE
from saelab.models import load_model
from saelab.pretrained import load_sae
from saelab.tinyworld import SAE_HOOK, generate_stories


@pytest.fixture(scope="module")
def task():
    return wb.world_task(load_model("tiny-world"), {"train": generate_stories(60, seed=1), "test": generate_stories(40, seed=2)})


def test_world_task_lines_up_tokens_stories_and_labels(task):
    n_train, n_test = len(task.acts["train"]), len(task.acts["test"])
    assert len(task.words) == n_train + n_test and task.facts["train"].n == n_train
    assert len(task.ids["test"]) == n_test and int(task.ids["test"].max()) == 39
    assert {c: len(y["train"]) for c, y in task.story_y.items()} == dict.fromkeys(wb.CONCEPTS, 60)
    assert bool(task.negative[~task.known].any()) is False  # a token is negative only where sentiment is known
    assert len(task.texts) == min(40, wb.SPLICE_TEXTS)


def test_world_task_wants_a_train_and_a_test_split():
    with pytest.raises(ValueError, match="'train'"):
        wb.world_task(load_model("tiny-world"), {"train": generate_stories(5, seed=1)})


@pytest.mark.parametrize("name", list(wb.WORLD_SETTINGS))
def test_train_world_sae_gives_each_architecture_its_setting(task, name):
    sae = wb.train_world_sae(name, task, seed=0, n_latents=64, n_steps=20)
    assert sae.activation == name and sae.normalize and sae.hook_name == SAE_HOOK
    if name in ("topk", "batchtopk", "matryoshka"):
        assert sae.k == wb.WORLD_SETTINGS[name]["k"]
    if name == "jumprelu":  # thresholds start at WORLD_JUMP_INIT, then move by about lr per step at most
        moved = (sae.log_threshold - math.log(wb.WORLD_JUMP_INIT)).abs().max().item()
        assert 0 < moved <= 20 * wb.WORLD_BUDGET["lr"] * 1.5


def test_world_card_of_the_bundled_sae(task):
    sae = load_sae("tiny-world")
    card = wb.world_card(sae, task)
    assert set(card) == {"L0", "FVU", "loss recovered", "CE increase", "probe k=1", "probe k=2", "absorption",
                         "caught", "main latents", "detection", "fuzzing", "simulation"}
    assert 1 <= card["main latents"] <= 5  # chosen by k-sparse probing (absorption.main_latents)
    assert 15.5 <= card["L0"] <= 16.0  # a TopK SAE with k = 16 (a few tokens may have fewer positive latents)
    assert 0 < card["FVU"] < 0.2 and card["loss recovered"] > 0.9
    assert all(0 <= card[k] <= 1 for k in ("probe k=1", "probe k=2", "absorption", "caught", "detection"))
    assert card["probe k=2"] > 0.6  # better than chance on held-out stories


def test_world_card_refuses_an_sae_of_another_width(task):
    with pytest.raises(ValueError, match="wrong width"):
        wb.world_card(SAE(32, 64, "topk", k=4), task)
