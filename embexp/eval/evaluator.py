"""The one evaluator: embed the whole corpus, search it, score overall and per slice.

Returns flat, stable keys that every other room reads (built and parsed by
:mod:`embexp.eval.keys`)::

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

from embexp.config.schema import EvalConfig
from embexp.data.types import Corpus, Qrels, positives
from embexp.errors import ConfigError
from embexp.eval.bm25 import BM25Retriever, reciprocal_rank_fusion
from embexp.eval.cache import EmbeddingCache
from embexp.eval.embed import embed_corpus
from embexp.eval.index import DenseIndex
from embexp.eval.keys import metric_key, parse_metric_key
from embexp.eval.metrics import METRIC_NAMES, aggregate, per_query_metrics
from embexp.utils.dist import map_sharded

log = logging.getLogger(__name__)
_NOTED: set[tuple[str, int]] = set()


def _note_identical_ids(name: str, qrels) -> None:
    """Say once per split when a query's relevant document carries the query's own id: with
    ``eval.ignore_identical_ids=true`` (the BEIR convention) it can never be a hit."""
    hits = sorted(q for q, r in qrels.items() if r.get(q, 0) > 0)
    if hits and (name, len(hits)) not in _NOTED:
        _NOTED.add((name, len(hits)))
        log.warning(
            "%s: %d quer%s (e.g. %s) %s a relevant document with the same id; eval.ignore_identical_ids=true "
            "never counts it as a hit (BEIR convention). "
            "Set eval.ignore_identical_ids=false if ids are shared by design.",
            name,
            len(hits),
            "y" if len(hits) == 1 else "ies",
            hits[0],
            "has" if len(hits) == 1 else "have",
        )


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
        rows, members = [], {s: set(ids) for s, ids in self.slices.items()}
        for q in sorted(self.per_query):
            rows.append(
                {
                    "split": parse_metric_key(self.primary_metric).split,
                    "query_id": q,
                    "slices": sorted(s for s, ids in members.items() if q in ids),
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
        k_values: tuple[int, ...] | list[int] | None = None,  # None: EvalConfig's
        primary: str = EvalConfig.primary,
        slices: dict[str, set[str]] | None = None,
        retriever: str = EvalConfig.retriever,
        batch_size: int = EvalConfig.batch_size,
        dtype: str = "auto",
        cache: EmbeddingCache | None = None,
        corpus_fingerprint: str = "",
        ignore_identical_ids: bool = True,
        rrf_k: int = EvalConfig.rrf_k,
        hybrid_depth: int = EvalConfig.hybrid_depth,
        bm25: dict | None = None,
        show_progress: bool = False,
    ):
        if retriever not in RETRIEVERS:
            raise ConfigError("eval.retriever", f"must be one of {RETRIEVERS}, got {retriever!r}")
        k_values = sorted({int(k) for k in (EvalConfig().k_values if k_values is None else k_values)})
        if not k_values or k_values[0] <= 0:
            raise ConfigError("eval.k_values", f"must be positive integers, got {k_values}")
        metric, _, kstr = primary.partition("@")
        if metric not in METRIC_NAMES or not kstr.isdigit() or int(kstr) not in k_values:
            raise ConfigError(
                "eval.primary",
                f"{primary!r} is not a computed metric (metrics: {', '.join(METRIC_NAMES)}; k in {k_values})",
            )
        self.corpus = corpus
        self.qrels = {q: r for q, r in qrels.items() if positives(r)}
        self.query_ids = sorted(self.qrels)
        self.queries = [queries[q] for q in self.query_ids]
        self.name = name
        self.k_values = k_values
        self.primary = metric_key(name, primary)
        # members in query order, so slice means never depend on a set's (hash-seeded) order
        self.notes: list[str] = []  # why a built-in slice is missing (embexp.eval.build)
        self.slices = {
            s: [q for q in self.query_ids if q in ids]
            for s, ids in ((s, set(i)) for s, i in (slices or {}).items())
        }
        self.retriever = retriever
        self.batch_size = batch_size
        self.dtype = dtype
        self.cache = cache
        self.corpus_fingerprint = corpus_fingerprint
        self.ignore_identical_ids = ignore_identical_ids
        if ignore_identical_ids:
            _note_identical_ids(name, self.qrels)
        self.rrf_k = rrf_k
        self.hybrid_depth = hybrid_depth
        self.bm25_kwargs = bm25 or {}
        self._bm25: BM25Retriever | None = None
        self.show_progress = show_progress

    # ---- retrieval ----------------------------------------------------------------
    def _dense(self, encoder, corpus_embeddings, depth, timings):
        if corpus_embeddings is None:
            t = time.perf_counter()
            corpus_embeddings, cached = embed_corpus(
                encoder,
                self.corpus,
                cache=self.cache,
                corpus_fingerprint=self.corpus_fingerprint,
                batch_size=self.batch_size,
                dtype=self.dtype,
                show_progress=self.show_progress,
            )
            timings["encode_corpus_s"] = time.perf_counter() - t
            timings["corpus_cached"] = float(cached)
        index = DenseIndex(corpus_embeddings.shape[1]).add(corpus_embeddings)

        def encode_and_search(queries):  # under DDP: this rank's shard of the queries
            t = time.perf_counter()
            q = encoder.encode(list(queries), "query", batch_size=self.batch_size, dtype=self.dtype)
            timings["encode_queries_s"] = time.perf_counter() - t
            t = time.perf_counter()
            found = index.search(q, depth)
            timings["search_s"] = time.perf_counter() - t
            return found

        scores, idx = map_sharded(encode_and_search, self.queries)  # gathered on every rank
        return scores, idx, corpus_embeddings

    def _lexical(self, depth, timings):
        t = time.perf_counter()
        if self._bm25 is None:
            self._bm25 = BM25Retriever(self.corpus.passages(), **self.bm25_kwargs)
        scores, idx = self._bm25.search(self.queries, depth)
        timings["bm25_s"] = time.perf_counter() - t
        return scores, idx

    def retrieve(
        self, encoder=None, corpus_embeddings: np.ndarray | None = None, timings: dict | None = None
    ):
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
            ranked = [
                (ids[j], float(s))
                for s, j in zip(scores[qi], idx[qi])
                if j >= 0 and not (self.ignore_identical_ids and ids[j] == q)
            ]
            run[q] = ranked[: self.k_values[-1]]
        return run, emb

    # ---- scoring ------------------------------------------------------------------
    def score(
        self, run: dict[str, list[tuple[str, float]]]
    ) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
        per_query = per_query_metrics(
            {q: [d for d, _ in r] for q, r in run.items()}, self.qrels, self.k_values
        )
        metrics = {metric_key(self.name, k): v for k, v in aggregate(per_query).items()}
        metrics[metric_key(self.name, "n_queries")] = float(len(per_query))
        for s, ids in self.slices.items():
            for k, v in aggregate(per_query, ids).items():
                metrics[metric_key(self.name, k, s)] = v
            metrics[metric_key(self.name, "n_queries", s)] = float(len(ids))
        return metrics, per_query

    def __call__(
        self, encoder=None, *, corpus_embeddings: np.ndarray | None = None, keep_embeddings: bool = False
    ) -> EvalResult:
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
