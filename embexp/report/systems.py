"""What the report compares: the base model, each configuration (seeds aggregated) and the
reference retrievers, each as per-query metric values on the same eval queries.

A system's per-query values are ``metric -> array (n_seeds, n_queries)`` in the order of
``Systems.query_ids``; ``recorded`` keeps, per seed, the aggregate numbers the run itself wrote
in ``metrics.json`` (what the report shows as means, so every number equals the runs' own).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from embexp.errors import ReportError
from embexp.eval.keys import ALL, FINAL, metric_key
from embexp.eval.keys import BASELINE as BASE_STAGE
from embexp.report.runs import Configuration, RunResult

BASELINE, FINETUNED, REFERENCE = "baseline", "finetuned", "reference"
BASE_NAME = "base model"


@dataclass
class System:
    name: str
    kind: str  # BASELINE | FINETUNED | REFERENCE
    label: str
    values: dict[str, np.ndarray]  # metric -> (n_seeds, n_queries)
    recorded: list[dict[str, float]] | None = None  # per seed: "slice/metric" -> value from metrics.json
    config: dict[str, Any] = field(default_factory=dict)
    runs: list[RunResult] = field(default_factory=list)

    @property
    def n_seeds(self) -> int:
        return next(iter(self.values.values())).shape[0]

    def per_query(self, metric: str) -> np.ndarray:
        """Seed-averaged per-query values (n_queries,)."""
        return self.values[metric].mean(axis=0)


@dataclass
class Systems:
    query_ids: list[str]
    slices: dict[str, np.ndarray]  # slice ("all" included) -> boolean mask over query_ids
    split: str
    systems: list[System] = field(default_factory=list)
    fingerprint: str | None = None  # the runs' eval data fingerprint
    base_run: RunResult | None = None  # the run whose baseline rows are the base model's

    def get(self, name: str) -> System:
        for s in self.systems:
            if s.name == name:
                return s
        raise KeyError(name)

    def of_kind(self, kind: str) -> list[System]:
        return [s for s in self.systems if s.kind == kind]


def _matrix(rows_per_seed: list[dict[str, dict]], query_ids: list[str], metrics: list[str]) -> dict:
    return {
        m: np.array([[float(rows[q][m]) for q in query_ids] for rows in rows_per_seed], dtype=np.float64)
        for m in metrics
    }


def _recorded(run: RunResult, stage: str, split: str, slices: list[str], metrics: list[str]) -> dict:
    out = {}
    for s in slices:
        for m in metrics:
            key = f"{stage}/" + metric_key(split, m, None if s == ALL else s)
            if key in run.metrics:
                out[f"{s}/{m}"] = float(run.metrics[key])
    return out


def slice_masks(run: RunResult, query_ids: list[str]) -> dict[str, np.ndarray]:
    """Slice membership as the run's evaluator recorded it in per_query.jsonl."""
    rows = run.rows[FINAL]
    names = sorted({s for q in query_ids for s in rows[q].get("slices", [])})
    masks = {ALL: np.ones(len(query_ids), dtype=bool)}
    for s in names:
        masks[s] = np.array([s in rows[q].get("slices", []) for q in query_ids])
    return masks


def build_systems(configs: list[Configuration], metrics: list[str]) -> tuple[Systems, list[str]]:
    """The base model (from the first run's baseline rows) and one system per configuration."""
    runs = [r for c in configs for r in c.runs]
    first = next((r for r in runs if r.rows.get(BASE_STAGE)), runs[0])  # the base model's rows
    split = str(first.data.get("eval_split") or "test")
    query_ids = sorted(first.rows[FINAL])
    masks = slice_masks(first, query_ids)
    notes = _check_metrics(first, metrics) + _slice_agreement(runs, masks, query_ids)
    out = Systems(
        query_ids=query_ids,
        slices=masks,
        split=split,
        fingerprint=first.data.get("fingerprint"),
        base_run=first,
    )
    base_rows = first.rows.get(BASE_STAGE)
    if base_rows:
        out.systems.append(
            System(
                BASE_NAME,
                BASELINE,
                f"{first.base_model} (no fine-tuning)",
                _matrix([base_rows], query_ids, metrics),
                [_recorded(first, BASE_STAGE, split, list(masks), metrics)],
            )
        )
        notes += _baseline_agreement(configs, base_rows, query_ids, metrics)
    else:
        notes.append(f"{first.path}: no baseline rows in per_query.jsonl (train.baseline=false?)")
    for c in configs:
        out.systems.append(
            System(
                c.name,
                FINETUNED,
                c.name,
                _matrix([r.rows[FINAL] for r in c.runs], query_ids, metrics),
                [_recorded(r, FINAL, split, list(masks), metrics) for r in c.runs],
                config=dict(c.values),
                runs=list(c.runs),
            )
        )
    return out, notes


def _check_metrics(run: RunResult, metrics: list[str]) -> list[str]:
    row = next(iter(run.rows[FINAL].values()))
    missing = [m for m in metrics if m not in row]
    if missing:
        have = sorted(k for k, v in row.items() if isinstance(v, float) and "@" in k)
        raise ReportError(
            f"{run.path / 'per_query.jsonl'}: no per-query {', '.join(missing)} (metrics=...); "
            f"the runs have: {', '.join(have)}"
        )
    return []


def _slice_agreement(runs: list[RunResult], masks: dict[str, np.ndarray], query_ids: list[str]) -> list[str]:
    """Slices (head/tail follow the training split) must mean the same queries in every run."""
    for r in runs:
        other = slice_masks(r, query_ids)
        if set(other) != set(masks) or any(not np.array_equal(other[s], masks[s]) for s in masks):
            return [
                f"slice membership differs between runs (e.g. {r.path}): the comparisons use the first "
                "run's slices, while each configuration's summary mean uses its own"
            ]
    return []


def _baseline_agreement(configs, base_rows, query_ids, metrics) -> list[str]:
    """The base model's numbers must agree across runs (same model, data, eval settings)."""
    ref = _matrix([base_rows], query_ids, metrics)
    for c in configs:
        for r in c.runs:
            other = r.rows.get(BASE_STAGE)
            if not other:
                continue
            got = _matrix([other], query_ids, metrics)
            if any(not np.allclose(ref[m], got[m], atol=1e-6) for m in metrics):
                return [
                    f"the base model's per-query numbers differ between runs (e.g. {r.path}): eval "
                    "settings (eval.dtype, max lengths) differ; the first run's baseline is used"
                ]
    return []
