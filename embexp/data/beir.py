"""BEIR folders from any path: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/{split}.tsv``.

Each file may be gzipped (``.gz``). Everything is validated before it is used: a
:class:`~embexp.errors.DataError` names file, line and field of the first problem and
counts the rest. Optional query fields ``frequency`` (number), ``slices`` (list of
names) and ``timestamp`` are kept as query metadata.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator
from pathlib import Path

from embexp.data.fingerprint import corpus_fingerprint, dataset_fingerprint
from embexp.data.jsonl import bad_frequency, get_id, get_text, iter_jsonl, iter_lines
from embexp.data.splits import parse_timestamp
from embexp.data.types import Corpus, Qrels, RetrievalDataset
from embexp.errors import DataError, Problem, ProblemCollector
from embexp.utils.io import resolve_maybe_gz

log = logging.getLogger(__name__)


def _require(folder: Path, name: str, field: str) -> Path:
    p = resolve_maybe_gz(folder / name)
    if p is None:
        raise DataError(
            Problem(str(folder / name), None, field, f"file not found (looked for {name} and {name}.gz)")
        )
    return p


def load_corpus(path: Path) -> Corpus:
    problems = ProblemCollector()
    return corpus_from_rows(iter_jsonl(path, problems), path, problems)


def corpus_from_rows(
    rows: Iterable[tuple[int, dict]], path: str | Path, problems: ProblemCollector
) -> Corpus:
    """Documents from ``(line or row number, {"_id", "title"?, "text"})`` rows of any source."""
    ids, titles, texts = [], [], []
    first_seen: dict[str, int] = {}
    for lineno, obj in rows:
        did = get_id(obj, "_id", path, lineno, problems)
        title = get_text(obj, "title", path, lineno, problems, required=False, allow_empty=True)
        text = get_text(obj, "text", path, lineno, problems, required=True, allow_empty=True)
        if did is None or title is None or text is None:
            continue
        if not title.strip() and not text.strip():
            problems.add(path, lineno, "text", f"document '{did}' has empty title and text")
            continue
        if did in first_seen:
            problems.add(path, lineno, "_id", f"duplicate id '{did}' (first on line {first_seen[did]})")
            continue
        first_seen[did] = lineno
        ids.append(did)
        titles.append(title)
        texts.append(text)
    problems.raise_if_any()
    if not ids:
        raise DataError(Problem(str(path), None, "corpus", "corpus is empty (no documents)"))
    return Corpus(ids, titles, texts)


def load_queries(path: Path) -> tuple[dict[str, str], dict[str, dict]]:
    problems = ProblemCollector()
    return queries_from_rows(iter_jsonl(path, problems), path, problems)


def queries_from_rows(
    rows: Iterable[tuple[int, dict]], path: str | Path, problems: ProblemCollector
) -> tuple[dict[str, str], dict[str, dict]]:
    """Queries and their metadata from ``(line or row number, {"_id", "text", ...})`` rows."""
    queries: dict[str, str] = {}
    meta: dict[str, dict] = {}
    first_seen: dict[str, int] = {}
    for lineno, obj in rows:
        qid = get_id(obj, "_id", path, lineno, problems)
        text = get_text(obj, "text", path, lineno, problems)
        if qid is None or text is None:
            continue
        if qid in first_seen:
            problems.add(path, lineno, "_id", f"duplicate id '{qid}' (first on line {first_seen[qid]})")
            continue
        first_seen[qid] = lineno
        queries[qid] = text
        m = {}
        if "frequency" in obj:
            f = obj["frequency"]
            if bad_frequency(f):
                problems.add(path, lineno, "frequency", f"must be a non-negative number, got {f!r}")
            else:
                m["frequency"] = f
        if "slices" in obj:
            s = obj["slices"]
            if not isinstance(s, list) or not all(isinstance(x, str) and x for x in s):
                problems.add(path, lineno, "slices", f"must be a list of non-empty strings, got {s!r}")
            else:
                m["slices"] = s
        if "timestamp" in obj:
            try:  # validated here so a bad value is reported with its file and line; kept as given
                parse_timestamp(obj["timestamp"], file=str(path), line=lineno, qid=qid)
            except DataError as e:
                problems.problems.extend(e.problems)
            else:
                m["timestamp"] = obj["timestamp"]
        if m:
            meta[qid] = m
    problems.raise_if_any()
    return queries, meta


def load_qrels(path: Path, corpus: Corpus, queries: dict[str, str], *, skip_unknown: bool = False) -> Qrels:
    """Read ``query-id<TAB>corpus-id<TAB>score`` (header optional); ids must exist."""
    problems = ProblemCollector()
    return qrels_from_rows(
        _tsv_rows(path, problems), path, problems, corpus, queries, skip_unknown=skip_unknown
    )


def _tsv_rows(path: Path, problems: ProblemCollector) -> Iterator[tuple[int, str, str, str]]:
    """``(line number, query id, doc id, score text)`` of a qrels TSV; bad lines go to ``problems``."""
    for lineno, line in iter_lines(path, problems):
        row = line.rstrip("\r\n").split("\t")
        if all(not c.strip() for c in row):
            continue
        if lineno == 1 and row[0].strip().lower() in ("query-id", "query_id", "qid", "query"):
            continue
        if len(row) == 4:  # TREC qrels: qid 0 docid rel
            row = [row[0], row[2], row[3]]
        if len(row) != 3:
            problems.add(
                path,
                lineno,
                "columns",
                "expected 3 tab-separated columns (query-id, corpus-id, score) "
                f"or 4 (TREC: query-id, 0, corpus-id, score), got {len(row)}",
            )
            continue
        qid, did, score_s = (c.strip() for c in row)
        yield lineno, qid, did, score_s


def qrels_from_rows(
    rows: Iterable[tuple[int, str, str, object]],
    path: str | Path,
    problems: ProblemCollector,
    corpus: Corpus,
    queries: dict[str, str],
    *,
    skip_unknown: bool = False,
) -> Qrels:
    """Judgments from ``(line or row number, query id, doc id, score)`` rows of any source: the
    score an integer or its text, both ids known (or skipped with ``skip_unknown``), no
    conflicting duplicates."""
    qrels: Qrels = {}
    seen: dict[tuple[str, str], tuple[int, int]] = {}
    skipped = 0
    for lineno, qid, did, given in rows:
        score_s = given if isinstance(given, str) else str(given)
        try:
            score = int(score_s)
        except ValueError:
            try:
                fs = float(score_s)
            except ValueError:
                fs = None
            if fs is None or not math.isfinite(fs) or fs != int(fs):
                problems.add(path, lineno, "score", f"must be an integer, got {given!r}")
                continue
            score = int(fs)
        unknown = False
        if qid not in queries:
            unknown = True
            if not skip_unknown:
                problems.add(path, lineno, "query-id", f"unknown query id '{qid}' (not in queries file)")
        if did not in corpus.index:
            unknown = True
            if not skip_unknown:
                problems.add(path, lineno, "corpus-id", f"unknown document id '{did}' (not in corpus file)")
        if unknown:
            skipped += 1
            continue
        key = (qid, did)
        if key in seen and seen[key][1] != score:
            problems.add(
                path,
                lineno,
                "score",
                f"conflicting duplicate for ({qid}, {did}): "
                f"{score} here, {seen[key][1]} on line {seen[key][0]}",
            )
            continue
        seen.setdefault(key, (lineno, score))
        qrels.setdefault(qid, {})[did] = score
    problems.raise_if_any()
    if skipped:
        log.warning("%s: skipped %d qrels rows with unknown ids (data.skip_unknown_ids=true)", path, skipped)
    return qrels


def available_splits(folder: Path) -> list[str]:
    qdir = folder / "qrels"
    if not qdir.is_dir():
        return []
    out = set()
    for p in qdir.iterdir():
        name = p.name[:-3] if p.name.endswith(".gz") else p.name
        if name.endswith(".tsv"):
            out.add(name[:-4])
    return sorted(out)


def load_beir(
    path: str | Path,
    *,
    splits: list[str] | None = None,
    name: str | None = None,
    skip_unknown_ids: bool = False,
) -> RetrievalDataset:
    """Load and validate a BEIR folder. ``splits=None`` loads every ``qrels/*.tsv``."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DataError(Problem(str(folder), None, "data.path", "folder not found"))
    corpus = load_corpus(_require(folder, "corpus.jsonl", "corpus"))
    queries, meta = load_queries(_require(folder, "queries.jsonl", "queries"))
    wanted = splits if splits is not None else available_splits(folder)
    if not wanted:
        raise DataError(Problem(str(folder / "qrels"), None, "qrels", "no qrels/<split>.tsv files found"))
    qrels = {}
    for split in wanted:
        qpath = resolve_maybe_gz(folder / "qrels" / f"{split}.tsv")
        if qpath is None:
            raise DataError(
                Problem(
                    str(folder / "qrels" / f"{split}.tsv"),
                    None,
                    "data.split",
                    f"split '{split}' not found; available: {available_splits(folder)}",
                )
            )
        qrels[split] = load_qrels(qpath, corpus, queries, skip_unknown=skip_unknown_ids)
    cfp = corpus_fingerprint(corpus)
    return RetrievalDataset(
        name=name or folder.name,
        corpus=corpus,
        queries=queries,
        qrels=qrels,
        query_meta=meta,
        source=str(folder),
        fingerprint=dataset_fingerprint(cfp, queries, qrels),
        corpus_fingerprint=cfp,
    )
