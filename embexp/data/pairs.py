"""Users' own logs: JSONL training pairs turned into a retrieval dataset.

One JSON object per line::

    {"query": "how long is the ACH reversal window",          # required, non-empty
     "positive": "ACH reversals ...",                          # or "positives": [...]
     "negatives": ["ACH return codes ..."],                    # optional
     "query_id": "q17", "timestamp": "2026-03-01T10:00:00Z",   # optional
     "slices": ["jargon"], "frequency": 12}                    # optional

A positive or negative is a text or ``{"id": ..., "text": ...}``. Documents are
de-duplicated by id (or by text when no id is given) into the corpus; lines with the
same normalised query text are merged into one query (its frequency is the number of
lines unless given). The queries are split into train/test by query, seeded, or by
time (``temporal=True``: the newest ``test_fraction`` go to test).
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable
from pathlib import Path

from embexp.config.schema import PairsData
from embexp.data.fingerprint import corpus_fingerprint, dataset_fingerprint, hash_strings
from embexp.data.jsonl import bad_frequency, get_id, iter_jsonl
from embexp.data.leakage import normalise_text
from embexp.data.splits import parse_timestamp, temporal_split
from embexp.data.types import Corpus, RetrievalDataset
from embexp.errors import DataError, Problem, ProblemCollector


def _doc(item, path, lineno, field, problems) -> tuple[str, str] | None:
    if isinstance(item, str):
        if not item.strip():
            problems.add(path, lineno, field, "is empty")
            return None
        return "d-" + hash_strings([item], digest_size=8), item
    if isinstance(item, dict):
        text = item.get("text")
        if not isinstance(text, str) or not text.strip():
            problems.add(path, lineno, f"{field}.text", "missing or empty")
            return None
        key = "id" if "id" in item else "_id"
        if item.get(key) is None:
            return "d-" + hash_strings([text], digest_size=8), text
        did = get_id(item, key, path, lineno, _Prefixed(problems, field))
        if did is None:
            return None
        return did, text
    problems.add(path, lineno, field, f"must be a text or an object with 'text', got {type(item).__name__}")
    return None


class _Prefixed:
    """Problems for a nested object reported as ``outer.inner`` (e.g. ``positive.id``)."""

    def __init__(self, problems: ProblemCollector, prefix: str):
        self.problems, self.prefix = problems, prefix

    def add(self, file, line, field, message) -> None:
        self.problems.add(file, line, f"{self.prefix}.{field}" if field else self.prefix, message)


@dataclasses.dataclass
class _Collected:
    """What the valid lines of a pairs file add up to, keyed by query id / document id."""

    docs: dict[str, str] = dataclasses.field(default_factory=dict)  # doc id -> text
    doc_line: dict[str, int] = dataclasses.field(default_factory=dict)  # doc id -> first line
    queries: dict[str, str] = dataclasses.field(default_factory=dict)
    meta: dict[str, dict] = dataclasses.field(default_factory=dict)
    positives: dict[str, set[str]] = dataclasses.field(default_factory=dict)
    negatives: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    query_line: dict[str, int] = dataclasses.field(default_factory=dict)  # query id -> first line


def _query_text(obj: dict, path: Path, lineno: int, problems: ProblemCollector) -> str | None:
    q = obj.get("query")
    if q is None:
        problems.add(path, lineno, "query", "missing")
        return None
    if not isinstance(q, str):
        problems.add(path, lineno, "query", f"must be a string, got {type(q).__name__}")
        return None
    if not q.strip():
        problems.add(path, lineno, "query", "is empty")
        return None
    return q


def _line_docs(obj: dict, path: Path, lineno: int, problems: ProblemCollector) -> tuple[list, list] | None:
    """The line's positives and negatives as ``(doc id, text)``; None after a problem."""
    pos_key = "positives" if obj.get("positives") is not None else "positive"
    pos = obj.get(pos_key)
    if pos is None:
        problems.add(path, lineno, "positive", "missing (give 'positive' or 'positives')")
        return None
    pos = pos if isinstance(pos, list) else [pos]
    if not pos:
        problems.add(path, lineno, pos_key, "is an empty list")
        return None
    neg = obj.get("negatives")
    neg = [] if neg is None else neg
    if not isinstance(neg, list):
        problems.add(path, lineno, "negatives", f"must be a list, got {type(neg).__name__}")
        return None
    parsed_pos = [_doc(x, path, lineno, pos_key, problems) for x in pos]
    parsed_neg = [_doc(x, path, lineno, "negatives", problems) for x in neg]
    if any(x is None for x in parsed_pos + parsed_neg):
        return None
    return parsed_pos, parsed_neg


def _add_docs(
    acc: _Collected, parsed: list[tuple[str, str]], path: Path, lineno: int, problems: ProblemCollector
) -> bool:
    """Add the line's documents to the corpus unless an id already has another text."""
    ok = True
    here: dict[str, str] = {}
    for did, text in parsed:
        if did in acc.docs and acc.docs[did] != text:
            problems.add(
                path, lineno, "id", f"document id '{did}' has a different text on line {acc.doc_line[did]}"
            )
            ok = False
        elif here.setdefault(did, text) != text:
            problems.add(
                path, lineno, "id", f"document id '{did}' is given twice on this line with different texts"
            )
            ok = False
    if not ok:
        return False
    for did, text in parsed:
        acc.docs.setdefault(did, text)
        acc.doc_line.setdefault(did, lineno)
    return True


def _query_id(
    obj: dict, q: str, queries: dict[str, str], path: Path, lineno: int, problems: ProblemCollector
) -> str | None:
    """The given ``query_id`` or one derived from the normalised text; None after a problem."""
    if obj.get("query_id") is not None:
        qid = get_id(obj, "query_id", path, lineno, problems)
        if qid is None:
            return None
    else:
        qid = "q-" + hash_strings([normalise_text(q)], digest_size=8)
    if qid in queries and normalise_text(queries[qid]) != normalise_text(q):
        problems.add(path, lineno, "query_id", f"id '{qid}' is used for two different queries")
        return None
    return qid


def _merge_meta(obj: dict, m: dict, qid: str, path: Path, lineno: int, problems: ProblemCollector) -> bool:
    """Merge the line's frequency, timestamp and slices into the query's ``m``; False after a problem."""
    if "frequency" in obj:
        f = obj["frequency"]
        if bad_frequency(f):
            problems.add(path, lineno, "frequency", f"must be a non-negative number, got {f!r}")
            return False
        m["frequency"] = f
        m["_given"] = True
    elif not m.get("_given"):
        m["frequency"] += 1
    if "timestamp" in obj:
        try:
            ts = parse_timestamp(obj["timestamp"], file=str(path), line=lineno, qid=qid)
        except DataError as e:
            problems.problems.extend(e.problems)
            return False
        m["timestamp"] = max(ts, m.get("timestamp", ts))
    if "slices" in obj:
        s = obj["slices"]
        if not isinstance(s, list) or not all(isinstance(x, str) and x for x in s):
            problems.add(path, lineno, "slices", f"must be a list of non-empty strings, got {s!r}")
            return False
        m["slices"] = sorted(set(m.get("slices", [])) | set(s))
    return True


def _add_line(acc: _Collected, obj: dict, path: Path, lineno: int, problems: ProblemCollector) -> None:
    """Validate one JSONL object and merge it into ``acc``; a bad field is reported and the
    rest of the line skipped."""
    q = _query_text(obj, path, lineno, problems)
    if q is None:
        return
    parsed = _line_docs(obj, path, lineno, problems)
    if parsed is None:
        return
    parsed_pos, parsed_neg = parsed
    if not _add_docs(acc, parsed_pos + parsed_neg, path, lineno, problems):
        return
    qid = _query_id(obj, q, acc.queries, path, lineno, problems)
    if qid is None:
        return
    acc.queries[qid] = q
    acc.query_line.setdefault(qid, lineno)
    m = acc.meta.setdefault(qid, {"frequency": 0})
    if not _merge_meta(obj, m, qid, path, lineno, problems):
        return
    acc.positives.setdefault(qid, set()).update(d for d, _ in parsed_pos)
    negatives = acc.negatives
    negatives.setdefault(qid, []).extend(d for d, _ in parsed_neg if d not in negatives.get(qid, []))


def _split(
    path: Path,
    acc: _Collected,
    qrels_all: dict[str, dict[str, int]],
    test_fraction: float,
    seed: int,
    temporal: bool,
) -> dict[str, dict[str, dict[str, int]]]:
    """Train/test qrels: all train, the newest queries in test, or a seeded sample of queries."""
    queries, meta = acc.queries, acc.meta
    if not 0 <= test_fraction < 1:
        raise DataError(
            Problem(str(path), None, "data.test_fraction", f"must be in [0, 1), got {test_fraction}")
        )
    if test_fraction == 0:
        splits = {"train": qrels_all}
    elif temporal:
        ts = {}
        for q in queries:
            if "timestamp" not in meta[q]:
                raise DataError(
                    Problem(
                        str(path),
                        acc.query_line[q],
                        "timestamp",
                        f"data.temporal=true needs a timestamp on every pair; query '{q}' has none",
                    )
                )
            ts[q] = meta[q]["timestamp"]
        train, test = temporal_split(qrels_all, ts, fraction=test_fraction)
        splits = {"train": train, "test": test}
    else:
        qids = sorted(queries)
        rng = random.Random(seed)
        test_ids = set(rng.sample(qids, max(1, round(len(qids) * test_fraction))))
        splits = {
            "train": {q: qrels_all[q] for q in qids if q not in test_ids},
            "test": {q: qrels_all[q] for q in qids if q in test_ids},
        }
    if not splits["train"]:
        how = (
            f"temporal, test_fraction={test_fraction}; queries tied at the cut-off timestamp all go to test"
            if temporal
            else f"test_fraction={test_fraction}"
        )
        raise DataError(
            Problem(
                str(path),
                None,
                "data.test_fraction",
                f"no training queries left after the train/test split ({len(queries)} queries, {how}); "
                "add more pairs or lower data.test_fraction",
            )
        )
    return splits


def load_pairs(
    path: str | Path, *, test_fraction: float = PairsData.test_fraction, seed: int = 0, temporal: bool = False
) -> RetrievalDataset:
    """Read a JSONL file of pairs (see the module docstring) into a train/test dataset; every
    malformed line is reported as ``FILE:LINE: field '...'``, all of them in one DataError."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(
            Problem(
                str(path),
                None,
                "data.path",
                "file not found" if not path.exists() else "not a file (expected a JSONL file of pairs)",
            )
        )
    problems = ProblemCollector()
    rows = iter_jsonl(path, problems)
    return pairs_dataset(
        rows, path, problems, name=path.stem, test_fraction=test_fraction, seed=seed, temporal=temporal
    )


def pairs_dataset(
    rows: Iterable[tuple[int, dict]],
    source: str | Path,
    problems: ProblemCollector,
    *,
    name: str,
    test_fraction: float = PairsData.test_fraction,
    seed: int = 0,
    temporal: bool = False,
) -> RetrievalDataset:
    """Pairs from any source: ``(line or row number, object)`` rows, each object shaped like one
    JSONL line (see the module docstring). Problems go to ``problems`` (which names them: a
    subclass may rename fields, e.g. to a table's columns) as ``source:LINE``; all are raised
    in one DataError once every row has been read."""
    acc = _Collected()
    for lineno, obj in rows:
        _add_line(acc, obj, source, lineno, problems)
    problems.raise_if_any()
    if not acc.queries:
        problems.add(source, None, "query", "no training pairs in file")
        problems.raise_if_any()
    for m in acc.meta.values():
        m.pop("_given", None)
    qrels_all = {q: {d: 1 for d in sorted(acc.positives[q])} for q in acc.queries}
    splits = _split(source, acc, qrels_all, test_fraction, seed, temporal)
    ids = sorted(acc.docs)
    corpus = Corpus(ids, [""] * len(ids), [acc.docs[d] for d in ids])
    cfp = corpus_fingerprint(corpus)
    return RetrievalDataset(
        name=name,
        corpus=corpus,
        queries=acc.queries,
        qrels=splits,
        query_meta=acc.meta,
        negatives={q: v for q, v in acc.negatives.items() if v},
        source=str(source),
        fingerprint=dataset_fingerprint(cfp, acc.queries, splits),
        corpus_fingerprint=cfp,
    )
