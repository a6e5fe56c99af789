"""``data=hf``: Hugging Face ``datasets`` from local files the tests write (no network).

Equivalence tests: a pairs table loads as the same dataset as the equivalent JSONL through
``load_pairs``; a BEIR-style table set loads as the same dataset as the BEIR folder through
``load_beir`` (same corpus, queries, qrels, fingerprints).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from embexp.config.schema import HfColumns, HfData
from embexp.data.beir import load_beir
from embexp.data.hf import load_hf
from embexp.data.pairs import load_pairs
from embexp.data.prepare import data_config, prepare_data
from embexp.errors import ConfigError, DataError

from conftest import DOCS, QRELS, QUERIES, TINY, compose_config, write_beir

TRIPLETS = [  # query, positive, negative
    ("how do i get my money back", "Refunds go to the original card in 5 days.", "Print a return label."),
    ("ACH reversal deadline", "An ACH reversal can be requested within 5 banking days.", "R01: no funds."),
    ("what does R01 mean", "R01 means insufficient funds.", "An ACH reversal takes 5 days."),
    (
        "TX-4410-B wont pair",
        "Hold the pair button for 5 seconds.",
        "Refunds go to the original card in 5 days.",
    ),
    ("why was my card declined", "Cards are declined for low funds or a wrong PIN.", "R01: no funds."),
    (
        "refund to card how long",
        "Refunds go to the original card in 5 days.",
        "Cards are declined for low funds.",
    ),
    ("print a return label", "Print a return label.", "Hold the pair button for 5 seconds."),
    ("2FA code not arriving", "Codes are sent by SMS; check the number.", "Print a return label."),
    ("reset my PIN", "Reset the PIN from the card page.", "Codes are sent by SMS; check the number."),
    ("HOW DO I GET MY MONEY BACK?", "Refunds are issued as store credit on request.", "R01: no funds."),
]


@pytest.fixture(autouse=True)
def _datasets_cache(tmp_path, monkeypatch):
    """``datasets`` writes its Arrow cache under tmp_path, never the user's cache."""
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


def write_table(path: Path, rows: list[dict]) -> Path:
    """A parquet or JSONL file of ``rows`` (by extension)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def triplet_rows(query="query", positive="positive", negative="negative") -> list[dict]:
    return [{query: q, positive: p, negative: n} for q, p, n in TRIPLETS]


def same(a, b) -> None:
    """Two RetrievalDatasets hold the same data (names and sources aside)."""
    assert a.queries == b.queries
    assert a.qrels == b.qrels
    assert (a.corpus.ids, a.corpus.titles, a.corpus.texts) == (b.corpus.ids, b.corpus.titles, b.corpus.texts)
    assert a.negatives == b.negatives
    assert a.query_meta == b.query_meta
    assert (a.fingerprint, a.corpus_fingerprint) == (b.fingerprint, b.corpus_fingerprint)


# ---- pairs ----------------------------------------------------------------------------------------
def test_parquet_triplets_load_as_the_equivalent_jsonl_pairs(tmp_path):
    path = write_table(tmp_path / "triplets.parquet", triplet_rows())
    ds = load_hf(HfData(path=str(path)))
    jsonl = [{"query": q, "positive": p, "negatives": [n]} for q, p, n in TRIPLETS]
    same(ds, load_pairs(write_table(tmp_path / "triplets.jsonl", jsonl)))
    # rows 1 and 10 are one query (same normalised text): 9 queries, each positive and negative once
    assert len(ds.queries) == 9 and set(ds.queries.values()) == {q for q, _, _ in TRIPLETS[1:]}
    texts = {p for _, p, _ in TRIPLETS} | {n for _, _, n in TRIPLETS}
    assert sorted(ds.corpus.texts) == sorted(texts) and set(ds.corpus.titles) == {""}
    money = next(q for q, t in ds.queries.items() if t == TRIPLETS[9][0])  # merged: the last text
    qrels = {**ds.qrels["train"], **ds.qrels["test"]}
    assert {ds.corpus.text_of(d) for d in qrels[money]} == {TRIPLETS[0][1], TRIPLETS[9][1]}
    assert [ds.corpus.text_of(d) for d in ds.negatives[money]] == [TRIPLETS[0][2], TRIPLETS[9][2]]
    assert ds.query_meta[money]["frequency"] == 2
    # seeded split by query: test_fraction 0.2 of 9 queries
    assert sorted(ds.qrels) == ["test", "train"] and len(ds.qrels["test"]) == 2 and len(qrels) == 9
    assert not set(ds.qrels["train"]) & set(ds.qrels["test"])
    other = load_hf(HfData(path=str(path), split_seed=1))
    assert other.qrels["test"] != ds.qrels["test"]
    assert ds.source == str(path) and ds.name == "triplets"


@pytest.mark.parametrize(
    "rows, columns",
    [
        (triplet_rows("anchor", "positive", "negative"), HfColumns()),  # sentence-transformers' names
        (triplet_rows("anchor", "pos", "neg"), HfColumns(query="anchor", positive="pos", negative="neg")),
        (triplet_rows("q", "p", "n"), HfColumns(query="q", positive="p", negative=["n"])),
        ([{"anchor": q, "positive": p, "negatives": [n]} for q, p, n in TRIPLETS], HfColumns()),  # a list
    ],
    ids=["anchor", "mapped", "mapped-list", "list-column"],
)
def test_column_names_and_mapping(tmp_path, rows, columns):
    want = load_hf(HfData(path=str(write_table(tmp_path / "a" / "t.parquet", triplet_rows()))))
    same(load_hf(HfData(path=str(write_table(tmp_path / "b" / "t.parquet", rows)), columns=columns)), want)


def test_numbered_negative_columns_and_no_negatives(tmp_path):
    rows = [
        {"anchor": q, "positive": p, "negative_1": n, "negative_2": TRIPLETS[(i + 1) % 10][2]}
        for i, (q, p, n) in enumerate(TRIPLETS)
    ]
    path = write_table(tmp_path / "t.parquet", rows)
    ds = load_hf(HfData(path=str(path)))
    first = next(q for q, t in ds.queries.items() if t == TRIPLETS[1][0])
    assert [ds.corpus.text_of(d) for d in ds.negatives[first]] == [TRIPLETS[1][2], TRIPLETS[2][2]]
    assert load_hf(HfData(path=str(path), columns=HfColumns(negative=[]))).negatives == {}


def test_jsonl_pairs_file(tmp_path):
    """A JSONL pairs file read through ``datasets`` is the same dataset as through ``load_pairs``."""
    lines = [{"query": q, "positive": p, "negatives": [n], "slices": ["x"]} for q, p, n in TRIPLETS]
    lines[2]["positive"] = [lines[2]["positive"], "R01 is a return code."]  # several positives
    path = write_table(tmp_path / "logs.jsonl", lines)
    ds = load_hf(HfData(path=str(path)))
    same(ds, load_pairs(path))
    assert ds.query_meta[next(iter(ds.queries))]["slices"] == ["x"]


# ---- BEIR-style ----------------------------------------------------------------------------------
def beir_tables(folder: Path, ext: str, *, split_column: bool = False) -> Path:
    """The tiny BEIR set of conftest as ``corpus``/``queries`` tables and qrels tables."""
    write_table(folder / f"corpus{ext}", [{"_id": d, "title": t, "text": x} for d, t, x in DOCS])
    write_table(folder / f"queries{ext}", [{"_id": q, "text": x} for q, x in QUERIES])
    rows = {s: [{"query-id": q, "corpus-id": d, "score": r} for q, d, r in v] for s, v in QRELS.items()}
    if split_column:
        write_table(folder / f"qrels{ext}", [{**r, "split": s} for s, v in rows.items() for r in v])
    else:
        for split, v in rows.items():
            write_table(folder / "qrels" / f"{split}{ext}", v)
    return folder


@pytest.mark.parametrize(
    "make",
    [
        lambda f: beir_tables(f, ".parquet"),
        lambda f: beir_tables(f, ".jsonl", split_column=True),
        lambda f: write_beir(f),  # BEIR's own files: corpus.jsonl, queries.jsonl, qrels/<split>.tsv
    ],
    ids=["parquet", "jsonl-split-column", "beir-folder"],
)
def test_beir_style_folder_loads_as_load_beir(tmp_path, make):
    want = load_beir(write_beir(tmp_path / "beir"))
    ds = load_hf(HfData(path=str(make(tmp_path / "hf")), name="tiny"))
    same(ds, want)
    assert ds.qrels["test"]["q8"] == {"d2": 1, "d1": 0} and ds.name == "tiny"


def test_beir_style_dataset_repository(tmp_path):
    """The hub layouts, offline: a folder with a dataset card naming configs ``corpus`` and
    ``queries``; qrels in its ``default`` config (mteb/*) or in ``<path>-qrels`` (BeIR/*)."""
    want = load_beir(write_beir(tmp_path / "beir"))
    repo = beir_tables(tmp_path / "repo", ".jsonl")
    configs = {"corpus": {"corpus": "corpus.jsonl"}, "queries": {"queries": "queries.jsonl"}}
    card = {"corpus": configs["corpus"], "queries": configs["queries"]}
    card["default"] = {s: f"qrels/{s}.jsonl" for s in QRELS}
    (repo / "README.md").write_text(_card(card))
    same(load_hf(HfData(path=str(repo))), want)

    beir = beir_tables(tmp_path / "scifact", ".jsonl")
    (beir / "README.md").write_text(_card(configs))
    qrels = tmp_path / "scifact-qrels"
    for split in QRELS:
        (qrels).mkdir(exist_ok=True)
        (qrels / f"{split}.tsv").write_text((tmp_path / "beir" / "qrels" / f"{split}.tsv").read_text())
    same(load_hf(HfData(path=str(beir))), want)


def _card(configs: dict[str, dict[str, str]]) -> str:
    lines = ["---", "configs:"]
    for name, splits in configs.items():
        lines += [f"- config_name: {name}", "  data_files:"]
        lines += [f"  - split: {s}\n    path: {p}" for s, p in splits.items()]
    return "\n".join([*lines, "---", ""])


# ---- errors -------------------------------------------------------------------------------------
def _error(d: HfData) -> str:
    with pytest.raises(DataError) as e:
        load_hf(d)
    return str(e.value)


@pytest.mark.parametrize(
    "rows, columns, column, words",
    [
        (triplet_rows(), HfColumns(query="question"), "question", ["not found (data.columns.query)"]),
        (triplet_rows("q"), HfColumns(), "query", ["not found (nor 'anchor')", "data.columns.query"]),
        (triplet_rows(), HfColumns(negative=["negative", "hard"]), "hard", ["data.columns.negative"]),
        (
            [{"query": i, "positive": "p"} for i in range(3)],
            HfColumns(),
            "query",
            ["must hold texts, got int64"],
        ),
        ([{"query": "q", "positive": 1.5}], HfColumns(), "positive", ["got float64"]),
    ],
    ids=["mapped", "default", "negative", "int-query", "float-positive"],
)
def test_bad_column_names_file_and_column(tmp_path, rows, columns, column, words):
    path = write_table(tmp_path / "pairs.parquet", rows)
    msg = _error(HfData(path=str(path), columns=columns))
    assert re.match(rf"^{re.escape(str(path))}: column '{column}': ", msg), msg
    assert "the columns are: " in msg and all(w in msg for w in words), msg


def test_bad_values_name_the_row_and_column(tmp_path):
    rows = triplet_rows("anchor", "pos", "neg")
    rows[1]["anchor"] = "  "
    rows[4]["anchor"] = None
    rows[6]["pos"] = ""
    path = write_table(tmp_path / "pairs.parquet", rows)
    with pytest.raises(DataError) as e:
        load_hf(HfData(path=str(path), columns=HfColumns(query="anchor", positive="pos", negative="neg")))
    assert str(e.value).startswith(f"{path}:2: column 'anchor': is empty (and 1 more such line (line 5))")
    assert [str(p) for p in e.value.problems] == [
        f"{path}:2: column 'anchor': is empty",
        f"{path}:5: column 'anchor': missing",
        f"{path}:7: column 'pos': is empty",
    ]

    rows = [{"query": q, "positive": p, "negative_1": n, "negative_2": n} for q, p, n in TRIPLETS]
    rows[3]["negative_2"] = ""
    path = write_table(tmp_path / "numbered.jsonl", rows)
    assert _error(HfData(path=str(path))).startswith(f"{path}:4: column 'negative_2': is empty")


def test_beir_style_errors(tmp_path):
    folder = beir_tables(tmp_path / "a", ".parquet")
    write_table(folder / "corpus.parquet", [{"id": d, "text": x} for d, _, x in DOCS])
    msg = _error(HfData(path=str(folder)))
    assert msg.startswith(f"{folder / 'corpus.parquet'}: column '_id': not found; the columns are: id"), msg

    folder = beir_tables(tmp_path / "b", ".parquet")
    write_table(folder / "qrels" / "test.parquet", [{"query-id": "q3", "corpus-id": "d9", "score": 1}])
    msg = _error(HfData(path=str(folder)))
    assert msg.startswith(
        f"{folder / 'qrels' / 'test.parquet'}:1: column 'corpus-id': unknown document id 'd9'"
    )

    folder = beir_tables(tmp_path / "c", ".jsonl", split_column=True)
    write_table(folder / "qrels.jsonl", [{"query-id": "q3", "corpus-id": "d3", "score": 1}])
    assert _error(HfData(path=str(folder))).startswith(f"{folder / 'qrels.jsonl'}: column 'split': not found")


def test_missing_or_unreadable_source(tmp_path):
    assert _error(HfData(path=str(tmp_path / "no.parquet"))).startswith(f"{tmp_path / 'no.parquet'}: ")
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    assert "cannot load with datasets" in _error(HfData(path=str(bad)))


# ---- through Hydra --------------------------------------------------------------------------------
def _compose(*overrides: str):
    return compose_config([*TINY, "data=hf", *overrides])


def test_hydra_data_hf_pairs_and_beir(tmp_path):
    path = write_table(tmp_path / "support.parquet", triplet_rows("anchor", "pos", "neg"))
    cfg = _compose(f"data.path={path}", "data.columns.positive=pos", "data.columns.negative=[neg]")
    prepared = prepare_data(cfg.data)
    assert prepared.dataset.name == "support" and prepared.eval_split == "test"
    assert len(prepared.eval) == 2 and len(prepared.train) + len(prepared.dev) == 7
    assert prepared.dataset.negatives

    folder = beir_tables(tmp_path / "tiny", ".parquet")
    prepared = prepare_data(_compose(f"data.path={folder}").data)
    assert (
        prepared.dataset.name == "tiny"
        and prepared.eval == load_beir(write_beir(tmp_path / "b")).qrels["test"]
    )


@pytest.mark.parametrize(
    "override, key", [("data.format=csv", "data.format"), ("data.test_fraction=1", "data.test_fraction")]
)
def test_hydra_bad_values_name_the_key(tmp_path, override, key):
    with pytest.raises(ConfigError) as e:
        data_config(_compose(f"data.path={tmp_path}", override).data)
    assert e.value.key == key
