"""Tests for embexp.eval.metrics: hand-computed cases, a pytrec_eval oracle, aggregate."""

from __future__ import annotations

import random
from math import log2

import pytest
import pytrec_eval
from hypothesis import given, settings
from hypothesis import strategies as st

from embexp.eval import metrics
from embexp.eval.metrics import aggregate, metric_keys, per_query_metrics

TOL = 1e-6


def approx(x):
    return pytest.approx(x, abs=TOL, rel=0)


# ---------------------------------------------------------------------------
# Hand-computed examples
# ---------------------------------------------------------------------------

# q_bin: binary relevance, relevant at ranks 1 and 3, R = 3 ('c' never retrieved),
#        'z' judged 0 at rank 4 must count as non-relevant, run (5 docs) shorter than k=10.
# q_grad: graded relevance a=3, c=2, b=1; run b, x, a.
# q_late: first relevant at rank 3.
# q_missing: in qrels, absent from run -> all zeros.
# q_zero: only zero-grade judgments -> excluded.
# q_neg: a negative grade is treated as non-relevant (gain 0), like trec_eval.
QRELS = {
    "q_bin": {"a": 1, "b": 1, "c": 1, "z": 0},
    "q_grad": {"a": 3, "b": 1, "c": 2},
    "q_late": {"a": 1},
    "q_missing": {"a": 2},
    "q_zero": {"a": 0, "b": 0},
    "q_neg": {"a": -1, "b": 2},
}
RUN = {
    "q_bin": ["a", "x", "b", "z", "y"],
    "q_grad": ["b", "x", "a"],
    "q_late": ["x", "y", "a"],
    "q_zero": ["a", "b"],
    "q_neg": ["a", "b"],
    "q_run_only": ["a", "b"],
}
KS = [1, 2, 3, 5, 10]


@pytest.fixture(scope="module")
def pq():
    return per_query_metrics(RUN, QRELS, KS)


def test_query_selection(pq):
    # q_zero (no relevant doc) is excluded, q_run_only (not in qrels) ignored,
    # q_missing (not in run) kept.
    assert set(pq) == {"q_bin", "q_grad", "q_late", "q_missing", "q_neg"}
    for m in pq.values():
        assert list(m) == metric_keys(KS)
        assert all(isinstance(v, float) for v in m.values())


def test_binary_example(pq):
    m = pq["q_bin"]
    # recall = hits / R, R = 3
    assert m["recall@1"] == approx(1 / 3)
    assert m["recall@2"] == approx(1 / 3)
    assert m["recall@3"] == approx(2 / 3)
    assert m["recall@10"] == approx(2 / 3)
    # precision = hits / k, k in the denominator even though the run has 5 docs
    assert m["precision@1"] == approx(1 / 1)
    assert m["precision@2"] == approx(1 / 2)
    assert m["precision@3"] == approx(2 / 3)
    assert m["precision@5"] == approx(2 / 5)
    assert m["precision@10"] == approx(2 / 10)
    # mrr: first relevant at rank 1
    for k in KS:
        assert m[f"mrr@{k}"] == approx(1.0)
        assert m[f"hit_rate@{k}"] == 1.0
    # map@k: sum of precision@r at relevant ranks r <= k, divided by R = 3
    assert m["map@1"] == approx((1 / 1) / 3)
    assert m["map@2"] == approx((1 / 1) / 3)
    assert m["map@3"] == approx((1 / 1 + 2 / 3) / 3)
    assert m["map@10"] == approx((1 / 1 + 2 / 3) / 3)
    # ndcg, binary gains; ideal = three relevant docs
    assert m["ndcg@1"] == approx(1.0)
    assert m["ndcg@2"] == approx(1 / (1 + 1 / log2(3)))
    assert m["ndcg@3"] == approx((1 + 1 / log2(4)) / (1 + 1 / log2(3) + 1 / log2(4)))
    assert m["ndcg@5"] == approx((1 + 1 / log2(4)) / (1 + 1 / log2(3) + 1 / log2(4)))


def test_graded_ndcg(pq):
    m = pq["q_grad"]
    # gains of run b, x, a: 1, 0, 3; ideal gains 3, 2, 1
    assert m["ndcg@1"] == approx(1 / 3)
    assert m["ndcg@2"] == approx(1 / (3 + 2 / log2(3)))
    assert m["ndcg@3"] == approx((1 + 3 / log2(4)) / (3 + 2 / log2(3) + 1 / log2(4)))
    assert m["ndcg@10"] == approx((1 + 3 / log2(4)) / (3 + 2 / log2(3) + 1 / log2(4)))
    # the other metrics only see relevant / not relevant
    assert m["recall@3"] == approx(2 / 3)
    assert m["precision@3"] == approx(2 / 3)
    assert m["map@3"] == approx((1 / 1 + 2 / 3) / 3)
    assert m["mrr@3"] == approx(1.0)


def test_late_first_relevant(pq):
    m = pq["q_late"]
    assert m["mrr@1"] == 0.0
    assert m["mrr@2"] == 0.0
    assert m["mrr@3"] == approx(1 / 3)
    assert m["mrr@10"] == approx(1 / 3)
    assert m["hit_rate@2"] == 0.0
    assert m["hit_rate@3"] == 1.0
    assert m["map@3"] == approx((1 / 3) / 1)
    assert m["ndcg@2"] == 0.0
    assert m["ndcg@3"] == approx((1 / log2(4)) / 1)
    assert m["recall@2"] == 0.0
    assert m["recall@3"] == 1.0
    assert m["precision@5"] == approx(1 / 5)


def test_missing_query_is_all_zeros(pq):
    assert set(pq["q_missing"].values()) == {0.0}


def test_negative_grade_not_relevant(pq):
    m = pq["q_neg"]
    assert m["ndcg@1"] == 0.0
    assert m["ndcg@2"] == approx((2 / log2(3)) / 2)
    assert m["recall@1"] == 0.0
    assert m["mrr@2"] == approx(1 / 2)
    assert m["map@2"] == approx((1 / 2) / 1)


def test_duplicate_k_values_and_order():
    out = per_query_metrics({"q": ["a"]}, {"q": {"a": 1}}, [5, 1, 5])
    assert list(out["q"]) == metric_keys([5, 1])
    assert metric_keys([5, 1])[:2] == ["ndcg@5", "ndcg@1"]


@pytest.mark.parametrize("bad", [[], [0], [-1], [1.5], [True], "5"])
def test_bad_k_values(bad):
    with pytest.raises(ValueError):
        per_query_metrics({"q": ["a"]}, {"q": {"a": 1}}, bad)


def test_duplicate_doc_ids_rejected():
    with pytest.raises(ValueError, match="duplicate"):
        per_query_metrics({"q": ["a", "b", "a"]}, {"q": {"a": 1}}, [5])
    # duplicates beyond max k are not read
    per_query_metrics({"q": ["a", "b", "a"]}, {"q": {"a": 1}}, [2])


def test_no_relevant_queries_gives_empty():
    assert per_query_metrics({"q": ["a"]}, {"q": {"a": 0}}, [1]) == {}
    assert per_query_metrics({}, {}, [1]) == {}


# ---------------------------------------------------------------------------
# pytrec_eval oracle
# ---------------------------------------------------------------------------


def _trec_scores(ranking: list[str]) -> dict[str, float]:
    # strictly decreasing scores, so trec_eval's tie-breaking never matters
    return {d: float(len(ranking) - i) for i, d in enumerate(ranking)}


def _pytrec_reference(run, qrels, ks):
    """Our metric names -> pytrec_eval values, per query that pytrec_eval returns."""
    cut = ",".join(map(str, ks))
    measures = {f"ndcg_cut.{cut}", f"recall.{cut}", f"P.{cut}", f"map_cut.{cut}", f"success.{cut}"}
    trec_run = {q: _trec_scores(r) for q, r in run.items()}
    res = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(trec_run)
    ref = {
        q: {
            **{f"ndcg@{k}": v[f"ndcg_cut_{k}"] for k in ks},
            **{f"recall@{k}": v[f"recall_{k}"] for k in ks},
            **{f"precision@{k}": v[f"P_{k}"] for k in ks},
            **{f"map@{k}": v[f"map_cut_{k}"] for k in ks},
            **{f"hit_rate@{k}": v[f"success_{k}"] for k in ks},
        }
        for q, v in res.items()
    }
    # trec_eval's recip_rank has no cutoff: evaluate it on the run truncated to k
    rr = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"})
    for k in ks:
        res_k = rr.evaluate({q: _trec_scores(r[:k]) for q, r in run.items()})
        for q, v in res_k.items():
            ref[q][f"mrr@{k}"] = v["recip_rank"]
    return ref


def _check_against_pytrec(run, qrels, ks):
    ours = per_query_metrics(run, qrels, ks)
    ref = _pytrec_reference(run, qrels, ks)
    with_rel = {q for q, j in qrels.items() if any(g > 0 for g in j.values())}
    assert set(ours) == with_rel
    # pytrec_eval omits queries absent from the run: ours must give them zeros
    for q in with_rel - set(run):
        assert set(ours[q].values()) == {0.0}, q
    compared = with_rel & set(ref)
    assert compared == with_rel & set(run)
    for q in compared:
        assert set(ours[q]) == set(ref[q])
        for key, expected in ref[q].items():
            assert ours[q][key] == approx(expected), (q, key, run.get(q), qrels[q])


@st.composite
def run_and_qrels(draw):
    n_docs = draw(st.integers(1, 20))
    pool = [f"d{i}" for i in range(n_docs)]
    n_queries = draw(st.integers(1, 5))
    run, qrels = {}, {}
    for qi in range(n_queries):
        q = f"q{qi}"
        judged = draw(st.lists(st.sampled_from(pool), unique=True, max_size=n_docs))
        grades = draw(st.lists(st.integers(0, 3), min_size=len(judged), max_size=len(judged)))
        if judged:
            qrels[q] = dict(zip(judged, grades))
        if draw(st.integers(0, 4)) > 0:  # ~1 in 5 queries missing from the run
            run[q] = draw(st.permutations(pool))[: draw(st.integers(0, n_docs))]
    if draw(st.booleans()):
        run["q_run_only"] = list(pool)
    ks = sorted(set(draw(st.lists(st.integers(1, 25), min_size=1, max_size=4))))
    return run, qrels, ks


@settings(max_examples=150, deadline=None)
@given(run_and_qrels())
def test_matches_pytrec_eval(case):
    run, qrels, ks = case
    _check_against_pytrec(run, qrels, ks)


def test_matches_pytrec_eval_long_runs(monkeypatch):
    # Long runs, k up to 100, and several numpy blocks (block size forced small).
    monkeypatch.setattr(metrics, "_BLOCK", 7)
    rng = random.Random(1234)
    pool = [f"d{i}" for i in range(300)]
    run, qrels = {}, {}
    for qi in range(40):
        q = f"q{qi}"
        judged = rng.sample(pool, rng.randint(1, 40))
        qrels[q] = {d: rng.randint(0, 3) for d in judged}
        if qi % 9 != 0:
            ranking = rng.sample(pool, rng.randint(0, 150))
            # put some relevant docs near the top
            for d in judged[:3]:
                if d in ranking:
                    ranking.remove(d)
                ranking.insert(rng.randint(0, min(len(ranking), 10)), d)
            run[q] = ranking
    _check_against_pytrec(run, qrels, [1, 3, 5, 10, 20, 50, 100])


# ---------------------------------------------------------------------------
# aggregate
# ---------------------------------------------------------------------------


def test_aggregate():
    per_query = {
        "q1": {"ndcg@1": 1.0, "recall@1": 0.5},
        "q2": {"ndcg@1": 0.0, "recall@1": 0.25},
        "q3": {"ndcg@1": 0.5, "recall@1": 1.0},
    }
    assert aggregate(per_query) == {
        "ndcg@1": approx((1.0 + 0.0 + 0.5) / 3),
        "recall@1": approx((0.5 + 0.25 + 1.0) / 3),
    }
    assert aggregate(per_query, ["q1", "q2"]) == {
        "ndcg@1": approx((1.0 + 0.0) / 2),
        "recall@1": approx((0.5 + 0.25) / 2),
    }
    assert aggregate(per_query, iter(["q3"])) == {"ndcg@1": 0.5, "recall@1": 1.0}
    assert aggregate(per_query, []) == {}
    assert aggregate({}) == {}
    with pytest.raises(KeyError):
        aggregate(per_query, ["q1", "nope"])


def test_aggregate_single_metric_and_end_to_end(pq):
    assert aggregate({"a": {"m": 1.0}, "b": {"m": 0.0}}) == {"m": 0.5}
    agg = aggregate(pq)
    assert set(agg) == set(metric_keys(KS))
    assert agg["hit_rate@1"] == approx((1 + 1 + 0 + 0 + 0) / 5)  # q_bin, q_grad hit at rank 1
    assert agg["mrr@3"] == approx((1 + 1 + 1 / 3 + 0 + 1 / 2) / 5)
