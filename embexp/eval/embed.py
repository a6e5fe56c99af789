"""Corpus embeddings through the embedding cache: the one code path for evaluation and mining."""

from __future__ import annotations

import numpy as np

from embexp.data.types import Corpus
from embexp.eval.cache import EmbeddingCache
from embexp.model.encoder import resolve_dtype


def embed_corpus(
    encoder,
    corpus: Corpus,
    *,
    cache: EmbeddingCache | None = None,
    corpus_fingerprint: str = "",
    batch_size: int = 64,
    dtype: str = "auto",
    show_progress: bool = False,
) -> tuple[np.ndarray, bool]:
    """``(embeddings, was_cached)`` of every passage of ``corpus``, in corpus order.

    Cached only with both a ``cache`` and the ``corpus_fingerprint``
    (``RetrievalDataset.corpus_fingerprint``); the key holds everything that determines
    the vectors (encoder weights, corpus, passage prefix, max length, pooling,
    normalisation, resolved dtype)."""

    def compute() -> np.ndarray:
        return encoder.encode(
            corpus.passages(),
            "passage",
            batch_size=batch_size,
            dtype=dtype,
            show_progress=show_progress,
            desc=f"encoding {len(corpus)} passages",
        )

    rank, world = _rank_and_world()
    if world > 1 and len(corpus) >= world:  # DDP: every rank encodes a shard (the cache is not used)
        texts = corpus.passages()
        return _encode_sharded(encoder, texts, rank, world, batch_size=batch_size, dtype=dtype), False
    if cache is None or not corpus_fingerprint:
        return compute(), False
    spec = encoder.spec
    parts = {
        "encoder": encoder.fingerprint(),
        "corpus": corpus_fingerprint,
        "prefix": spec.passage_prefix,
        "max_length": spec.passage_max_length,
        "pooling": spec.pooling,
        "normalize": spec.normalize,
        "dtype": resolve_dtype(dtype, encoder.device),
    }
    return cache.get_or_compute(parts, compute)


# ---- DDP: sharded corpus encoding ----------------------------------------------------------------
def _rank_and_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _encode_sharded(encoder, texts: list[str], rank: int, world: int, **kwargs) -> np.ndarray:
    """Under DDP (called by every rank at the same point): rank ``r`` embeds the ``r``-th contiguous
    ``1/world`` of ``texts``; the shards are all-gathered, so every rank returns every embedding in
    corpus order and runs the same search (the same metrics on every rank for checkpointing and
    early stopping). The cache is skipped: a hit on one rank and a miss on another would leave the
    others waiting in the gather."""
    import torch
    import torch.distributed as dist

    bounds = [len(texts) * r // world for r in range(world + 1)]
    sizes = [hi - lo for lo, hi in zip(bounds, bounds[1:])]
    part = encoder.encode(texts[bounds[rank] : bounds[rank + 1]], "passage", **kwargs)  # (shard, dim)
    device = encoder.device if dist.get_backend() == "nccl" else torch.device("cpu")
    buf = torch.zeros(max(sizes), part.shape[1], dtype=torch.float32, device=device)  # (largest shard, dim)
    buf[: len(part)] = torch.from_numpy(part).to(device)
    shards = [torch.empty_like(buf) for _ in range(world)]
    dist.all_gather(shards, buf)
    return np.concatenate([s[:n].cpu().numpy() for s, n in zip(shards, sizes)])  # (n_passages, dim)
