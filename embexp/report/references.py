"""Reference rows: what to try before fine-tuning (the seed's decision table), on the same queries.

- ``BM25``: the run's own BM25 settings (``eval.bm25``) on its eval split.
- ``hybrid: base model``: reciprocal rank fusion (``eval.rrf_k``) of BM25 and the base model's
  dense ranking; ``hybrid: <configuration>``: the same with a fine-tuned encoder, per seed.

The dense rankings are the ranked ids each run kept in ``per_query.jsonl`` (``eval.per_query_top``,
100 by default), fused with BM25's top of the same depth; no model is re-run. Rows that kept fewer
ids than the deepest cut-off (``eval.k_values``; or the corpus, if smaller) are skipped with a note.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from embexp.config.schema import EvalConfig
from embexp.config.store import to_schema
from embexp.data.prepare import prepare_data
from embexp.eval.bm25 import fuse_ranked_ids
from embexp.eval.evaluator import RetrievalEvaluator
from embexp.eval.keys import BASELINE, FINAL
from embexp.eval.metrics import per_query_metrics
from embexp.report.runs import RunResult
from embexp.report.systems import BASE_NAME, REFERENCE, System, Systems

log = logging.getLogger("embexp.report")
BM25_NAME = "BM25"


def hybrid_name(system: str) -> str:
    return f"hybrid: {system}"


class ReferenceData:
    """The eval split of the runs' data, BM25 over its corpus, and the eval settings."""

    def __init__(self, run: RunResult, full_config: dict[str, Any]):
        data_cfg = OmegaConf.create(full_config["data"])
        recorded = full_config.get("eval") or {}
        known = {f.name for f in dataclasses.fields(EvalConfig)}  # a key of older code is not ours to judge
        self.eval_cfg = to_schema({k: v for k, v in recorded.items() if k in known}, EvalConfig, "eval")
        self.data = prepare_data(data_cfg, need_train=False)
        ds = self.data.dataset
        self.k_values = sorted(self.eval_cfg.k_values)
        self.evaluator = RetrievalEvaluator(
            ds.corpus,
            ds.queries,
            ds.qrels[self.data.eval_split],
            name=self.data.eval_split,
            k_values=self.k_values,
            retriever="bm25",
            ignore_identical_ids=self.eval_cfg.ignore_identical_ids,
            bm25=dataclasses.asdict(self.eval_cfg.bm25),
        )
        self.rrf_k = self.eval_cfg.rrf_k
        self.row = {d: i for i, d in enumerate(ds.corpus.ids)}
        run_, _ = self.evaluator.retrieve()
        self.bm25_run = {q: [d for d, _ in r] for q, r in run_.items()}

    @property
    def queries(self) -> dict[str, str]:
        return self.data.dataset.queries

    def score(self, run: dict[str, list[str]], query_ids: list[str], metrics: list[str]) -> dict:
        pq = per_query_metrics(run, self.evaluator.qrels, self.k_values)
        return {m: np.array([[pq[q][m] for q in query_ids]]) for m in metrics}

    def fuse(self, dense: dict[str, list[str]]) -> dict[str, list[str]]:
        """RRF of the dense ids and BM25's ids (each query's lists cut to the same depth)."""
        depth = self.k_values[-1]
        return {
            q: fuse_ranked_ids([dense.get(q, [])[:depth], bm[:depth]], self.row, k=depth, rrf_k=self.rrf_k)
            for q, bm in self.bm25_run.items()
        }


def _dense_runs(runs: list[RunResult], model: str) -> list[dict[str, list[str]]]:
    return [{q: list(r.get("top", [])) for q, r in run.rows[model].items()} for run in runs]


def add_references(systems: Systems, ref: ReferenceData, metrics: list[str]) -> list[str]:
    """Append BM25 and the hybrid rows to ``systems``; return notes."""
    notes: list[str] = []
    qids = systems.query_ids
    want = systems.fingerprint
    if want and ref.data.dataset.fingerprint != want:
        return [
            f"reference rows skipped: the data at {ref.data.dataset.source} (fingerprint "
            f"{ref.data.dataset.fingerprint}) is not what the runs were evaluated on ({want})"
        ]
    missing = sorted(set(qids) - set(ref.bm25_run))
    if missing:
        return [f"reference rows skipped: {len(missing)} eval queries of the runs are not in the data"]
    systems.systems.append(
        System(BM25_NAME, REFERENCE, "BM25 (lexical, no model)", ref.score(ref.bm25_run, qids, metrics))
    )
    depth = ref.k_values[-1]
    need = min(depth, len(ref.data.dataset.corpus.ids) - 1)  # a query's own id may be left out
    sources = [(BASE_NAME, BASELINE, [systems.base_run])] if systems.of_kind("baseline") else []
    sources += [(s.name, FINAL, s.runs) for s in systems.of_kind("finetuned")]
    for name, model, runs in sources:
        dense = _dense_runs(runs, model)
        kept = min(len(v) for d in dense for v in d.values())
        if kept < need:
            notes.append(
                f"hybrid: {name} skipped: the runs kept {kept} ranked ids per query (eval.per_query_top) "
                f"but fusion needs {depth}"
            )
            continue
        per_seed = [ref.score(ref.fuse(d), qids, metrics) for d in dense]
        values = {m: np.concatenate([p[m] for p in per_seed]) for m in metrics}
        label = f"RRF of BM25 and {name} (top {depth} each)"
        systems.systems.append(System(hybrid_name(name), REFERENCE, label, values))
    return notes
