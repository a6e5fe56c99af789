"""The miner on hand-made embeddings (scores known exactly): window, filters, sampling,
statistics; and the parameter checks."""

import numpy as np
import pytest

from embexp.errors import ConfigError
from embexp.mining.files import read_veto_pairs
from embexp.mining.miner import mine

from conftest import mining_params


def _vec(score: float, k: int, dim: int = 40) -> np.ndarray:
    """A unit vector whose inner product with e_0 is ``score`` (k-th orthogonal direction)."""
    v = np.zeros(dim, dtype=np.float32)
    v[0], v[k] = score, np.sqrt(1 - score**2)
    return v


# query q = e_0; its positive scores 0.80; the others score as listed (descending)
HAND = [
    ("pos", 0.80),
    ("a", 0.95),
    ("b", 0.78),
    ("c", 0.74),
    ("e", 0.70),
    ("f", 0.60),
    ("g", 0.50),
    ("h", 0.40),
    ("i", 0.30),
]
#  ranks after removing "pos":  a=1  b=2  c=3  e=4  f=5  g=6  h=7  i=8


def _hand(**kw):
    ids = [d for d, _ in HAND]
    C = np.stack([_vec(s, k + 1) for k, (_, s) in enumerate(HAND)])
    Q = _vec(1.0, 1)[None]
    Q[0, 1] = 0.0
    text_ids = np.arange(len(ids))
    text_ids[ids.index("f")] = text_ids[ids.index("pos")]  # f has the positive's text
    params = mining_params(
        **{
            "window": (1, 8),
            "n_negatives": 8,
            "depth": 8,
            "margin_abs": None,
            "margin_rel": None,
            "fill_below_window": False,  # the window's own semantics (filling below: its own test)
            **kw.pop("params", {}),
        }
    )
    return mine(C, Q, ["q"], {"q": {"pos": 1}}, ids, params, doc_text_ids=text_ids, **kw)


def test_window_ranks_count_after_removing_positives():
    r = _hand(params={"window": (2, 4), "text_filter": False})
    assert [(n.doc_id, n.rank) for n in r.negatives["q"]] == [("b", 2), ("c", 3), ("e", 4)]
    assert r.negatives["q"][0].score == pytest.approx(0.78, abs=1e-6)
    r = _hand(params={"window": (1, 1), "text_filter": False})
    assert [n.doc_id for n in r.negatives["q"]] == [
        "a"
    ]  # rank 1 = best non-positive, although "pos" ranks 2nd raw


def test_filters_remove_exactly_what_they_should():
    r = _hand(params={"margin_abs": 0.05, "margin_rel": 0.1}, veto_pairs={("q", "g"), ("other", "h")})
    # text: f (same text as pos); margin_abs: s > 0.80 - 0.05 -> a, b;
    # margin_rel: s > 0.80 * 0.9 = 0.72 -> c; veto: g
    assert [(n.doc_id, n.rank) for n in r.negatives["q"]] == [("e", 4), ("h", 7), ("i", 8)]
    s = r.stats
    assert s["n_candidates"] == 8 and s["n_negatives"] == 3
    assert s["removed_text_share"] == pytest.approx(1 / 8)
    assert s["removed_margin_abs_share"] == pytest.approx(2 / 8)
    assert s["removed_margin_rel_share"] == pytest.approx(1 / 8)
    assert s["removed_veto_share"] == pytest.approx(1 / 8)
    assert s["kept_share"] == pytest.approx(3 / 8)
    assert s["false_negative_rate"] == 0.0
    assert s["mean_positive_rank"] == 2.0  # only "a" scores above the positive


def test_margin_boundaries_are_inclusive_for_keeping():
    # margin_abs 0.06: keep iff s <= 0.74 -> c (0.74) kept; margin_rel 0.125: keep iff s <= 0.70 -> e kept
    r = _hand(params={"margin_abs": 0.06, "text_filter": False})
    assert [n.doc_id for n in r.negatives["q"]][:1] == ["c"]
    r = _hand(params={"margin_rel": 0.125, "text_filter": False})
    assert [n.doc_id for n in r.negatives["q"]][:1] == ["e"]


def test_false_negative_estimate_and_veto_hook():
    r = _hand(params={"window": (1, 3), "text_filter": False})
    assert r.stats["false_negative_rate"] == pytest.approx(1 / 3)  # a (0.95) scores above the positive (0.80)
    seen = []

    def veto(qid, doc_ids):
        seen.append((qid, list(doc_ids)))
        return {"b"}

    r = _hand(params={"window": (1, 3), "text_filter": False}, veto=veto)
    assert seen == [("q", ["a", "b", "c"])]
    assert [n.doc_id for n in r.negatives["q"]] == ["a", "c"] and r.stats[
        "removed_veto_share"
    ] == pytest.approx(1 / 3)


def _random_problem(seed=0, nq=30, nc=300, dim=16):
    rng = np.random.default_rng(seed)
    C = rng.standard_normal((nc, dim)).astype(np.float32)
    C /= np.linalg.norm(C, axis=1, keepdims=True)
    Q = rng.standard_normal((nq, dim)).astype(np.float32)
    Q /= np.linalg.norm(Q, axis=1, keepdims=True)
    ids = [f"d{i}" for i in range(nc)]
    qids = [f"q{i}" for i in range(nq)]
    # positives: some of each query's nearest documents, so they sit inside the window
    top = np.argsort(-(Q @ C.T), axis=1)
    qrels = {
        q: {ids[j]: 1 for j in top[i, rng.choice(10, size=rng.integers(1, 4), replace=False)]}
        for i, q in enumerate(qids)
    }
    exclude = {q: {ids[j] for j in top[i, rng.choice(20, size=2, replace=False)]} for i, q in enumerate(qids)}
    return C, Q, qids, qrels, ids, exclude


@pytest.mark.parametrize("sampling", ["top", "random"])
@pytest.mark.parametrize("window", [(1, 5), (2, 20), (10, 12)])
def test_window_never_returns_a_positive_or_excluded_doc(sampling, window):
    C, Q, qids, qrels, ids, exclude = _random_problem()
    p = mining_params(
        window=window,
        sampling=sampling,
        n_negatives=3,
        pool_size=4,
        depth=30,
        margin_rel=None,
        fill_below_window=False,
    )
    r = mine(C, Q, qids, qrels, ids, p, exclude=exclude)
    for q, negs in r.negatives.items():
        got = [n.doc_id for n in negs]
        assert not set(got) & (set(qrels[q]) | exclude[q])
        assert len(got) == len(set(got)) == min(4, window[1] - window[0] + 1)
        assert all(window[0] <= n.rank <= window[1] for n in negs)
        assert [n.rank for n in negs] == sorted(n.rank for n in negs)
    # the rank of a returned doc = its position after dropping the query's positives and excluded docs
    S = Q @ C.T
    for i, q in enumerate(qids[:5]):
        order = [ids[j] for j in np.argsort(-S[i]) if ids[j] not in set(qrels[q]) | exclude[q]]
        for n in r.negatives[q]:
            assert order.index(n.doc_id) + 1 == n.rank


def test_same_seed_same_negatives_other_seed_differs():
    C, Q, qids, qrels, ids, exclude = _random_problem(1)
    base = dict(window=(1, 50), n_negatives=5, depth=60, margin_rel=None)
    a = mine(C, Q, qids, qrels, ids, mining_params(sampling="random", seed=7, **base))
    b = mine(C, Q, qids, qrels, ids, mining_params(sampling="random", seed=7, **base))
    c = mine(C, Q, qids, qrels, ids, mining_params(sampling="random", seed=8, **base))
    d = mine(C, Q, qids, qrels, ids, mining_params(sampling="random", seed=7, **base), round=1)
    assert a.doc_ids() == b.doc_ids()
    assert a.doc_ids() != c.doc_ids() and a.doc_ids() != d.doc_ids()
    # one query's draw does not depend on the other queries
    e = mine(C[:], Q[:3], qids[:3], qrels, ids, mining_params(sampling="random", seed=7, **base))
    assert e.doc_ids() == {q: a.doc_ids()[q] for q in qids[:3]}
    # top sampling ignores the seed
    t1 = mine(C, Q, qids, qrels, ids, mining_params(sampling="top", seed=1, **base))
    t2 = mine(C, Q, qids, qrels, ids, mining_params(sampling="top", seed=2, **base))
    assert t1.doc_ids() == t2.doc_ids()
    assert all([n.rank for n in negs] == [1, 2, 3, 4, 5] for negs in t1.negatives.values())


def test_overlap_with_previous_round():
    C, Q, qids, qrels, ids, _ = _random_problem(2)
    p = mining_params(window=(1, 10), n_negatives=4, depth=10, margin_rel=None)
    first = mine(C, Q, qids, qrels, ids, p)
    assert first.stats["overlap_previous"] is None
    again = mine(C, Q, qids, qrels, ids, p, previous=first.doc_ids())
    assert again.stats["overlap_previous"] == 1.0
    half = {q: v[:2] for q, v in first.doc_ids().items()}
    assert mine(C, Q, qids, qrels, ids, p, previous=half).stats["overlap_previous"] == pytest.approx(0.5)


def test_rows_are_the_file_format():
    rows = _hand(params={"window": (2, 3), "text_filter": False}).rows()
    assert rows == [
        {
            "query_id": "q",
            "negatives": [
                {"doc_id": "b", "score": pytest.approx(0.78, abs=1e-6), "rank": 2},
                {"doc_id": "c", "score": pytest.approx(0.74, abs=1e-6), "rank": 3},
            ],
        }
    ]


@pytest.mark.parametrize(
    "kw, key",
    [
        ({"window": (5, 2)}, "negatives.window"),
        ({"window": (0, 2)}, "negatives.window"),
        ({"window": (1,)}, "negatives.window"),
        ({"n_negatives": -1}, "negatives.n_negatives"),
        ({"n_negatives": 0}, "negatives.n_negatives"),
        ({"sampling": "hardest"}, "negatives.sampling"),
        ({"depth": 10, "window": (2, 20)}, "negatives.depth"),
        ({"margin_abs": -0.1}, "negatives.margin_abs"),
        ({"margin_rel": 1.0}, "negatives.margin_rel"),
        ({"pool_size": 1, "n_negatives": 2}, "negatives.pool_size"),
    ],
)
def test_bad_params_name_the_key(kw, key):
    with pytest.raises(ConfigError) as e:
        mining_params(**kw).validate()
    assert e.value.key == key


def test_veto_file_formats(tmp_path):
    tsv = tmp_path / "veto.tsv"
    tsv.write_text("query-id\tcorpus-id\tscore\nq1\td2\t1\nq3\td4\n")
    assert read_veto_pairs(tsv) == {("q1", "d2"), ("q3", "d4")}
    jl = tmp_path / "veto.jsonl"
    jl.write_text('{"query_id": "q1", "doc_id": "d2"}\n\n{"query_id": "q5", "doc_id": "d6"}\n')
    assert read_veto_pairs(jl) == {("q1", "d2"), ("q5", "d6")}
    bad = tmp_path / "bad.tsv"
    bad.write_text("q1\n")
    from embexp.errors import DataError

    with pytest.raises(DataError, match="bad.tsv:1"):
        read_veto_pairs(bad)


# ---- margin reference on multi-positive queries -------------------------------------------------
# q = e_0 with two training positives: "p_hi" scores 0.90, "p_lo" 0.30; candidates below.
MULTI = [("p_hi", 0.90), ("p_lo", 0.30), ("x", 0.86), ("y", 0.80), ("z", 0.50), ("w", 0.20)]
#  ranks after removing both positives:  x=1  y=2  z=3  w=4


def _multi(reference: str, **kw):
    ids = [d for d, _ in MULTI]
    C = np.stack([_vec(s, k + 1) for k, (_, s) in enumerate(MULTI)])
    Q = _vec(1.0, 1)[None]
    Q[0, 1] = 0.0
    params = mining_params(window=(1, 4), n_negatives=4, depth=4, margin_reference=reference, **kw)
    return mine(C, Q, ["q"], {"q": {"p_hi": 2, "p_lo": 1}}, ids, params)


def test_margin_reference_best_is_the_best_positive():
    # kept iff s <= (1 - 0.05) * 0.90 = 0.855: x (0.86) is a near-duplicate of the best answer
    res = _multi("best", margin_rel=0.05)
    assert [n.doc_id for n in res.negatives["q"]] == ["y", "z", "w"]
    assert res.stats["removed_margin_rel_share"] == pytest.approx(1 / 4)


def test_margin_reference_lowest_is_the_lowest_positive():
    # kept iff s <= (1 - 0.05) * 0.30 = 0.285: only w survives
    res = _multi("lowest", margin_rel=0.05)
    assert [n.doc_id for n in res.negatives["q"]] == ["w"]
    assert res.stats["removed_margin_rel_share"] == pytest.approx(3 / 4)
    # absolute margin, same reference: kept iff s <= 0.30 - 0.05
    assert [n.doc_id for n in _multi("lowest", margin_abs=0.05).negatives["q"]] == ["w"]
    assert [n.doc_id for n in _multi("best", margin_abs=0.05).negatives["q"]] == ["y", "z", "w"]


def test_no_labelled_positive_is_ever_mined_whatever_the_reference():
    for reference in ("best", "lowest"):
        for sampling in ("top", "random"):
            res = _multi(reference, sampling=sampling)
            assert not {"p_hi", "p_lo"} & {n.doc_id for n in res.negatives["q"]}


def test_bad_margin_reference_names_the_key():
    with pytest.raises(ConfigError, match="negatives.margin_reference"):
        mining_params(margin_reference="median").validate()


def test_fill_below_window_takes_the_best_survivors_below_it():
    """Window [1, 3] with margin_abs 0.15 around the positive (0.80): a, b, c score above 0.65 and
    are removed; filling takes the best-ranked survivors below the window under the same filters:
    e (rank 4, 0.70) is within the margin, f (5) has the positive's text, so g (6), h (7)."""
    kw = {"window": (1, 3), "depth": 8, "n_negatives": 2, "margin_abs": 0.15}
    empty = _hand(params={**kw, "fill_below_window": False})
    assert empty.negatives["q"] == [] and empty.stats["n_queries_empty"] == 1
    r = _hand(params={**kw, "fill_below_window": True})
    assert [(n.doc_id, n.rank) for n in r.negatives["q"]] == [("g", 6), ("h", 7)]
    assert r.stats["n_queries_filled_below_window"] == 1 and r.stats["n_queries_empty"] == 0
    # never below the depth
    r = _hand(params={**kw, "depth": 6, "fill_below_window": True})
    assert [n.doc_id for n in r.negatives["q"]] == ["g"]


@pytest.mark.parametrize("sampling", ["top", "random"])
def test_filling_never_returns_a_positive_or_excluded_doc(sampling):
    C, Q, qids, qrels, ids, exclude = _random_problem()
    p = mining_params(window=(1, 3), sampling=sampling, n_negatives=3, pool_size=6, depth=40, margin_rel=0.3)
    res = mine(C, Q, qids, qrels, ids, p, exclude=exclude)
    assert res.stats["n_queries_filled_below_window"] > 0
    for q, negs in res.negatives.items():
        bad = {d for d, g in qrels.get(q, {}).items() if g > 0} | set(exclude.get(q, ())) | {q}
        assert not bad & {n.doc_id for n in negs}
        assert all(n.rank <= 40 for n in negs) and len(negs) <= 6
