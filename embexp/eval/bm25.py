"""Lexical baseline (``bm25s``) and reciprocal rank fusion with a dense ranking."""

from __future__ import annotations

import numpy as np

from embexp.config.schema import Bm25Config, EvalConfig


class BM25Retriever:
    """Lucene-style BM25 over the passages, English stop words and Snowball stemming."""

    def __init__(
        self,
        passages: list[str],
        *,
        k1: float = Bm25Config.k1,
        b: float = Bm25Config.b,
        method: str = Bm25Config.method,
        stemmer: str | None = Bm25Config.stemmer,
        stopwords: str | None = Bm25Config.stopwords,
    ):
        import bm25s

        self._stemmer = None
        if stemmer:
            import Stemmer

            self._stemmer = Stemmer.Stemmer(stemmer)
        self._tok = bm25s.tokenization.Tokenizer(stemmer=self._stemmer, stopwords=stopwords or [], lower=True)
        corpus_tokens = self._tok.tokenize(passages, return_as="ids", show_progress=False, update_vocab=True)
        self._bm25 = bm25s.BM25(k1=k1, b=b, method=method)
        self._bm25.index(corpus_tokens, show_progress=False)
        self.n_docs = len(passages)

    def search(self, queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, row indices), (n_queries, k), best first."""
        k = min(k, self.n_docs)
        ids = self._tok.tokenize(queries, return_as="ids", show_progress=False, update_vocab=False)
        idx, scores = self._bm25.retrieve(ids, k=k, show_progress=False, n_threads=0)
        return np.asarray(scores, dtype=np.float32), np.asarray(idx, dtype=np.int64)


def reciprocal_rank_fusion(
    rankings: list[np.ndarray], *, k: int, rrf_k: int = EvalConfig.rrf_k
) -> tuple[np.ndarray, np.ndarray]:
    """Fuse per-query rankings of row indices: score(d) = sum_r 1 / (rrf_k + rank_r(d)), rank from 1.

    ``rankings``: list of (n_queries, depth_r) index arrays (-1 = empty slot).
    Returns (scores, indices) of shape (n_queries, k); missing slots are -1 with score 0.
    """
    n = rankings[0].shape[0]
    out_idx = np.full((n, k), -1, dtype=np.int64)
    out_scores = np.zeros((n, k), dtype=np.float32)
    for qi in range(n):
        fused: dict[int, float] = {}
        for r in rankings:
            for rank, d in enumerate(r[qi], start=1):
                if d >= 0:
                    fused[int(d)] = fused.get(int(d), 0.0) + 1.0 / (rrf_k + rank)
        # ties broken by smallest row index, deterministic
        top = sorted(fused.items(), key=lambda x: (-x[1], x[0]))[:k]
        for j, (d, s) in enumerate(top):
            out_idx[qi, j] = d
            out_scores[qi, j] = s
    return out_scores, out_idx


def fuse_ranked_ids(
    rankings: list[list[str]], order: dict[str, int], *, k: int, rrf_k: int = EvalConfig.rrf_k
) -> list[str]:
    """:func:`reciprocal_rank_fusion` for one query's ranked id lists (same scores, same tie-break:
    the smaller row index in ``order``, the corpus order), without building index arrays."""
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, d in enumerate(ranking, start=1):
            fused[d] = fused.get(d, 0.0) + 1.0 / (rrf_k + rank)
    return sorted(fused, key=lambda d: (-fused[d], order[d]))[:k]
