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

import math
import random
from pathlib import Path

from embexp.data.fingerprint import corpus_fingerprint, dataset_fingerprint, hash_strings
from embexp.data.jsonl import get_id, iter_jsonl
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


def load_pairs(path: str | Path, *, test_fraction: float = 0.2, seed: int = 0, temporal: bool = False) -> RetrievalDataset:
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(Problem(str(path), None, "data.path", "file not found" if not path.exists() else "not a file (expected a JSONL file of pairs)"))
    problems = ProblemCollector()
    docs: dict[str, str] = {}
    doc_line: dict[str, int] = {}
    queries: dict[str, str] = {}
    meta: dict[str, dict] = {}
    positives: dict[str, set[str]] = {}
    negatives: dict[str, list[str]] = {}
    query_line: dict[str, int] = {}
    for lineno, obj in iter_jsonl(path, problems):
        q = obj.get("query")
        if q is None:
            problems.add(path, lineno, "query", "missing")
            continue
        if not isinstance(q, str):
            problems.add(path, lineno, "query", f"must be a string, got {type(q).__name__}")
            continue
        if not q.strip():
            problems.add(path, lineno, "query", "is empty")
            continue
        pos_key = "positives" if obj.get("positives") is not None else "positive"
        pos = obj.get(pos_key)
        if pos is None:
            problems.add(path, lineno, "positive", "missing (give 'positive' or 'positives')")
            continue
        pos = pos if isinstance(pos, list) else [pos]
        if not pos:
            problems.add(path, lineno, pos_key, "is an empty list")
            continue
        neg = obj.get("negatives")
        neg = [] if neg is None else neg
        if not isinstance(neg, list):
            problems.add(path, lineno, "negatives", f"must be a list, got {type(neg).__name__}")
            continue
        parsed_pos = [_doc(x, path, lineno, pos_key, problems) for x in pos]
        parsed_neg = [_doc(x, path, lineno, "negatives", problems) for x in neg]
        if any(x is None for x in parsed_pos + parsed_neg):
            continue
        ok = True
        here: dict[str, str] = {}
        for did, text in parsed_pos + parsed_neg:
            if did in docs and docs[did] != text:
                problems.add(path, lineno, "id", f"document id '{did}' has a different text on line {doc_line[did]}")
                ok = False
            elif here.setdefault(did, text) != text:
                problems.add(path, lineno, "id", f"document id '{did}' is given twice on this line with different texts")
                ok = False
        if not ok:
            continue
        for did, text in parsed_pos + parsed_neg:
            docs.setdefault(did, text)
            doc_line.setdefault(did, lineno)
        if obj.get("query_id") is not None:
            qid = get_id(obj, "query_id", path, lineno, problems)
            if qid is None:
                continue
        else:
            qid = "q-" + hash_strings([normalise_text(q)], digest_size=8)
        if qid in queries and normalise_text(queries[qid]) != normalise_text(q):
            problems.add(path, lineno, "query_id", f"id '{qid}' is used for two different queries")
            continue
        queries[qid] = q
        query_line.setdefault(qid, lineno)
        m = meta.setdefault(qid, {"frequency": 0})
        if "frequency" in obj:
            f = obj["frequency"]
            if isinstance(f, bool) or not isinstance(f, (int, float)) or (isinstance(f, float) and not math.isfinite(f)) or f < 0:
                problems.add(path, lineno, "frequency", f"must be a non-negative number, got {f!r}")
                continue
            m["frequency"] = f
            m["_given"] = True
        elif not m.get("_given"):
            m["frequency"] += 1
        if "timestamp" in obj:
            try:
                ts = parse_timestamp(obj["timestamp"], file=str(path), line=lineno, qid=qid)
            except DataError as e:
                problems.problems.extend(e.problems)
                continue
            m["timestamp"] = max(ts, m.get("timestamp", ts))
        if "slices" in obj:
            s = obj["slices"]
            if not isinstance(s, list) or not all(isinstance(x, str) and x for x in s):
                problems.add(path, lineno, "slices", f"must be a list of non-empty strings, got {s!r}")
                continue
            m["slices"] = sorted(set(m.get("slices", [])) | set(s))
        positives.setdefault(qid, set()).update(d for d, _ in parsed_pos)
        negatives.setdefault(qid, []).extend(d for d, _ in parsed_neg if d not in negatives.get(qid, []))
    problems.raise_if_any()
    if not queries:
        raise DataError(Problem(str(path), None, "query", "no training pairs in file"))
    for m in meta.values():
        m.pop("_given", None)
    qrels_all = {q: {d: 1 for d in sorted(positives[q])} for q in queries}
    if not 0 <= test_fraction < 1:
        raise DataError(Problem(str(path), None, "data.test_fraction", f"must be in [0, 1), got {test_fraction}"))
    if test_fraction == 0:
        splits = {"train": qrels_all}
    elif temporal:
        ts = {}
        for q in queries:
            if "timestamp" not in meta[q]:
                raise DataError(Problem(str(path), query_line[q], "timestamp", f"data.temporal=true needs a timestamp on every pair; query '{q}' has none"))
            ts[q] = meta[q]["timestamp"]
        train, test = temporal_split(qrels_all, ts, fraction=test_fraction)
        splits = {"train": train, "test": test}
    else:
        qids = sorted(queries)
        rng = random.Random(seed)
        test_ids = set(rng.sample(qids, max(1, round(len(qids) * test_fraction))))
        splits = {"train": {q: qrels_all[q] for q in qids if q not in test_ids}, "test": {q: qrels_all[q] for q in qids if q in test_ids}}
    if not splits["train"]:
        how = f"temporal, test_fraction={test_fraction}; queries tied at the cut-off timestamp all go to test" if temporal else f"test_fraction={test_fraction}"
        raise DataError(Problem(str(path), None, "data.test_fraction", f"no training queries left after the train/test split ({len(queries)} queries, {how}); add more pairs or lower data.test_fraction"))
    ids = sorted(docs)
    corpus = Corpus(ids, [""] * len(ids), [docs[d] for d in ids])
    cfp = corpus_fingerprint(corpus)
    return RetrievalDataset(
        name=path.stem,
        corpus=corpus,
        queries=queries,
        qrels=splits,
        query_meta=meta,
        negatives={q: v for q, v in negatives.items() if v},
        source=str(path),
        fingerprint=dataset_fingerprint(cfp, queries, splits),
        corpus_fingerprint=cfp,
    )
