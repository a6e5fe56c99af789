"""Corpus embeddings through the embedding cache: the one code path for evaluation and mining."""

from __future__ import annotations

import numpy as np

from embexp.config.schema import EvalConfig
from embexp.data.types import Corpus
from embexp.eval.cache import EmbeddingCache
from embexp.model.encoder import resolve_dtype
from embexp.utils.dist import map_sharded, rank_and_world


def embed_corpus(
    encoder,
    corpus: Corpus,
    *,
    cache: EmbeddingCache | None = None,
    corpus_fingerprint: str = "",
    batch_size: int = EvalConfig.batch_size,
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

    if rank_and_world()[1] > 1:  # DDP: every rank encodes a shard (the cache is not used: a hit on
        # one rank and a miss on another would leave the others waiting in the gather)
        return encode_texts(encoder, corpus.passages(), "passage", batch_size=batch_size, dtype=dtype), False
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


def encode_texts(encoder, texts: list[str], kind: str, **kwargs) -> np.ndarray:
    """``encoder.encode(texts, kind, **kwargs)``; under DDP (called by every rank at the same point)
    rank ``r`` encodes the ``r``-th contiguous ``1/world`` of ``texts`` and the shards are
    all-gathered, so every rank returns every embedding in ``texts`` order and runs the same search
    (the same metrics on every rank for checkpointing and early stopping)."""
    (emb,) = map_sharded(lambda part: (encoder.encode(list(part), kind, **kwargs),), texts)
    return emb
