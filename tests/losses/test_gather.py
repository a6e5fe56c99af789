"""Gathered negatives across ranks equal one process on the concatenated batch (2 gloo processes).

Each case is run by two processes (``torch.multiprocessing.spawn``, ``init_process_group("gloo")``
on a free localhost port). The global batch is built from one seed in both; rank ``r`` embeds its
rows through a shared weight (the stand-in for the encoder's parameters, identical on both ranks
as DDP keeps them) and calls ``InfoNCELoss`` on its shard. What DDP would do is simulated: the
parameter gradients are averaged over the ranks. Checked against one process on the whole
batch: the mean of the ranks' losses, the averaged parameter gradient, and each rank's input
gradient divided by the world size (the input rows play the role of per-rank activations).
"""

from __future__ import annotations

import json
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from embexp.losses import InfoNCELoss, candidate_ids, false_negative_mask
from embexp.losses.infonce import compute_loss_from_embeddings
from embexp.losses.masking import key_tensor

WORLD, DIM, TAU, TOL = 2, 8, 0.05, 1e-6

# sizes: rows per rank; dup: where false negatives are (None, "across" ranks, "within" a rank);
# keys: ship key hashes (else only the local mask); gather: gather_across_ranks
CASES = {
    "in_batch": dict(sizes=(3, 3), n_neg=0),
    "hard_negatives": dict(sizes=(3, 3), n_neg=2),
    "masked_across_ranks": dict(sizes=(3, 3), n_neg=2, dup="across"),
    "masked_across_ranks_in_batch": dict(sizes=(3, 3), n_neg=0, dup="across"),
    "symmetric_masked": dict(sizes=(3, 3), n_neg=2, dup="across", symmetric=True),
    "uneven_batches": dict(sizes=(3, 2), n_neg=1, dup="across", symmetric=True),
    "mask_without_keys": dict(sizes=(3, 3), n_neg=1, dup="within", keys=False, symmetric=True),
    "not_gathered": dict(sizes=(3, 3), n_neg=2, dup="within", gather=False),
}


def _ids(total: int, n_neg: int, dup: str | None):
    """Doc ids of the positives and hard negatives, and each query's positive set."""
    pos = [f"d{i}" for i in range(total)]
    neg = [[f"n{i}_{k}" for k in range(n_neg)] for i in range(total)]
    sets = [{d} for d in pos]
    if dup == "across":  # rows 0..2 are rank 0's, rows 3.. rank 1's
        pos[4] = "d0"  # the same document is a positive on both ranks
        sets[4] = {"d0"}
        sets[1] |= {"d3"}  # query 1 (rank 0) has rank 1's first positive as a second positive
        if n_neg:
            neg[3][0] = "d2"  # rank 1's hard negative is a positive of query 2 (rank 0)
    elif dup == "within":
        sets[1] |= {"d2"}
        sets[3] |= {"d5"}
        if n_neg:
            neg[0][0] = "d1"
    return pos, neg, sets


def _embed(weight, xq, xp, xn):
    q = F.normalize(xq @ weight, dim=-1)  # (rows, dim)
    p = F.normalize(xp @ weight, dim=-1)  # (rows, dim)
    n = F.normalize(xn @ weight, dim=-1) if xn.shape[1] else None  # (rows, n_neg, dim)
    return q, p, n


def _run_case(rank, sizes, n_neg, dup=None, symmetric=False, keys=True, gather=True) -> dict:
    total = sum(sizes)
    g = torch.Generator().manual_seed(7)
    inputs = [torch.randn(total, DIM, generator=g), torch.randn(total, DIM, generator=g)]
    inputs.append(torch.randn(total, n_neg, DIM, generator=g))
    weight0 = torch.randn(DIM, DIM, generator=g)
    pos, neg, sets = _ids(total, n_neg, dup)
    bounds = [sum(sizes[:r]) for r in range(WORLD + 1)]

    def mask_of(lo, hi):
        cand = candidate_ids(pos[lo:hi], neg[lo:hi] if n_neg else None)
        return false_negative_mask(sets[lo:hi], cand) if dup else None

    # one process: the concatenated batch (or, not gathered, the mean of per-shard losses)
    weight = weight0.clone().requires_grad_(True)
    leaves = [x.clone().requires_grad_(True) for x in inputs]
    emb = _embed(weight, *leaves)
    shards = [(0, total)] if gather else list(zip(bounds, bounds[1:]))
    ref = sum(
        compute_loss_from_embeddings(
            emb[0][lo:hi],
            emb[1][lo:hi],
            None if emb[2] is None else emb[2][lo:hi],
            temperature=TAU,
            symmetric=symmetric,
            mask=mask_of(lo, hi),
        )
        for lo, hi in shards
    ) / len(shards)
    ref.backward()
    if dup == "across":
        full = mask_of(0, total)
        assert full[: sizes[0], sizes[0] : total].any() and full[sizes[0] :, : sizes[0]].any()

    # this rank: its shard, the loss gathered across ranks, then DDP's gradient averaging
    lo, hi = bounds[rank], bounds[rank + 1]
    w = weight0.clone().requires_grad_(True)
    local = [x[lo:hi].clone().requires_grad_(True) for x in inputs]
    cand = candidate_ids(pos[lo:hi], neg[lo:hi] if n_neg else None)
    shipped = {"candidates": key_tensor(cand), "positives": key_tensor(sets[lo:hi])} if keys and dup else None
    loss_fn = InfoNCELoss(temperature=TAU, symmetric=symmetric, gather_across_ranks=gather)
    loss = loss_fn(*_embed(w, *local), mask=mask_of(lo, hi), keys=shipped)
    loss.backward()
    mean_loss = loss.detach().clone()
    dist.all_reduce(mean_loss)
    w_grad = w.grad.clone()
    dist.all_reduce(w_grad)
    diffs = torch.stack(
        [
            (w_grad / WORLD - weight.grad).abs().max(),
            *[
                (x.grad / WORLD - leaf.grad[lo:hi]).abs().max()
                for x, leaf in zip(local, leaves)
                if leaf.grad is not None  # no hard negatives: that input is unused
            ],
        ]
    )
    dist.all_reduce(diffs, op=dist.ReduceOp.MAX)
    return {
        "loss": mean_loss.item() / WORLD,
        "ref_loss": ref.item(),
        "param_grad": diffs[0].item(),
        "input_grad": diffs[1:].max().item(),
        "ref_grad_norm": weight.grad.norm().item(),
    }


def _worker(rank: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD)
    try:
        results = {name: _run_case(rank, **case) for name, case in CASES.items()}
        if rank == 0:
            with open(out, "w") as f:
                json.dump(results, f)
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("gather") / "results.json"
    mp.spawn(_worker, args=(_free_port(), str(out)), nprocs=WORLD, join=True)
    return json.loads(out.read_text())


@pytest.mark.parametrize("case", sorted(CASES))
def test_loss_and_gradients_equal_one_process(results, case):
    r = results[case]
    assert r["loss"] == pytest.approx(r["ref_loss"], abs=TOL, rel=TOL)
    assert r["ref_grad_norm"] > 1e-3  # the gradients compared are not trivially zero
    assert r["param_grad"] <= TOL
    assert r["input_grad"] <= TOL


def test_single_process_ignores_the_flag():
    g = torch.Generator().manual_seed(0)
    q, p = (F.normalize(torch.randn(4, DIM, generator=g), dim=-1) for _ in range(2))
    a = InfoNCELoss(gather_across_ranks=True)(q, p)
    b = compute_loss_from_embeddings(q, p, temperature=0.05)
    assert torch.equal(a, b)
