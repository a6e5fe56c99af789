"""``build_report``: runs in, the report dict out (what ``report.json`` holds; schema in
``docs/report.md``). ``write_report`` (embexp.report.render) turns it into files."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from embexp.report import analysis
from embexp.report.cost import cost_rows, machine_label
from embexp.report.references import ReferenceData, add_references
from embexp.report.runs import Configuration, check_comparable, differing_keys, group_runs, load_runs
from embexp.report.systems import BASELINE, FINETUNED, Systems, build_systems
from embexp.report.verdict import verdict
from embexp.utils.provenance import code_version

log = logging.getLogger("embexp.report")
DEFAULT_METRICS = ("ndcg@10", "recall@10", "mrr@10")  # the metrics tested (Holm family size)


@dataclass
class ReportSettings:
    keys: list[str] | None = None  # grouping keys (None: the keys that differ)
    metrics: list[str] = field(default_factory=lambda: list(DEFAULT_METRICS))
    alpha: float = 0.05
    confidence: float = 0.95
    resamples: int = 9999
    seed: int = 0
    references: bool = True  # BM25 and hybrid rows (needs the runs' data)
    latency: bool = True  # query latency on the saved models (needs the runs' models and data)
    min_slice_queries: int = 10  # smaller slices are summarised but not tested


def build_report(paths: Sequence[str], settings: ReportSettings | None = None) -> dict:
    st = settings or ReportSettings()
    runs, notes = load_runs(paths)
    warnings = check_comparable(runs)
    configs, keys = group_runs(runs, st.keys)
    warnings += _mixed_groups(configs, keys) + _duplicate_seeds(configs) + _kept_base(configs)
    systems, more = build_systems(configs, list(st.metrics))
    notes += more
    full_cfg = runs[0].full_config
    ref = _reference_data(runs[0], full_cfg, st, notes)
    if ref is not None and st.references:
        notes += add_references(systems, ref, list(st.metrics))
    stat = {"confidence": st.confidence, "resamples": st.resamples, "seed": st.seed}
    summary = analysis.summary_rows(systems, list(st.metrics), **stat)
    comps = analysis.comparisons(
        systems, list(st.metrics), alpha=st.alpha, min_n=st.min_slice_queries, **stat
    )
    recov, more = analysis.recovery(systems, list(st.metrics), min_n=st.min_slice_queries, **stat)
    notes += more
    queries = [ref.queries[q] for q in systems.query_ids] if ref is not None else None
    cost, more = cost_rows(
        systems.systems, queries=queries, base_model_cfg=full_cfg.get("model"), latency=st.latency
    )
    notes += more
    report = {
        "schema": 1,
        "title": _title(runs[0], configs),
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "code": {k: code_version().get(k) for k in ("embexp", "git_commit")},
        "machine": machine_label(),
        "eval": _eval_block(runs[0], systems),
        "settings": {
            "keys": keys,
            "metrics": list(st.metrics),
            "primary": _primary(runs[0], st.metrics),
            "alpha": st.alpha,
            "confidence": st.confidence,
            "resamples": st.resamples,
            "seed": st.seed,
            "baseline": "base model",
            "min_slice_queries": st.min_slice_queries,
        },
        "systems": _system_entries(systems),
        "summary": summary,
        "comparisons": comps,
        "recovery": recov,
        "regressions": analysis.regressions(systems, summary, comps),
        "cost": cost,
        "dev_history": _dev_history(systems, runs[0].monitor),
        "query_ids": systems.query_ids,
        "per_query": {
            s.name: {m: [float(v) for v in s.per_query(m)] for m in st.metrics} for s in systems.systems
        },
        "paired_scatter": _scatter(summary, systems, _primary(runs[0], st.metrics)),
        "warnings": warnings + notes,
        "wandb_group": _common_group(runs),
    }
    report["verdict"], report["caveats"] = verdict(report)
    return report


def _reference_data(run, full_cfg, st: ReportSettings, notes: list[str]) -> ReferenceData | None:
    if not (st.references or st.latency):
        return None
    try:
        return ReferenceData(run, full_cfg)
    except Exception as e:  # noqa: BLE001 - the data may be gone; the rest of the report stands
        notes.append(f"reference rows and latency skipped: the runs' data could not be loaded ({e})")
        return None


def _mixed_groups(configs: list[Configuration], keys: list[str]) -> list[str]:
    """Explicit ``keys`` may leave other differences inside a configuration: say which."""
    out = []
    for c in configs:
        inside = [k for k in differing_keys(c.runs) if k not in keys]
        if inside:
            out.append(
                f"{c.name}: grouped by {', '.join(keys)}, but its runs also differ in {', '.join(inside)}"
            )
    return out


def _kept_base(configs: list[Configuration]) -> list[str]:
    """Runs whose model selection kept the base weights (no epoch beat the base model on dev)."""
    out = []
    for c in configs:
        kept = [r for r in c.runs if r.selected == "base"]
        if kept:
            out.append(
                f"{c.name}: {len(kept)} of {len(c.runs)} runs kept the base model (no epoch beat it on "
                f"{kept[0].monitor or 'the dev metric'}): their final numbers are the base model's"
            )
    return out


def _duplicate_seeds(configs: list[Configuration]) -> list[str]:
    out = []
    for c in configs:
        seeds = c.seeds
        dup = sorted({s for s in seeds if seeds.count(s) > 1}, key=str)
        if dup:
            out.append(
                f"{c.name}: seed(s) {dup} appear more than once (repeated runs count as separate seeds)"
            )
    return out


def _primary(run, metrics) -> str:
    """The runs' own primary metric (``eval.primary``) when the report computes it."""
    return run.primary if run.primary in metrics else metrics[0]


def _title(run, configs) -> str:
    names = ", ".join(c.name for c in configs)
    return f"{run.data.get('name', 'eval')}: {names} vs the base model"


def _eval_block(run, systems: Systems) -> dict:
    return {
        "dataset": run.data.get("name"),
        "split": systems.split,
        "fingerprint": run.data.get("fingerprint"),
        "n_queries": len(systems.query_ids),
        "base_model": run.base_model,
        "slices": analysis.slice_counts(systems),
    }


def _system_entries(systems: Systems) -> list[dict]:
    return [
        {
            "name": s.name,
            "kind": s.kind,
            "label": s.label,
            "config": {k: list(v) if isinstance(v, tuple) else v for k, v in s.config.items()},
            "n_seeds": s.n_seeds,
            "runs": [
                {"run_id": r.run_id, "path": str(r.path), "seed": r.seed, "selected": r.selected}
                for r in s.runs
            ],
        }
        for s in systems.systems
    ]


def _dev_history(systems: Systems, monitor: str | None) -> dict:
    out: dict = {"monitor": monitor}
    for s in systems.of_kind(FINETUNED):
        out[s.name] = {
            str(r.seed): [
                {"epoch": h.get("epoch"), "step": h.get("step"), "value": h.get(monitor)}
                for h in r.dev_history
                if monitor in h
            ]
            for r in s.runs
        }
    return out


def _scatter(summary, systems: Systems, primary: str) -> dict | None:
    fts = [s.name for s in systems.of_kind(FINETUNED)]
    ranked = sorted(
        (r for r in summary if r["system"] in fts and r["slice"] == "all" and r["metric"] == primary),
        key=lambda r: -r["mean"],
    )
    if len(ranked) >= 2:
        return {"a": ranked[0]["system"], "b": ranked[1]["system"], "metric": primary}
    if ranked and systems.of_kind(BASELINE):
        return {"a": ranked[0]["system"], "b": systems.of_kind(BASELINE)[0].name, "metric": primary}
    return None


def _common_group(runs) -> str | None:
    groups = {r.wandb_group for r in runs}
    return groups.pop() if len(groups) == 1 else None
