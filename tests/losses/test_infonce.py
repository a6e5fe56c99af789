import math

import pytest
import torch
import torch.nn.functional as F

from embexp.errors import ConfigError
from embexp.losses import InfoNCELoss, candidate_ids, false_negative_mask
from embexp.losses.infonce import compute_loss_from_embeddings, infonce_logits


def lse(*xs):
    m = max(xs)
    return m + math.log(sum(math.exp(x - m) for x in xs))


def ce(target_logit, *row):
    """-log softmax of the target given the whole row (which includes the target)."""
    return -(target_logit - lse(*row))


# Two queries, dimension 2, unit vectors.
Q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
P = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
# One hard negative each: n_0 = (0, 1), n_1 = (-1, 0)
NEG = torch.tensor([[[0.0, 1.0]], [[-1.0, 0.0]]])


def unit(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g), dim=-1)


def test_defaults_and_scale():
    assert InfoNCELoss().temperature == 0.05
    assert InfoNCELoss(temperature=0.05).scale == pytest.approx(20.0)


def test_in_batch_only_hand_computed():
    tau = 0.5
    # row 0: q0.p0 = 1, q0.p1 = 0.6 ; row 1: q1.p0 = 0, q1.p1 = 0.8
    r0 = ce(1 / tau, 1 / tau, 0.6 / tau)
    r1 = ce(0.8 / tau, 0 / tau, 0.8 / tau)
    expected = (r0 + r1) / 2
    got = compute_loss_from_embeddings(Q, P, temperature=tau)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    assert InfoNCELoss(temperature=tau)(Q, P).item() == pytest.approx(expected, rel=1e-6)


def test_hard_negatives_are_shared_across_rows_hand_computed():
    tau = 0.5
    # candidates [p0, p1, n0, n1]
    # row 0, q0 = (1, 0):  [1, 0.6, 0, -1]
    # row 1, q1 = (0, 1):  [0, 0.8, 1, 0]
    r0 = ce(1 / tau, 1 / tau, 0.6 / tau, 0 / tau, -1 / tau)
    r1 = ce(0.8 / tau, 0 / tau, 0.8 / tau, 1 / tau, 0 / tau)
    got = compute_loss_from_embeddings(Q, P, NEG, temperature=tau)
    assert got.item() == pytest.approx((r0 + r1) / 2, rel=1e-6)
    logits = infonce_logits(Q, P, NEG, temperature=tau)
    assert logits.shape == (2, 2 + 2 * 1)
    assert torch.allclose(logits, torch.tensor([[1, 0.6, 0, -1], [0, 0.8, 1, 0]]) / tau)


def test_zero_hard_negatives_equals_none():
    q, p = unit(3, 4, seed=1), unit(3, 4, seed=2)
    empty = torch.empty(3, 0, 4)
    a = compute_loss_from_embeddings(q, p, empty, temperature=0.1)
    b = compute_loss_from_embeddings(q, p, None, temperature=0.1)
    assert torch.equal(a, b)


def test_symmetric_term_hand_computed():
    tau = 0.5
    fwd = (ce(1 / tau, 1 / tau, 0.6 / tau) + ce(0.8 / tau, 0 / tau, 0.8 / tau)) / 2
    # passage -> query: p0 vs [q0, q1] = [1, 0] ; p1 vs [q0, q1] = [0.6, 0.8]
    bwd = (ce(1 / tau, 1 / tau, 0 / tau) + ce(0.8 / tau, 0.6 / tau, 0.8 / tau)) / 2
    got = compute_loss_from_embeddings(Q, P, temperature=tau, symmetric=True)
    assert got.item() == pytest.approx((fwd + bwd) / 2, rel=1e-6)
    # hard negatives only enter the forward term
    fwd_neg = compute_loss_from_embeddings(Q, P, NEG, temperature=tau).item()
    got_neg = InfoNCELoss(temperature=tau, symmetric=True)(Q, P, NEG)
    assert got_neg.item() == pytest.approx((fwd_neg + bwd) / 2, rel=1e-6)


@pytest.mark.parametrize("tau", [1.0, 0.1, 0.02])
def test_temperature_divides_the_cosine(tau):
    r0 = ce(1 / tau, 1 / tau, 0.6 / tau)
    r1 = ce(0.8 / tau, 0 / tau, 0.8 / tau)
    got = compute_loss_from_embeddings(Q, P, temperature=tau)
    assert got.item() == pytest.approx((r0 + r1) / 2, rel=1e-5, abs=1e-7)


def test_lower_temperature_sharpens():
    # positives are the most similar candidates, so a colder softmax gives a lower loss
    a = compute_loss_from_embeddings(Q, P, temperature=1.0)
    b = compute_loss_from_embeddings(Q, P, temperature=0.1)
    assert b < a


@pytest.mark.parametrize("bad", [0, 0.0, -0.05, float("inf"), float("nan"), "0.05", True])
def test_bad_temperature_raises_naming_the_key(bad):
    with pytest.raises(ValueError, match=r"loss\.temperature") as err:
        InfoNCELoss(temperature=bad)
    assert isinstance(err.value, ConfigError) and err.value.key == "loss.temperature"
    with pytest.raises(ValueError, match=r"loss\.temperature"):
        compute_loss_from_embeddings(Q, P, temperature=bad)


def test_mask_changes_exactly_the_masked_logits():
    q, p, neg = unit(3, 4, seed=3), unit(3, 4, seed=4), unit(3, 2, 4, seed=5)
    mask = torch.zeros(3, 3 + 3 * 2, dtype=torch.bool)
    mask[0, 2] = mask[1, 3 + 0] = mask[2, 3 + 5] = True
    plain = infonce_logits(q, p, neg, temperature=0.05)
    masked = infonce_logits(q, p, neg, temperature=0.05, mask=mask)
    assert torch.equal(masked[~mask], plain[~mask])
    assert (masked[mask] == torch.finfo(torch.float32).min).all()


def test_masked_loss_equals_loss_without_those_candidates():
    tau = 0.5
    # candidates [p0, p1, n0, n1]; mask row 0's view of p1 and row 1's view of n0
    mask = torch.tensor([[False, True, False, False], [False, False, True, False]])
    r0 = ce(1 / tau, 1 / tau, 0 / tau, -1 / tau)  # p1 (0.6) removed
    r1 = ce(0.8 / tau, 0 / tau, 0.8 / tau, 0 / tau)  # n0 (1.0) removed
    got = compute_loss_from_embeddings(Q, P, NEG, temperature=tau, mask=mask)
    assert got.item() == pytest.approx((r0 + r1) / 2, rel=1e-6)

    # same on random embeddings, removal done with torch per row
    q, p, neg = unit(3, 4, seed=6), unit(3, 4, seed=7), unit(3, 2, 4, seed=8)
    mask = torch.rand(3, 9, generator=torch.Generator().manual_seed(0)) < 0.4
    mask.fill_diagonal_(False)
    full = (q @ torch.cat([p, neg.reshape(6, 4)]).T) / 0.05
    rows = [-(full[i, i] - torch.logsumexp(full[i][~mask[i]], 0)) for i in range(3)]
    expected = torch.stack(rows).mean()
    got = compute_loss_from_embeddings(q, p, neg, temperature=0.05, mask=mask)
    assert torch.allclose(got, expected, atol=1e-5)


def test_masked_candidate_gets_zero_gradient():
    q, p = unit(3, 4, seed=9), unit(3, 4, seed=10)
    neg = unit(3, 2, 4, seed=11).requires_grad_(True)
    mask = torch.zeros(3, 9, dtype=torch.bool)
    mask[:, 3 + 1] = True  # row 0's second hard negative, masked for every query
    loss = compute_loss_from_embeddings(q, p, neg, temperature=0.05, mask=mask)
    loss.backward()
    assert torch.equal(neg.grad[0, 1], torch.zeros(4))
    assert neg.grad[0, 0].abs().sum() > 0  # unmasked neighbours still learn


def test_diagonal_is_never_masked():
    q, p = unit(3, 4, seed=12), unit(3, 4, seed=13)
    diag = torch.eye(3, dtype=torch.bool)
    a = compute_loss_from_embeddings(q, p, temperature=0.05, mask=diag, symmetric=True)
    b = compute_loss_from_embeddings(q, p, temperature=0.05, symmetric=True)
    assert torch.equal(a, b)


def test_duplicate_positive_with_false_negative_mask():
    # both rows share doc d1 (identical embeddings): without the mask each row sees
    # its duplicate as a negative, with it the only candidate left is the positive.
    q = torch.tensor([[1.0, 0.0], [0.8, 0.6]])
    p = torch.tensor([[0.6, 0.8], [0.6, 0.8]])
    mask = false_negative_mask(["d1", "d1"], candidate_ids(["d1", "d1"]))
    loss = InfoNCELoss(temperature=0.05, symmetric=True)
    assert loss(q, p, mask=mask).item() == pytest.approx(0.0, abs=1e-7)
    assert loss(q, p).item() > 0.1
    assert InfoNCELoss(temperature=0.05, mask_false_negatives=False)(q, p, mask=mask).item() > 0.1


def test_symmetric_term_uses_transposed_in_batch_mask():
    tau = 0.5
    # query 0 is labelled with both passages: mask[0, 1] -> in the backward term,
    # passage 1 must not treat query 0 as a negative.
    mask = torch.tensor([[False, True], [False, False]])
    fwd = (ce(1 / tau, 1 / tau) + ce(0.8 / tau, 0 / tau, 0.8 / tau)) / 2
    bwd = (ce(1 / tau, 1 / tau, 0 / tau) + ce(0.8 / tau, 0.8 / tau)) / 2
    got = compute_loss_from_embeddings(Q, P, temperature=tau, symmetric=True, mask=mask)
    assert got.item() == pytest.approx((fwd + bwd) / 2, rel=1e-6)


def test_mask_shape_is_checked():
    with pytest.raises(ValueError, match="mask"):
        compute_loss_from_embeddings(Q, P, NEG, temperature=0.05, mask=torch.zeros(2, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool"):
        compute_loss_from_embeddings(Q, P, temperature=0.05, mask=torch.zeros(2, 2))
    with pytest.raises(ValueError, match="negatives"):
        compute_loss_from_embeddings(Q, P, torch.zeros(2, 3), temperature=0.05)


def test_bf16_masked_loss_is_finite():
    q, p, neg = unit(4, 8, seed=14), unit(4, 8, seed=15), unit(4, 3, 8, seed=16)
    mask = torch.ones(4, 16, dtype=torch.bool)  # everything but the diagonal masked
    loss = compute_loss_from_embeddings(
        q.bfloat16(), p.bfloat16(), neg.bfloat16(), temperature=0.01, symmetric=True, mask=mask
    )
    assert torch.isfinite(loss) and loss.item() == pytest.approx(0.0, abs=1e-6)


def _st_formula(q, p, neg, scale, symmetric=False):
    """sentence-transformers MNRL: cos_sim(anchors, cat([pos, neg_col_1, ..., neg_col_N])) * scale."""
    docs = [p] + ([neg[:, k] for k in range(neg.shape[1])] if neg is not None else [])
    scores = F.normalize(q, dim=-1) @ F.normalize(torch.cat(docs), dim=-1).T * scale
    labels = torch.arange(q.shape[0])
    fwd = F.cross_entropy(scores, labels)
    if not symmetric:
        return fwd
    return (fwd + F.cross_entropy(scores[:, : q.shape[0]].T, labels)) / 2


@pytest.mark.parametrize("n_neg", [0, 1, 3])
@pytest.mark.parametrize("symmetric", [False, True])
def test_matches_sentence_transformers_formula(n_neg, symmetric):
    q, p = unit(8, 16, seed=17), unit(8, 16, seed=18)
    neg = unit(8, n_neg, 16, seed=19) if n_neg else None
    for tau in (0.05, 0.1):
        ours = compute_loss_from_embeddings(q, p, neg, temperature=tau, symmetric=symmetric)
        theirs = _st_formula(q, p, neg, scale=1 / tau, symmetric=symmetric)
        assert torch.allclose(ours, theirs, atol=1e-5)


@pytest.mark.slow
def test_matches_installed_sentence_transformers():
    st_losses = pytest.importorskip("sentence_transformers.sentence_transformer.losses")
    q, p, neg = unit(8, 16, seed=20), unit(8, 16, seed=21), unit(8, 2, 16, seed=22)
    mnrl = st_losses.MultipleNegativesRankingLoss(model=None, scale=20.0)
    theirs = mnrl.compute_loss_from_embeddings([q, p, neg[:, 0], neg[:, 1]], None)
    ours = InfoNCELoss(temperature=0.05)(q, p, neg)
    assert torch.allclose(ours, theirs, atol=1e-5)
    sym = st_losses.MultipleNegativesRankingLoss(
        model=None, scale=20.0, directions=("query_to_doc", "doc_to_query"), partition_mode="per_direction"
    )
    theirs = sym.compute_loss_from_embeddings([q, p, neg[:, 0], neg[:, 1]], None)
    ours = InfoNCELoss(temperature=0.05, symmetric=True)(q, p, neg)
    assert torch.allclose(ours, theirs, atol=1e-5)
