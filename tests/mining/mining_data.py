"""Helpers for the mining tests: a synthetic BEIR folder big enough for mining (60
documents, 20 training queries) and a minimal config."""

from __future__ import annotations

import random
from pathlib import Path

from omegaconf import OmegaConf

from conftest import write_beir

WORDS = (
    "refund card label ach reversal pin pairing light button shipping invoice account password login "
    "error code battery charger screen update network printer router cable warranty"
).split()


def synthetic_beir(
    folder: Path, *, n_docs: int = 60, n_train: int = 20, extra_qrels: dict | None = None, extra_queries=()
) -> Path:
    rng = random.Random(0)
    docs = [(f"d{i}", f"doc {i}", " ".join(rng.choices(WORDS, k=12))) for i in range(n_docs)]
    queries = [(f"q{i}", " ".join(rng.choices(WORDS, k=4)) + f" {i}") for i in range(n_train + 4)] + list(
        extra_queries
    )
    qrels = {
        "train": [(f"q{i}", f"d{i}", 1) for i in range(n_train)]
        + [(f"q{i}", f"d{i + 30}", 1) for i in range(0, n_train, 5)],
        "dev": [(f"q{n_train + 2}", "d50", 1), (f"q{n_train + 3}", "d51", 1)],
        "test": [(f"q{n_train}", "d52", 1), (f"q{n_train + 1}", "d53", 1)],
    }
    for split, rows in (extra_qrels or {}).items():
        qrels.setdefault(split, []).extend(rows)
    return write_beir(folder, docs=docs, queries=queries, qrels=qrels)


def make_cfg(path: Path, tiny_model_dir: Path, **neg) -> OmegaConf:
    negatives = {
        "kind": "static",
        "n_negatives": 2,
        "pool_size": None,
        "window": [1, 10],
        "sampling": "top",
        "depth": 30,
        "margin_abs": None,
        "margin_rel": None,
        "text_filter": True,
        "veto_file": None,
        "veto_hook": None,
        "warmup_epochs": 0,
        "file": None,
        "seed": 0,
        "refresh_every": 1,
        **neg,
    }
    return OmegaConf.create(
        {
            "data": {"kind": "beir", "path": str(path), "split": "test", "leakage": "drop"},
            "model": {"name_or_path": str(tiny_model_dir), "query_max_length": 32, "passage_max_length": 64},
            "negatives": negatives,
            "eval": {"batch_size": 16, "dtype": "fp32", "cache": False},
            "paths": {"cache_dir": None},
        }
    )
