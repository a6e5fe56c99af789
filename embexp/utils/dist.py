"""The process group, for code that runs the same under DDP and in one process.

Without an initialised ``torch.distributed`` group every helper is the single-process identity:
rank 0 of 1, :func:`map_sharded` calls ``fn`` on everything, :func:`broadcast_object` returns its
argument. Under DDP every rank must call :func:`map_sharded` and :func:`broadcast_object` at the
same point (they are collectives).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def rank_and_world() -> tuple[int, int]:
    """``(rank, world_size)`` of the initialised process group; ``(0, 1)`` without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main_process() -> bool:
    """The process that writes shared files: rank 0 of the process group; before the group exists
    (work before Lightning's ``fit``) the launcher's global rank 0 (``RANK``, ``SLURM_PROCID``,
    ``LOCAL_RANK`` as Lightning reads them, and ``NODE_RANK`` 0), or the only process."""
    import os

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    return int(getattr(rank_zero_only, "rank", 0) or 0) == 0 and os.environ.get("NODE_RANK", "0") in ("", "0")


def shard_bounds(n: int, world: int) -> list[int]:
    """``world + 1`` bounds of near-equal contiguous shards of ``n`` items (rank ``r`` owns
    ``[bounds[r], bounds[r + 1])``)."""
    return [n * r // world for r in range(world + 1)]


def _gather_device():
    import torch
    import torch.distributed as dist

    if dist.get_backend() == "nccl":  # NCCL gathers CUDA tensors only
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _gather_rows(part: np.ndarray, sizes: list[int]) -> np.ndarray:
    """All-gather every rank's ``part`` (rows of equal trailing shape and dtype; rank ``r`` has
    ``sizes[r]`` rows), concatenated in rank order on every rank."""
    import torch
    import torch.distributed as dist

    part = np.ascontiguousarray(part)
    device = _gather_device()
    buf = torch.zeros((max(sizes), *part.shape[1:]), dtype=torch.from_numpy(part[:0]).dtype, device=device)
    buf[: len(part)] = torch.from_numpy(part).to(device)
    shards = [torch.empty_like(buf) for _ in sizes]
    dist.all_gather(shards, buf)
    return np.concatenate([s[:n].cpu().numpy() for s, n in zip(shards, sizes)])


def map_sharded(fn: Callable[[Sequence], tuple[np.ndarray, ...]], items: Sequence) -> tuple[np.ndarray, ...]:
    """``fn(items)`` computed in shards across the ranks and gathered on every rank.

    ``fn`` maps a slice of ``items`` to a tuple of arrays with one row per item (embeddings;
    search scores and ids). Under DDP rank ``r`` calls it on its contiguous ``1/world`` of
    ``items`` only, and every rank returns the rows of all items in ``items`` order -- the same
    arrays as one process calling ``fn(items)``, up to the floating-point differences of the
    smaller batches. With fewer items than ranks (or one process) every rank computes everything.
    """
    rank, world = rank_and_world()
    if world == 1 or len(items) < world:
        return tuple(fn(items))
    bounds = shard_bounds(len(items), world)
    sizes = [hi - lo for lo, hi in zip(bounds, bounds[1:])]
    parts = fn(items[bounds[rank] : bounds[rank + 1]])
    return tuple(_gather_rows(p, sizes) for p in parts)


def broadcast_object(obj, src: int = 0):
    """Rank ``src``'s ``obj`` on every rank (pickled); ``obj`` itself in one process."""
    import torch.distributed as dist

    if rank_and_world()[1] == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]
