"""Synthetic finished runs for the report tests: real run-folder files (run.json, metrics.json,
per_query.jsonl, provenance.json) whose aggregates are computed from their per-query rows with
the evaluator's own metric functions, on a small synthetic BEIR dataset the references can load.

A system's quality is a number in [0, 1]: the higher, the more its ranking puts the relevant
documents first; each seed adds its own noise.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from embexp.eval.keys import metric_key
from embexp.eval.metrics import aggregate, per_query_metrics

from conftest import write_beir

K_VALUES = [1, 5, 10, 20, 100]
WORDS = [f"w{i}" for i in range(400)]


def make_beir(folder: Path, *, n_docs: int = 160, n_test: int = 60, n_train: int = 30, seed: int = 0) -> Path:
    """Docs of random words; each query shares words with its 1-3 relevant documents."""
    rng = np.random.default_rng(seed)
    docs = {f"d{i}": " ".join(rng.choice(WORDS, size=30)) for i in range(n_docs)}
    queries, qrels = {}, {"test": [], "train": []}
    for split, n in (("test", n_test), ("train", n_train)):
        for i in range(n):
            q = f"{split[:2]}{i}"
            rel = rng.choice(n_docs, size=int(rng.integers(1, 4)), replace=False)
            words = [w for d in rel for w in docs[f"d{d}"].split()[:3]]
            queries[q] = " ".join(words + list(rng.choice(WORDS, size=2)))
            qrels[split] += [(q, f"d{d}", 2 if j == 0 else 1) for j, d in enumerate(rel)]
    return write_beir(folder, [(d, "", t) for d, t in docs.items()], list(queries.items()), qrels)


@functools.lru_cache(maxsize=8)
def data_fingerprint(data_dir: str) -> str:
    """The fingerprint embexp computes for the BEIR folder (what a real run records)."""
    from embexp.data.beir import load_beir

    return load_beir(data_dir).fingerprint


def read_qrels(folder: Path, split: str = "test") -> dict[str, dict[str, int]]:
    qrels: dict[str, dict[str, int]] = {}
    for line in (folder / "qrels" / f"{split}.tsv").read_text().splitlines()[1:]:
        q, d, s = line.split("\t")
        qrels.setdefault(q, {})[d] = int(s)
    return qrels


def slices_of(query_ids: list[str]) -> dict[str, list[str]]:
    return {
        "jargon": [q for i, q in enumerate(query_ids) if i % 3 == 0],
        "head": [q for i, q in enumerate(query_ids) if i % 2 == 0],
        "tail": [q for i, q in enumerate(query_ids) if i % 2 == 1],
    }


def ranking(qrels, doc_ids, quality: float, rng) -> dict[str, list[str]]:
    run = {}
    for q, rel in sorted(qrels.items()):
        score = rng.normal(size=len(doc_ids))
        for j, d in enumerate(doc_ids):
            if rel.get(d, 0) > 0:
                score[j] += 4.0 * quality * (1 + rng.normal(scale=0.5))
        run[q] = [doc_ids[j] for j in np.argsort(-score)[:100]]
    return run


def _metrics(stage, run, qrels, slices) -> tuple[dict, dict]:
    pq = per_query_metrics(run, qrels, K_VALUES)
    out = {f"{stage}/" + metric_key("test", k): v for k, v in aggregate(pq).items()}
    out[f"{stage}/test/n_queries"] = float(len(pq))
    for s, ids in slices.items():
        out.update({f"{stage}/" + metric_key("test", k, s): v for k, v in aggregate(pq, ids).items()})
        out[f"{stage}/" + metric_key("test", "n_queries", s)] = float(len(ids))
    return out, pq


def _rows(model, pq, run, slices) -> list[dict]:
    return [
        {
            "split": "test",
            "query_id": q,
            "slices": sorted(s for s, ids in slices.items() if q in ids),
            **pq[q],
            "top": run[q],
            "model": model,
        }
        for q in sorted(pq)
    ]


def make_run(
    root: Path,
    name: str,
    data_dir: Path,
    *,
    adapter: str = "lora",
    r: int = 16,
    lr: float = 1e-3,
    seed: int = 1,
    quality: float = 0.6,
    base_quality: float = 0.4,
    train_steps: int = 50,
    fingerprint: str | None = None,  # None: the data's real fingerprint
    base_model: str = "tiny",
    experiment: str | None = None,
    selected: str = "epoch 2",
    extra: dict | None = None,  # more config groups, e.g. {"negatives": {...}}
) -> Path:
    """One finished run folder at ``root/name``."""
    out = root / name
    out.mkdir(parents=True, exist_ok=True)
    qrels = read_qrels(data_dir)
    doc_ids = [json.loads(x)["_id"] for x in (data_dir / "corpus.jsonl").read_text().splitlines()]
    qids = sorted(qrels)
    slices = slices_of(qids)
    base_run = ranking(qrels, doc_ids, base_quality, np.random.default_rng(12345))  # same for every run
    final_run = ranking(qrels, doc_ids, quality, np.random.default_rng(1000 * seed + int(quality * 100)))
    base_m, base_pq = _metrics("baseline", base_run, qrels, slices)
    final_m, final_pq = _metrics("final", final_run, qrels, slices)
    config = {
        "adapter": {"kind": adapter, "r": r} if adapter == "lora" else {"kind": adapter},
        "optimizer": {"lr": lr},
        "seed": seed,
        "train": {"batch_size": 32, "max_steps": train_steps},
        "data": {"name": "synth", "sample_seed": seed},
        **(extra or {}),
    }
    full = {
        **config,
        "run_id": name,
        "monitor": "dev/mrr@10",
        "logger": {"wandb": {"group": "fixture-group", "mode": "offline", "project": "embexp"}},
        "model": {"name_or_path": base_model, "query_max_length": 32, "passage_max_length": 64},
        "data": {
            "kind": "beir",
            "path": str(data_dir),
            "name": "synth",
            "split": "test",
            "train_split": "train",
            "dev_split": "dev",
            "dev_fraction": 0.1,
            "dev_max_queries": 200,
            "dev_seed": 0,
            "leakage": "drop",
            "min_positive_grade": 1,
            "max_positives_per_query": None,
            "sample_seed": seed,
            "skip_unknown_ids": False,
            "temporal": False,
        },
        "eval": {
            "k_values": K_VALUES,
            "ignore_identical_ids": True,
            "rrf_k": 60,
            "bm25": {"k1": 0.9, "b": 0.4, "method": "lucene", "stemmer": "english", "stopwords": "en"},
        },
    }
    fingerprint = fingerprint or data_fingerprint(str(data_dir))
    data = {"name": "synth", "fingerprint": fingerprint, "eval_split": "test", "n_eval_queries": len(qids)}
    cost = {
        "trainable_params": {"lora": 100_000 * r // 16, "full": 4_000_000, "last_layer": 800_000}.get(
            adapter, 1
        ),
        "model_size_mb": {"lora": 0.4, "full": 16.0}.get(adapter, 3.0),
        "train_wall_s": 100.0 + 10 * seed + (200.0 if adapter == "full" else 0.0),
        "pairs_per_s": 30.0 - seed,
        "train_steps": train_steps,
        "peak_rss_mb": 2000.0 + seed,
        "peak_cuda_mb": None,
        "reembed_corpus_s": 5.0,
    }
    history = [
        {"epoch": e, "step": 10 * (e + 1), "dev/mrr@10": 0.3 + 0.1 * e * quality + 0.01 * seed}
        for e in range(3)
    ]
    metrics = {
        "status": "finished",
        "run_id": name,
        "seed": seed,
        "metrics": {**base_m, **final_m},
        "cost": cost,
        "data": data,
        "dev_history": history,
        "primary_metric": "final/test/ndcg@10",
        "warnings": [],
        "model_selection": {"selected": selected, "monitor": "dev/mrr@10"},
    }
    (out / "run.json").write_text(json.dumps({"config": config, "config_hash": name}))
    (out / "metrics.json").write_text(json.dumps(metrics))
    (out / "provenance.json").write_text(json.dumps({"base_model": base_model, "config": full, "data": data}))
    rows = _rows("final", final_pq, final_run, slices) + _rows("baseline", base_pq, base_run, slices)
    (out / "per_query.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    if experiment:
        (out / ".hydra").mkdir(exist_ok=True)
        (out / ".hydra" / "hydra.yaml").write_text(
            f"hydra:\n  runtime:\n    choices:\n      experiment: {experiment}\n"
        )
    return out


def decision_runs(root: Path, data_dir: Path, seeds=(1, 2, 3)) -> Path:
    """LoRA, full and last-layer configurations, ``seeds`` each, as a multirun folder."""
    multirun = root / "multirun-fixture"
    n = 0
    for seed in seeds:
        for exp, adapter, quality, lr in (
            ("fx_lora", "lora", 0.62, 1e-3),
            ("fx_full", "full", 0.70, 2e-5),
            ("fx_last_layer", "last_layer", 0.5, 1e-4),
        ):
            make_run(
                multirun, str(n), data_dir, adapter=adapter, seed=seed, quality=quality, lr=lr, experiment=exp
            )
            n += 1
    return multirun
