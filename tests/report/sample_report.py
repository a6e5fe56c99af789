"""A synthetic, internally consistent ``report.json`` dict (schema 1) for report tests.

Every number is computed from random per-query scores: summary means are means of the
seed-averaged per-query scores, comparison diffs are differences of those means, and so on.
"""

from __future__ import annotations

import math

import numpy as np

METRICS = ["ndcg@10", "recall@10", "mrr@10"]
NAMES = ["base model", "bm25", "lora", "full", "last-layer", "hybrid-rrf", "lora-r4", "lora-r64"]
KINDS = {"base model": "baseline", "bm25": "reference", "hybrid-rrf": "reference"}
LEVEL = {"base model": 0.45, "bm25": 0.40, "lora": 0.52, "full": 0.55, "last-layer": 0.49, "hybrid-rrf": 0.5}
N_BOOT = 200


def _names(n_systems: int) -> list[str]:
    return (NAMES + [f"ft-{i}" for i in range(n_systems)])[:n_systems]


def _kind(name: str) -> str:
    return KINDS.get(name, "finetuned")


def _slices(rng, n_queries: int) -> dict[str, np.ndarray]:
    head = rng.random(n_queries) < 0.6
    return {
        "all": np.ones(n_queries, bool),
        "jargon": rng.random(n_queries) < 0.45,
        "head": head,
        "tail": ~head,
    }


def _scores(rng, names, n_seeds, slices) -> dict[str, dict[str, np.ndarray]]:
    """system -> metric -> (seeds, queries) scores in [0, 1]; the full fine-tune regresses on the tail."""
    n_queries = len(slices["all"])
    penalty = np.where(slices["tail"], 0.25, 0.0)
    difficulty = rng.normal(0, 0.15, n_queries)
    out = {}
    for name in names:
        seeds = n_seeds if _kind(name) == "finetuned" else 1
        level = LEVEL.get(name, 0.5) - (penalty if name == "full" else 0.0)
        out[name] = {
            m: np.clip(level + k * 0.05 + difficulty + rng.normal(0, 0.12, (seeds, n_queries)), 0, 1)
            for k, m in enumerate(METRICS)
        }
    return out


def _boot_ci(x: np.ndarray, rng) -> tuple[float, float]:
    idx = rng.integers(0, len(x), (N_BOOT, len(x)))
    means = x[idx].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def _summary(scores, slices, rng) -> list[dict]:
    rows = []
    for name, by_metric in scores.items():
        for s, mask in slices.items():
            for m, arr in by_metric.items():
                per_seed = arr[:, mask].mean(axis=1)
                low, high = _boot_ci(arr.mean(axis=0)[mask], rng)
                one = arr.shape[0] == 1
                rows.append(
                    {
                        "system": name,
                        "slice": s,
                        "metric": m,
                        "n_queries": int(mask.sum()),
                        "mean": float(per_seed.mean()),
                        "ci_low": low,
                        "ci_high": high,
                        "ci_method": "query bootstrap" if one else "seed × query bootstrap",
                        "flag": "1 seed: query-bootstrap CI" if one and _kind(name) == "finetuned" else None,
                        "per_seed": [float(v) for v in per_seed],
                    }
                )
    return rows


def _pairs(names: list[str]) -> list[tuple[str, str]]:
    base = names[0]
    pairs = [(n, base) for n in names[1:]]
    ft = [n for n in names if _kind(n) == "finetuned"]
    pairs += [(a, b) for i, a in enumerate(ft) for b in ft[i + 1 :]]
    return pairs


def _holm(ps: list[float]) -> list[float]:
    order = np.argsort(ps)
    adj, running = np.empty(len(ps)), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(ps) - rank) * ps[i]))
        adj[i] = running
    return [float(v) for v in adj]


def _compare(x: np.ndarray, y: np.ndarray, rng) -> tuple[float, float, float]:
    """(ci_low, ci_high, p) of mean(x - y): paired bootstrap CI, normal-approximation p."""
    d = x - y
    low, high = _boot_ci(d, rng)
    se = d.std(ddof=1) / math.sqrt(len(d)) if len(d) > 1 else 0.0
    p = math.erfc(abs(d.mean()) / se / math.sqrt(2)) if se > 0 else 1.0
    return low, high, float(p)


def _comparisons(scores, slices, names, rng) -> list[dict]:
    rows = []
    for a, b in _pairs(names):
        for s, mask in slices.items():
            for m in METRICS:
                x, y = scores[a][m].mean(axis=0)[mask], scores[b][m].mean(axis=0)[mask]
                low, high, p = _compare(x, y, rng)
                rows.append(
                    {
                        "a": a,
                        "b": b,
                        "slice": s,
                        "metric": m,
                        "n_queries": int(mask.sum()),
                        "mean_a": float(x.mean()),
                        "mean_b": float(y.mean()),
                        "diff": float(x.mean() - y.mean()),
                        "ci_low": low,
                        "ci_high": high,
                        "p": p,
                    }
                )
    if rows:
        rows[0]["p"] = 1e-5  # one p below the 1e-4 display floor
    for r, adj in zip(rows, _holm([r["p"] for r in rows])):
        r["p_holm"] = adj
        r["significant"] = adj < 0.05
    return rows


def _recovery(scores, slices, names, rng) -> list[dict]:
    if "full" not in names:
        return []
    base, rows = names[0], []
    for cheaper in [n for n in names if _kind(n) == "finetuned" and n != "full"]:
        for s, mask in slices.items():
            m = METRICS[0]
            c, f, b = (scores[n][m].mean(axis=0)[mask] for n in (cheaper, "full", base))
            idx = rng.integers(0, mask.sum(), (N_BOOT, mask.sum()))
            gc, gf = (c - b)[idx].mean(axis=1), (f - b)[idx].mean(axis=1)
            ratios = gc / np.where(np.abs(gf) < 1e-9, np.nan, gf)
            low, high = np.nanquantile(ratios, [0.025, 0.975])
            gain_c, gain_f = float((c - b).mean()), float((f - b).mean())
            rows.append(
                {
                    "cheaper": cheaper,
                    "full": "full",
                    "slice": s,
                    "metric": m,
                    "ratio": gain_c / gain_f if abs(gain_f) > 1e-9 else None,
                    "ci_low": float(low),
                    "ci_high": float(high),
                    "gain_cheaper": gain_c,
                    "gain_full": gain_f,
                    "stable": bool(high - low < 0.5),
                }
            )
    return rows


def _regressions(comparisons, names) -> list[dict]:
    return [
        {
            "system": c["a"],
            "slice": c["slice"],
            "metric": c["metric"],
            "against": c["b"],
            "diff": c["diff"],
            "ci_low": c["ci_low"],
            "ci_high": c["ci_high"],
            "p_holm": c["p_holm"],
        }
        for c in comparisons
        if c["b"] == names[0] and c["slice"] != "all" and c["diff"] < 0 and c["significant"]
    ]


def _cost(names: list[str]) -> list[dict]:
    wall = {"lora": 120.0, "full": 1850.0, "last-layer": 45.0}
    params = {"lora": 147_456, "full": 22_713_216, "last-layer": 1_771_776}
    rows = []
    for i, n in enumerate(names):
        ft, dense = _kind(n) == "finetuned", n != "bm25"
        rows.append(
            {
                "system": n,
                "trainable_params": params.get(n, 1_000_000 + i) if ft else None,
                "model_size_mb": 86.7 if dense else None,
                "peak_memory_mb": 2048.5 + 10 * i if ft else None,
                "memory_kind": "rss" if ft else None,
                "train_wall_s": wall.get(n, 300.0 + i) if ft else None,
                "pairs_per_s": 42.5 if ft else None,
                "train_steps": 1000 if ft else None,
                "reembed_corpus_s": 61.2 if dense else None,
                "latency_p50_ms": 4.2 + i,
                "latency_p95_ms": 9.8 + i,
            }
        )
    return rows


def _dev_history(names, n_seeds, rng) -> dict:
    hist: dict = {"monitor": "dev/mrr@10"}
    for n in names:
        if _kind(n) == "finetuned":
            hist[n] = {
                str(s): [
                    {"epoch": e, "step": 100 * (e + 1), "value": float(0.5 + 0.02 * e + rng.normal(0, 0.01))}
                    for e in range(3)
                ]
                for s in range(1, n_seeds + 1)
            }
    return hist


def _systems(names: list[str], n_seeds: int) -> list[dict]:
    out = []
    for n in names:
        seeds = n_seeds if _kind(n) == "finetuned" else 1
        out.append(
            {
                "name": n,
                "kind": _kind(n),
                "label": n.replace("-", " ").title(),
                "config": {"train.method": n} if _kind(n) == "finetuned" else {},
                "n_seeds": seeds,
                "runs": [
                    {"run_id": f"{n}-s{s}", "path": f"runs/{n}/s{s}", "seed": s} for s in range(1, seeds + 1)
                ],
            }
        )
    return out


def _header(names, slices, n_queries) -> dict:
    return {
        "schema": 1,
        "title": "Fine-tuning comparison: LoRA | full | last layer",
        "created": "2025-01-01T12:00:00+00:00",
        "code": {"embexp": "0.1.0", "git_commit": "0123456789abcdef0123"},
        "machine": "AMD EPYC 7B13, 2 cores, cpu",
        "eval": {
            "dataset": "scifact",
            "split": "test",
            "fingerprint": "abc123",
            "n_queries": n_queries,
            "base_model": "sentence-transformers/all-MiniLM-L6-v2",
            "slices": {s: int(mask.sum()) for s, mask in slices.items()},
        },
        "settings": {
            "keys": ["train.method"],
            "metrics": list(METRICS),
            "primary": METRICS[0],
            "alpha": 0.05,
            "confidence": 0.95,
            "resamples": N_BOOT,
            "baseline": names[0],
        },
    }


def sample_report(n_systems: int = 4, n_seeds: int = 3, n_queries: int = 60, seed: int = 0) -> dict:
    """A consistent synthetic report: ``names[0]`` is the baseline, bm25 a reference, the rest fine-tunes."""
    rng = np.random.default_rng(seed)
    names, slices = _names(n_systems), _slices(rng, n_queries)
    scores = _scores(rng, names, n_seeds, slices)
    comparisons = _comparisons(scores, slices, names, rng)
    ft = [n for n in names if _kind(n) == "finetuned"]
    report = _header(names, slices, n_queries)
    report.update(
        {
            "systems": _systems(names, n_seeds),
            "summary": _summary(scores, slices, rng),
            "comparisons": comparisons,
            "recovery": _recovery(scores, slices, names, rng),
            "regressions": _regressions(comparisons, names),
            "cost": _cost(names),
            "dev_history": _dev_history(names, n_seeds, rng),
            "query_ids": [f"q{i}" for i in range(n_queries)],
            "per_query": {
                n: {m: [float(v) for v in a.mean(axis=0)] for m, a in s.items()} for n, s in scores.items()
            },
            "paired_scatter": {"a": ft[0], "b": ft[1], "metric": METRICS[0]} if len(ft) >= 2 else None,
            "verdict": "**lora** recovers most of the **full** fine-tune's gain on `ndcg@10` "
            "at <5% of its cost & trains 15× faster.",
            "caveats": ["Only 3 seeds per configuration: seed variance is <b>rough</b>."],
            "warnings": ["run `full-s3` finished without a dev history"],
        }
    )
    return report
