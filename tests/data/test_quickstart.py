"""Tests for embexp.data.quickstart: determinism, BEIR structure, splits, slices, frequencies."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from embexp.data import quickstart
from embexp.data.quickstart import (
    PRODUCT_LINES,
    Content,
    ContentError,
    generate,
    load_content,
    main,
    normalize_query,
)

REPO = Path(__file__).resolve().parents[2]
FILES = ["corpus.jsonl", "queries.jsonl", "qrels/train.tsv", "qrels/dev.tsv", "qrels/test.tsv", "README.md"]
SPLITS = ("train", "dev", "test")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def read_qrels(path: Path) -> list[tuple[str, str, int]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "query-id\tcorpus-id\tscore"
    rows = []
    for line in lines[1:]:
        qid, cid, score = line.split("\t")
        rows.append((qid, cid, int(score)))
    return rows


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    out = generate(tmp_path_factory.mktemp("kb") / "quickstart", seed=0)
    corpus = read_jsonl(out / "corpus.jsonl")
    queries = read_jsonl(out / "queries.jsonl")
    qrels = {s: read_qrels(out / "qrels" / f"{s}.tsv") for s in SPLITS}
    return out, corpus, queries, qrels


# --- determinism -------------------------------------------------------------------------


def test_same_seed_is_byte_identical(tmp_path):
    a = generate(tmp_path / "a", seed=7)
    b = generate(tmp_path / "b", seed=7)
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_different_seed_differs(tmp_path):
    a = generate(tmp_path / "a", seed=0)
    b = generate(tmp_path / "b", seed=1)
    for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv"):
        assert (a / name).read_bytes() != (b / name).read_bytes(), name
    qa = {normalize_query(q["text"]) for q in read_jsonl(a / "queries.jsonl")}
    qb = {normalize_query(q["text"]) for q in read_jsonl(b / "queries.jsonl")}
    assert len(qa & qb) < 0.5 * len(qa)  # mostly different wording, not just reshuffled ids


def test_deterministic_across_processes_and_hash_seeds(tmp_path, kb):
    """Set iteration order depends on PYTHONHASHSEED; the output must not."""
    out = kb[0]
    for hash_seed in ("1", "2"):
        dest = tmp_path / f"h{hash_seed}"
        env = {
            **os.environ,
            "PYTHONHASHSEED": hash_seed,
            "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        }
        subprocess.run(
            [sys.executable, "-m", "embexp.data.quickstart", str(dest), "--seed", "0"],
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
        )
        for name in FILES:
            assert (dest / name).read_bytes() == (out / name).read_bytes(), (hash_seed, name)


# --- BEIR structure ----------------------------------------------------------------------


def test_files_and_corpus(kb):
    out, corpus, _, _ = kb
    for name in FILES:
        assert (out / name).is_file(), name
    ids = [d["_id"] for d in corpus]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"kb-\d{4}", i) for i in ids)
    assert 300 <= len(corpus) <= 800
    for d in corpus:
        assert set(d) == {"_id", "title", "text", "metadata"}
        assert d["title"].strip() and d["text"].strip()
        assert 40 <= len(d["text"].split()) <= 120, d["_id"]
        assert d["metadata"]["product_line"] in PRODUCT_LINES
    assert {d["metadata"]["product_line"] for d in corpus} == set(PRODUCT_LINES)
    assert len({d["title"] for d in corpus}) == len(corpus)  # no duplicate articles


def test_queries(kb):
    _, _, queries, _ = kb
    ids = [q["_id"] for q in queries]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"q-\d{5}", i) for i in ids)
    for q in queries:
        assert set(q) == {"_id", "text", "frequency", "slices"}
        assert q["text"].strip()
        assert isinstance(q["frequency"], int) and q["frequency"] >= 1
        assert q["slices"] in ([], ["jargon"])
    norms = [normalize_query(q["text"]) for q in queries]
    assert len(norms) == len(set(norms))  # no two queries ask the same thing in the same words


def test_qrels_reference_existing_ids(kb):
    _, corpus, queries, qrels = kb
    doc_ids = {d["_id"] for d in corpus}
    query_ids = {q["_id"] for q in queries}
    for split, rows in qrels.items():
        assert rows, split
        for qid, cid, score in rows:
            assert qid in query_ids and cid in doc_ids, (split, qid, cid)
            assert score in (1, 2)
        assert len({(q, c) for q, c, _ in rows}) == len(rows)  # no duplicate pairs


def test_split_by_query(kb):
    _, _, queries, qrels = kb
    text = {q["_id"]: normalize_query(q["text"]) for q in queries}
    qids = {s: {q for q, _, _ in rows} for s, rows in qrels.items()}
    assert not qids["train"] & qids["dev"]
    assert not qids["train"] & qids["test"]
    assert not qids["dev"] & qids["test"]
    assert qids["train"] | qids["dev"] | qids["test"] == set(text)  # every query is in a split
    texts = {s: {text[q] for q in ids} for s, ids in qids.items()}
    assert not texts["train"] & texts["dev"]
    assert not texts["train"] & texts["test"]
    assert not texts["dev"] & texts["test"]


def test_split_sizes(kb):
    qids = {s: {q for q, _, _ in rows} for s, rows in kb[3].items()}
    assert 1000 <= len(qids["train"]) <= 1500
    assert 130 <= len(qids["dev"]) <= 170
    assert 270 <= len(qids["test"]) <= 330


def test_test_is_learnable_from_train(kb):
    """Every test query asks about an article that train queries also ask about."""
    _, _, _, qrels = kb
    trained = {c for _, c, _ in qrels["train"]}
    rel: dict[str, set[str]] = {}
    for q, c, _ in qrels["test"]:
        rel.setdefault(q, set()).add(c)
    assert all(cids & trained for cids in rel.values())


def test_graded_scores(kb, tmp_path):
    _, _, _, qrels = kb
    scores = Counter(s for rows in qrels.values() for _, _, s in rows)
    assert scores[2] > scores[1] > 0  # mostly one best article; variant-less device queries get 1s
    flat = generate(tmp_path / "flat", seed=0, graded=False)
    assert {r[2] for s in SPLITS for r in read_qrels(flat / "qrels" / f"{s}.tsv")} == {1}


# --- slices and frequencies --------------------------------------------------------------


def test_jargon_slice(kb):
    _, _, queries, qrels = kb
    by_id = {q["_id"]: q for q in queries}
    jargon = [q for q in queries if q["slices"] == ["jargon"]]
    assert 0.2 <= len(jargon) / len(queries) <= 0.7
    for split, rows in qrels.items():
        tags = Counter(bool(by_id[q]["slices"]) for q in {q for q, _, _ in rows})
        assert tags[True] >= 0.2 * sum(tags.values()), split
        assert tags[False] >= 0.2 * sum(tags.values()), split
    text = " ".join(q["text"].lower() for q in jargon)
    assert re.search(r"\b(tx|pr|sc|mr|kd|hb|lb|sk|ws)[- ]?\d{2,4}", text)  # SKU-like codes
    for term in ("nsf", "rma", "2fa", "ach"):
        assert re.search(rf"\b{term}\b", text), term
    # plain queries don't carry the codes
    plain = " ".join(q["text"].lower() for q in queries if not q["slices"])
    assert not re.search(r"\btx[- ]?44\d0", plain)


def test_head_and_tail_frequencies(kb):
    _, _, queries, _ = kb
    freqs = sorted((q["frequency"] for q in queries), reverse=True)
    assert freqs[0] >= 1000  # head queries asked thousands of times
    assert sum(f <= 2 for f in freqs) >= 0.1 * len(freqs)  # a long tail asked once or twice
    top = freqs[: len(freqs) // 20]
    assert sum(top) >= 0.5 * sum(freqs)  # top 5% of queries carry most of the traffic


# --- content -----------------------------------------------------------------------------


def test_near_miss_articles_present(kb):
    titles = {d["title"] for d in kb[1]}
    for pair in [
        ("When an incoming transfer can be reversed", "Why a bank transfer is returned"),
        ("Questioning a charge on your card", "Why a card purchase doesn't go through"),
        ("Returning hardware you no longer want", "Printing a prepaid return label"),
        ("Lumio Counter Bluetooth: connection setup", "Lumio Counter Wired: connection setup"),
    ]:
        assert set(pair) <= titles, pair


def test_n_products_scales_hardware(tmp_path):
    small = read_jsonl(generate(tmp_path / "s", seed=0, n_products=2) / "corpus.jsonl")
    full = read_jsonl(generate(tmp_path / "f", seed=0) / "corpus.jsonl")
    hw = lambda docs: sum(d["metadata"]["product_line"] == "hardware" for d in docs)  # noqa: E731
    assert hw(small) < hw(full)
    with pytest.raises(ValueError, match="n_products"):
        generate(tmp_path / "bad", n_products=0)


# --- CLI, README, speed ------------------------------------------------------------------


def test_cli_and_readme(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main([str(out), "--seed", "3"]) == 0
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "synthetic" in readme.lower() and "seed 3" in readme
    n_docs = len(read_jsonl(out / "corpus.jsonl"))
    assert f"corpus: {n_docs} articles" in readme
    assert "seed 3" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main([str(tmp_path / "bad"), "--n-products", "99"])


def test_generation_is_fast(tmp_path):
    start = time.perf_counter()
    generate(tmp_path / "t", seed=11)
    assert time.perf_counter() - start < 2.0  # ~0.2 s on a laptop core; the budget is < 1 s


def test_module_has_no_third_party_imports():
    src = Path(quickstart.__file__).read_text(encoding="utf-8")
    imports = set(re.findall(r"^(?:from|import) (\w+)", src, flags=re.M))
    assert imports <= {
        "__future__",
        "argparse",
        "functools",
        "importlib",
        "json",
        "re",
        "random",
        "sys",
        "dataclasses",
        "pathlib",
        "typing",
    }


# --- checksums and content files --------------------------------------------------------

# SHA-256 over every generated file (sorted by relative path; path, length and bytes), recorded
# from the pre-refactor generator (content as Python literals in quickstart.py) before the
# content moved to embexp/data/quickstart_content/*.json. The data must stay byte-identical.
RECORDED_SHA256 = {
    0: "533fe318a31d9df2b57c84c2f3bc989f2a9914db59057dc9aea5116b97b8abe3",
    1: "d8fb2ada21f2ee085714b160c138b6e64bc38f7df4f67ec013fae981a64c6522",
}
CONTENT_DIR = REPO / "embexp" / "data" / "quickstart_content"


def tree_sha256(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*"), key=lambda p: p.relative_to(root).as_posix()):
        if p.is_file():
            data = p.read_bytes()
            h.update(p.relative_to(root).as_posix().encode() + b"\0")
            h.update(str(len(data)).encode() + b"\0")
            h.update(data)
    return h.hexdigest()


def test_seed0_matches_recorded_checksum(kb):
    assert sorted(p.relative_to(kb[0]).as_posix() for p in kb[0].rglob("*") if p.is_file()) == sorted(FILES)
    assert tree_sha256(kb[0]) == RECORDED_SHA256[0]


def test_seed1_matches_recorded_checksum(tmp_path):
    assert tree_sha256(generate(tmp_path / "s1", seed=1)) == RECORDED_SHA256[1]


def test_content_files_load_and_validate(tmp_path):
    content = load_content()
    assert isinstance(content, Content)
    assert set(content.boilerplate) == set(PRODUCT_LINES)
    assert set(content.lines) <= set(PRODUCT_LINES)
    assert len(content.hardware.families) == 10
    assert all(f.variants for f in content.hardware.families)
    assert {p.name for p in CONTENT_DIR.glob("*.json")} == {
        "articles.json",
        "ach_codes.json",
        "catalog.json",
        "hardware.json",
        "boilerplate.json",
        "noise.json",
    }
    # a directory can be passed in; a copy loads equal and generates the same data
    shutil.copytree(CONTENT_DIR, tmp_path / "copy")
    copy = load_content(tmp_path / "copy")
    assert copy == content
    out = generate(tmp_path / "kb", seed=1, content=copy)
    assert tree_sha256(out) == RECORDED_SHA256[1]


def _edit_content(src: Path, dest: Path, filename: str, edit) -> Path:
    shutil.copytree(src, dest)
    path = dest / filename
    data = json.loads(path.read_text(encoding="utf-8"))
    edit(data)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return dest


@pytest.mark.parametrize(
    "filename, edit, field, where",
    [
        (
            "articles.json",
            lambda d: d["payments"]["articles"][3].pop("title"),
            "'title'",
            "payments.articles[3]",
        ),
        (
            "hardware.json",
            lambda d: d["families"][1]["variants"][0].pop("hints"),
            "'hints'",
            "families[1].variants[0]",
        ),
        ("catalog.json", lambda d: d["plans"][2].pop("pcode"), "'pcode'", "plans[2]"),
        ("noise.json", lambda d: d.pop("suffixes"), "'suffixes'", "top level"),
        (
            "hardware.json",
            lambda d: d["families"][0]["variants"][1].update(battery="yes"),
            "battery",
            "families[0].variants[1].battery",
        ),
        ("ach_codes.json", lambda d: d["codes"][0].update(colour="red"), "'colour'", "codes[0]"),
        ("hardware.json", lambda d: d["issues"].pop("pair"), "'pair'", "families[0].issues[0]"),
        ("boilerplate.json", lambda d: d.pop("cards"), "'cards'", "top level"),
    ],
)
def test_malformed_content_names_file_and_field(tmp_path, filename, edit, field, where):
    bad = _edit_content(CONTENT_DIR, tmp_path / "content", filename, edit)
    with pytest.raises(ContentError) as exc:
        load_content(bad)
    msg = str(exc.value)
    assert str(bad / filename) in msg and field in msg and where in msg, msg


def test_unreadable_content_names_file(tmp_path):
    bad = tmp_path / "content"
    shutil.copytree(CONTENT_DIR, bad)
    (bad / "catalog.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ContentError, match=re.escape(str(bad / "catalog.json"))):
        load_content(bad)
    (bad / "catalog.json").unlink()
    with pytest.raises(ContentError, match="catalog.json"):
        load_content(bad)
