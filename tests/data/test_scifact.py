"""The real SciFact BEIR folder (../shared/datasets/scifact): counts and the known leakage."""

from __future__ import annotations

from pathlib import Path

import pytest

from embexp.data.beir import load_beir
from embexp.data.leakage import find_leakage, guard
from embexp.data.prepare import prepare_data
from embexp.errors import DataError

SCIFACT = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "scifact"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SCIFACT.is_dir(), reason=f"SciFact not found at {SCIFACT}"),
]

# Two pairs of identical claims straddle train and test: (train id, test id).
LEAKED = [("1291", "1292"), ("871", "870")]


@pytest.fixture(scope="module")
def scifact():
    return load_beir(SCIFACT)


def test_counts(scifact):
    assert scifact.name == "scifact"
    assert len(scifact.corpus) == 5183
    assert len(scifact.queries) == 1109
    assert set(scifact.qrels) == {"train", "test"}
    assert sum(len(d) for d in scifact.qrels["train"].values()) == 919
    assert sum(len(d) for d in scifact.qrels["test"].values()) == 339
    assert len(scifact.qrels["train"]) == 809
    assert len(scifact.qrels["test"]) == 300
    assert not set(scifact.qrels["train"]) & set(scifact.qrels["test"])
    assert scifact.fingerprint and scifact.corpus_fingerprint


def test_known_text_duplicates_across_train_and_test(scifact):
    train, test = scifact.qrels["train"], scifact.qrels["test"]
    # which side each id is on
    assert "871" in train and "870" in test
    assert "1291" in train and "1292" in test
    assert scifact.queries["870"] == scifact.queries["871"]
    assert scifact.queries["1291"] == scifact.queries["1292"]

    rep = find_leakage(train, test, scifact.queries)
    assert rep.by_id == []
    assert rep.by_text == LEAKED  # exactly these, as (train id, test id)

    clean, rep2 = guard(train, {"test": test}, scifact.queries, policy="drop")
    assert rep2.by_text == LEAKED
    assert set(train) - set(clean) == {"871", "1291"}


def test_leakage_fail_names_them(scifact):
    with pytest.raises(DataError) as ei:
        guard(
            scifact.qrels["train"],
            {"test": scifact.qrels["test"]},
            scifact.queries,
            policy="fail",
            source=str(SCIFACT),
        )
    msg = str(ei.value)
    assert "('1291', '1292')" in msg and "('871', '870')" in msg and "2 train/eval query pairs" in msg


@pytest.mark.parametrize("seed", [0, 5])  # seed 5 carves 1291 into dev unless the guard runs first
def test_prepare_data_fail_and_drop(seed):
    cfg = {
        "kind": "beir",
        "path": str(SCIFACT),
        "split": "test",
        "dev_fraction": 0.1,
        "dev_max_queries": 200,
        "dev_seed": seed,
    }
    with pytest.raises(DataError) as ei:
        prepare_data(dict(cfg, leakage="fail"))
    msg = str(ei.value)
    assert ei.value.field == "queries" and "('1291', '1292')" in msg and "('871', '870')" in msg

    data = prepare_data(dict(cfg, leakage="drop"))
    assert data.leakage.by_id == []
    assert data.leakage.by_text[:2] == LEAKED  # train vs test, found before dev is carved
    # anything after that is one of SciFact's two within-train duplicate pairs split across train and dev
    assert all(
        frozenset(p) in ({"85", "86"}, {"89", "90"}) and p[1] in data.dev for p in data.leakage.by_text[2:]
    )
    assert not {"871", "1291"} & (set(data.train) | set(data.dev))
    assert len(data.dev) == 81  # round(0.1 * 807)
    assert len(data.train) == 807 - 81 - len(data.leakage.by_text[2:])
    assert len(data.eval) == 300
