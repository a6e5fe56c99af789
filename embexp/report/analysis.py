"""The numbers of a report: summary with confidence intervals, paired comparisons with Holm
correction, the share of the full fine-tune's gain a cheaper configuration recovers, and the
per-slice regressions. Everything is computed from :class:`~embexp.report.systems.Systems`.

- Means of fine-tuned configurations and of the base model are the runs' own ``metrics.json``
  values (mean over seeds); with >= 3 seeds the CI is a t-interval across seeds, otherwise a
  query-bootstrap CI of the seed-averaged per-query values, flagged.
- Comparisons are paired per query on the seed-averaged values: a sign-flip randomization test
  and a paired bootstrap CI of the difference. Holm's correction runs over each family of
  comparison x slice x metric: the configurations (against the base model and each other) and
  the references (BM25, hybrids). A randomization p-value is at least 1 / (resamples + 1), so
  ``resamples`` must be large enough for the family: 9999 lets ~400 tests reach Holm p < 0.05.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np

from embexp.eval import stats
from embexp.eval.keys import ALL
from embexp.report.systems import BASELINE, FINETUNED, REFERENCE, System, Systems

MIN_SEEDS_FOR_SEED_CI = 3
CONFIGS, REFS = "configurations", "references"  # the two families of tests (Holm within each)
BM25, HYBRID_BASE = "BM25", "hybrid: base model"


def _slice_values(s: System, metric: str, mask: np.ndarray) -> np.ndarray:
    return s.values[metric][:, mask]


def summary_rows(
    systems: Systems, metrics: list[str], *, confidence: float, resamples: int, seed: int
) -> list:
    rows = []
    for s in systems.systems:
        for sl, mask in systems.slices.items():
            n = int(mask.sum())
            for m in metrics:
                per_seed_q = _slice_values(s, m, mask)
                if s.recorded is not None and all(f"{sl}/{m}" in r for r in s.recorded):
                    per_seed = [r[f"{sl}/{m}"] for r in s.recorded]
                else:
                    per_seed = [float(v) for v in per_seed_q.mean(axis=1)]
                rows.append(_summary_row(s, sl, m, n, per_seed, per_seed_q, confidence, resamples, seed))
    return rows


def _summary_row(s, sl, m, n, per_seed, per_seed_q, confidence, resamples, seed) -> dict:
    flag = None
    if len(per_seed) >= MIN_SEEDS_FOR_SEED_CI:
        iv = stats.seed_mean_ci(per_seed, confidence=confidence)
        low, high, method = iv.low, iv.high, iv.method
    else:
        iv = stats.bootstrap_mean_ci(
            per_seed_q.mean(axis=0), confidence=confidence, resamples=resamples, seed=seed
        )
        low, high, method = iv.low, iv.high, iv.method
        if s.kind == FINETUNED or len(per_seed) > 1:
            n_s = len(per_seed)
            flag = f"{n_s} seed{'s' if n_s != 1 else ''}: query-bootstrap CI (seed variance not included)"
    return {
        "system": s.name,
        "slice": sl,
        "metric": m,
        "n_queries": n,
        "mean": float(np.mean(per_seed)),
        "ci_low": float(low),
        "ci_high": float(high),
        "ci_method": method,
        "flag": flag,
        "per_seed": [float(v) for v in per_seed],
    }


def comparison_pairs(systems: Systems) -> list[tuple[str, str, str]]:
    """(a, b, family). Family ``configurations``: every configuration vs the base model and vs each
    other. Family ``references``: BM25 and the base model's hybrid vs the base model; every
    configuration and its hybrid vs the base model's hybrid. Each family is Holm-corrected."""
    fts = [s.name for s in systems.of_kind(FINETUNED)]
    refs = {s.name for s in systems.of_kind(REFERENCE)}
    base = [s.name for s in systems.of_kind(BASELINE)]
    pairs: list[tuple[str, str, str]] = []
    if base:
        pairs += [(f, base[0], CONFIGS) for f in fts]
    pairs += [(a, b, CONFIGS) for i, a in enumerate(fts) for b in fts[i + 1 :]]
    if base:
        pairs += [(r, base[0], REFS) for r in (BM25, HYBRID_BASE) if r in refs]
    if HYBRID_BASE in refs:
        pairs += [(f, HYBRID_BASE, REFS) for f in fts]
        pairs += [(f"hybrid: {f}", HYBRID_BASE, REFS) for f in fts if f"hybrid: {f}" in refs]
    return pairs


def comparisons(
    systems: Systems,
    metrics: list[str],
    *,
    alpha: float,
    confidence: float,
    resamples: int,
    seed: int,
    min_n: int,
) -> list[dict]:
    """Every pair of :func:`comparison_pairs` on every slice (>= ``min_n`` queries) and metric, in one
    vectorized call (each row masked to its slice's queries)."""
    todo = [
        (a, b, fam, sl, m)
        for sl, mask in systems.slices.items()
        if int(mask.sum()) >= min_n
        for a, b, fam in comparison_pairs(systems)
        for m in metrics
    ]
    if not todo:
        return []
    results = stats.paired_comparisons(
        np.stack([systems.get(a).per_query(m) for a, _, _, _, m in todo]),
        np.stack([systems.get(b).per_query(m) for _, b, _, _, m in todo]),
        masks=np.stack([systems.slices[sl] for _, _, _, sl, _ in todo]),
        confidence=confidence,
        resamples=resamples,
        seed=seed,
    )
    rows = [
        {"a": a, "b": b, "family": family, "slice": sl, "metric": m, "n_queries": int(r.n),
         "mean_a": r.mean_a, "mean_b": r.mean_b, "diff": r.diff, "ci_low": r.low, "ci_high": r.high, "p": r.p}
        for (a, b, family, sl, m), r in zip(todo, results)
    ]  # fmt: skip
    for family in (CONFIGS, REFS):
        members = [r for r in rows if r["family"] == family]
        for r, p in zip(members, stats.holm([r["p"] for r in members])):
            r["p_holm"] = p
            r["significant"] = bool(p is not None and p < alpha)
    return rows


def recovery(
    systems: Systems, metrics: list[str], *, confidence: float, resamples: int, seed: int, min_n: int
) -> tuple[list[dict], list[str]]:
    """For every cheaper configuration (adapter kind other than full) and every full fine-tune:
    the share of the full fine-tune's gain over the base model it keeps. Runs of one adapter kind
    (a curriculum or loss comparison) do not ask the question: no rows and no note."""
    fts = systems.of_kind(FINETUNED)
    if len({r.config["adapter.kind"] for s in fts for r in s.runs if r.config.get("adapter.kind")}) < 2:
        return [], []
    full = [s for s in fts if s.runs and s.runs[0].config.get("adapter.kind") == "full"]
    cheaper = [s for s in fts if s not in full]
    base = systems.of_kind(BASELINE)
    missing = [w for w, have in (("a full fine-tune", full), ("a cheaper configuration", cheaper),
                                 ("the base model", base)) if not have]  # fmt: skip
    if missing:
        return [], [f"no recovery ratio: the runs lack {' and '.join(missing)}"]
    rows = []
    for c in cheaper:
        for f in full:
            for sl, mask in systems.slices.items():
                if int(mask.sum()) < min_n:
                    continue
                for m in metrics:
                    r = stats.recovery_ratio(
                        c.per_query(m)[mask],
                        f.per_query(m)[mask],
                        base[0].per_query(m)[mask],
                        confidence=confidence,
                        resamples=resamples,
                        seed=seed,
                    )
                    rows.append(
                        {"cheaper": c.name, "full": f.name, "slice": sl, "metric": m, **_ratio(asdict(r))}
                    )
    return rows, []


def _finite(x: float) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def _ratio(r: dict) -> dict:
    return {
        "ratio": _finite(r["ratio"]),
        "ci_low": _finite(r["low"]),
        "ci_high": _finite(r["high"]),
        "gain_cheaper": r["gain_lora"],
        "gain_full": r["gain_full"],
        "stable": bool(r["stable"]),
    }


def regressions(systems: Systems, summary: list[dict], comps: list[dict]) -> list[dict]:
    """Every (configuration, slice, metric) significantly below the base model, or below the best
    configuration of that slice and metric, after Holm correction."""
    fts = {s.name for s in systems.of_kind(FINETUNED)}
    base = [s.name for s in systems.of_kind(BASELINE)]
    best: dict[tuple[str, str], str] = {}
    for r in summary:
        if r["system"] in fts:
            k = (r["slice"], r["metric"])
            if k not in best or r["mean"] > _mean(summary, best[k], *k):
                best[k] = r["system"]
    out = []
    for c in comps:
        if not c["significant"]:
            continue
        for lower, higher, sign in ((c["a"], c["b"], 1.0), (c["b"], c["a"], -1.0)):
            diff = sign * c["diff"]
            if (
                lower in fts
                and diff < 0
                and (higher in base or best.get((c["slice"], c["metric"])) == higher)
            ):
                lo, hi = sorted((sign * c["ci_low"], sign * c["ci_high"]))
                out.append(
                    {
                        "system": lower,
                        "slice": c["slice"],
                        "metric": c["metric"],
                        "against": higher,
                        "diff": diff,
                        "ci_low": lo,
                        "ci_high": hi,
                        "p_holm": c["p_holm"],
                    }
                )
    return out


def _mean(summary: list[dict], system: str, sl: str, metric: str) -> float:
    return next(r["mean"] for r in summary if (r["system"], r["slice"], r["metric"]) == (system, sl, metric))


def slice_counts(systems: Systems) -> dict[str, int]:
    return {sl: int(mask.sum()) for sl, mask in sorted(systems.slices.items(), key=lambda kv: kv[0] != ALL)}
