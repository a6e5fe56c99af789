"""Negatives files, their provenance, mining-round logs and veto label files.

A negatives file is JSONL, one training query per line::

    {"query_id": "q1", "negatives": [{"doc_id": "d7", "score": 0.61, "rank": 2}, ...]}

Its provenance sits beside it (``negatives.jsonl`` -> ``negatives.provenance.json``):
the encoder fingerprint, the dataset fingerprint, the mining parameters, the statistics
and timings of the round. Everything is written atomically.
"""

from __future__ import annotations

import json
from pathlib import Path

from embexp.errors import ConfigError, ProblemCollector
from embexp.utils.hooks import import_hook as _import_hook
from embexp.utils.io import atomic_write_json, atomic_write_jsonl, open_text, read_json

NEGATIVES_FILE = "negatives.jsonl"
ROUNDS_FILE = "mining_rounds.jsonl"


def provenance_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name.split(".")[0] + ".provenance.json")


def write_negatives(path: str | Path, rows: list[dict], provenance: dict) -> Path:
    """Write the negatives file, then its provenance (both atomically)."""
    path = Path(path)
    atomic_write_jsonl(path, rows)
    atomic_write_json(provenance_path(path), provenance)
    return path


def read_provenance(path: str | Path) -> dict | None:
    p = provenance_path(path)
    if not p.exists():
        return None
    try:
        return read_json(p)
    except (OSError, ValueError):
        return None


def read_negatives(path: str | Path) -> dict[str, list[dict]]:
    """query id -> [{"doc_id", "score", "rank"}, ...]. Accepts plain doc-id lists too."""
    path = Path(path)
    out: dict[str, list[dict]] = {}
    bad = ProblemCollector()
    with open_text(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                bad.add(path, n, None, f"not JSON ({e.msg})")
                continue
            q, negs = (
                row.get("query_id") if isinstance(row, dict) else None,
                row.get("negatives") if isinstance(row, dict) else None,
            )
            if not isinstance(q, str) or not q:
                bad.add(path, n, "query_id", "missing or not a string")
                continue
            if not isinstance(negs, list):
                bad.add(path, n, "negatives", "must be a list")
                continue
            items = []
            for x in negs:
                if isinstance(x, str):
                    items.append({"doc_id": x, "score": None, "rank": None})
                elif isinstance(x, dict) and isinstance(x.get("doc_id"), str):
                    items.append({"doc_id": x["doc_id"], "score": x.get("score"), "rank": x.get("rank")})
                else:
                    bad.add(
                        path,
                        n,
                        "negatives",
                        f"entries must be doc ids or {{doc_id, score, rank}} objects, got {x!r}",
                    )
                    break
            out[q] = items
    bad.raise_if_any()
    return out


def read_rounds(out_dir: str | Path) -> list[dict]:
    p = Path(out_dir) / ROUNDS_FILE
    if not p.exists():
        return []
    with open(p, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def write_rounds(out_dir: str | Path, rounds: list[dict]) -> None:
    atomic_write_jsonl(Path(out_dir) / ROUNDS_FILE, rounds)


def read_veto_pairs(path: str | Path) -> set[tuple[str, str]]:
    """(query id, doc id) pairs that must never be negatives.

    TSV/CSV-less text: ``query-id<TAB>corpus-id[<TAB>...]`` per line (a header line whose
    first field is ``query-id``/``query_id`` is skipped); ``.jsonl``: objects with
    ``query_id`` and ``doc_id`` (``query-id``/``corpus-id`` also accepted).
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError("negatives.veto_file", f"file not found: {path}")
    pairs: set[tuple[str, str]] = set()
    bad = ProblemCollector()
    is_json = ".jsonl" in path.name or ".json" in path.name
    with open_text(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            if is_json:
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    bad.add(path, n, None, f"not JSON ({e.msg})")
                    continue
                q = row.get("query_id", row.get("query-id")) if isinstance(row, dict) else None
                d = row.get("doc_id", row.get("corpus-id")) if isinstance(row, dict) else None
                if not isinstance(q, str) or not isinstance(d, str):
                    bad.add(path, n, "query_id/doc_id", "both must be strings")
                    continue
            else:
                parts = line.rstrip("\n").split("\t")
                if n == 1 and parts[0].strip().lower() in ("query-id", "query_id", "qid"):
                    continue
                if len(parts) < 2 or not parts[0].strip() or not parts[1].strip():
                    bad.add(path, n, None, "expected 'query-id<TAB>corpus-id'")
                    continue
                q, d = parts[0].strip(), parts[1].strip()
            pairs.add((q, d))
    bad.raise_if_any()
    return pairs


def import_hook(spec: str):
    """The veto hook ``negatives.veto_hook`` names (see :func:`embexp.utils.hooks.import_hook`)."""
    return _import_hook(spec, "negatives.veto_hook")


__all__ = [
    "NEGATIVES_FILE",
    "ROUNDS_FILE",
    "import_hook",
    "provenance_path",
    "read_negatives",
    "read_provenance",
    "read_rounds",
    "read_veto_pairs",
    "write_negatives",
    "write_rounds",
]
