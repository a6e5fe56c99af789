import pytest
import torch
import torch.nn.functional as F

from embexp.errors import ConfigError
from embexp.losses import TripletMarginLoss, candidate_ids, false_negative_mask
from embexp.losses.triplet import compute_loss_from_embeddings

Q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
P = torch.tensor([[0.6, 0.8], [0.0, 1.0]])
# row 0 negatives: (0, 1) at distance 1, (0.8, 0.6) at distance 0.2
# row 1 negatives: (1, 0) at distance 1, (0.6, 0.8) at distance 0.2
NEG = torch.tensor([[[0.0, 1.0], [0.8, 0.6]], [[1.0, 0.0], [0.6, 0.8]]])


def unit(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g), dim=-1)


def test_default_margin():
    assert TripletMarginLoss().margin == 0.2


def test_hard_negatives_hand_computed():
    # d(q0, p0) = 1 - 0.6 = 0.4; d(q1, p1) = 0
    # pairs: max(0, .4 - 1 + .2) = 0, max(0, .4 - .2 + .2) = .4,
    #        max(0, 0 - 1 + .2) = 0,  max(0, 0 - .2 + .2) = 0      -> mean 0.1
    got = compute_loss_from_embeddings(Q, P, NEG, margin=0.2)
    assert got.item() == pytest.approx(0.1, abs=1e-6)
    # margin 0.5: max(0, -.1) = 0, .7, max(0, -.5) = 0, .3 -> mean 0.25
    assert TripletMarginLoss(margin=0.5)(Q, P, NEG).item() == pytest.approx(0.25, abs=1e-6)


def test_masked_hard_negative_pairs_leave_the_mean():
    # columns [p0, p1, n00, n01, n10, n11]; mask row 0's second negative (n01)
    mask = torch.zeros(2, 6, dtype=torch.bool)
    mask[0, 2 + 1] = True
    got = compute_loss_from_embeddings(Q, P, NEG, margin=0.2, mask=mask)
    assert got.item() == pytest.approx(0.0, abs=1e-6)  # remaining pairs: 0, 0, 0 over 3
    # margin 0.5, same mask: 0, 0, .3 over 3 pairs
    assert compute_loss_from_embeddings(Q, P, NEG, margin=0.5, mask=mask).item() == pytest.approx(
        0.1, abs=1e-6
    )
    # other rows' masked columns (not my own negatives) do not matter here
    other = torch.zeros(2, 6, dtype=torch.bool)
    other[0, 2 + 2] = other[1, 1] = True
    assert torch.equal(
        compute_loss_from_embeddings(Q, P, NEG, margin=0.2, mask=other),
        compute_loss_from_embeddings(Q, P, NEG, margin=0.2),
    )


def test_batch_hard_in_batch_hand_computed():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    p = torch.tensor([[0.8, 0.6], [0.0, 1.0], [1.0, 0.0]])
    # d = 1 - q @ p.T:
    #   q0: [0.2, 1.0, 0.0]   pos 0.2, hardest other = p2 (0.0)
    #   q1: [0.4, 0.0, 1.0]   pos 0.0, hardest other = p0 (0.4)
    #   q2: [0.04, 0.2, 0.4]  pos 0.4, hardest other = p0 (0.04)
    # margin .2: max(0,.2-0+.2)=.4, max(0,0-.4+.2)=0, max(0,.4-.04+.2)=.56 -> mean .32
    got = compute_loss_from_embeddings(q, p, margin=0.2)
    assert got.item() == pytest.approx(0.96 / 3, abs=1e-6)
    assert torch.equal(got, compute_loss_from_embeddings(q, p, torch.empty(3, 0, 2), margin=0.2))

    # p0 and p2 are the same document for q0 and q2: mask them for each other.
    # q0 hardest becomes p1 (1.0): max(0,.2-1+.2)=0; q2 hardest becomes p1 (.2): .4-.2+.2=.4
    mask = false_negative_mask(["a", "b", "a"], candidate_ids(["a", "b", "a"]))
    got = TripletMarginLoss(margin=0.2)(q, p, mask=mask)
    assert got.item() == pytest.approx(0.4 / 3, abs=1e-6)
    # with mask_false_negatives=False the mask is ignored
    unmasked = TripletMarginLoss(margin=0.2, mask_false_negatives=False)(q, p, mask=mask)
    assert unmasked.item() == pytest.approx(0.32, abs=1e-6)


def test_rows_without_any_negative_are_skipped():
    q, p = unit(3, 4, seed=1), unit(3, 4, seed=2)
    mask = torch.zeros(3, 3, dtype=torch.bool)
    mask[0, 1] = mask[0, 2] = True  # query 0 has no valid in-batch negative
    got = compute_loss_from_embeddings(q, p, margin=0.3, mask=mask)
    d = 1 - q @ p.T
    expected = torch.stack(
        [torch.relu(d[i, i] - d[i][[j for j in range(3) if j != i]].min() + 0.3) for i in (1, 2)]
    ).mean()
    assert torch.allclose(got, expected, atol=1e-6)


def test_nothing_valid_gives_zero_with_a_graph():
    q = unit(1, 4, seed=3).requires_grad_(True)
    p = unit(1, 4, seed=4)
    loss = compute_loss_from_embeddings(q, p, margin=0.2)  # batch of one: no in-batch negative
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(q.grad, torch.zeros_like(q))


def test_gradient_only_reaches_the_hardest_negative():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    p = torch.tensor([[0.8, 0.6], [0.0, 1.0], [1.0, 0.0]]).requires_grad_(True)
    mask = torch.zeros(3, 3, dtype=torch.bool)
    mask[1, :] = True  # query 1 has no negatives: p0 is then only the hardest for q2
    mask[2, 0] = True  # q2's hardest becomes p1; q0's hardest stays p2
    compute_loss_from_embeddings(q, p, margin=0.2, mask=mask).backward()
    # p0 is q0's positive (gradient) but nobody's selected negative: its grad is only -q0/2
    assert torch.allclose(p.grad[0], -q[0] / 2, atol=1e-6)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "0.2", None])
def test_margin_validation_names_the_key(bad):
    with pytest.raises(ValueError, match=r"loss\.margin") as err:
        TripletMarginLoss(margin=bad)
    assert isinstance(err.value, ConfigError)
    with pytest.raises(ValueError, match=r"loss\.margin"):
        compute_loss_from_embeddings(Q, P, margin=bad)


def test_zero_margin_is_allowed():
    # margin 0: 0, max(0, .4 - .2) = .2, 0, 0 -> mean .05
    assert TripletMarginLoss(margin=0.0)(Q, P, NEG).item() == pytest.approx(0.05, abs=1e-6)
