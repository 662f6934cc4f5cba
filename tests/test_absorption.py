"""Absorption on a case built by hand: a parent latent, a child latent that carries the parent, and noise."""
import pytest
import torch

from saelab import absorption as ab

# d = 3: e0 is the parent direction; latent 0 = parent, latent 1 = a child that contains the parent
# (cos 0.8 with e0), latent 2 = unrelated (orthogonal)
W_DEC = torch.tensor([[1.0, 0.8, 0.0], [0.0, 0.6, 0.0], [0.0, 0.0, 1.0]])
PARENT_DIR = torch.tensor([1.0, 0.0, 0.0])


def test_absorption_rate_on_a_hand_built_case():
    latents = torch.tensor([
        [1.0, 0.0, 0.0],  # parent latent fires: caught
        [0.7, 0.2, 0.0],  # parent fires (child too): caught
        [0.0, 1.0, 0.0],  # parent silent, child carries e0: absorbed by latent 1
        [0.0, 0.0, 1.0],  # parent silent, only an unrelated latent: missed
        [0.0, 1.0, 0.0],  # not a parent token: ignored
    ])
    parent = torch.tensor([True, True, True, True, False])
    out = ab.absorption(latents, W_DEC, parent, PARENT_DIR, main_latents=[0])
    assert out["n"] == 4
    assert out["rate"] == pytest.approx(0.25) and out["caught"] == pytest.approx(0.5)
    assert out["missed"] == pytest.approx(0.25)
    assert out["absorber"].tolist() == [-1, -1, 1, -1, -1]
    # a child whose decoder barely carries the parent does not count as absorbing it
    weak = W_DEC.clone()
    weak[:, 1] = torch.tensor([0.05, 0.998, 0.0])
    assert ab.absorption(latents, weak, parent, PARENT_DIR, [0], min_cos=0.1)["rate"] == 0.0


def test_tokens_where_the_probe_disagrees_are_left_out():
    latents = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    parent = torch.tensor([True, True])
    out = ab.absorption(latents, W_DEC, parent, PARENT_DIR, [0], probe_holds=torch.tensor([True, False]))
    assert out["n"] == 1 and out["rate"] == 1.0


def test_bad_input_gets_clear_errors():
    latents = torch.zeros(4, 3)
    with pytest.raises(ValueError, match="W_dec has 2 latents but latents have 3"):
        ab.absorption(latents, W_DEC[:, :2], torch.tensor([True, False, True, False]), PARENT_DIR, [0])
    with pytest.raises(ValueError, match="parent has 3 entries"):
        ab.absorption(latents, W_DEC, torch.tensor([True, False, True]), PARENT_DIR, [0])
    with pytest.raises(ValueError, match="wrong width for this hook"):
        ab.parent_absorption(latents, torch.zeros(4, 5), W_DEC, torch.tensor([1, 0, 1, 0]).bool(),
                             torch.tensor([0, 1, 0, 1]).bool())


def test_parent_absorption_end_to_end_on_synthetic_tokens():
    g = torch.Generator().manual_seed(0)
    n = 400
    kind = torch.arange(n) % 4  # 0: parent word, 1: child word (implies parent), 2-3: other concept
    parent = kind <= 1
    acts = torch.randn(n, 3, generator=g) * 0.05
    acts[:, 0] += parent.float()  # the model keeps the parent direction on both parent and child tokens
    acts[:, 1] += 0.75 * (kind == 1).float()
    acts[:, 2] += (kind >= 2).float()
    latents = torch.zeros(n, 3)
    latents[:, 0] = (kind == 0).float()  # the parent latent fires only on the parent word
    latents[:, 1] = (kind == 1).float()  # the child latent takes over on the child word: absorption
    latents[:, 2] = (kind >= 2).float()
    out = ab.parent_absorption(latents, acts, W_DEC, parent, kind >= 2)
    assert out["main_latents"] == [0] or out["main_latents"] == [1]
    assert out["probe_accuracy"] > 0.95
    assert out["rate"] == pytest.approx(0.5, abs=0.05)  # half the parent tokens are child tokens
    words = ["parent", "child", "x", "y"] * (n // 4)
    assert ab.absorbing_words(out, words)[0][0] in ("child", "parent")
