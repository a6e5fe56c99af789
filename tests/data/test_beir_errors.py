"""BEIR folder loading: every malformed input is a DataError naming file, line and field."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import pytest

from embexp.data.beir import load_beir
from embexp.errors import DataError

# ---------------------------------------------------------------- helpers

DOCS = [
    {
        "_id": "d1",
        "title": "ACH reversals",
        "text": "An ACH reversal must be requested within five business days.",
    },
    {"_id": "d2", "title": "", "text": "Wire transfers settle the same day."},
    {"_id": "d3", "title": "Card disputes", "text": "Disputes are filed from the card page."},
    {"_id": "d4", "text": "Statements are issued monthly."},  # no title at all: allowed
]
QUERIES = [
    {"_id": "q1", "text": "how long is the ACH reversal window"},
    {"_id": "q2", "text": "when do wires settle"},
    {"_id": "q3", "text": "how to dispute a card charge"},
    {"_id": "q4", "text": "how often are statements issued"},
]
TRAIN = ["query-id\tcorpus-id\tscore", "q1\td1\t1", "q2\td2\t1"]
TEST = ["query-id\tcorpus-id\tscore", "q3\td3\t1", "q4\td4\t2"]
N_BASE = {"corpus": len(DOCS), "queries": len(QUERIES), "qrels": len(TRAIN)}


def _line(x) -> str:
    return x if isinstance(x, str) else json.dumps(x)


def write_text(path: Path, lines: list, *, gz: bool) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(_line(x) + "\n" for x in lines).encode("utf-8")
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def make_beir(root: Path, *, gz: bool = False, corpus=None, queries=None, qrels=None) -> Path:
    """A small valid BEIR folder; pass lists to replace (or extend) any file."""
    write_text(root / "corpus.jsonl", DOCS if corpus is None else corpus, gz=gz)
    write_text(root / "queries.jsonl", QUERIES if queries is None else queries, gz=gz)
    for split, rows in (qrels if qrels is not None else {"train": TRAIN, "test": TEST}).items():
        write_text(root / "qrels" / f"{split}.tsv", rows, gz=gz)
    return root


def file_of(root: Path, kind: str, gz: bool) -> Path:
    name = {"corpus": "corpus.jsonl", "queries": "queries.jsonl", "qrels": "qrels/train.tsv"}[kind]
    return root / (name + (".gz" if gz else ""))


def check(err: DataError, file: Path, line: int | None, field: str, *snippets: str) -> str:
    """The error names file, line (as FILE:LINE) and field, and says what is wrong."""
    assert isinstance(err, DataError)
    msg = str(err)
    assert err.file == str(file) and err.line == line and err.field == field, (
        err.file,
        err.line,
        err.field,
        msg,
    )
    where = str(file) if line is None else f"{file}:{line}:"
    assert msg.startswith(where), msg
    assert f"field '{field}'" in msg, msg
    for s in snippets:
        assert s in msg, msg
    return msg


@pytest.fixture(params=[False, True], ids=["plain", "gz"])
def gz(request) -> bool:
    return request.param


# ---------------------------------------------------------------- one bad line of each kind, then several

# kind -> (file, make the i-th bad line, field, what the message says)
CASES = {
    "truncated_json": (
        "corpus",
        lambda i: f'{{"_id": "t{i}", "text": "cut off',
        "json",
        "invalid JSON (Unterminated string starting at column 23)",
    ),
    "truncated_after_comma": (
        "queries",
        lambda i: f'{{"_id": "t{i}", ',
        "json",
        "invalid JSON (Expecting property name enclosed in double quotes at column",
    ),
    "json_list": (
        "queries",
        lambda i: json.dumps([f"x{i}", "a list, not an object"]),
        "json",
        "expected a JSON object",
    ),
    "json_scalar": ("corpus", lambda i: json.dumps(f"just a string {i}"), "json", "got a JSON string"),
    "missing_id_doc": ("corpus", lambda i: {"title": "t", "text": f"no id {i}"}, "_id", "missing"),
    "missing_id_query": ("queries", lambda i: {"text": f"no id {i}"}, "_id", "missing"),
    "list_id": (
        "queries",
        lambda i: {"_id": [f"q{i}"], "text": "x"},
        "_id",
        "must be a string or integer, got list",
    ),
    "float_id": (
        "corpus",
        lambda i: {"_id": 1.5 + i, "text": "x"},
        "_id",
        "must be a string or integer, got float",
    ),
    "empty_id": ("corpus", lambda i: {"_id": "  ", "text": f"x{i}"}, "_id", "is empty"),
    "duplicate_doc": (
        "corpus",
        lambda i: {"_id": "d1", "text": f"another text {i}"},
        "_id",
        "duplicate id 'd1' (first on line 1)",
    ),
    "duplicate_query": (
        "queries",
        lambda i: {"_id": "q2", "text": f"again {i}"},
        "_id",
        "duplicate id 'q2' (first on line 2)",
    ),
    "empty_query": ("queries", lambda i: {"_id": f"e{i}", "text": "   "}, "text", "is empty"),
    "missing_query_text": ("queries", lambda i: {"_id": f"e{i}"}, "text", "missing"),
    "non_string_text": (
        "queries",
        lambda i: {"_id": f"e{i}", "text": 42},
        "text",
        "must be a string, got int",
    ),
    "empty_doc": (
        "corpus",
        lambda i: {"_id": f"e{i}", "title": " ", "text": ""},
        "text",
        "has empty title and text",
    ),
    "missing_doc_text": ("corpus", lambda i: {"_id": f"e{i}", "title": "only a title"}, "text", "missing"),
    "bad_frequency_negative": (
        "queries",
        lambda i: {"_id": f"f{i}", "text": "x", "frequency": -1},
        "frequency",
        "non-negative number",
    ),
    "bad_frequency_string": (
        "queries",
        lambda i: {"_id": f"f{i}", "text": "x", "frequency": "often"},
        "frequency",
        "non-negative number",
    ),
    "bad_frequency_bool": (
        "queries",
        lambda i: {"_id": f"f{i}", "text": "x", "frequency": True},
        "frequency",
        "non-negative number",
    ),
    "bad_frequency_nan": (
        "queries",
        lambda i: f'{{"_id": "f{i}", "text": "x", "frequency": NaN}}',
        "frequency",
        "non-negative number",
    ),
    "bad_slices_string": (
        "queries",
        lambda i: {"_id": f"s{i}", "text": "x", "slices": "jargon"},
        "slices",
        "list of non-empty strings",
    ),
    "bad_slices_empty_name": (
        "queries",
        lambda i: {"_id": f"s{i}", "text": "x", "slices": ["ok", ""]},
        "slices",
        "list of non-empty strings",
    ),
    "bad_slices_number": (
        "queries",
        lambda i: {"_id": f"s{i}", "text": "x", "slices": [1]},
        "slices",
        "list of non-empty strings",
    ),
    "bad_timestamp": (
        "queries",
        lambda i: {"_id": f"t{i}", "text": "x", "timestamp": "yesterday"},
        "timestamp",
        "ISO-8601",
    ),
    "unknown_doc": ("qrels", lambda i: f"q1\tnope{i}\t1", "corpus-id", "unknown document id 'nope0'"),
    "unknown_query": ("qrels", lambda i: f"nq{i}\td1\t1", "query-id", "unknown query id 'nq0'"),
    "score_x": ("qrels", lambda i: "q1\td3\tx", "score", "must be an integer, got 'x'"),
    "score_fraction": ("qrels", lambda i: "q1\td3\t1.5", "score", "must be an integer, got '1.5'"),
    "score_nan": ("qrels", lambda i: "q1\td3\tnan", "score", "must be an integer, got 'nan'"),
    "score_inf": ("qrels", lambda i: "q1\td3\tinf", "score", "must be an integer, got 'inf'"),
    "score_empty": ("qrels", lambda i: "q1\td3\t", "score", "must be an integer, got ''"),
    "two_columns": ("qrels", lambda i: "q1\td3", "columns", "expected 3 tab-separated columns", "got 2"),
    "five_columns": ("qrels", lambda i: "q1\t0\td3\t1\textra", "columns", "got 5"),
    "space_separated": ("qrels", lambda i: "q1 d3 1", "columns", "got 1"),
    "conflicting_duplicate": (
        "qrels",
        lambda i: f"q1\td1\t{i + 2}",
        "score",
        "conflicting duplicate for (q1, d1): 2 here, 1 on line 2",
    ),
}


def _build(root: Path, gz: bool, kind: str, n: int) -> tuple[Path, int]:
    target, bad, *_ = CASES[kind]
    extra = [bad(i) for i in range(n)]
    if target == "corpus":
        make_beir(root, gz=gz, corpus=DOCS + extra)
    elif target == "queries":
        make_beir(root, gz=gz, queries=QUERIES + extra)
    else:
        make_beir(root, gz=gz, qrels={"train": TRAIN + extra, "test": TEST})
    return file_of(root, target, gz), N_BASE[target] + 1


@pytest.mark.parametrize("kind", sorted(CASES))
def test_one_bad_line(tmp_path, gz, kind):
    file, line = _build(tmp_path / "ds", gz, kind, 1)
    _, _, field, *snippets = CASES[kind]
    with pytest.raises(DataError) as ei:
        load_beir(tmp_path / "ds")
    msg = check(ei.value, file, line, field, *snippets)
    assert "more such line" not in msg
    assert len(ei.value.problems) == 1


@pytest.mark.parametrize("kind", sorted(CASES))
def test_several_bad_lines_are_counted(tmp_path, gz, kind):
    file, line = _build(tmp_path / "ds", gz, kind, 3)
    _, _, field, *snippets = CASES[kind]
    with pytest.raises(DataError) as ei:
        load_beir(tmp_path / "ds")
    msg = check(ei.value, file, line, field, *snippets)
    assert f"(and 2 more such lines (lines {line + 1}, {line + 2}))" in msg, msg
    assert [p.line for p in ei.value.problems] == [line, line + 1, line + 2]


def test_line_numbers_count_blank_lines_and_header(tmp_path, gz):
    root = make_beir(
        tmp_path / "ds", gz=gz, corpus=DOCS[:2] + ["", "   "] + [{"_id": "d2", "text": "dup"}] + DOCS[2:]
    )
    with pytest.raises(DataError) as ei:
        load_beir(root)
    check(ei.value, file_of(root, "corpus", gz), 5, "_id", "duplicate id 'd2' (first on line 2)")

    root = make_beir(
        tmp_path / "ds2",
        gz=gz,
        qrels={"train": ["query-id\tcorpus-id\tscore", "", "q1\td1\t1", "q1\td9\t1"], "test": TEST},
    )
    with pytest.raises(DataError) as ei:
        load_beir(root)
    check(
        ei.value,
        root / ("qrels/train.tsv" + (".gz" if gz else "")),
        4,
        "corpus-id",
        "unknown document id 'd9'",
    )


def test_unknown_query_and_doc_on_one_line_are_both_reported(tmp_path):
    root = make_beir(tmp_path / "ds", qrels={"train": TRAIN + ["zz\tyy\t1"], "test": TEST})
    with pytest.raises(DataError) as ei:
        load_beir(root)
    msg = check(ei.value, root / "qrels/train.tsv", 4, "query-id", "unknown query id 'zz'")
    assert (
        "plus 1 other problem, first: " in msg
        and f"{root / 'qrels/train.tsv'}:4: field 'corpus-id': unknown document id 'yy'" in msg
    )


def test_mixed_problems_name_the_first_problem_of_another_kind(tmp_path):
    # lines 5 and 7: missing _id; line 6: empty document -> "other" must be line 6, not line 7
    corpus = DOCS + [{"text": "a"}, {"_id": "e", "text": ""}, {"text": "b"}]
    root = make_beir(tmp_path / "ds", corpus=corpus)
    with pytest.raises(DataError) as ei:
        load_beir(root)
    msg = check(ei.value, root / "corpus.jsonl", 5, "_id", "(and 1 more such line (line 7))")
    assert f"plus 1 other problem, first: {root / 'corpus.jsonl'}:6: field 'text'" in msg, msg


def test_problems_beyond_the_collector_limit_are_still_counted(tmp_path, monkeypatch):
    import embexp.errors as errors

    orig = errors.ProblemCollector.__init__
    monkeypatch.setattr(errors.ProblemCollector, "__init__", lambda self, limit=3: orig(self, limit))
    root = make_beir(tmp_path / "ds", corpus=DOCS + [{"text": str(i)} for i in range(5)])
    with pytest.raises(DataError) as ei:
        load_beir(root)
    msg = check(
        ei.value,
        root / "corpus.jsonl",
        5,
        "_id",
        "(and 2 more such lines (lines 6, 7))",
        "2 further problems not listed",
    )
    assert ei.value.not_kept == 2, msg


def test_all_problems_of_a_file_are_listed(tmp_path):
    queries = QUERIES + [{"_id": "q1", "text": "dup"}, {"_id": "x", "text": ""}, "[1]"]
    root = make_beir(tmp_path / "ds", queries=queries)
    with pytest.raises(DataError) as ei:
        load_beir(root)
    assert [(p.line, p.field) for p in ei.value.problems] == [(5, "_id"), (6, "text"), (7, "json")]


# ---------------------------------------------------------------- files, folders, splits


def test_missing_split_file(tmp_path, gz):
    root = make_beir(tmp_path / "ds", gz=gz)
    with pytest.raises(DataError) as ei:
        load_beir(root, splits=["dev"])
    msg = check(
        ei.value, root / "qrels" / "dev.tsv", None, "data.split", "split 'dev' not found", "['test', 'train']"
    )
    assert "qrels/dev.tsv" in msg


def test_no_qrels_at_all(tmp_path):
    root = make_beir(tmp_path / "ds", qrels={})
    with pytest.raises(DataError) as ei:
        load_beir(root)
    check(ei.value, root / "qrels", None, "qrels", "no qrels/<split>.tsv files found")


@pytest.mark.parametrize("name,field", [("corpus.jsonl", "corpus"), ("queries.jsonl", "queries")])
def test_missing_corpus_or_queries_file(tmp_path, gz, name, field):
    root = make_beir(tmp_path / "ds", gz=gz)
    (root / (name + (".gz" if gz else ""))).unlink()
    with pytest.raises(DataError) as ei:
        load_beir(root)
    check(ei.value, root / name, None, field, "file not found", f"{name}.gz")


def test_missing_folder(tmp_path):
    with pytest.raises(DataError) as ei:
        load_beir(tmp_path / "nowhere")
    check(ei.value, tmp_path / "nowhere", None, "data.path", "folder not found")


def test_empty_corpus(tmp_path):
    root = make_beir(tmp_path / "ds", corpus=["", "  "], qrels={"test": ["q1\td1\t1"]})
    with pytest.raises(DataError) as ei:
        load_beir(root)
    check(ei.value, root / "corpus.jsonl", None, "corpus", "corpus is empty")


def test_invalid_utf8_is_reported_with_its_line(tmp_path, gz):
    root = make_beir(tmp_path / "ds", gz=gz)
    raw = "".join(json.dumps(d) + "\n" for d in DOCS).encode() + b'{"_id": "d9", "text": "caf\xe9"}\n'
    path = file_of(root, "corpus", gz)
    path.write_bytes(gzip.compress(raw) if gz else raw)
    with pytest.raises(DataError) as ei:
        load_beir(root)
    check(ei.value, path, 5, "encoding", "not valid UTF-8")


def test_gzip_data_in_a_plain_named_file(tmp_path):
    root = make_beir(tmp_path / "ds")
    (root / "queries.jsonl").write_bytes(gzip.compress(b'{"_id": "q1", "text": "x"}\n'))
    with pytest.raises(DataError) as ei:
        load_beir(root)
    check(ei.value, root / "queries.jsonl", 1, "encoding", "gzip data in a file without .gz")


def test_truncated_gzip_file(tmp_path):
    root = make_beir(tmp_path / "ds", gz=True)
    data = gzip.compress(
        "".join(json.dumps({"_id": f"d{i}", "text": "lorem ipsum " * 20}) + "\n" for i in range(200)).encode()
    )
    (root / "corpus.jsonl.gz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError) as ei:
        load_beir(root)
    e = ei.value
    assert e.file == str(root / "corpus.jsonl.gz") and e.field == "gzip" and e.line is not None
    assert "corrupt or truncated gzip" in str(e) and f"{root / 'corpus.jsonl.gz'}:{e.line}:" in str(e)


def test_plain_text_named_gz(tmp_path):
    root = make_beir(tmp_path / "ds")
    (root / "corpus.jsonl").rename(root / "corpus.jsonl.gz")
    with pytest.raises(DataError) as ei:
        load_beir(root)
    check(ei.value, root / "corpus.jsonl.gz", 1, "gzip", "corrupt or truncated gzip")


def test_utf8_bom_is_ignored(tmp_path):
    root = make_beir(tmp_path / "ds")
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/train.tsv"):
        p = root / name
        p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes())
    ds = load_beir(root)
    assert ds.qrels["train"] == {"q1": {"d1": 1}, "q2": {"d2": 1}}
    assert ds.corpus.ids[0] == "d1"


# ---------------------------------------------------------------- skip_unknown_ids


def test_skip_unknown_ids_skips_instead_of_failing(tmp_path, gz, caplog):
    rows = TRAIN + ["q1\tnope\t1", "ghost\td1\t1", "ghost\tnope\t1", "q2\td3\t0"]
    root = make_beir(tmp_path / "ds", gz=gz, qrels={"train": rows, "test": TEST})
    with pytest.raises(DataError) as ei:
        load_beir(root)
    check(ei.value, file_of(root, "qrels", gz), 4, "corpus-id", "unknown document id 'nope'")
    with caplog.at_level(logging.WARNING, logger="embexp.data.beir"):
        ds = load_beir(root, skip_unknown_ids=True)
    assert ds.qrels["train"] == {"q1": {"d1": 1}, "q2": {"d2": 1, "d3": 0}}
    assert "skipped 3 qrels rows with unknown ids" in caplog.text


def test_skip_unknown_ids_still_fails_on_other_problems(tmp_path):
    root = make_beir(tmp_path / "ds", qrels={"train": TRAIN + ["q1\tnope\t1", "q1\td3\tx"], "test": TEST})
    with pytest.raises(DataError) as ei:
        load_beir(root, skip_unknown_ids=True)
    check(ei.value, root / "qrels/train.tsv", 5, "score", "must be an integer")


# ---------------------------------------------------------------- happy path


def test_loads_a_valid_folder(tmp_path, gz):
    queries = [
        {
            "_id": "q1",
            "text": "how long is the ACH reversal window",
            "frequency": 12,
            "slices": ["jargon", "head"],
            "timestamp": "2026-03-01T10:00:00Z",
        },
        {"_id": "q2", "text": "when do wires settle", "frequency": 0.5},
        QUERIES[2],
        QUERIES[3],
    ]
    root = make_beir(tmp_path / "ds", gz=gz, queries=queries)
    ds = load_beir(root)
    assert ds.name == "ds" and ds.source == str(root)
    assert ds.corpus.ids == ["d1", "d2", "d3", "d4"]
    assert ds.corpus.titles[3] == ""
    assert (
        ds.corpus.text_of("d1")
        == "ACH reversals An ACH reversal must be requested within five business days."
    )
    assert ds.corpus.text_of("d2") == "Wire transfers settle the same day."
    assert set(ds.queries) == {"q1", "q2", "q3", "q4"}
    assert ds.qrels == {
        "train": {"q1": {"d1": 1}, "q2": {"d2": 1}},
        "test": {"q3": {"d3": 1}, "q4": {"d4": 2}},
    }
    assert ds.query_meta == {
        "q1": {"frequency": 12, "slices": ["jargon", "head"], "timestamp": "2026-03-01T10:00:00Z"},
        "q2": {"frequency": 0.5},
    }
    assert load_beir(root, splits=["test"]).qrels.keys() == {"test"}
    assert load_beir(root, name="custom").name == "custom"


def test_header_optional_trec_format_integer_ids(tmp_path, gz):
    corpus = [
        {"_id": 10, "title": "t", "text": "ten"},
        {"_id": 20, "text": "twenty"},
        {"_id": "30", "text": "thirty"},
    ]
    queries = [{"_id": 1, "text": "one"}, {"_id": 2, "text": "two"}, {"_id": 3, "text": "three"}]
    qrels = {
        "train": [
            "1\t10\t1",
            "2\t20\t1.0",
            "  ",
            "2\t10\t1",
        ],  # no header, "1.0" is an integer, repeated identical rows are fine
        "test": ["3\t0\t30\t2", "3\tQ0\t20\t0"],  # TREC: qid iter docid rel
        "dev": ["qid\tdocid\trel", "1\t30\t1", "1\t30\t1"],
    }
    root = make_beir(tmp_path / "ds", gz=gz, corpus=corpus, queries=queries, qrels=qrels)
    ds = load_beir(root)
    assert ds.corpus.ids == ["10", "20", "30"]
    assert sorted(ds.queries) == ["1", "2", "3"]
    assert ds.qrels == {
        "train": {"1": {"10": 1}, "2": {"20": 1, "10": 1}},
        "test": {"3": {"30": 2, "20": 0}},
        "dev": {"1": {"30": 1}},
    }
    assert all(isinstance(s, int) for split in ds.qrels.values() for d in split.values() for s in d.values())


def test_fingerprint_is_stable_across_gz_and_plain_and_tracks_content(tmp_path):
    plain = load_beir(make_beir(tmp_path / "plain", gz=False))
    zipped = load_beir(make_beir(tmp_path / "zipped", gz=True))
    assert plain.fingerprint and plain.corpus_fingerprint
    assert plain.fingerprint == zipped.fingerprint
    assert plain.corpus_fingerprint == zipped.corpus_fingerprint
    assert load_beir(tmp_path / "plain").fingerprint == plain.fingerprint  # deterministic

    docs = [dict(d) for d in DOCS]
    docs[2]["text"] += "!"
    changed_doc = load_beir(make_beir(tmp_path / "doc", corpus=docs))
    assert changed_doc.corpus_fingerprint != plain.corpus_fingerprint
    assert changed_doc.fingerprint != plain.fingerprint

    qs = [dict(q) for q in QUERIES]
    qs[0]["text"] = "how long is the ACH reversal window?"
    changed_query = load_beir(make_beir(tmp_path / "query", queries=qs))
    assert changed_query.corpus_fingerprint == plain.corpus_fingerprint
    assert changed_query.fingerprint != plain.fingerprint

    changed_qrel = load_beir(
        make_beir(tmp_path / "qrel", qrels={"train": TRAIN, "test": TEST[:-1] + ["q4\td4\t1"]})
    )
    assert changed_qrel.fingerprint != plain.fingerprint
