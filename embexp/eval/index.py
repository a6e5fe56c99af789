"""Exact inner-product search with FAISS on L2-normalised float32 vectors."""

from __future__ import annotations

import faiss
import numpy as np


def check_normalised(x: np.ndarray, what: str, atol: float = 1e-3) -> np.ndarray:
    if x.ndim != 2:
        raise ValueError(f"{what}: expected a 2-d array, got shape {x.shape}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1)
    bad = np.flatnonzero(np.abs(norms - 1.0) > atol)
    if bad.size:
        raise ValueError(
            f"{what}: {bad.size} vectors are not L2-normalised (row {bad[0]} has norm {norms[bad[0]]:.4f}); "
            "cosine search needs normalised embeddings"
        )
    return x


class DenseIndex:
    """``IndexFlatIP``: exact cosine similarity for normalised vectors."""

    def __init__(self, dim: int):
        self.index = faiss.IndexFlatIP(dim)

    def add(self, vectors: np.ndarray) -> DenseIndex:
        self.index.add(check_normalised(vectors, "corpus embeddings"))
        return self

    def __len__(self) -> int:
        return self.index.ntotal

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, row indices), each (n_queries, min(k, ntotal)), best first."""
        k = min(k, self.index.ntotal)
        return self.index.search(check_normalised(queries, "query embeddings"), k)
