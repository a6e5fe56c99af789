"""Evaluators from the ``eval`` node (shared by eval, train and mining), and the node's check."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from embexp.config.schema import EvalConfig
from embexp.config.store import to_schema
from embexp.data.prepare import PreparedData
from embexp.data.types import Qrels
from embexp.errors import ConfigError
from embexp.eval.cache import EmbeddingCache
from embexp.eval.evaluator import RETRIEVERS, RetrievalEvaluator
from embexp.eval.slices import build_slices


def eval_config(node) -> EvalConfig:
    """The ``eval`` node (DictConfig, dict or EvalConfig) as its schema object, checked: types,
    unknown keys and ranges (the schema's), the retriever and dtype choices (this layer's and the
    encoder's). Errors name ``eval.<key>``."""
    from embexp.model.encoder import DTYPES

    ev = node if isinstance(node, EvalConfig) else to_schema(node, EvalConfig, "eval")
    if ev.retriever not in RETRIEVERS:
        raise ConfigError("eval.retriever", f"must be one of {RETRIEVERS}, got {ev.retriever!r}")
    dtypes = ("auto", *DTYPES)
    if ev.dtype not in dtypes:
        raise ConfigError("eval.dtype", f"must be one of {dtypes}, got {ev.dtype!r}")
    return ev


def build_evaluator(
    eval_cfg,
    data: PreparedData,
    *,
    split: str,
    qrels: Qrels | None = None,
    cache_dir: str | Path | None = None,
    show_progress: bool | None = None,
) -> RetrievalEvaluator:
    ev = eval_config(eval_cfg)
    ds = data.dataset
    qrels = ds.qrels[split] if qrels is None else qrels
    sc = ev.slices
    notes: list[str] = []
    slices = build_slices(
        sorted(qrels),
        ds.queries,
        ds.query_meta,
        corpus=ds.corpus,
        eval_qrels=qrels,
        train_qrels=data.train,  # every judgment of the training split: the same slices for eval and train
        **dataclasses.asdict(sc),  # eval.slices: jargon, head/tail, file, rules (SlicesConfig)
        notes=notes,
    )
    evaluator = RetrievalEvaluator(
        ds.corpus,
        ds.queries,
        qrels,
        name=split,
        k_values=list(ev.k_values),
        primary=ev.primary,
        slices=slices,
        retriever=ev.retriever,
        batch_size=ev.batch_size,
        dtype=ev.dtype,
        cache=EmbeddingCache.under(cache_dir) if ev.cache else None,
        corpus_fingerprint=ds.corpus_fingerprint,
        ignore_identical_ids=ev.ignore_identical_ids,
        rrf_k=ev.rrf_k,
        hybrid_depth=ev.hybrid_depth,
        bm25=dataclasses.asdict(ev.bm25),
        show_progress=ev.show_progress if show_progress is None else show_progress,
    )
    evaluator.notes = [f"{split}: {n}" for n in notes]
    return evaluator
