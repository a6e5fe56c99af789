"""Dev carving, temporal splits, the leakage guard and prepare_data on a tiny BEIR folder."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from embexp.data.leakage import find_leakage, guard, normalise_text
from embexp.data.prepare import prepare_data
from embexp.data.splits import carve_dev, parse_timestamp, temporal_split
from embexp.errors import ConfigError, DataError

from conftest import write_beir

# ---------------------------------------------------------------- carve_dev


def _train(n: int) -> dict[str, dict[str, int]]:
    # several qrels per query: they must move together
    return {f"q{i:02d}": {f"d{i}": 1, f"d{i + 100}": 2} for i in range(n)}


def test_carve_dev_by_query_seeded_no_overlap():
    train = _train(50)
    tr, dev = carve_dev(train, fraction=0.2, seed=7)
    assert len(dev) == 10 and len(tr) == 40
    assert not set(tr) & set(dev) and set(tr) | set(dev) == set(train)
    assert all(dev[q] == train[q] for q in dev) and all(tr[q] == train[q] for q in tr)
    assert carve_dev(train, fraction=0.2, seed=7) == (tr, dev)  # deterministic
    assert carve_dev(dict(reversed(list(train.items()))), fraction=0.2, seed=7) == (
        tr,
        dev,
    )  # independent of dict order
    assert (
        len({frozenset(carve_dev(train, fraction=0.2, seed=s)[1]) for s in range(5)}) > 1
    )  # the seed matters
    assert train == _train(50)  # input untouched


def test_carve_dev_sizes():
    assert len(carve_dev(_train(50), fraction=0.2, max_queries=3)[1]) == 3
    assert len(carve_dev(_train(5), fraction=0.01)[1]) == 1  # at least one
    with pytest.raises(DataError) as ei:
        carve_dev(_train(1), fraction=0.5)
    assert ei.value.field == "data.dev_fraction" and "cannot carve 1 dev queries from 1 train queries" in str(
        ei.value
    )


# ---------------------------------------------------------------- temporal_split / parse_timestamp


def test_temporal_split_newest_held_out_ties_go_to_held_out():
    qrels = {f"q{i}": {f"d{i}": 1} for i in range(10)}
    ts = {f"q{i}": float(i) for i in range(10)}
    keep, hold = temporal_split(qrels, ts, fraction=0.3)
    assert set(hold) == {"q7", "q8", "q9"} and set(keep) == {f"q{i}" for i in range(7)}
    ts["q6"] = 7.0  # tied with the cut-off: held out, so nothing held out is older than anything kept
    keep, hold = temporal_split(qrels, ts, fraction=0.3)
    assert set(hold) == {"q6", "q7", "q8", "q9"}
    assert max(ts[q] for q in keep) < min(ts[q] for q in hold)


def test_temporal_split_needs_every_timestamp():
    with pytest.raises(DataError) as ei:
        temporal_split({"a": {"d": 1}, "b": {"d": 1}}, {"a": 1.0}, fraction=0.5)
    assert ei.value.field == "timestamp" and "'b'" in str(ei.value)


def test_parse_timestamp():
    assert parse_timestamp(1767225600) == 1767225600.0
    assert parse_timestamp("2026-01-01T00:00:00Z") == 1767225600.0
    assert parse_timestamp("2026-01-01T01:00:00+01:00") == 1767225600.0
    assert parse_timestamp("2026-01-01") == 1767225600.0  # naive means UTC
    for bad in ("soon", "", True, None, float("nan"), float("inf"), [2026]):
        with pytest.raises(DataError) as ei:
            parse_timestamp(bad, file="logs.jsonl", line=4, qid="q9")
        assert str(ei.value).startswith("logs.jsonl:4: field 'timestamp': query 'q9'"), str(ei.value)


# ---------------------------------------------------------------- leakage guard

QUERIES = {
    "t1": "How do I reset my PIN?",
    "t2": "what is an ACH reversal",
    "t3": "wire cut-off time",
    "t4": "Completely unrelated",
    "t5": "???",
    "e1": "how do i reset my pin",  # text duplicate of t1 (case, punctuation)
    "e2": "  What is an   ACH-reversal ? ",  # text duplicate of t2 (whitespace, punctuation)
    "e3": "wire cutoff time",  # NOT a duplicate: "cutoff" vs "cut off"
    "e4": "!!!",  # punctuation only: never matches t5
}
TRAIN = {q: {"d1": 1} for q in ("t1", "t2", "t3", "t4", "t5", "e4")}  # e4 also shares an id with eval
EVAL = {q: {"d1": 1} for q in ("e1", "e2", "e3", "e4")}


def test_normalise_text():
    assert normalise_text("  How do I reset my PIN?? ") == "how do i reset my pin"
    # casefold, NFKC, dashes and odd spaces
    assert normalise_text("Straße\u00a0–\tＡＣＨ") == "strasse ach"
    assert normalise_text("!!!") == ""


def test_find_leakage_by_id_and_text():
    rep = find_leakage(TRAIN, EVAL, QUERIES)
    assert rep.by_id == ["e4"]
    assert rep.by_text == [("t1", "e1"), ("t2", "e2")]
    assert rep.train_ids == {"e4", "t1", "t2"}
    assert rep.as_dict() == {"by_id": ["e4"], "by_text": [["t1", "e1"], ["t2", "e2"]]}
    assert "1 shared query ids" in rep.describe() and "('t1', 'e1')" in rep.describe()
    assert not find_leakage({"t3": {}, "t4": {}}, EVAL, QUERIES)


def test_guard_drop_is_the_default():
    clean, rep = guard(TRAIN, {"test": EVAL}, QUERIES)
    assert set(clean) == {"t3", "t4", "t5"}
    assert rep.train_ids == {"e4", "t1", "t2"}
    assert set(TRAIN) == {"t1", "t2", "t3", "t4", "t5", "e4"}  # input untouched


def test_guard_warn_keeps_and_logs(caplog):
    with caplog.at_level(logging.WARNING, logger="embexp.data.leakage"):
        clean, rep = guard(TRAIN, {"test": EVAL}, QUERIES, policy="warn")
    assert clean == TRAIN and rep
    assert "leakage guard (warn)" in caplog.text and "('t1', 'e1')" in caplog.text


def test_guard_fail_names_the_queries():
    with pytest.raises(DataError) as ei:
        guard(TRAIN, {"test": EVAL}, QUERIES, policy="fail", source="/data/bank")
    msg = str(ei.value)
    assert msg.startswith("/data/bank: field 'queries': leakage between train and eval queries")
    assert "['e4']" in msg and "('t1', 'e1')" in msg and "('t2', 'e2')" in msg and "data.leakage=drop" in msg


def test_guard_against_several_eval_splits():
    clean, rep = guard({"t1": {}, "t2": {}, "t3": {}}, {"test": {"e1": {}}, "dev": {"e2": {}}}, QUERIES)
    assert set(clean) == {"t3"} and rep.by_text == [("t1", "e1"), ("t2", "e2")]


@pytest.mark.parametrize("policy", ["DROP", "ignore", "", None])
def test_guard_unknown_policy(policy):
    with pytest.raises(ConfigError) as ei:
        guard(TRAIN, {"test": EVAL}, QUERIES, policy=policy)
    assert ei.value.key == "data.leakage" and str(ei.value).startswith(
        "config key 'data.leakage': must be one of"
    )


def test_clean_data_passes_every_policy():
    for policy in ("drop", "fail", "warn"):
        clean, rep = guard({"t3": {"d": 1}}, {"test": EVAL}, QUERIES, policy=policy)
        assert clean == {"t3": {"d": 1}} and not rep


# ---------------------------------------------------------------- prepare_data on a tiny BEIR folder


def make_folder(root: Path, *, dev: bool = False) -> Path:
    """40 train queries, 5 test queries; train 'tr0' repeats test 'te0' (text), train holds test id 'te1'."""
    docs = [(f"d{i}", f"Doc {i}", f"text of document {i}") for i in range(50)]
    queries = [(f"tr{i}", f"train question {i}") for i in range(40)]
    queries += [(f"te{i}", f"test question {i}") for i in range(5)]
    queries[0] = ("tr0", "TEST question 0?")
    qrels = {
        "train": [(f"tr{i}", f"d{i}", 1) for i in range(40)] + [("te1", "d41", 1)],
        "test": [(f"te{i}", f"d{40 + i}", 1) for i in range(5)],
    }
    if dev:
        qrels["dev"] = [("tr39", "d39", 1), ("tr38", "d38", 1)]
    write_beir(root, docs, queries, qrels)
    return root


def test_prepare_data_carves_dev_and_drops_leaked_train_queries(tmp_path):
    root = make_folder(tmp_path / "tiny")
    data = prepare_data({"kind": "beir", "path": str(root), "dev_fraction": 0.1, "dev_seed": 0})
    assert data.eval_split == "test" and set(data.eval) == {f"te{i}" for i in range(5)}
    assert data.leakage.by_id == ["te1"] and data.leakage.by_text == [("tr0", "te0")]
    assert "tr0" not in data.train and "te1" not in data.train
    assert "tr0" not in data.dev and "te1" not in data.dev
    # 39 clean train queries (40 + te1 - tr0 - te1), 10% of them carved to dev
    assert len(data.dev) == 4 and len(data.train) == 35
    assert not set(data.train) & set(data.dev)
    assert data.dataset.qrels["dev"] == data.dev
    assert any(n.startswith("dev split: 4 train queries carved at random (seed 0)") for n in data.notes)
    assert any(n.startswith("leakage guard (drop)") for n in data.notes)
    s = data.summary()
    assert (s["n_train_queries"], s["n_dev_queries"], s["n_eval_queries"], s["n_docs"]) == (35, 4, 5, 50)
    again = prepare_data({"kind": "beir", "path": str(root), "dev_fraction": 0.1, "dev_seed": 0})
    assert (again.train, again.dev) == (data.train, data.dev)


def test_leaked_queries_never_reach_a_carved_dev_split(tmp_path):
    # carving dev before guarding would, for some seeds, move tr0 (a copy of test te0) into dev
    # where the guard no longer sees it
    root = make_folder(tmp_path / "tiny")
    for seed in range(30):
        data = prepare_data({"kind": "beir", "path": str(root), "dev_fraction": 0.5, "dev_seed": seed})
        assert "tr0" not in data.dev and "te1" not in data.dev, seed
        assert data.leakage.by_text == [("tr0", "te0")] and data.leakage.by_id == ["te1"], seed
        with pytest.raises(DataError):
            prepare_data(
                {"kind": "beir", "path": str(root), "dev_fraction": 0.5, "dev_seed": seed, "leakage": "fail"}
            )


def test_prepare_data_policies(tmp_path, caplog):
    root = make_folder(tmp_path / "tiny")
    with pytest.raises(DataError) as ei:
        prepare_data({"kind": "beir", "path": str(root), "leakage": "fail"})
    msg = str(ei.value)
    assert ei.value.file == str(root) and ei.value.field == "queries"
    assert "['te1']" in msg and "('tr0', 'te0')" in msg

    with caplog.at_level(logging.WARNING):
        data = prepare_data({"kind": "beir", "path": str(root), "leakage": "warn", "dev_max_queries": 2})
    assert "leakage guard (warn)" in caplog.text
    assert len(data.train) + len(data.dev) == 41 and len(data.dev) == 2

    with pytest.raises(ConfigError) as ei:
        prepare_data({"kind": "beir", "path": str(root), "leakage": "sometimes"})
    assert ei.value.key == "data.leakage"


def test_prepare_data_uses_a_given_dev_split_and_guards_against_it(tmp_path):
    root = make_folder(tmp_path / "tiny", dev=True)
    data = prepare_data({"kind": "beir", "path": str(root)})
    assert set(data.dev) == {"tr38", "tr39"}
    assert not {"tr38", "tr39", "tr0", "te1"} & set(data.train) and len(data.train) == 37
    assert data.leakage.by_id == ["te1", "tr38", "tr39"] and data.leakage.by_text == [("tr0", "te0")]
    assert not any(n.startswith("dev split") for n in data.notes)


def test_prepare_data_with_an_omegaconf_node(tmp_path):
    omegaconf = pytest.importorskip("omegaconf")
    root = make_folder(tmp_path / "tiny")
    cfg = omegaconf.OmegaConf.create(
        {
            "kind": "beir",
            "path": str(root),
            "split": "test",
            "train_split": "train",
            "dev_split": "dev",
            "dev_fraction": 0.1,
            "dev_max_queries": None,
            "dev_seed": 0,
            "temporal": False,
            "leakage": "drop",
            "skip_unknown_ids": False,
        }
    )
    data = prepare_data(cfg)
    ref = prepare_data({"kind": "beir", "path": str(root)})
    assert (data.train, data.dev, data.leakage.as_dict()) == (ref.train, ref.dev, ref.leakage.as_dict())


def test_prepare_data_errors_name_the_config_key(tmp_path):
    root = make_folder(tmp_path / "tiny")
    with pytest.raises(DataError) as ei:
        prepare_data({"kind": "beir", "path": str(root), "split": "dev"})
    assert (
        ei.value.field == "data.split"
        and ei.value.file == f"{root}/qrels/dev.tsv"
        and "available: ['test', 'train']" in str(ei.value)
    )
    with pytest.raises(DataError) as ei:
        prepare_data({"kind": "beir", "path": str(root), "train_split": "nope"})
    assert ei.value.field == "data.train_split" and ei.value.file == f"{root}/qrels/nope.tsv"
    assert (
        prepare_data({"kind": "beir", "path": str(root), "train_split": "nope"}, need_train=False).train == {}
    )
    with pytest.raises(ConfigError) as ei:
        prepare_data({"kind": "beir", "path": str(root), "dev_fraction": 1.5})
    assert ei.value.key == "data.dev_fraction"
    for path in (None, "???"):
        with pytest.raises(ConfigError) as ei:
            prepare_data({"kind": "beir", "path": path})
        assert ei.value.key == "data.path"
    with pytest.raises(ConfigError) as ei:
        prepare_data({"kind": "csv", "path": str(root)})
    assert ei.value.key == "data.kind"


def test_prepare_data_temporal_dev(tmp_path):
    root = make_folder(tmp_path / "tiny")
    lines = [json.loads(x) for x in (root / "queries.jsonl").read_text().splitlines()]
    for i, q in enumerate(lines):
        q["timestamp"] = 1_700_000_000 + i
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in lines))
    data = prepare_data({"kind": "beir", "path": str(root), "temporal": True, "dev_fraction": 0.1})
    assert set(data.dev) == {"tr36", "tr37", "tr38", "tr39"}  # newest train queries
    assert any("newest 10% of train queries by timestamp" in n for n in data.notes)


def test_bad_beir_timestamp_is_reported_at_load_time(tmp_path):
    root = make_folder(tmp_path / "tiny")
    lines = (root / "queries.jsonl").read_text().splitlines()
    lines[2] = json.dumps({"_id": "tr2", "text": "train question 2", "timestamp": "Tuesday"})
    (root / "queries.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as ei:
        prepare_data({"kind": "beir", "path": str(root), "temporal": True})
    assert (ei.value.file, ei.value.line, ei.value.field) == (str(root / "queries.jsonl"), 3, "timestamp")
