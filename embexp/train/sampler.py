"""Batch sampler that keeps examples sharing a positive (or query text) out of the same batch.

With in-batch negatives, two examples that share a positive document (or whose
queries are identical) turn each other's positive into a false negative. The
loss-side :func:`~embexp.losses.masking.false_negative_mask` repairs that, but it
also shrinks the pool of negatives, so it is better not to build such batches in
the first place. This sampler does it greedily:

1. shuffle the indices with a ``torch.Generator`` seeded with ``seed + epoch``;
2. fill each batch in that order, skipping an example whose keys collide with the
   batch and deferring it; deferred examples are offered first to later batches
   (oldest first, at most one per colliding key and batch, which is all a batch can
   take anyway);
3. only when the shuffled stream is exhausted and no deferred example fits does the
   sampler place a colliding example (the batch stays full, so ``len()`` is exact);
4. a repair pass then tries to swap each colliding example with an example of
   another batch so that neither batch collides; it skips keys shared by more
   examples than there are batches (such collisions are unavoidable).

Leftover collisions are counted in :attr:`NoDuplicateBatchSampler.conflicting_batches`;
keep the loss's false-negative mask on to handle them.

Grouping by length (``train.group_by_length=N``, off by default): the shuffled order is cut into
windows of ``N`` batches, each window is sorted by example length (longest first) before the
greedy fills batches from it, and the full batches are then shuffled; a short last batch stays
last. Batches then carry little padding, at a price: a query meets in-batch negatives of about its
positive's length instead of a random sample of the corpus (:func:`group_by_length`).

Every batch has ``batch_size`` indices except possibly the last; with
``drop_last=False`` every index appears exactly once per epoch, with
``drop_last=True`` the (possibly colliding) leftovers of the last partial batch are
dropped. The sampler itself is not distributed-aware: under DDP,
:class:`RankShardedBatches` plans the *global* batches (``world_size * batch_size``) with it
and gives each rank its part of every global batch, so the batch the loss gathers across
ranks is free of shared keys wherever a single process's would be.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Collection, Hashable, Iterator, Sequence

import torch
from torch.utils.data import Sampler

from embexp.losses.masking import as_key_set

__all__ = ["NoDuplicateBatchSampler", "RankShardedBatches", "group_by_length", "shuffle_full_batches"]

# Deferred examples tried per colliding key and batch (they all share that key, so at
# most one fits; trying a few covers a head that is blocked by another key).
_TRIES_PER_KEY = 4
# Upper bound on (example, candidate) checks in the repair pass, per epoch.
_REPAIR_BUDGET = 2_000_000


def group_by_length(order: list[int], lengths: Sequence, window: int) -> list[int]:
    """``order`` cut into consecutive windows of ``window`` indices, each sorted by ``lengths``
    (longest first; a stable sort, so ties keep their shuffled order)."""
    out: list[int] = []
    for s in range(0, len(order), window):
        out += sorted(order[s : s + window], key=lambda i: lengths[i], reverse=True)
    return out


def shuffle_full_batches(batches: list[list[int]], batch_size: int, generator) -> list[list[int]]:
    """The full batches in a seeded random order, then a short last batch (only the last batch is
    ever short: :class:`RankShardedBatches` counts on it)."""
    full = len(batches) - (1 if batches and len(batches[-1]) < batch_size else 0)
    perm = torch.randperm(full, generator=generator).tolist()
    return [batches[i] for i in perm] + batches[full:]


def _check_grouping(lengths, group: int | None, n: int) -> None:
    if group is None:
        return
    if isinstance(group, bool) or not isinstance(group, int) or group < 1:
        raise ValueError(f"group_by_length must be a positive number of batches, got {group!r}")
    if lengths is None or len(lengths) != n:
        raise ValueError(f"group_by_length needs one length per example ({n}), got {lengths!r:.60}")


class NoDuplicateBatchSampler(Sampler[list[int]]):
    """Yield batches of indices in which no two examples share a key, where the greedy can.

    Args:
        keys: one entry per training example: the keys of that example (doc ids or
            :func:`~embexp.losses.masking.text_key` hashes of its positives, and
            usually ``text_key(query)``). A single id is accepted in place of a
            collection (``str``/``tuple`` count as one id); an empty collection
            never collides.
        batch_size: examples per batch (>= 1).
        seed: base seed; the shuffle of epoch ``e`` uses ``seed + e``.
        drop_last: drop the last batch if it is smaller than ``batch_size``.
        lengths: one sortable length per example (e.g. token counts), for ``group_by_length``.
        group_by_length: batches per length-sorted window (None: off; see the module docstring).
    """

    def __init__(
        self,
        keys: Sequence[Collection[Hashable] | Hashable],
        batch_size: int,
        seed: int = 0,
        drop_last: bool = False,
        lengths: Sequence | None = None,
        group_by_length: int | None = None,
    ):
        _check_grouping(lengths, group_by_length, len(keys))
        self.lengths, self.group = lengths, group_by_length
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.keys: list[frozenset] = [as_key_set(k) for k in keys]
        self.batch_size = batch_size
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.epoch = 0
        #: Batches of the last planned epoch that still contain two examples sharing a key.
        self.conflicting_batches = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the shuffle of ``epoch`` (call before iterating, as with DistributedSampler)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n = len(self.keys)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.plan()

    # ------------------------------------------------------------------ planning

    def plan(self, epoch: int | None = None) -> list[list[int]]:
        """All batches of ``epoch`` (default: the current one), as yielded by ``iter()``."""
        epoch = self.epoch if epoch is None else int(epoch)
        n = len(self.keys)
        generator = torch.Generator()
        generator.manual_seed(self.seed + epoch)
        order = torch.randperm(n, generator=generator).tolist()
        if self.group:
            order = group_by_length(order, self.lengths, self.group * self.batch_size)

        batches = self._greedy(order)
        counters = [Counter(k for i in batch for k in self.keys[i]) for batch in batches]
        self._repair(batches, counters)
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
            counters.pop()
        self.conflicting_batches = sum(1 for c in counters if any(v > 1 for v in c.values()))
        return shuffle_full_batches(batches, self.batch_size, generator) if self.group else batches

    def _greedy(self, order: list[int]) -> list[list[int]]:
        keys, bs = self.keys, self.batch_size
        pending: dict[Hashable, deque[int]] = {}  # colliding key -> deferred indices, oldest first
        batches: list[list[int]] = []
        pos, n = 0, len(order)

        def blocker(idx: int, used: set) -> Hashable | None:
            return next((k for k in keys[idx] if k in used), None)

        def take_pending(batch: list[int], used: set) -> None:
            for key in list(pending):
                if len(batch) == bs:
                    return
                queue = pending[key]
                for t in range(min(len(queue), _TRIES_PER_KEY)):
                    idx = queue[t]
                    if blocker(idx, used) is None:
                        del queue[t]
                        batch.append(idx)
                        used.update(keys[idx])
                        break
                if not queue:
                    del pending[key]

        while pos < n or pending:
            batch: list[int] = []
            used: set = set()
            take_pending(batch, used)
            while len(batch) < bs and pos < n:
                idx = order[pos]
                pos += 1
                key = blocker(idx, used)
                if key is None:
                    batch.append(idx)
                    used.update(keys[idx])
                else:
                    pending.setdefault(key, deque()).append(idx)
            # Stream exhausted and nothing deferred fits: collisions are unavoidable here.
            while len(batch) < bs and pending:
                key = next(iter(pending))
                idx = pending[key].popleft()
                if not pending[key]:
                    del pending[key]
                batch.append(idx)
                used.update(keys[idx])
                take_pending(batch, used)
            batches.append(batch)
        return batches

    def _repair(self, batches: list[list[int]], counters: list[Counter]) -> None:
        """Swap colliding examples with examples of other batches when neither batch then collides."""
        keys = self.keys
        n_batches = len(batches)
        if n_batches < 2:
            return
        frequency = Counter(k for ks in keys for k in ks)
        budget = _REPAIR_BUDGET

        def fits(idx: int, counter: Counter, without: int) -> bool:
            gone = keys[without]
            return all(counter[k] - (k in gone) == 0 for k in keys[idx])

        for bi in range(n_batches):
            ci = counters[bi]
            if all(v <= 1 for v in ci.values()):
                continue
            for pos_x in range(len(batches[bi])):
                x = batches[bi][pos_x]
                colliding = [k for k in keys[x] if ci[k] > 1]
                if not colliding or any(frequency[k] > n_batches for k in colliding):
                    continue
                swapped = False
                for step in range(1, n_batches):
                    bj = (bi + step) % n_batches
                    cj = counters[bj]
                    # x must not collide with batch bj (whatever y leaves), cheap pre-check
                    if any(cj[k] > 1 for k in keys[x]):
                        continue
                    for pos_y, y in enumerate(batches[bj]):
                        budget -= 1
                        if budget <= 0:
                            return
                        # x into bj without y; y into bi without x (x's own keys are removed)
                        if fits(x, cj, y) and fits(y, ci, x):
                            batches[bi][pos_x], batches[bj][pos_y] = y, x
                            ci.subtract(keys[x])
                            ci.update(keys[y])
                            cj.subtract(keys[y])
                            cj.update(keys[x])
                            swapped = True
                            break
                    if swapped:
                        break


class RankShardedBatches(Sampler[list[int]]):
    """One DDP rank's part of every batch of a global batch plan.

    Args:
        inner: a seeded batch sampler (``set_epoch``, ``batch_size``, ``len``) planning batches of
            the *global* size ``world_size * batch_size``, identically on every rank (e.g. a
            :class:`NoDuplicateBatchSampler` with the same seed).
        n: the number of examples ``inner`` draws from (for an exact ``len``).
        world_size, rank: the process group.

    Global batch ``k`` is cut into ``world_size`` contiguous parts of near-equal size (at most
    one apart) and rank ``r`` yields part ``r``, so at step ``k`` the ranks together hold exactly
    global batch ``k``: no two examples of the gathered batch share a key where the planner
    could avoid it, and ``W`` ranks of batch ``b`` step on the batches one process of batch
    ``W * b`` would. Every rank yields the same number of batches: a last global batch with
    fewer examples than ranks (one part would be empty) is dropped on every rank.
    """

    def __init__(self, inner, n: int, world_size: int, rank: int):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world_size {world_size}")
        self.inner, self.n, self.world_size, self.rank = inner, int(n), int(world_size), int(rank)

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.inner, "set_epoch"):
            self.inner.set_epoch(epoch)

    def __iter__(self) -> Iterator[list[int]]:
        w, r = self.world_size, self.rank
        for batch in self.inner:
            if len(batch) < w:
                continue  # only the last batch can be this small
            yield list(batch[r * len(batch) // w : (r + 1) * len(batch) // w])

    def __len__(self) -> int:
        full = len(self.inner)
        last = self.n - (full - 1) * self.inner.batch_size if full else 0
        return full - (0 < last < self.world_size)
