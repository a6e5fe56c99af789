"""Evaluators from config nodes (shared by eval, train and mining)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from embexp.data.prepare import PreparedData
from embexp.data.types import Qrels
from embexp.eval.cache import EmbeddingCache
from embexp.eval.evaluator import RetrievalEvaluator
from embexp.eval.slices import build_slices


def build_evaluator(
    eval_cfg,
    data: PreparedData,
    *,
    split: str,
    qrels: Qrels | None = None,
    cache_dir: str | Path | None = None,
    show_progress: bool | None = None,
) -> RetrievalEvaluator:
    ds = data.dataset
    qrels = ds.qrels[split] if qrels is None else qrels
    sc = eval_cfg.slices
    notes: list[str] = []
    slices = build_slices(
        sorted(qrels),
        ds.queries,
        ds.query_meta,
        corpus=ds.corpus,
        eval_qrels=qrels,
        train_qrels=data.train,  # every judgment of the training split: the same slices for eval and train
        jargon=bool(sc.jargon),
        rare_max_df=int(sc.rare_max_df),
        head_tail=bool(sc.head_tail),
        head_quantile=float(sc.head_quantile),
        tail_quantile=float(sc.tail_quantile),
        seen_share=float(sc.get("seen_share", 0.5)),
        file=sc.file,
        rules=list(sc.get("rules") or []),
        notes=notes,
    )
    evaluator = RetrievalEvaluator(
        ds.corpus,
        ds.queries,
        qrels,
        name=split,
        k_values=list(eval_cfg.k_values),
        primary=eval_cfg.primary,
        slices=slices,
        retriever=eval_cfg.retriever,
        batch_size=int(eval_cfg.batch_size),
        dtype=eval_cfg.dtype,
        cache=EmbeddingCache.under(cache_dir) if eval_cfg.cache else None,
        corpus_fingerprint=ds.corpus_fingerprint,
        ignore_identical_ids=bool(eval_cfg.ignore_identical_ids),
        rrf_k=int(eval_cfg.rrf_k),
        hybrid_depth=int(eval_cfg.hybrid_depth),
        bm25=OmegaConf.to_container(eval_cfg.bm25, resolve=True),
        show_progress=bool(eval_cfg.show_progress if show_progress is None else show_progress),
    )
    evaluator.notes = [f"{split}: {n}" for n in notes]
    return evaluator
