"""Hugging Face ``datasets`` as a data source (``data=hf``): a hub id, a local dataset folder or
a data file (``.parquet``, ``.jsonl``, ``.json``, ``.csv``; text formats optionally ``.gz``),
read with ``datasets.load_dataset``. Two shapes (``data.format``; ``auto`` picks BEIR-style when
the source has corpus and queries parts):

* **pairs / triplets**, as sentence-transformers' training sets: a query column, a positive
  column and optional negatives (``data.columns``; null finds ``query|anchor``,
  ``positive|positives``, ``negative|negatives|negative_1..n``). Each row becomes one line of
  :mod:`embexp.data.pairs` (``query_id``, ``timestamp``, ``slices``, ``frequency`` columns are
  used when present), so the corpus de-duplication, query merging, seeded train/test split and
  every row check are those of ``data=pairs``.
* **BEIR-style**: corpus (``_id``, ``title``, ``text``), queries (``_id``, ``text``), qrels
  (``query-id``, ``corpus-id``, ``score``), read by :mod:`embexp.data.beir`'s row readers and
  fingerprinted as the same BEIR folder would be. A folder holds ``corpus.*``, ``queries.*`` and
  ``qrels.*`` (with a ``split`` column) or ``qrels/<split>.*`` (``.tsv`` as in BEIR). A hub
  repository (or a folder with a dataset card) holds configs ``corpus`` and ``queries``; its
  qrels come from ``data.qrels_path``, else its config ``qrels`` or ``default`` (one HF split per
  qrels split), else ``<path>-qrels`` (the ``BeIR/*`` layout).

Problems name the column: ``FILE: column 'X': ...`` for a column that is missing or holds the
wrong type (with the columns there are), ``FILE:ROW: column 'X': ...`` for a bad value, rows
counted from 1 (a JSONL file's line numbers when it has no blank lines). FILE is the data file,
or ``PATH[config/split]`` for a hub id or a dataset folder.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from embexp.config.schema import HfColumns, HfData
from embexp.data.beir import corpus_from_rows, load_qrels, qrels_from_rows, queries_from_rows
from embexp.data.fingerprint import corpus_fingerprint, dataset_fingerprint
from embexp.data.jsonl import get_id
from embexp.data.pairs import pairs_dataset
from embexp.data.types import Qrels, RetrievalDataset
from embexp.errors import DataError, Problem, ProblemCollector

BUILDERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}  # datasets' module
QUERY_COLUMNS = ("query", "anchor")
POSITIVE_COLUMNS = ("positive", "positives")
NEGATIVE_COLUMNS = ("negative", "negatives")
NUMBERED_NEGATIVE = re.compile(r"negative_(\d+)$")
PAIR_EXTRAS = ("query_id", "timestamp", "slices", "frequency")  # pairs fields used when present
TEXT_DTYPES = ("string", "large_string", "null")  # null: a column with no value at all


class _ColumnProblems(ProblemCollector):
    """Problems named ``column 'X'``; ``names`` maps a pairs field (``query``) to its column."""

    def __init__(self, names: dict[str, str] | None = None):
        super().__init__(kind="column")
        self.names = names or {}

    def add(self, file, line, field, message) -> None:
        if field:  # 'positive.text' -> '<its column>.text'
            head, dot, rest = field.partition(".")
            field = self.names.get(head, head) + dot + rest
        super().add(file, line, field, message)


def _column_error(label: str, column: str, what: str, ds) -> DataError:
    cols = ", ".join(f"{c} ({_describe(f)})" for c, f in ds.features.items())
    return DataError(Problem(label, None, column, f"{what}; the columns are: {cols}", kind="column"))


def _describe(feature) -> str:
    if hasattr(feature, "dtype"):
        return feature.dtype
    inner = getattr(feature, "feature", None)
    return f"list of {_describe(inner)}" if inner is not None else type(feature).__name__.lower()


def _texts(feature, *, lists: bool) -> bool:
    """A column of texts (or, with ``lists``, of lists of texts or of ``{"id", "text"}`` objects)."""
    if type(feature).__name__ == "Json":  # mixed values (texts and lists): checked row by row
        return True
    if hasattr(feature, "dtype"):
        return feature.dtype in TEXT_DTYPES
    inner = getattr(feature, "feature", None)
    return lists and (isinstance(feature, dict) or (inner is not None and _texts(inner, lists=False)))


def _rows(ds, columns: list[str]) -> Iterator[tuple[int, dict]]:
    """``(row number from 1, {column: value})``; a null value is left out (as a missing field)."""
    n = 0
    for batch in ds.select_columns(columns).iter(batch_size=1024):
        for values in zip(*(batch[c] for c in columns)):
            n += 1
            yield n, {c: v for c, v in zip(columns, values) if v is not None}


# ---- loading ----------------------------------------------------------------------------------
def _builder(path: Path) -> str | None:
    """The ``datasets`` module that reads ``path`` (by extension); None when none does."""
    name = path.name.lower()
    name = name[:-3] if name.endswith((".jsonl.gz", ".json.gz", ".csv.gz")) else name
    return next((b for ext, b in BUILDERS.items() if name.endswith(ext)), None)


def _load(label: str, *args, **kwargs):
    """``datasets.load_dataset`` with its failures as a DataError naming the source."""
    import datasets

    try:
        return datasets.load_dataset(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - not found, offline, unreadable file, bad config name ...
        raise DataError(Problem(label, None, "data.path", f"cannot load with datasets: {_reason(e)}")) from e


def _reason(e: BaseException) -> str:
    cause = e.__cause__ or e  # DatasetGenerationError wraps the reader's error
    text = str(cause).strip()
    return text.splitlines()[0] if text else type(cause).__name__


def _load_file(path: Path):
    return _load(str(path), _builder(path), data_files=str(path), split="train")


def _name(d: HfData) -> str:
    """``data.name``, else the file, folder or hub name without its extensions."""
    if d.name:
        return d.name
    name = d.path.rstrip("/").rsplit("/", 1)[-1]
    for ext in (".gz", *BUILDERS):
        name = name.removesuffix(ext)
    return name


def _split_of(dd, split: str, label: str, key: str):
    if split in dd:
        return dd[split]
    raise DataError(Problem(label, None, key, f"split '{split}' not found; available: {sorted(dd)}"))


def _configs(path: str, revision: str | None) -> list[str]:
    import datasets

    try:
        return list(datasets.get_dataset_config_names(path, revision=revision))
    except Exception as e:  # noqa: BLE001 - not found, offline ...
        raise DataError(Problem(path, None, "data.path", f"cannot load with datasets: {_reason(e)}")) from e


def _local(path: str) -> Path | None:
    """The local file or folder ``path`` names; None for a hub id."""
    p = Path(path).expanduser()
    if p.exists():
        return p
    if path.startswith((".", "/", "~")) or path.count("/") > 1 or "\\" in path or _builder(p):
        raise DataError(Problem(str(p), None, "data.path", "file or folder not found"))
    return None


def _part_file(folder: Path, stem: str) -> Path | None:
    """``folder/<stem>.<ext>`` for a readable extension (text formats also ``.gz``)."""
    for ext in (*BUILDERS, ".jsonl.gz", ".json.gz", ".csv.gz"):
        if (folder / f"{stem}{ext}").is_file():
            return folder / f"{stem}{ext}"
    return None


def load_hf(d: HfData) -> RetrievalDataset:
    """Load and validate ``data=hf`` (see the module docstring)."""
    local = _local(d.path)
    if local is not None and local.is_file():
        if _builder(local) is None:
            msg = f"unsupported file type; expected one of {', '.join(BUILDERS)} (text formats also .gz)"
            raise DataError(Problem(str(local), None, "data.path", msg))
        if d.format == "beir":
            msg = "data.format=beir needs a folder or hub id with corpus, queries and qrels, not a file"
            raise DataError(Problem(str(local), None, "data.format", msg))
        return _pairs(d, _load_file(local), str(local))
    if local is not None and _part_file(local, d.corpus) and _part_file(local, d.queries):
        if d.format != "pairs":
            return _beir_folder(d, local)
    configs = [] if d.format == "pairs" else _configs(d.path, d.revision)
    if d.format == "beir" or (d.format == "auto" and {d.corpus, d.queries} <= set(configs)):
        return _beir_repo(d, configs)
    dd = _load(d.path, d.path, d.config_name, revision=d.revision)
    label = f"{d.path}[{'/'.join(x for x in (d.config_name, d.hf_split) if x)}]"
    return _pairs(d, _split_of(dd, d.hf_split, label, "data.hf_split"), label)


# ---- pairs --------------------------------------------------------------------------------------
def _pair_columns(ds, columns: HfColumns, label: str) -> tuple[str, str, list[str]]:
    """The query, positive and negative columns (given or found by name), each checked."""
    names = ds.column_names

    def pick(given: str | None, candidates: tuple[str, ...], key: str) -> str:
        if given is not None and given not in names:
            raise _column_error(label, given, f"not found (data.columns.{key})", ds)
        found = given or next((c for c in candidates if c in names), None)
        if found is None:
            alt = f" (nor {', '.join(repr(c) for c in candidates[1:])})" if candidates[1:] else ""
            raise _column_error(label, candidates[0], f"not found{alt}; set data.columns.{key}", ds)
        return found

    query = pick(columns.query, QUERY_COLUMNS, "query")
    positive = pick(columns.positive, POSITIVE_COLUMNS, "positive")
    neg = columns.negative
    if neg is None:
        numbered = sorted(
            (c for c in names if NUMBERED_NEGATIVE.match(c)), key=lambda c: int(c.split("_")[-1])
        )
        negatives = [c for c in NEGATIVE_COLUMNS if c in names][:1] or numbered
    else:
        negatives = [neg] if isinstance(neg, str) else list(neg)
    for c in negatives:
        if c not in names:
            raise _column_error(label, c, "not found (data.columns.negative)", ds)
    if not _texts(ds.features[query], lists=False):
        raise _column_error(label, query, f"must hold texts, got {_describe(ds.features[query])}", ds)
    for c in (positive, *negatives):
        if not _texts(ds.features[c], lists=True):
            what = f"must hold texts or lists of texts, got {_describe(ds.features[c])}"
            raise _column_error(label, c, what, ds)
    return query, positive, negatives


def _pairs(d: HfData, ds, label: str) -> RetrievalDataset:
    query, positive, negatives = _pair_columns(ds, d.columns, label)
    extras = [c for c in PAIR_EXTRAS if c in ds.column_names and c not in (query, positive, *negatives)]
    names = {"query": query, "positive": positive, "positives": positive}
    names["negatives"] = ", ".join(negatives)
    problems = _ColumnProblems(names)

    def rows() -> Iterator[tuple[int, dict]]:
        for row, obj in _rows(ds, list(dict.fromkeys([query, positive, *negatives, *extras]))):
            out = {k: obj[k] for k in extras if k in obj}
            if query in obj:
                out["query"] = obj[query]
            if positive in obj:
                out["positives" if isinstance(obj[positive], list) else "positive"] = obj[positive]
            given = [obj[c] for c in negatives if c in obj]
            if len(negatives) > 1:  # one text per column: name the column of an empty one
                empty = [c for c in negatives if isinstance(obj.get(c), str) and not obj[c].strip()]
                for c in empty:
                    problems.add(label, row, c, "is empty")
                if empty:
                    continue
            out["negatives"] = [x for v in given for x in (v if isinstance(v, list) else [v])]
            yield row, out

    return pairs_dataset(
        rows(),
        label,
        problems,
        name=_name(d),
        test_fraction=d.test_fraction,
        seed=d.split_seed,
        temporal=d.temporal,
    )


# ---- BEIR-style -----------------------------------------------------------------------------------
def _part_rows(ds, label: str, required: tuple[str, ...], optional: tuple[str, ...]):
    for c in required:
        if c not in ds.column_names:
            raise _column_error(label, c, "not found", ds)
    return _rows(ds, [*required, *(c for c in optional if c in ds.column_names)])


def _qrels_rows(ds, label: str, problems: ProblemCollector) -> Iterator[tuple[int, str, str, object, str]]:
    """``(row, query id, doc id, score, split or '')`` of a qrels table (split from its 'split' column)."""
    for row, obj in _part_rows(ds, label, ("query-id", "corpus-id", "score"), ("split",)):
        qid = get_id(obj, "query-id", label, row, problems)
        did = get_id(obj, "corpus-id", label, row, problems)
        if qid is not None and did is not None:
            yield row, qid, did, obj.get("score"), str(obj.get("split", "")).strip()


def _dataset(d: HfData, source: str, corpus_part, queries_part, read_qrels) -> RetrievalDataset:
    """The corpus, the queries, then every qrels split ``read_qrels(corpus, queries)`` returns."""
    problems = _ColumnProblems()
    corpus = corpus_from_rows(_part_rows(*corpus_part, ("_id", "text"), ("title",)), corpus_part[1], problems)
    problems = _ColumnProblems()
    rows = _part_rows(*queries_part, ("_id", "text"), ("frequency", "slices", "timestamp"))
    queries, meta = queries_from_rows(rows, queries_part[1], problems)
    qrels = read_qrels(corpus, queries)
    cfp = corpus_fingerprint(corpus)
    return RetrievalDataset(
        name=_name(d),
        corpus=corpus,
        queries=queries,
        qrels=qrels,
        query_meta=meta,
        source=source,
        fingerprint=dataset_fingerprint(cfp, queries, qrels),
        corpus_fingerprint=cfp,
    )


def _qrels_tables(d: HfData, tables: list[tuple[str, object, str]], corpus, queries) -> dict[str, Qrels]:
    """Qrels from ``(split, table, label)``; a table with a 'split' column gives one per value."""
    out: dict[str, Qrels] = {}
    for split, ds, label in tables:
        problems = _ColumnProblems()
        by_split: dict[str, list] = {}
        for row, qid, did, score, given in _qrels_rows(ds, label, problems):
            if "split" in ds.column_names and not given:
                problems.add(label, row, "split", "is empty")
                continue
            by_split.setdefault(given or split, []).append((row, qid, did, score))
        problems.raise_if_any()
        for name, rows in by_split.items():
            got = qrels_from_rows(rows, label, problems, corpus, queries, skip_unknown=d.skip_unknown_ids)
            merged = out.setdefault(name, {})  # a split may span several tables
            for q, judged in got.items():
                merged.setdefault(q, {}).update(judged)
    if not out:
        raise DataError(Problem(d.path, None, "qrels", "no qrels rows found"))
    return out


def _beir_folder(d: HfData, folder: Path) -> RetrievalDataset:
    corpus_file, queries_file = _part_file(folder, d.corpus), _part_file(folder, d.queries)
    single, qdir = _part_file(folder, d.qrels), folder / d.qrels

    def read_qrels(corpus, queries) -> dict[str, Qrels]:
        if single is not None:
            ds = _load_file(single)
            if "split" not in ds.column_names:
                what = f"not found: a single qrels file needs a 'split' column (or use {d.qrels}/<split>.*)"
                raise _column_error(str(single), "split", what, ds)
            return _qrels_tables(d, [("", ds, str(single))], corpus, queries)
        files = sorted(p for p in qdir.iterdir() if p.is_file()) if qdir.is_dir() else []
        tables, out = [], {}
        for p in files:
            stem = p.name.removesuffix(".gz").rsplit(".", 1)[0]
            if p.name.removesuffix(".gz").endswith(".tsv"):  # BEIR's own qrels/<split>.tsv
                out[stem] = load_qrels(p, corpus, queries, skip_unknown=d.skip_unknown_ids)
            elif _builder(p):
                tables.append((stem, _load_file(p), str(p)))
        if not tables and not out:
            where = f"{qdir}.* with a 'split' column or {qdir}/<split>.*"
            raise DataError(Problem(str(folder), None, "qrels", f"no qrels found (looked for {where})"))
        return {**out, **(_qrels_tables(d, tables, corpus, queries) if tables else {})}

    corpus_part = (_load_file(corpus_file), str(corpus_file))
    queries_part = (_load_file(queries_file), str(queries_file))
    return _dataset(d, str(folder), corpus_part, queries_part, read_qrels)


def _beir_repo(d: HfData, configs: list[str]) -> RetrievalDataset:
    """Configs ``corpus`` and ``queries`` of one repository (hub id or folder with a dataset card)."""
    parts = []
    for key, part in (("data.corpus", d.corpus), ("data.queries", d.queries)):
        if part not in configs:
            what = f"BEIR-style data needs it: no file {part}.* and no config '{part}' (configs: {configs})"
            raise DataError(Problem(d.path, None, key, what))
        dd = _load(f"{d.path}[{part}]", d.path, part, revision=d.revision)
        split = part if part in dd or len(dd) != 1 else next(iter(dd))
        label = f"{d.path}[{part}/{split}]"
        parts.append((_split_of(dd, split, label, "data.path"), label))

    def read_qrels(corpus, queries) -> dict[str, Qrels]:
        config = None
        if d.qrels_path:
            repo, dd = d.qrels_path, _load(d.qrels_path, d.qrels_path)
        elif d.qrels in configs or "default" in configs:
            repo, config = d.path, d.qrels if d.qrels in configs else "default"
            dd = _load(f"{repo}[{config}]", repo, config, revision=d.revision)
        else:  # the BeIR/* layout: qrels in a repository of their own
            repo = f"{d.path.rstrip('/')}-qrels"
            dd = _load(f"{repo} (no config '{d.qrels}' or 'default' in {d.path}; set data.qrels_path)", repo)
        tables = [(s, ds, f"{repo}[{'/'.join(x for x in (config, s) if x)}]") for s, ds in dd.items()]
        return _qrels_tables(d, tables, corpus, queries)

    return _dataset(d, d.path, parts[0], parts[1], read_qrels)
