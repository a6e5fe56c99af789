"""JSONL training pairs: parsing, merging, splits, and malformed input named by file/line/field."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from embexp.data.fingerprint import hash_strings
from embexp.data.leakage import normalise_text
from embexp.data.pairs import load_pairs
from embexp.data.prepare import prepare_data
from embexp.errors import DataError


def write_pairs(path: Path, lines: list, *, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines).encode("utf-8")
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def check(err: DataError, file: Path, line: int | None, field: str, *snippets: str) -> str:
    assert isinstance(err, DataError)
    msg = str(err)
    assert (err.file, err.line, err.field) == (str(file), line, field), (err.file, err.line, err.field, msg)
    assert msg.startswith(str(file) if line is None else f"{file}:{line}:"), msg
    assert f"field '{field}'" in msg, msg
    for s in snippets:
        assert s in msg, msg
    return msg


def qid_of(text: str) -> str:
    return "q-" + hash_strings([normalise_text(text)], digest_size=8)


def did_of(text: str) -> str:
    return "d-" + hash_strings([text], digest_size=8)


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).replace(tzinfo=timezone.utc).timestamp()


ACH = "ACH reversals must be requested within five business days."
ACH_NEG = "ACH return codes are listed in the appendix."
WIRE = "Wire transfers settle the same day."

HAPPY = [
    {
        "query": "how long is the ACH reversal window",
        "positive": ACH,
        "negatives": [ACH_NEG],
        "timestamp": "2026-03-01T10:00:00Z",
        "slices": ["jargon"],
    },
    {
        "query": "  How long is the ACH reversal WINDOW?",
        "positives": [{"id": "kb-1", "text": "Reversal window: five days."}, ACH],
        "negatives": [ACH_NEG, {"id": "kb-9", "text": "Card disputes."}],
        "timestamp": "2026-03-05T00:00:00Z",
        "slices": ["head", "jargon"],
    },
    {
        "query": "when do wires settle",
        "positive": {"id": "kb-2", "text": WIRE},
        "frequency": 7,
        "timestamp": 1767225600,
        "query_id": "wires",
    },
    {
        "query": "when do wires settle",
        "positive": {"_id": "kb-2", "text": WIRE},
        "timestamp": 1767225601,
        "query_id": "wires",
    },
    "",
    {
        "query": "dispute a card charge",
        "positive": {"text": "Disputes are filed from the card page."},
        "negatives": None,
        "timestamp": "2026-02-01T00:00:00+00:00",
    },
]


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
def test_happy_path(tmp_path, gz):
    path = write_pairs(tmp_path / "logs.jsonl", HAPPY, gz=gz)
    ds = load_pairs(path, test_fraction=0)
    ach, card = qid_of("how long is the ACH reversal window"), qid_of("dispute a card charge")
    assert set(ds.queries) == {ach, "wires", card}
    assert ds.queries["wires"] == "when do wires settle"
    # lines 1 and 2 are the same normalised query: merged, positives and negatives unioned
    assert ds.qrels == {
        "train": {
            ach: {did_of(ACH): 1, "kb-1": 1},
            "wires": {"kb-2": 1},
            card: {did_of("Disputes are filed from the card page."): 1},
        }
    }
    assert ds.negatives == {ach: [did_of(ACH_NEG), "kb-9"]}
    assert ds.query_meta[ach] == {
        "frequency": 2,
        "slices": ["head", "jargon"],
        "timestamp": epoch("2026-03-05T00:00:00"),
    }
    assert ds.query_meta["wires"] == {
        "frequency": 7,
        "timestamp": 1767225601.0,
    }  # given frequency wins over the line count
    assert ds.query_meta[card] == {"frequency": 1, "timestamp": epoch("2026-02-01T00:00:00")}
    # corpus: every positive and negative once, sorted by id, no titles
    assert ds.corpus.ids == sorted(ds.corpus.ids) and len(ds.corpus) == 6
    assert ds.corpus.text_of("kb-2") == WIRE and ds.corpus.text_of(did_of(ACH_NEG)) == ACH_NEG
    assert set(ds.corpus.titles) == {""}
    assert ds.source == str(path) and ds.fingerprint and ds.corpus_fingerprint


def test_fingerprint_is_the_same_for_gz_and_plain(tmp_path):
    a = load_pairs(write_pairs(tmp_path / "a" / "logs.jsonl", HAPPY))
    b = load_pairs(write_pairs(tmp_path / "b" / "logs.jsonl", HAPPY, gz=True))
    assert (a.fingerprint, a.corpus_fingerprint) == (b.fingerprint, b.corpus_fingerprint)
    changed = [dict(x) if isinstance(x, dict) else x for x in HAPPY]
    changed[2]["positive"] = {"id": "kb-2", "text": WIRE + "!"}
    changed[3]["positive"] = {"id": "kb-2", "text": WIRE + "!"}
    c = load_pairs(write_pairs(tmp_path / "c" / "logs.jsonl", changed))
    assert c.corpus_fingerprint != a.corpus_fingerprint and c.fingerprint != a.fingerprint


def _many(n: int) -> list[dict]:
    return [
        {
            "query": f"question number {i}",
            "positive": f"answer number {i}",
            "timestamp": 1_700_000_000 + 3600 * i,
        }
        for i in range(n)
    ]


def test_temporal_split_puts_the_newest_in_test(tmp_path):
    rows = _many(10)
    rows[3]["timestamp"] = 1_800_000_000  # the newest, out of file order
    path = write_pairs(tmp_path / "logs.jsonl", rows)
    ds = load_pairs(path, test_fraction=0.2, temporal=True)
    assert set(ds.qrels["test"]) == {qid_of("question number 3"), qid_of("question number 9")}
    assert len(ds.qrels["train"]) == 8
    newest_train = max(ds.query_meta[q]["timestamp"] for q in ds.qrels["train"])
    assert all(ds.query_meta[q]["timestamp"] > newest_train for q in ds.qrels["test"])


def test_temporal_split_needs_a_timestamp_on_every_pair(tmp_path):
    rows = _many(4)
    del rows[2]["timestamp"]
    path = write_pairs(tmp_path / "logs.jsonl", rows)
    with pytest.raises(DataError) as ei:
        load_pairs(path, temporal=True)
    check(ei.value, path, 3, "timestamp", "data.temporal=true needs a timestamp on every pair")
    assert set(load_pairs(path).qrels) == {"train", "test"}  # a seeded split does not need one


def test_seeded_split_is_deterministic_and_by_query(tmp_path):
    rows = _many(20) + [{"query": "QUESTION number 0!", "positive": "another answer"}]  # merges into query 0
    path = write_pairs(tmp_path / "logs.jsonl", rows)
    a, b = load_pairs(path, seed=1), load_pairs(path, seed=1)
    assert a.qrels == b.qrels and a.fingerprint == b.fingerprint
    train, test = set(a.qrels["train"]), set(a.qrels["test"])
    assert len(test) == 4 and len(train) == 16 and not train & test and train | test == set(a.queries)
    assert (
        len(
            a.qrels["train"].get(
                qid_of("question number 0"), a.qrels["test"].get(qid_of("question number 0"), {})
            )
        )
        == 2
    )
    assert len({frozenset(load_pairs(path, seed=s).qrels["test"]) for s in range(6)}) > 1


def test_prepare_data_with_pairs_config(tmp_path):
    path = write_pairs(tmp_path / "logs.jsonl", _many(30))
    data = prepare_data(
        {"kind": "pairs", "path": str(path), "test_fraction": 0.2, "split_seed": 3, "dev_fraction": 0.1}
    )
    assert data.eval_split == "test" and len(data.eval) == 6
    assert len(data.dev) == 2 and len(data.train) == 22
    assert not (set(data.train) & set(data.dev)) and not (set(data.train) & set(data.eval))
    assert not data.leakage


# ---------------------------------------------------------------- malformed input

GOOD = {"query": "q", "positive": "p"}
BAD = {
    "missing_query": ({"positive": "p"}, "query", "missing"),
    "query_not_text": ({"query": 5, "positive": "p"}, "query", "must be a string, got int"),
    "empty_query": ({"query": "   ", "positive": "p"}, "query", "is empty"),
    "missing_positive": ({"query": "x"}, "positive", "missing (give 'positive' or 'positives')"),
    "empty_positive": ({"query": "x", "positive": ""}, "positive", "is empty"),
    "empty_positive_in_list": ({"query": "x", "positives": ["ok", "  "]}, "positives", "is empty"),
    "empty_positive_list": ({"query": "x", "positives": []}, "positives", "is an empty list"),
    "positive_object_without_text": (
        {"query": "x", "positive": {"id": "a"}},
        "positive.text",
        "missing or empty",
    ),
    "positive_bad_id": (
        {"query": "x", "positive": {"id": ["a"], "text": "t"}},
        "positive.id",
        "must be a string or integer, got list",
    ),
    "positive_number": (
        {"query": "x", "positive": 5},
        "positive",
        "must be a text or an object with 'text', got int",
    ),
    "negatives_not_a_list": (
        {"query": "x", "positive": "p", "negatives": "n"},
        "negatives",
        "must be a list, got str",
    ),
    "empty_negative": ({"query": "x", "positive": "p", "negatives": [""]}, "negatives", "is empty"),
    "negative_without_text": (
        {"query": "x", "positive": "p", "negatives": [{"id": "n1", "text": ""}]},
        "negatives.text",
        "missing or empty",
    ),
    "bad_timestamp": (
        {"query": "x", "positive": "p", "timestamp": "last tuesday"},
        "timestamp",
        "expected epoch seconds or ISO-8601, got 'last tuesday'",
    ),
    "bool_timestamp": (
        {"query": "x", "positive": "p", "timestamp": True},
        "timestamp",
        "expected epoch seconds or ISO-8601",
    ),
    "nan_timestamp": (
        '{"query": "x", "positive": "p", "timestamp": NaN}',
        "timestamp",
        "expected epoch seconds or ISO-8601",
    ),
    "negative_frequency": (
        {"query": "x", "positive": "p", "frequency": -2},
        "frequency",
        "must be a non-negative number, got -2",
    ),
    "string_frequency": (
        {"query": "x", "positive": "p", "frequency": "3"},
        "frequency",
        "must be a non-negative number, got '3'",
    ),
    "bool_frequency": (
        {"query": "x", "positive": "p", "frequency": False},
        "frequency",
        "must be a non-negative number",
    ),
    "infinite_frequency": (
        '{"query": "x", "positive": "p", "frequency": Infinity}',
        "frequency",
        "must be a non-negative number",
    ),
    "bad_slices": (
        {"query": "x", "positive": "p", "slices": "jargon"},
        "slices",
        "must be a list of non-empty strings",
    ),
    "bad_query_id": (
        {"query": "x", "positive": "p", "query_id": {"a": 1}},
        "query_id",
        "must be a string or integer, got dict",
    ),
    "invalid_json": ('{"query": "x", "positive": ', "json", "invalid JSON"),
    "json_array": ('["x", "p"]', "json", "expected a JSON object"),
}


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gz"])
@pytest.mark.parametrize("kind", sorted(BAD))
def test_malformed_line(tmp_path, kind, gz):
    bad, field, snippet = BAD[kind]
    path = write_pairs(tmp_path / "logs.jsonl", [GOOD, GOOD, bad], gz=gz)
    with pytest.raises(DataError) as ei:
        load_pairs(path)
    msg = check(ei.value, path, 3, field, snippet)
    assert "more such line" not in msg


@pytest.mark.parametrize(
    "kind",
    [
        "missing_query",
        "empty_positive",
        "negatives_not_a_list",
        "bad_timestamp",
        "negative_frequency",
        "invalid_json",
    ],
)
def test_several_malformed_lines_are_counted(tmp_path, kind):
    bad, field, snippet = BAD[kind]
    path = write_pairs(tmp_path / "logs.jsonl", [GOOD, bad, GOOD, bad, bad])
    with pytest.raises(DataError) as ei:
        load_pairs(path)
    check(ei.value, path, 2, field, snippet, "(and 2 more such lines (lines 4, 5))")


def test_same_doc_id_with_two_texts(tmp_path):
    rows = [
        {"query": "a", "positive": {"id": "kb-1", "text": "first text"}},
        {"query": "b", "positive": {"id": "kb-1", "text": "first text"}},  # same text again: fine
        {"query": "c", "positive": "p", "negatives": [{"id": "kb-1", "text": "second text"}]},
    ]
    path = write_pairs(tmp_path / "logs.jsonl", rows)
    with pytest.raises(DataError) as ei:
        load_pairs(path)
    check(ei.value, path, 3, "id", "document id 'kb-1' has a different text on line 1")


def test_same_doc_id_with_two_texts_on_one_line(tmp_path):
    rows = [GOOD, {"query": "c", "positives": [{"id": "kb-1", "text": "one"}, {"id": "kb-1", "text": "two"}]}]
    path = write_pairs(tmp_path / "logs.jsonl", rows)
    with pytest.raises(DataError) as ei:
        load_pairs(path)
    check(ei.value, path, 2, "id", "document id 'kb-1' is given twice on this line with different texts")


def test_query_id_reused_for_another_query(tmp_path):
    rows = [
        {"query": "a", "positive": "p", "query_id": 7},
        {"query": "A!", "positive": "p", "query_id": "7"},
        {"query": "b", "positive": "p", "query_id": 7},
    ]
    path = write_pairs(tmp_path / "logs.jsonl", rows)
    with pytest.raises(DataError) as ei:
        load_pairs(path)
    check(ei.value, path, 3, "query_id", "id '7' is used for two different queries")


def test_query_id_zero_is_an_id(tmp_path):
    path = write_pairs(
        tmp_path / "logs.jsonl",
        [{"query": "a", "positive": "p", "query_id": 0}, {"query": "b", "positive": "p"}],
    )
    assert "0" in load_pairs(path, test_fraction=0).queries


def test_file_level_problems(tmp_path):
    with pytest.raises(DataError) as ei:
        load_pairs(tmp_path / "nope.jsonl")
    check(ei.value, tmp_path / "nope.jsonl", None, "data.path", "file not found")

    with pytest.raises(DataError) as ei:
        load_pairs(tmp_path)
    check(ei.value, tmp_path, None, "data.path", "not a file")

    empty = write_pairs(tmp_path / "empty.jsonl", ["", "  "])
    with pytest.raises(DataError) as ei:
        load_pairs(empty)
    check(ei.value, empty, None, "query", "no training pairs in file")

    path = write_pairs(tmp_path / "logs.jsonl", _many(5))
    for bad in (1.0, -0.1):
        with pytest.raises(DataError) as ei:
            load_pairs(path, test_fraction=bad)
        check(ei.value, path, None, "data.test_fraction", "must be in [0, 1)")


def test_no_training_queries_left(tmp_path):
    one = write_pairs(tmp_path / "one.jsonl", _many(1))
    with pytest.raises(DataError) as ei:
        load_pairs(one, test_fraction=0.2)
    check(ei.value, one, None, "data.test_fraction", "no training queries left")
    assert set(load_pairs(one, test_fraction=0).qrels) == {"train"}

    tied = write_pairs(tmp_path / "tied.jsonl", [dict(r, timestamp=5) for r in _many(4)])
    with pytest.raises(DataError) as ei:
        load_pairs(tied, test_fraction=0.25, temporal=True)
    check(
        ei.value,
        tied,
        None,
        "data.test_fraction",
        "no training queries left",
        "tied at the cut-off timestamp",
    )
