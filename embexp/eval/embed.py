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
