"""The one evaluator: embed the whole corpus, search it, score overall and per slice.

Returns flat, stable keys that every other room reads::

    {name}/ndcg@10, {name}/recall@100, {name}/mrr@10, ... , {name}/n_queries
    {name}/slice/{slice}/ndcg@10, ..., {name}/slice/{slice}/n_queries

``retriever`` is ``dense`` (FAISS ``IndexFlatIP`` over the encoder's embeddings),
``bm25`` (``bm25s``) or ``hybrid`` (reciprocal rank fusion of both).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from embexp.data.types import Corpus, Qrels
from embexp.errors import ConfigError
from embexp.eval.bm25 import BM25Retriever, reciprocal_rank_fusion
from embexp.eval.cache import EmbeddingCache
from embexp.eval.index import DenseIndex
from embexp.eval.metrics import aggregate, per_query_metrics
from embexp.model.encoder import resolve_dtype

log = logging.getLogger(__name__)
RETRIEVERS = ("dense", "bm25", "hybrid")


@dataclass
class EvalResult:
    metrics: dict[str, float]
    primary_metric: str  # a key of ``metrics``
    per_query: dict[str, dict[str, float]]  # query id -> metric -> value
    run: dict[str, list[tuple[str, float]]]  # query id -> [(doc id, score)], best first
    slices: dict[str, set[str]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    corpus_embeddings: np.ndarray | None = None  # dense only: reusable by mining

    @property
    def primary(self) -> float:
        return self.metrics[self.primary_metric]

    def per_query_rows(self, top: int = 10) -> list[dict]:
        rows = []
        for q in sorted(self.per_query):
            rows.append(
                {
                    "split": self.primary_metric.split("/")[0],
                    "query_id": q,
                    "slices": sorted(s for s, ids in self.slices.items() if q in ids),
                    **self.per_query[q],
                    "top": [d for d, _ in self.run.get(q, [])[:top]],
                }
            )
        return rows


class RetrievalEvaluator:
    def __init__(
        self,
        corpus: Corpus,
        queries: dict[str, str],
        qrels: Qrels,
        *,
        name: str = "test",
        k_values: tuple[int, ...] | list[int] = (1, 5, 10, 20, 100),
        primary: str = "ndcg@10",
        slices: dict[str, set[str]] | None = None,
        retriever: str = "dense",
        batch_size: int = 64,
        dtype: str = "auto",
        cache: EmbeddingCache | None = None,
        corpus_fingerprint: str = "",
        ignore_identical_ids: bool = True,
        rrf_k: int = 60,
        hybrid_depth: int = 1000,
        bm25: dict | None = None,
        show_progress: bool = False,
    ):
        if retriever not in RETRIEVERS:
            raise ConfigError("eval.retriever", f"must be one of {RETRIEVERS}, got {retriever!r}")
        k_values = sorted({int(k) for k in k_values})
        if not k_values or k_values[0] <= 0:
            raise ConfigError("eval.k_values", f"must be positive integers, got {k_values}")
        metric, _, kstr = primary.partition("@")
        if metric not in ("ndcg", "recall", "precision", "mrr", "map", "hit_rate") or not kstr.isdigit() or int(kstr) not in k_values:
            raise ConfigError("eval.primary", f"{primary!r} is not a computed metric (metrics: ndcg, recall, precision, mrr, map, hit_rate; k in {k_values})")
        self.corpus = corpus
        self.qrels = {q: r for q, r in qrels.items() if any(s > 0 for s in r.values())}
        self.query_ids = sorted(self.qrels)
        self.queries = [queries[q] for q in self.query_ids]
        self.name = name
        self.k_values = k_values
        self.primary = f"{name}/{primary}"
        self.slices = {s: set(ids) & set(self.query_ids) for s, ids in (slices or {}).items()}
        self.retriever = retriever
        self.batch_size = batch_size
        self.dtype = dtype
        self.cache = cache
        self.corpus_fingerprint = corpus_fingerprint
        self.ignore_identical_ids = ignore_identical_ids
        self.rrf_k = rrf_k
        self.hybrid_depth = hybrid_depth
        self.bm25_kwargs = bm25 or {}
        self._bm25: BM25Retriever | None = None
        self.show_progress = show_progress

    # ---- retrieval ----------------------------------------------------------------
    def embed_corpus(self, encoder) -> tuple[np.ndarray, bool]:
        def compute():
            return encoder.encode(
                self.corpus.passages(), "passage", batch_size=self.batch_size, dtype=self.dtype, show_progress=self.show_progress, desc=f"encoding {len(self.corpus)} passages"
            )

        if self.cache is None or not self.corpus_fingerprint:
            return compute(), False
        spec = encoder.spec
        parts = dict(
            encoder=encoder.fingerprint(),
            corpus=self.corpus_fingerprint,
            prefix=spec.passage_prefix,
            max_length=spec.passage_max_length,
            pooling=spec.pooling,
            normalize=spec.normalize,
            dtype=resolve_dtype(self.dtype, encoder.device),
        )
        return self.cache.get_or_compute(parts, compute)

    def _dense(self, encoder, corpus_embeddings, depth, timings):
        if corpus_embeddings is None:
            t = time.perf_counter()
            corpus_embeddings, cached = self.embed_corpus(encoder)
            timings["encode_corpus_s"] = time.perf_counter() - t
            timings["corpus_cached"] = float(cached)
        t = time.perf_counter()
        q = encoder.encode(self.queries, "query", batch_size=self.batch_size, dtype=self.dtype)
        timings["encode_queries_s"] = time.perf_counter() - t
        t = time.perf_counter()
        scores, idx = DenseIndex(corpus_embeddings.shape[1]).add(corpus_embeddings).search(q, depth)
        timings["search_s"] = time.perf_counter() - t
        return scores, idx, corpus_embeddings

    def _lexical(self, depth, timings):
        t = time.perf_counter()
        if self._bm25 is None:
            self._bm25 = BM25Retriever(self.corpus.passages(), **self.bm25_kwargs)
        scores, idx = self._bm25.search(self.queries, depth)
        timings["bm25_s"] = time.perf_counter() - t
        return scores, idx

    def retrieve(self, encoder=None, corpus_embeddings: np.ndarray | None = None, timings: dict | None = None):
        timings = {} if timings is None else timings
        depth = self.k_values[-1] + (1 if self.ignore_identical_ids else 0)
        emb = None
        if self.retriever == "dense":
            if encoder is None:
                raise ConfigError("eval.retriever", "dense retrieval needs a model")
            scores, idx, emb = self._dense(encoder, corpus_embeddings, depth, timings)
        elif self.retriever == "bm25":
            scores, idx = self._lexical(depth, timings)
        else:
            if encoder is None:
                raise ConfigError("eval.retriever", "hybrid retrieval needs a model")
            d = max(depth, min(self.hybrid_depth, len(self.corpus)))
            _, didx, emb = self._dense(encoder, corpus_embeddings, d, timings)
            _, bidx = self._lexical(d, timings)
            scores, idx = reciprocal_rank_fusion([didx, bidx], k=depth, rrf_k=self.rrf_k)
        ids = self.corpus.ids
        run: dict[str, list[tuple[str, float]]] = {}
        for qi, q in enumerate(self.query_ids):
            ranked = [(ids[j], float(s)) for s, j in zip(scores[qi], idx[qi]) if j >= 0 and not (self.ignore_identical_ids and ids[j] == q)]
            run[q] = ranked[: self.k_values[-1]]
        return run, emb

    # ---- scoring ------------------------------------------------------------------
    def score(self, run: dict[str, list[tuple[str, float]]]) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
        per_query = per_query_metrics({q: [d for d, _ in r] for q, r in run.items()}, self.qrels, self.k_values)
        metrics = {f"{self.name}/{k}": v for k, v in aggregate(per_query).items()}
        metrics[f"{self.name}/n_queries"] = float(len(per_query))
        for s, ids in self.slices.items():
            for k, v in aggregate(per_query, ids).items():
                metrics[f"{self.name}/slice/{s}/{k}"] = v
            metrics[f"{self.name}/slice/{s}/n_queries"] = float(len(ids))
        return metrics, per_query

    def __call__(self, encoder=None, *, corpus_embeddings: np.ndarray | None = None, keep_embeddings: bool = False) -> EvalResult:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        run, emb = self.retrieve(encoder, corpus_embeddings, timings)
        metrics, per_query = self.score(run)
        timings["total_s"] = time.perf_counter() - t0
        return EvalResult(
            metrics=metrics,
            primary_metric=self.primary,
            per_query=per_query,
            run=run,
            slices=self.slices,
            timings=timings,
            corpus_embeddings=emb if keep_embeddings else None,
        )
