r"""A contrastive batch across DDP ranks: all-gather with gradient and the global false-negative mask.

With ``W`` processes (``torch.distributed`` initialised, e.g. by Lightning's DDP strategy),
rank ``r`` holds a local batch of ``b_r`` rows. The *global* batch is their concatenation in
rank order: ``G = sum_r b_r`` rows, rank ``r``'s rows start at ``offset_r = sum_{s<r} b_s``,
and the candidates are the losses' usual layout over it::

    [p_1 .. p_G, n_1,1 .. n_1,N, n_2,1 .. n_G,N]            (G + G*N columns)

so every local query is scored against every rank's positives and hard negatives.

Gradient. :func:`gather_rows` concatenates every rank's rows and keeps autograd: in the
backward pass the gradient each rank computed for the gathered tensor is summed over ranks
(all-reduce) and every rank keeps the slice of its own rows. If rank ``s`` returns a loss
``L_s``, the gradient reaching rank ``r``'s embeddings is ``d(sum_s L_s)/de_r``. DDP then
*averages* the parameter gradients over the ``W`` ranks, so the step follows
``(1/W) d(sum_s L_s)/dtheta``. For that to be the single-process gradient of the mean loss over
the global batch, ``L = 1/G sum_i l_i``, each rank returns::

    L_r = W / G * sum_{i in rank r} l_i          (= the local mean when every b_r is equal)

and ``mean_r L_r = L``: the value Lightning logs (averaged over ranks with ``sync_dist``) is
the global loss. ``tests/losses/test_gather.py`` checks loss and gradients against one
process on the concatenated batch (gloo, 2 processes).

False negatives. Masks are built from keys, not shipped: the collate sends
``keys = {"candidates": (b*(1+N), K), "positives": (b, P)}`` int64 hashes
(:func:`~embexp.losses.masking.key_tensor`) of each candidate's doc keys and of each query's
positive key set; they are gathered and :func:`~embexp.losses.masking.key_mask` (the
vectorised :func:`~embexp.losses.masking.false_negative_mask`) runs on the global batch on the
device, so a document that is a positive on one rank and a candidate on
another is masked, exactly as one process would on the concatenated batch. Without keys the
local mask is used for the local block only (duplicates across ranks stay negatives).

Every collective here is called in the same order on every rank; ranks may hold different
numbers of rows (the last batch of an epoch): rows are padded to the largest for the
collectives and trimmed after.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor

from embexp.losses.masking import key_mask
from embexp.utils.dist import rank_and_world as world  # (rank, world_size); (0, 1) alone

__all__ = ["GatheredBatch", "gather_batch", "gather_rows", "world"]

log = logging.getLogger("embexp.losses")
_warned_no_keys = False


def _pad_to(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    if tuple(x.shape) == tuple(shape):
        return x.contiguous()
    out = x.new_zeros(shape)
    out[tuple(slice(0, n) for n in x.shape)] = x
    return out


def _all_gather_padded(x: Tensor, shape: tuple[int, ...]) -> list[Tensor]:
    """Every rank's ``x`` (padded to ``shape`` for the collective), in rank order, still padded."""
    padded = _pad_to(x, shape)
    parts = [torch.empty_like(padded) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, padded)
    return parts


class _GatherRows(torch.autograd.Function):
    """Forward: all-gather rows; backward: all-reduce (sum) the gradient, keep the own rows."""

    @staticmethod
    def forward(ctx, x: Tensor, sizes: tuple[int, ...], rank: int) -> Tensor:
        ctx.sizes, ctx.rank = sizes, rank
        parts = _all_gather_padded(x, (max(sizes), *x.shape[1:]))
        return torch.cat([part[:n] for part, n in zip(parts, sizes)])  # (sum(sizes), ...)

    @staticmethod
    def backward(ctx, grad: Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # every rank's loss depends on every rank's rows
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start : start + ctx.sizes[ctx.rank]], None, None


def gather_rows(x: Tensor, sizes: list[int] | tuple[int, ...]) -> Tensor:
    """Concatenate every rank's ``x`` along dim 0 (rank ``r`` holds ``sizes[r]`` rows), with gradient.

    The trailing dimensions must agree across ranks. The backward pass is one all-reduce of
    the gathered gradient: each rank receives the gradient of every rank's loss w.r.t. its rows.
    """
    rank, _ = world()
    return _GatherRows.apply(x, tuple(int(n) for n in sizes), rank)


@dataclass
class GatheredBatch:
    """The global batch as seen from one rank (see the module docstring for the layout)."""

    p: Tensor  # (G, D) every rank's positives, with gradient
    negatives: Tensor | None  # (G, N, D) every rank's hard negatives, with gradient; None if N = 0
    q: Tensor | None  # (G, D) every rank's queries (only gathered for the symmetric term)
    rows: Tensor  # (b,) global row of each local row: offset + arange(b)
    sizes: list[int]  # rows per rank
    mask: Tensor | None  # (b, G + G*N) false negatives of the local queries among all candidates
    mask_back: Tensor | None  # (b, G) false negatives of the local positives among all queries

    @property
    def total(self) -> int:
        return sum(self.sizes)


def gather_batch(
    q: Tensor,
    p: Tensor,
    negatives: Tensor | None = None,
    *,
    mask: Tensor | None = None,
    keys: dict[str, Tensor] | None = None,
    with_queries: bool = False,
) -> GatheredBatch:
    """All-gather a local contrastive batch (``q``, ``p``: ``(b, D)``; ``negatives``: ``(b, N, D)``).

    Args:
        mask: the local false-negative mask ``(b, b + b*N)``; used only without ``keys``, and
            then only for the local block of the global mask.
        keys: ``{"candidates": (b + b*N, K), "positives": (b, P)}`` int64 key hashes; the
            global mask is rebuilt from the gathered keys.
        with_queries: also gather the queries and build ``mask_back`` (the symmetric term).
    """
    rank, w = world()
    b, d = q.shape
    n_neg = 0 if negatives is None else negatives.shape[1]
    has_keys = keys is not None
    widths = (keys["candidates"].shape[1], keys["positives"].shape[1]) if has_keys else (0, 0)
    info = torch.tensor([b, n_neg, d, int(mask is not None), int(has_keys), *widths], device=q.device)
    table = torch.stack(_all_gather_padded(info, tuple(info.shape))).tolist()  # (world, 7)
    for col, what in ((1, "hard negatives per row"), (2, "embedding dim"), (3, "a mask"), (4, "keys")):
        if len({row[col] for row in table}) > 1:
            raise ValueError(f"ranks disagree on {what}: {[row[col] for row in table]}")
    sizes = [row[0] for row in table]
    rows = torch.arange(b, device=q.device) + sum(sizes[:rank])  # (batch,)
    out = GatheredBatch(
        p=gather_rows(p, sizes),  # (G, dim)
        negatives=gather_rows(negatives, sizes) if n_neg else None,  # (G, n_neg, dim)
        q=gather_rows(q, sizes) if with_queries else None,  # (G, dim)
        rows=rows,
        sizes=sizes,
        mask=None,
        mask_back=None,
    )
    if has_keys:
        key_width = (max(r[5] for r in table), max(r[6] for r in table))
        out.mask, out.mask_back = _masks_from_keys(keys, b, n_neg, sizes, key_width, rows, with_queries)
    elif mask is not None:
        _warn_no_keys()
        out.mask, out.mask_back = _local_block_masks(mask.to(q.device), b, n_neg, sum(sizes), rows)
    return out


def _masks_from_keys(
    keys: dict[str, Tensor],
    b: int,
    n_neg: int,
    sizes: list[int],
    width: tuple[int, int],
    rows: Tensor,
    with_back: bool,
) -> tuple[Tensor, Tensor | None]:
    """The global false-negative mask's local rows (and, for the symmetric term, its local
    positive columns transposed), from every rank's gathered key hashes, on the device (no host
    round trip in the step)."""
    k, m = width
    device = rows.device
    cand, pos = keys["candidates"].to(device), keys["positives"].to(device)
    parts = [_gather_trimmed(cand[:b], sizes, (k,))]  # (G, K) keys of every positive
    if n_neg:
        parts.append(_gather_trimmed(cand[b:].reshape(b, n_neg, -1), sizes, (n_neg, k)).reshape(-1, k))
    cand_all = torch.cat(parts)  # (G + G*N, K): the global candidate columns
    pos_all = _gather_trimmed(pos, sizes, (m,))  # (G, P) every query's positive keys
    mask = key_mask(pos_all[rows], cand_all, own=rows)  # (batch, C)
    if not with_back:
        return mask, None
    total = sum(sizes)
    square = key_mask(pos_all, cand_all[:total], own=torch.arange(total, device=device))  # (G, G)
    return mask, square[:, rows].T.contiguous()  # (batch, G)


def _gather_trimmed(x: Tensor, sizes: list[int], tail: tuple[int, ...]) -> Tensor:
    """Every rank's rows of ``x`` (trailing dims padded to ``tail`` with 0), concatenated."""
    parts = _all_gather_padded(x, (max(sizes), *tail))
    return torch.cat([part[:n] for part, n in zip(parts, sizes)])


def _local_block_masks(mask: Tensor, b: int, n_neg: int, total: int, rows: Tensor) -> tuple[Tensor, Tensor]:
    """Without keys: the local mask placed in its own block of the global layout."""
    lo, hi = int(rows[0]), int(rows[-1]) + 1
    fwd = torch.zeros(b, total, 1 + n_neg, dtype=torch.bool, device=mask.device)  # (batch, G, 1 + n_neg)
    fwd[:, lo:hi, 0] = mask[:, :b]
    if n_neg:
        fwd[:, lo:hi, 1:] = mask[:, b:].reshape(b, b, n_neg)
    glob = torch.cat([fwd[:, :, 0], fwd[:, :, 1:].reshape(b, total * n_neg)], dim=1)  # (batch, G + G*N)
    back = torch.zeros(b, total, dtype=torch.bool, device=mask.device)  # (batch, G)
    back[:, lo:hi] = mask[:, :b].T
    return glob, back


def _warn_no_keys() -> None:
    global _warned_no_keys
    if not _warned_no_keys:
        _warned_no_keys = True
        log.warning(
            "gathered negatives without key hashes (batch['keys']): false negatives are masked within "
            "each rank's batch only; duplicates across ranks count as negatives"
        )
