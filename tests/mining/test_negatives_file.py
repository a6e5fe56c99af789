"""A ``negatives.file`` that serves few training examples: the coverage warning names the real
cause (query ids that match no training query, or too few negatives per query), not the window."""

from __future__ import annotations

import json

import pytest

from embexp.data.prepare import prepare_data
from embexp.mining.curriculum import Curriculum
from embexp.model.encoder import build_encoder

from mining_data import make_cfg, synthetic_beir


@pytest.fixture(scope="module")
def beir(tmp_path_factory):
    return synthetic_beir(tmp_path_factory.mktemp("negfile") / "beir")


def _warning(beir, tiny_model_dir, tmp_path, rows) -> str:
    f = tmp_path / "given.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = make_cfg(beir, tiny_model_dir, file=str(f))
    data = prepare_data(cfg.data)
    c = Curriculum(cfg, data, tmp_path / "run").prepare(build_encoder(cfg.model))
    (rec,) = c.rounds
    assert rec["source"] == "file" and c.summary()["warnings"] == [rec["warning"]]
    assert "the window held too few candidates" not in rec["warning"]
    return rec["warning"].replace(str(f), "FILE")


def test_a_file_whose_ids_match_no_training_query_says_so(beir, tiny_model_dir, tmp_path):
    rows = [{"query_id": f"query-{i}", "negatives": ["d40", "d41"]} for i in range(3)]
    w = _warning(beir, tiny_model_dir, tmp_path, rows)
    assert w.startswith("mining round 0: only 0% of 24 training examples got 2 mined negative(s)")
    assert (
        "none of the 3 query ids in FILE are training queries (file ids look like 'query-0', 'query-1'; "
        "training ids look like 'q0', 'q1')" in w
    )
    assert "mine negatives for this data (embexp-mine, or leave negatives.file unset)" in w


def test_a_file_that_names_few_training_queries_counts_them(beir, tiny_model_dir, tmp_path):
    rows = [{"query_id": "q3", "negatives": ["d40", "d41"]}, {"query_id": "x9", "negatives": ["d40"]}]
    w = _warning(beir, tiny_model_dir, tmp_path, rows)
    assert "only 1 of the 2 query ids in FILE are training queries (1 are not training queries (file ids" in w
    assert "and 19 of the 20 training queries are not in it" in w


def test_a_file_with_too_few_negatives_per_query_says_so(beir, tiny_model_dir, tmp_path):
    rows = [
        {"query_id": f"q{i}", "negatives": [f"d{i}", "d59"]} for i in range(20)
    ]  # d{i} is q{i}'s positive
    w = _warning(beir, tiny_model_dir, tmp_path, rows)
    assert "FILE gives 20 training queries fewer than 2 negatives (20 of its negatives are positives" in w
