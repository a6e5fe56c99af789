"""Validated JSONL reading: every problem is collected with its file, line and field."""

from __future__ import annotations

import gzip
import json
import math
import zlib
from collections.abc import Iterator
from pathlib import Path

from embexp.errors import DataError, Problem, ProblemCollector


def iter_lines(path: Path, problems: ProblemCollector) -> Iterator[tuple[int, str]]:
    """Yield (line number, text) for each line of a plain or ``.gz`` UTF-8 text file.

    Lines that are not valid UTF-8 go to ``problems`` (field ``encoding``); a corrupt or
    truncated gzip stream raises a :class:`DataError` naming the line where reading stopped.
    A UTF-8 byte-order mark at the start of the file is ignored.
    """
    path = Path(path)
    lineno = 0
    try:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as f:
            for lineno, raw in enumerate(f, start=1):
                if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    hint = (
                        " (gzip data in a file without .gz?)"
                        if lineno == 1 and raw.startswith(b"\x1f\x8b")
                        else ""
                    )
                    problems.add(path, lineno, "encoding", f"not valid UTF-8 at byte {e.start + 1}{hint}")
                    continue
                yield lineno, text
    except (OSError, EOFError, zlib.error) as e:
        if isinstance(e, (FileNotFoundError, IsADirectoryError, PermissionError)):
            raise DataError(Problem(str(path), None, "file", f"cannot read: {e.strerror}")) from e
        raise DataError(
            Problem(
                str(path),
                lineno + 1,
                "gzip",
                f"corrupt or truncated gzip file, reading stopped after line {lineno} ({e})",
            )
        ) from e


def iter_jsonl(path: Path, problems: ProblemCollector) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-blank line; bad lines go to ``problems``.

    A line that is not valid JSON, or is JSON but not an object, is reported with field ``json``.
    """
    for lineno, raw in iter_lines(path, problems):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw.rstrip("\r\n"))
        except json.JSONDecodeError as e:
            problems.add(
                path, lineno, "json", f"invalid JSON ({e.msg.removesuffix(' at')} at column {e.colno})"
            )
            continue
        if not isinstance(obj, dict):
            problems.add(
                path, lineno, "json", f"expected a JSON object {{...}}, got a JSON {_json_type(obj)}"
            )
            continue
        yield lineno, obj


def _json_type(v) -> str:
    if isinstance(v, list):
        return "array"
    if isinstance(v, str):
        return "string"
    if isinstance(v, bool):
        return "boolean"
    if v is None:
        return "null"
    return "number"


def get_id(obj: dict, key: str, path: Path, lineno: int, problems: ProblemCollector) -> str | None:
    """An id field as a non-empty string (BEIR sets sometimes store integer ids)."""
    if key not in obj:
        problems.add(path, lineno, key, "missing")
        return None
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        problems.add(path, lineno, key, f"must be a string or integer, got {type(v).__name__} {v!r}"[:200])
        return None
    v = str(v).strip()
    if not v:
        problems.add(path, lineno, key, "is empty")
        return None
    return v


def get_text(
    obj: dict,
    key: str,
    path: Path,
    lineno: int,
    problems: ProblemCollector,
    *,
    required: bool = True,
    allow_empty: bool = False,
) -> str | None:
    if key not in obj or obj[key] is None:
        if required:
            problems.add(path, lineno, key, "missing")
            return None
        return ""
    v = obj[key]
    if not isinstance(v, str):
        problems.add(path, lineno, key, f"must be a string, got {type(v).__name__}")
        return None
    if not allow_empty and not v.strip():
        problems.add(path, lineno, key, "is empty")
        return None
    return v


def bad_frequency(f) -> bool:
    """A query's ``frequency`` must be a finite, non-negative number (not a bool)."""
    if isinstance(f, bool) or not isinstance(f, (int, float)):
        return True
    return (isinstance(f, float) and not math.isfinite(f)) or f < 0
