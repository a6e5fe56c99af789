"""The data card on a small graded, multi-positive BEIR folder with duplicates, a long passage
and leaking queries: counts by hand, percentiles against numpy, truncation with a fake counter."""

from __future__ import annotations

import json

import numpy as np
import pytest

from embexp.data.card import data_card, format_card, percentile
from embexp.data.prepare import PreparedData, prepare_data
from embexp.data.types import Corpus, RetrievalDataset

from conftest import write_beir

LONG = " ".join(f"word{i}" for i in range(300))
DOCS = [
    ("d1", "Refund policy", "Refunds go to the original card."),
    ("d2", "Return label", "Print a prepaid return label."),
    ("d3", "ACH reversal", "Request it within 5 banking days."),
    ("d4", "ACH codes", "R01 means insufficient funds."),
    ("d5", "Pairing", "Hold the pair button for 5 seconds."),
    ("d6", "Card declined", "Wrong PIN or no funds."),
    ("d7", "REFUND POLICY", "Refunds go to the original card!"),  # = d1 once normalised
    ("d8", "Device manual", LONG),  # the one passage over the limit
    ("d9", "ACH reversal", "Request it within 5 banking days."),  # = d3
]
QUERIES = [
    ("q1", "how do i get a refund"),
    ("q2", "return shipping"),
    ("q3", "pairing my headset"),
    ("q4", "reset my pin"),
    ("q5", "Reset my PIN!"),  # = q4 (both train)
    ("q6", "what does r01 mean"),  # = t1's text: dropped from train by the leakage guard
    ("v1", "refund to card"),
    ("v2", "ach reversal deadline"),
    ("t1", "What does R01 mean?"),
    ("t2", "print a label"),  # also a train id: dropped from train
    ("t3", "ACH reversal deadline"),  # = v2 (dev vs eval: across splits)
]
TRAIN = [
    ("q1", "d1", 2),
    ("q1", "d2", 1),
    ("q1", "d3", 0),
    ("q2", "d2", 2),
    ("q2", "d4", 2),
    ("q2", "d5", 1),
    ("q3", "d5", 1),
    ("q4", "d6", 2),
    ("q5", "d1", 0),  # no positive
    ("q6", "d4", 1),
    ("t2", "d2", 1),
]
DEV = [("v1", "d1", 1), ("v1", "d7", 1), ("v2", "d3", 2)]
TEST = [("t1", "d4", 2), ("t1", "d5", 1), ("t2", "d2", 1), ("t3", "d8", 1), ("t3", "d6", -1)]
KEPT_TRAIN = {"q1", "q2", "q3", "q4", "q5"}


def words(texts: list[str], kind: str) -> list[int]:
    """A fake token counter: one token per word."""
    return [len(t.split()) for t in texts]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> PreparedData:
    folder = tmp_path_factory.mktemp("card") / "graded"
    write_beir(folder, docs=DOCS, queries=QUERIES, qrels={"train": TRAIN, "dev": DEV, "test": TEST})
    return prepare_data({"kind": "beir", "path": str(folder)})


def _expected(rows, kept, min_grade):
    per_q: dict[str, list[int]] = {}
    for q, _, g in rows:
        if q in kept:
            per_q.setdefault(q, []).append(g)
    n_pos = np.array([sum(g >= min_grade for g in gs) for gs in per_q.values()])
    grades, counts = np.unique([g for gs in per_q.values() for g in gs], return_counts=True)
    return n_pos, {str(g): int(c) for g, c in zip(grades, counts)}


@pytest.mark.parametrize("min_grade", [1, 2])
def test_split_counts_against_an_independent_computation(data, min_grade):
    card = data_card(data, min_positive_grade=min_grade)
    for name, rows, kept, grade in (
        ("train", TRAIN, KEPT_TRAIN, min_grade),
        ("dev", DEV, {"v1", "v2"}, 1),
        ("eval", TEST, {"t1", "t2", "t3"}, 1),
    ):
        s = card["splits"][name]
        n_pos, grades = _expected(rows, kept, grade)
        assert s["n_queries"] == len(n_pos) and s["n_pairs"] == n_pos.sum(), name
        assert s["n_without_positive"] == (n_pos == 0).sum() and s["grades"] == grades, name
        d = s["positives_per_query"]
        assert (
            d["min"] == n_pos.min() and d["max"] == n_pos.max() and d["mean"] == pytest.approx(n_pos.mean())
        )
        assert d["p50"] == pytest.approx(np.percentile(n_pos, 50))
        assert d["p90"] == pytest.approx(np.percentile(n_pos, 90))
    train = card["splits"]["train"]
    assert (train["n_pairs"], train["n_without_positive"]) == ((7, 1) if min_grade == 1 else (4, 2))
    assert card["splits"]["eval"]["grades"] == {"-1": 1, "1": 3, "2": 1}
    assert card["dataset"]["eval_split"] == "test" and card["corpus"]["n_docs"] == 9


def test_duplicates_and_leakage(data):
    card = data_card(data)
    assert card["duplicates"]["passages"] == {
        "n_groups": 2,
        "n_docs": 4,
        "examples": [["d1", "d7"], ["d3", "d9"]],
    }
    q = card["duplicates"]["queries"]
    assert (q["n_groups"], q["n_queries"], q["n_groups_across_splits"]) == (2, 4, 1)
    assert sorted(q["examples"]) == [["q4", "q5"], ["t3", "v2"]]
    leak = card["leakage"]
    assert leak["by_id"] == ["t2"] and leak["by_text"] == [["q6", "t1"]]
    assert (leak["n_by_id"], leak["n_by_text"], leak["n_removed_from_train"]) == (1, 1, 2)
    assert json.loads(json.dumps(card)) == card  # JSON-serialisable as it is


def test_token_lengths_with_a_fake_counter(data):
    card = data_card(data, count_tokens=words, max_lengths={"query": 4, "passage": 50}, sample=None)
    passages = np.array([len(f"{t} {x}".split()) for _, t, x in DOCS])
    queries = np.array([len(x.split()) for q, x in QUERIES if q != "q6"])  # judged queries only
    for kind, n in (("passage", passages), ("query", queries)):
        t = card["tokens"][kind]
        assert t["n_sampled"] == t["n_total"] == len(n)
        for p in (50, 90, 99):
            assert t[f"p{p}"] == pytest.approx(np.percentile(n, p)), (kind, p)
        assert t["max"] == n.max() and t["mean"] == pytest.approx(n.mean())
    limit = {"passage": 50, "query": 4}
    for kind, n in (("passage", passages), ("query", queries)):
        t = card["tokens"][kind]
        assert t["n_truncated"] == (n > limit[kind]).sum()
        assert t["share_truncated"] == pytest.approx((n > limit[kind]).mean())
    assert card["tokens"]["passage"]["n_truncated"] == 1  # d8
    assert card["tokens"]["passage"]["share_truncated"] == pytest.approx(1 / 9)


def test_token_sample_is_seeded_and_capped(data):
    seen = []
    counter = lambda texts, kind: seen.append((kind, tuple(texts))) or words(texts, kind)  # noqa: E731
    a = data_card(data, count_tokens=counter, max_lengths={"query": 4, "passage": 50}, sample=3, seed=1)
    b = data_card(data, count_tokens=counter, max_lengths={"query": 4, "passage": 50}, sample=3, seed=1)
    assert a["tokens"] == b["tokens"] and seen[:2] == seen[2:]
    assert a["tokens"]["passage"]["n_sampled"] == 3 and a["tokens"]["passage"]["n_total"] == 9
    assert {k for k, _ in seen} == {"query", "passage"}
    assert data_card(data)["tokens"] is None  # no counter, no token lengths


def test_percentile_matches_numpy():
    rng = np.random.default_rng(0)
    for n in (1, 2, 5, 37):
        x = rng.integers(0, 500, size=n)
        for q in (0, 10, 50, 90, 99, 100):
            assert percentile(list(x), q) == pytest.approx(np.percentile(x, q))


def test_format_card_warns(data):
    card = data_card(data, count_tokens=words, max_lengths={"query": 64, "passage": 50})
    text = format_card(card)
    warnings = [line for line in text.splitlines() if line.strip().startswith("warning:")]
    assert any("11% of passages" in w and "training on passages, retrieving chunks" in w for w in warnings)
    assert any(w.strip().startswith("warning: train: 1 of 5 queries have no positive") for w in warnings)
    assert any("dev: multi-positive data (median 1.5" in w for w in warnings)
    assert not any("queries are longer" in w for w in warnings)  # no query over 64 tokens
    assert "eval (test)" in text and "removed from train: 2" in text
    assert format_card(json.loads(json.dumps(card))) == text  # a card read back prints the same


def test_multi_positive_train_mentions_the_margin_reference():
    corpus = Corpus(["a", "b", "c"], ["", "", ""], ["alpha", "beta", "gamma"])
    qrels = {"train": {"q1": {"a": 1, "b": 1}, "q2": {"b": 1, "c": 2}}, "test": {"q3": {"c": 1}}}
    ds = RetrievalDataset("toy", corpus, {"q1": "x y", "q2": "y z", "q3": "z"}, qrels)
    card = data_card(PreparedData(ds, train=qrels["train"], dev={}, eval_split="test"))
    (w,) = card["warnings"]
    assert w.startswith("train: multi-positive data (median 2") and "negatives.margin_reference" in w
    assert card["splits"]["dev"]["positives_per_query"]["p50"] is None  # an empty split
    assert "warning: train: multi-positive" in format_card(card)


def test_no_warnings_on_clean_data(tiny_beir):
    card = data_card(
        prepare_data({"kind": "beir", "path": str(tiny_beir)}),
        count_tokens=words,
        max_lengths={"query": 64, "passage": 64},
    )
    assert card["warnings"] == [] and "  warning: " not in format_card(card)
