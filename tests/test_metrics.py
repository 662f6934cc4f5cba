import pytest
import torch
import torch.nn.functional as F

from saelab import metrics


def test_l0_counts_nonzeros_per_token():
    latents = torch.tensor([[0.0, 1.0, 2.0, 0.0], [3.0, 0.0, 0.0, 0.0]])
    assert metrics.l0(latents) == pytest.approx(1.5)
    assert metrics.l0(latents.reshape(1, 2, 4)) == pytest.approx(1.5)  # [batch, pos, n] works too


def test_fvu_matches_direct_formula_and_edge_cases():
    g = torch.Generator().manual_seed(0)
    x, x_hat = torch.randn(50, 8, generator=g), torch.randn(50, 8, generator=g)
    direct = ((x - x_hat) ** 2).sum() / ((x - x.mean(0)) ** 2).sum()
    assert metrics.fraction_variance_unexplained(x, x_hat) == pytest.approx(direct.item(), rel=1e-5)
    assert metrics.fraction_variance_unexplained(x, x) == 0.0
    mean_only = x.mean(0).expand_as(x)
    assert metrics.fraction_variance_unexplained(x, mean_only) == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ValueError, match="same shape"):
        metrics.fraction_variance_unexplained(x, x[:, :4])


def test_dead_fraction_from_counts_and_activations():
    assert metrics.dead_fraction(torch.tensor([0, 3, 0, 1])) == 0.5
    acts = torch.tensor([[0.0, 1.0, 0.0], [0.0, 2.0, 0.5]])
    assert metrics.dead_fraction(acts) == pytest.approx(1 / 3)


def test_decoder_orthogonality_exact():
    assert metrics.decoder_orthogonality(torch.eye(4) * 3.0) == 0.0  # scale does not matter
    W = torch.tensor([[1.0, 1.0], [0.0, 1.0]])  # columns at 45 degrees
    assert metrics.decoder_orthogonality(W) == pytest.approx(2 ** -0.5, rel=1e-5)
    g = torch.Generator().manual_seed(1)
    W = torch.randn(16, 40, generator=g)
    U = F.normalize(W, dim=0)
    direct = sum(abs((U[:, i] @ U[:, j]).item()) for i in range(40) for j in range(40) if i != j) / (40 * 39)
    assert metrics.decoder_orthogonality(W) == pytest.approx(direct, rel=1e-4)


def test_sampled_orthogonality_close_to_exact_and_unbiased():
    W = torch.randn(64, 512, generator=torch.Generator().manual_seed(2))
    exact = metrics.decoder_orthogonality(W)
    one = metrics.decoder_orthogonality_sampled(W, n_pairs=20000, seed=0)
    assert one == pytest.approx(exact, rel=0.03)
    # unbiased: the mean over many seeds approaches the exact value much closer than one draw's spread
    draws = torch.tensor([metrics.decoder_orthogonality_sampled(W, n_pairs=500, seed=s) for s in range(100)])
    stderr = draws.std() / 100 ** 0.5
    assert abs(draws.mean().item() - exact) < 4 * stderr.item()


def test_sampled_orthogonality_never_pairs_a_latent_with_itself():
    # 2 orthogonal latents: any i == i pair would add |cos| = 1 to the estimate
    assert metrics.decoder_orthogonality_sampled(torch.eye(2), n_pairs=1000) == 0.0


def test_sampled_orthogonality_scales_to_131072_latents():
    W = torch.randn(8, 131072)
    value = metrics.decoder_orthogonality_sampled(W, n_pairs=4096, seed=0)
    assert 0.2 < value < 0.4  # E|cos| of random 8-d directions is ~0.27


def test_feature_recovery_finds_permuted_features():
    feats = F.normalize(torch.randn(5, 8, generator=torch.Generator().manual_seed(3)), dim=-1)
    perm = torch.tensor([3, 0, 4, 1, 2, 5, 6])
    W_dec = torch.cat([feats, torch.randn(2, 8)]).T[:, perm] * 2.0  # columns, shuffled, rescaled
    rec = metrics.feature_recovery(W_dec, feats)
    assert rec["cos"].shape == (5, 7)
    assert rec["mean_best_cos"] == pytest.approx(1.0, abs=1e-5)
    assert torch.equal(perm[rec["best_latent"]], torch.arange(5))
    with pytest.raises(ValueError, match="W_dec"):
        metrics.feature_recovery(W_dec.T, feats)


def test_auroc_matches_a_direct_pairwise_count():
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 4, (41, 6), generator=g).float()  # many ties
    labels = torch.rand(41, generator=g) < 0.4
    a, b = scores[labels], scores[~labels]
    direct = ((a[:, None] > b[None]).float().mean((0, 1)) + 0.5 * (a[:, None] == b[None]).float().mean((0, 1)))
    assert torch.allclose(metrics.auroc(scores, labels), direct)
    assert torch.allclose(metrics.auroc(scores, labels, chunk=2), direct)  # chunking changes nothing
    assert float(metrics.auroc(scores[:, 0], labels)) == pytest.approx(float(direct[0]))
    with pytest.raises(ValueError, match="both classes"):
        metrics.auroc(scores, torch.ones(41, dtype=torch.bool))


def test_mean_by_group_averages_rows_that_share_an_id():
    from saelab.metrics import mean_by_group
    scores = torch.tensor([[1.0, 0.0], [3.0, 2.0], [5.0, 4.0], [7.0, 6.0]])
    ids, means = mean_by_group(scores, torch.tensor([9, 2, 9, 9]))
    assert ids.tolist() == [2, 9]
    assert torch.allclose(means, torch.tensor([[3.0, 2.0], [13 / 3, 10 / 3]]))
    assert mean_by_group(scores[:, 0], torch.tensor([0, 0, 1, 1]))[1].tolist() == [2.0, 6.0]
    with pytest.raises(ValueError, match="one group id per row"):
        mean_by_group(scores, torch.tensor([0, 1]))


def test_concept_auroc_leaves_out_unknown_rows_and_can_score_groups():
    from saelab.metrics import concept_auroc
    scores = torch.tensor([[9.0], [1.0], [0.0], [0.0], [3.0], [0.0]])
    labels = ["none", "negative", "positive", "negative", "positive", "positive"]
    # per row: "none" dropped, then negatives (1, 0) vs positives (0, 3, 0)
    want = metrics.auroc(scores[1:], torch.tensor([True, False, True, False, False]))
    assert torch.allclose(concept_auroc(scores, labels, "negative"), want)
    # per group: group 0 = rows 0-3 (mean over labelled rows 1-3 = 1/3, label of row 1: negative),
    # group 1 = rows 4-5 (mean 1.5, positive)
    groups = torch.tensor([0, 0, 0, 0, 1, 1])
    assert concept_auroc(scores, labels, "negative", groups).tolist() == [0.0]
    assert concept_auroc(scores[:, 0], labels, "positive", groups).item() == 1.0
    with pytest.raises(ValueError, match="one label per row"):
        concept_auroc(scores, labels[:-1], "negative")


def test_last_rows_finds_each_groups_last_row_and_rejects_bad_input():
    assert metrics.last_rows(torch.tensor([0, 0, 1, 1, 1, 2])).tolist() == [1, 4, 5]
    assert metrics.last_rows(torch.tensor([3, 1, 3, 1])).tolist() == [3, 2]  # groups sorted by id
    with pytest.raises(ValueError, match="non-empty 1-d"):
        metrics.last_rows(torch.tensor([]))


def test_rank_latents_orders_by_auroc_where_the_concept_is_known():
    scores = torch.tensor([[0.0, 1.0, 0.5], [1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [9.0, 0.0, 0.5]])
    order, au = metrics.rank_latents(scores, ["a", "b", "a", "none"], "a")  # the "none" row is left out
    assert order == [1, 2, 0] and au.tolist() == [0.0, 1.0, 0.5]
    order, au = metrics.rank_latents(scores, ["a", "a", "b", "b"], "a", groups=torch.tensor([0, 0, 1, 1]))
    assert au.tolist() == [0.0, 0.5, 0.5] and order == [1, 2, 0]  # ties keep column order
