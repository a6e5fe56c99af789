"""The evaluator on a deterministic fake encoder, so every number can be checked by hand."""

import math

import numpy as np
import pytest
import torch

from embexp.data.types import Corpus
from embexp.errors import ConfigError
from embexp.eval.bm25 import reciprocal_rank_fusion
from embexp.eval.cache import EmbeddingCache
from embexp.eval.evaluator import RetrievalEvaluator
from embexp.eval.index import DenseIndex

from conftest import encoder_spec


class FakeEncoder:
    """Texts map to fixed unit vectors; unknown texts to a constant vector."""

    def __init__(self, table: dict[str, list[float]]):
        self.table = {k: np.asarray(v, dtype=np.float32) / np.linalg.norm(v) for k, v in table.items()}
        self.spec = encoder_spec("fake")
        self.device = torch.device("cpu")
        self.calls = 0
        self.version = 0

    def encode(self, texts, kind, **kw):
        self.calls += 1
        return np.stack([self.table[t] for t in texts])

    def fingerprint(self):
        return f"fake-{self.version}"


CORPUS = Corpus(["a", "b", "c"], ["", "", ""], ["doc a", "doc b", "doc c"])
QUERIES = {"q1": "query one", "q2": "query two"}
QRELS = {"q1": {"a": 1}, "q2": {"c": 2, "b": 1}}
ENC = {
    "doc a": [1, 0, 0],
    "doc b": [0, 1, 0],
    "doc c": [0, 0, 1],
    "query one": [0.2, 1, 0.1],  # ranks b, a, c -> relevant a at rank 2
    "query two": [0, 0.5, 1],  # ranks c, b, a -> c (2) at 1, b (1) at 2
}


def make(**kw):
    kw.setdefault("primary", "ndcg@3")
    return RetrievalEvaluator(CORPUS, QUERIES, QRELS, k_values=[1, 2, 3], **kw)


def test_metrics_by_hand():
    res = make(slices={"only_q1": {"q1"}})(FakeEncoder(ENC))
    m = res.metrics
    assert m["test/mrr@3"] == pytest.approx((1 / 2 + 1) / 2)
    assert m["test/recall@1"] == pytest.approx((0 + 1 / 2) / 2)
    ndcg_q1 = (1 / math.log2(3)) / 1.0
    ndcg_q2 = (2 + 1 / math.log2(3)) / (2 + 1 / math.log2(3))
    assert m["test/ndcg@3"] == pytest.approx((ndcg_q1 + ndcg_q2) / 2)
    assert m["test/n_queries"] == 2
    assert m["test/slice/only_q1/ndcg@3"] == pytest.approx(ndcg_q1)
    assert m["test/slice/only_q1/n_queries"] == 1
    assert res.primary_metric == "test/ndcg@3" and res.primary == m["test/ndcg@3"]
    assert [d for d, _ in res.run["q1"]] == ["b", "a", "c"]
    rows = res.per_query_rows(top=2)
    assert rows[0]["query_id"] == "q1" and rows[0]["top"] == ["b", "a"] and rows[0]["slices"] == ["only_q1"]


def test_primary_must_be_computed():
    with pytest.raises(ConfigError, match="eval.primary"):
        make(primary="ndcg@10")
    with pytest.raises(ConfigError, match="eval.retriever"):
        make(primary="ndcg@3", retriever="splade")


def test_identical_ids_are_ignored():
    corpus = Corpus(["q1", "a"], ["", ""], ["query one", "doc a"])
    ev = RetrievalEvaluator(corpus, {"q1": "query one"}, {"q1": {"a": 1}}, k_values=[1], primary="mrr@1")
    assert ev(FakeEncoder(ENC)).metrics["test/mrr@1"] == 1.0
    ev = RetrievalEvaluator(
        corpus,
        {"q1": "query one"},
        {"q1": {"a": 1}},
        k_values=[1],
        primary="mrr@1",
        ignore_identical_ids=False,
    )
    assert ev(FakeEncoder(ENC)).metrics["test/mrr@1"] == 0.0


def test_cache_is_keyed_by_weights(tmp_path):
    enc = FakeEncoder(ENC)
    ev = make(cache=EmbeddingCache(tmp_path), corpus_fingerprint="c1")
    ev(enc)
    calls = enc.calls
    r = ev(enc)
    assert enc.calls == calls + 1  # queries only: the corpus came from the cache
    assert r.timings["corpus_cached"] == 1.0
    enc.version += 1  # "new weights": the corpus must be re-embedded
    ev(enc)
    assert enc.calls == calls + 3


def test_dense_index_rejects_unnormalised():
    with pytest.raises(ValueError, match="not L2-normalised"):
        DenseIndex(2).add(np.array([[3.0, 4.0]], dtype=np.float32))


def test_rrf_by_hand():
    dense = np.array([[0, 1, 2]])
    lex = np.array([[2, 0, -1]])
    scores, idx = reciprocal_rank_fusion([dense, lex], k=3, rrf_k=60)
    # doc0: 1/61 + 1/62, doc2: 1/63 + 1/61, doc1: 1/62
    assert idx[0].tolist() == [0, 2, 1]
    assert scores[0, 0] == pytest.approx(1 / 61 + 1 / 62)
    assert scores[0, 2] == pytest.approx(1 / 62)


def test_bm25_and_hybrid_retrieve_lexical_matches():
    corpus = Corpus(
        ["a", "b", "c"],
        ["", "", ""],
        ["refund policy for cards", "return shipping label", "ach reversal window"],
    )
    queries = {"q": "shipping label"}
    ev = RetrievalEvaluator(
        corpus, queries, {"q": {"b": 1}}, k_values=[1, 3], primary="mrr@1", retriever="bm25"
    )
    assert ev().metrics["test/mrr@1"] == 1.0
    enc = FakeEncoder(
        {
            "refund policy for cards": [1, 0],
            "return shipping label": [0.9, 0.1],
            "ach reversal window": [0, 1],
            "shipping label": [1, 0],
        }
    )
    ev = RetrievalEvaluator(
        corpus, queries, {"q": {"b": 1}}, k_values=[1, 3], primary="mrr@1", retriever="hybrid"
    )
    res = ev(enc)
    # dense ranks a,b,c; bm25 ranks b first: fused b = 1/62 + 1/61 > a = 1/61 + 1/6x
    assert res.run["q"][0][0] == "b"


def test_real_encoder_end_to_end(tiny_encoder):
    corpus = Corpus(["a", "b"], ["t", ""], ["alpha", "beta"])
    ev = RetrievalEvaluator(corpus, {"q": "alpha"}, {"q": {"a": 1}}, k_values=[1, 2], primary="ndcg@2")
    res = ev(tiny_encoder, keep_embeddings=True)
    assert set(res.metrics) >= {
        "test/ndcg@2",
        "test/recall@1",
        "test/map@2",
        "test/hit_rate@1",
        "test/precision@1",
    }
    assert res.corpus_embeddings.shape == (2, tiny_encoder.dim)


def test_fusing_ranked_ids_equals_reciprocal_rank_fusion_of_index_arrays():
    from embexp.eval.bm25 import fuse_ranked_ids, reciprocal_rank_fusion

    rng = np.random.default_rng(0)
    ids = [f"d{i}" for i in range(50)]
    order = {d: i for i, d in enumerate(ids)}
    for _ in range(20):
        a, b = rng.permutation(50)[:20], rng.permutation(50)[:15]
        _, idx = reciprocal_rank_fusion([a[None], b[None]], k=10, rrf_k=60)
        want = [ids[j] for j in idx[0] if j >= 0]
        assert fuse_ranked_ids([[ids[j] for j in a], [ids[j] for j in b]], order, k=10) == want
