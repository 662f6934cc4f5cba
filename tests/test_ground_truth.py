"""Ground-truth metrics on hand-built cases: every number here is computed by hand."""
import pytest
import torch

from saelab import ground_truth as gt
from saelab.sae import SAE


def test_hungarian_matching_recovers_a_permuted_identity():
    perm = torch.tensor([3, 0, 4, 1, 2])
    W_dec = torch.eye(5)[:, perm]  # latent j points at feature perm[j]
    out = gt.mcc(W_dec, torch.eye(5))
    assert out["mcc"] == pytest.approx(1.0)
    assert torch.equal(perm[out["latent"]], torch.arange(5))  # feature i is matched to the latent that holds it


def test_mcc_is_the_mean_matched_cosine_and_sign_does_not_matter():
    feats = torch.eye(2)
    c = 0.6
    W_dec = torch.tensor([[c, 0.0, 0.0], [0.8, -1.0, 0.0]])  # latent 0: cos 0.6 / 0.8; latent 1: -feature 1
    out = gt.mcc(W_dec, feats)
    # greedy would give feature 1 to latent 0 (0.8); Hungarian gives feature 0 -> latent 0 (0.6), 1 -> latent 1 (1.0)
    assert out["latent"].tolist() == [0, 1] and out["mcc"] == pytest.approx(0.8)


def test_matching_needs_enough_latents_and_the_same_width():
    with pytest.raises(ValueError, match="at least as many latents"):
        gt.mcc(torch.randn(4, 2), torch.randn(3, 4))
    with pytest.raises(ValueError, match="d=4 rows but true features have d=5"):
        gt.mcc(torch.randn(4, 8), torch.randn(3, 5))


def test_precision_recall_f1_by_hand():
    codes = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    latents = torch.tensor([[0.5, 0.0], [0.0, 0.0], [0.3, 0.9], [0.0, 0.2]])
    out = gt.detection(latents, codes, torch.tensor([0, 1]))
    # feature 0 / latent 0: fires on rows 0, 2; present on 0, 1 -> precision 1/2, recall 1/2
    # feature 1 / latent 1: fires on rows 2, 3; present on 2 -> precision 1/2, recall 1
    assert out["precision"].tolist() == pytest.approx([0.5, 0.5])
    assert out["recall"].tolist() == pytest.approx([0.5, 1.0])
    assert out["f1"].tolist() == pytest.approx([0.5, 2 / 3])
    with pytest.raises(ValueError, match="latents have 3 rows but codes have 4"):
        gt.detection(latents[:3], codes, torch.tensor([0, 1]))


def test_uniqueness_counts_latents_that_share_a_feature():
    feats = torch.eye(3)
    # latents 0 and 1 both point at feature 0, latent 2 at feature 2, latent 3 at nothing in particular
    W_dec = torch.tensor([[1.0, 0.9, 0.0, 0.4], [0.0, 0.1, 0.0, 0.4], [0.0, 0.0, 1.0, 0.4]])
    out = gt.uniqueness(W_dec, feats, min_cos=0.8)
    assert out["n_close"] == 3 and out["uniqueness"] == pytest.approx(2 / 3)
    assert out["latents_per_feature"].tolist() == [2, 0, 1]


def test_shrinkage_of_a_hand_built_relu_sae():
    sae = SAE(2, 2, "relu", normalize=False)
    with torch.no_grad():
        sae.encoder.weight.copy_(torch.eye(2))
        sae.decoder.weight.copy_(torch.eye(2))
        sae.latent_bias.fill_(-0.25)  # every latent reads its feature minus 0.25: 25% shrinkage at magnitude 1
        sae.pre_bias.zero_()
    out = gt.shrinkage(sae, torch.eye(2), magnitude=1.0)
    assert out["kept"].tolist() == pytest.approx([0.75, 0.75]) and out["shrinkage"] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="d=3 but the SAE reads d=2"):
        gt.shrinkage(sae, torch.eye(3))
