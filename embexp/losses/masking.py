"""False-negative masks for contrastive losses with in-batch negatives.

With in-batch negatives, every other row's positive (and every row's hard negatives)
is treated as a negative for query ``i``. When one of those candidates is in fact a
positive of query ``i`` (the same document appears twice in the batch, two documents
have identical text, or query ``i`` has several labelled positives), the loss would
push the query away from a correct answer. The mask built here marks those
candidates so the loss can drop them from the softmax denominator (InfoNCE) or from
the negative pool (triplet).

Identity is by *key*: a doc id, or a hash of the text when ids are unknown
(:func:`text_key`). A candidate may carry several keys (e.g. ``{doc_id,
text_key(text)}``) so that "same id **or** identical text" both mask.

Candidate layout (shared by every loss in :mod:`embexp.losses`)::

    columns [0, B)                       p_1 .. p_B          in-batch positives
    columns [B + i*N, B + (i+1)*N)       n_i1 .. n_iN        hard negatives of row i

so query ``i``'s own positive is column ``i`` (the diagonal) unless ``own_columns``
says otherwise. :func:`candidate_ids` builds the id list in this order.

Across processes (DDP), keys travel as tensors: :func:`key_tensor` turns each item's key set
into a row of int64 hashes (:func:`key_hash`, 0 = padding) that can be all-gathered, and
:func:`key_sets` turns the gathered rows back into sets for :func:`false_negative_mask`.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Collection, Hashable, Sequence
from typing import Any

import torch

__all__ = [
    "as_key_set",
    "candidate_ids",
    "false_negative_mask",
    "key_hash",
    "key_sets",
    "key_tensor",
    "text_key",
]

# Values treated as ONE id even though they are Collections.
_SCALAR_ID_TYPES = (str, bytes, tuple)


def as_key_set(value: Any) -> frozenset:
    """The keys of one item: a single id, or a collection of ids.

    ``str``, ``bytes`` and ``tuple`` values are ONE id (a tuple such as
    ``("corpus", "doc7")`` is a composite id, not a set of ids); other collections
    (set, frozenset, list) are several ids. ``None`` (unknown) entries are
    dropped, so an item whose id is unknown never matches anything.
    """
    if value is None:
        return frozenset()
    if isinstance(value, _SCALAR_ID_TYPES) or not isinstance(value, Collection):
        return frozenset((value,))
    return frozenset(v for v in value if v is not None)


def text_key(text: str) -> str:
    """A key for a passage or query whose id is unknown: a hash of its exact text.

    Prefixed with ``"text:"`` so it never collides with a real doc id.
    """
    return "text:" + hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


@functools.lru_cache(maxsize=1 << 16)
def key_hash(key: Hashable) -> int:
    """One key as a non-zero signed int64 (blake2b, 8 bytes; 0 is :func:`key_tensor`'s padding).

    A ``str`` key hashes its text; any other key its type name and ``repr``, so ``"5"`` and
    ``5`` stay different keys. Two distinct keys collide with probability about ``2**-64``.
    """
    text = key if isinstance(key, str) else f"{type(key).__name__}:{key!r}"
    h = int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little", signed=True)
    return h or 1


def key_tensor(items: Sequence[Hashable | Collection[Hashable]], width: int | None = None) -> torch.Tensor:
    """The keys of each item as a row of :func:`key_hash` values, padded with 0.

    Args:
        items: one id or key collection per item (as :func:`as_key_set` reads it).
        width: columns; default the largest key set (at least 1).

    Returns:
        int64 tensor ``(len(items), width)``; row ``i`` holds item ``i``'s key hashes, sorted.
    """
    rows = [sorted(key_hash(k) for k in as_key_set(item)) for item in items]
    width = max([1, *map(len, rows)]) if width is None else width
    if any(len(r) > width for r in rows):
        raise ValueError(f"an item has more than width={width} keys")
    padded = [r + [0] * (width - len(r)) for r in rows]
    return torch.tensor(padded, dtype=torch.int64).reshape(len(rows), width)  # (items, width)


def key_mask(
    positives: torch.Tensor, candidates: torch.Tensor, own: torch.Tensor, chunk: int = 64
) -> torch.Tensor:
    """:func:`false_negative_mask` on :func:`key_tensor` hashes, vectorised on their device (no
    host round trip: what the DDP loss builds every step from the gathered keys).

    Args:
        positives: ``(b, P)`` key hashes of each query's positives (0: padding).
        candidates: ``(C, K)`` key hashes of each candidate column (0: padding).
        own: ``(b,)`` each query's own positive column.

    Returns:
        bool ``(b, C)``: ``[i, j]`` when candidate ``j`` shares a key with query ``i``'s positives
        or with its own candidate, except ``j = own[i]``.
    """
    b = positives.shape[0]
    queries = torch.cat([positives, candidates[own]], dim=1)  # (b, P + K): keys a column must not share
    mask = torch.zeros(b, candidates.shape[0], dtype=torch.bool, device=candidates.device)  # (b, C)
    for lo in range(0, b, chunk):  # (chunk, P + K, C, K) booleans at a time
        q = queries[lo : lo + chunk]
        hit = (q[:, :, None, None] == candidates[None, None]) & (q != 0)[:, :, None, None]
        mask[lo : lo + chunk] = hit.any(dim=3).any(dim=1)
    mask[torch.arange(b, device=mask.device), own] = False
    return mask


def key_sets(keys: torch.Tensor) -> list[frozenset[int]]:
    """The inverse of :func:`key_tensor` (as hashes): one frozenset per row, padding dropped."""
    return [frozenset(k for k in row if k) for row in keys.tolist()]


def candidate_ids(
    positive_ids: Sequence[Hashable | Collection[Hashable]],
    negative_ids: Sequence[Sequence[Hashable | Collection[Hashable]]] | None = None,
) -> list:
    """Candidate keys in the loss's column order: ``[p_1..p_B, n_11..n_1N, ..., n_B1..n_BN]``.

    ``positive_ids[i]`` is the id (or key collection) of row ``i``'s positive passage
    (the one that was embedded), ``negative_ids[i]`` the ids of row ``i``'s hard
    negatives; every row must have the same number of negatives (as the (B, N, D)
    negatives tensor does).
    """
    ids = list(positive_ids)
    if negative_ids is not None:
        if len(negative_ids) != len(positive_ids):
            raise ValueError(
                f"negative_ids has {len(negative_ids)} rows, positive_ids has {len(positive_ids)}"
            )
        widths = {len(row) for row in negative_ids}
        if len(widths) > 1:
            raise ValueError(f"every row needs the same number of negative ids, got {sorted(widths)}")
        for row in negative_ids:
            ids.extend(row)
    return ids


def false_negative_mask(
    positive_sets: Sequence[Hashable | Collection[Hashable]],
    candidate_ids: Sequence[Hashable | Collection[Hashable]],
    own_columns: Sequence[int] | torch.Tensor | None = None,
) -> torch.Tensor:
    """Which candidates are positives of a query but not that query's own positive column.

    Args:
        positive_sets: length ``B``; entry ``i`` is every known positive key of query
            ``i``: at least the key of its own embedded positive, plus any other
            labelled positives (doc ids, and/or :func:`text_key` hashes). A single id
            is accepted in place of a collection (see :func:`as_key_set`).
        candidate_ids: length ``C``; entry ``j`` is the key (or key collection, e.g.
            ``{doc_id, text_key(text)}``) of candidate column ``j``. Use
            :func:`candidate_ids` for the layout the losses expect.
        own_columns: length ``B``; the column of query ``i``'s own positive, which is
            never masked. Default ``range(B)`` (the diagonal of the losses' layout).

    Returns:
        Bool tensor of shape ``(B, C)`` on the CPU: ``mask[i, j]`` is True iff
        candidate ``j`` shares a key with query ``i``'s positives and
        ``j != own_columns[i]``. Query ``i``'s positives are ``positive_sets[i]``
        plus the keys of its own column ``candidate_ids[own_columns[i]]`` (a copy of
        my own positive is always a false negative, even if ``positive_sets`` omits it).
        Pass it as ``mask=`` to a loss; the loss moves it to the logits' device.

    Examples:
        Single positive id per query (duplicate doc ``"d1"`` in rows 0 and 2)::

            false_negative_mask(["d1", "d2", "d1"], ["d1", "d2", "d1"])
            # row 0 masks column 2, row 2 masks column 0

        Several labelled positives per query::

            false_negative_mask([{"d1", "d5"}, {"d5"}], ["d1", "d5"])
            # row 0 masks column 1 (d5 is also one of query 0's positives)
    """
    b, c = len(positive_sets), len(candidate_ids)
    if own_columns is None:
        own = list(range(b))
    else:
        own = own_columns.tolist() if isinstance(own_columns, torch.Tensor) else list(own_columns)
    if len(own) != b:
        raise ValueError(f"own_columns has {len(own)} entries for {b} queries")
    for i, col in enumerate(own):
        if not 0 <= col < c:
            raise ValueError(f"own_columns[{i}] = {col} is outside the {c} candidate columns")

    columns_of: dict[Hashable, list[int]] = {}
    for j, cid in enumerate(candidate_ids):
        for key in as_key_set(cid):
            columns_of.setdefault(key, []).append(j)

    mask = torch.zeros(b, c, dtype=torch.bool)  # (batch, n_candidates)
    rows: list[int] = []
    cols: list[int] = []
    for i, positives in enumerate(positive_sets):
        hit: set[int] = set()
        for key in as_key_set(positives) | as_key_set(candidate_ids[own[i]]):
            hit.update(columns_of.get(key, ()))
        hit.discard(own[i])
        rows.extend([i] * len(hit))
        cols.extend(hit)
    if rows:
        mask[torch.tensor(rows), torch.tensor(cols)] = True
    return mask
