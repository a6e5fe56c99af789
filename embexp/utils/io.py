"""Atomic writes and (optionally gzipped) text reading.

Every file the package writes for others to read goes through here: written next to its
target, fsynced, then renamed over it, so a reader (or a crash) never sees half a file.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from embexp.errors import DiskFullError, disk_full


def open_text(path: str | Path) -> io.TextIOBase:
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def resolve_maybe_gz(path: str | Path) -> Path | None:
    """``path`` or ``path.gz``, whichever exists (plain first)."""
    path = Path(path)
    if path.exists():
        return path
    gz = path.with_name(path.name + ".gz")
    return gz if gz.exists() else None


def _unlink(path: str | Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a crash right after it keeps the new file)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a file system that cannot open folders: the rename stands as it is
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | Path, *, mode: int | None = None) -> Iterator[io.BufferedWriter]:
    """A binary file to stream into: a temporary file next to ``path``, fsynced and renamed over
    it when the block ends. If the block raises (a full disk, a signal) the temporary file is
    removed and ``path`` keeps what it held before; running out of space is raised as
    :class:`embexp.errors.DiskFullError` naming ``path``, whatever wrapped the OSError.

    The file is private (0600, as ``mkstemp`` makes it) unless ``mode`` is given."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as e:
        _unlink(tmp)
        full = disk_full(e)
        if full is not None and not isinstance(e, DiskFullError):
            raise DiskFullError(path, full) from e
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` through :func:`atomic_open`: a reader (or a crash) never sees half a file."""
    with atomic_open(path, mode=mode) as f:
        f.write(data)


def atomic_write_text(path: str | Path, text: str, *, mode: int | None = None) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary file name next to ``path`` (same suffix) for writers that want a name, not
    bytes (plot libraries). After the block the file is fsynced and renamed over ``path``;
    if the block raises it is removed. The writer creates the file (its usual permissions)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        _unlink(tmp)
        full = disk_full(e)
        if full is not None and not isinstance(e, DiskFullError):
            raise DiskFullError(path, full) from e
        raise


def replace_folder(new: Path, target: Path) -> None:
    """Rename the folder ``new`` to ``target``. An existing ``target`` is first renamed aside and
    removed only once ``new`` is in place; if the swap fails it is put back, so ``target`` is always
    the previous folder or the new one, never half of either (a kill between the two renames
    leaves the previous one in the hidden sibling ``.TARGET.old*``)."""
    if not target.exists():
        os.replace(new, target)
        _fsync_dir(target.parent)
        return
    aside = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old"))
    os.rmdir(aside)  # only its unique name is wanted
    os.replace(target, aside)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(aside, target)
        raise
    _fsync_dir(target.parent)
    shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def atomic_folder(target: str | Path) -> Iterator[Path]:
    """A temporary sibling folder to write ``target``'s files into; when the block ends it takes
    ``target``'s place (:func:`replace_folder`). If the block raises (a full disk: raised as
    :class:`embexp.errors.DiskFullError`, whatever library wrapped it) the temporary folder is
    removed and ``target`` keeps what it held."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp"))
    try:
        yield tmp
        for f in tmp.rglob("*"):
            if f.is_file():
                with open(f, "rb") as fh:
                    os.fsync(fh.fileno())
        replace_folder(tmp, target)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        full = disk_full(e)
        if full is not None and not isinstance(e, DiskFullError):
            raise DiskFullError(target, full) from e
        raise


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_write_jsonl(path: str | Path, rows: Iterator[dict] | list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_json(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


class UnreadableJSON(ValueError):
    """A JSON file that exists but cannot be used; ``why`` says what is wrong with it."""

    def __init__(self, path: str | Path, why: str):
        self.path, self.why = Path(path), why
        super().__init__(f"{path}: {why}")


def json_kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )


def read_json_object(path: str | Path) -> dict:
    """The JSON object in ``path``. A missing file raises ``FileNotFoundError``; a file that exists
    but is not a JSON object (empty, cut short, damaged, not UTF-8, a list) raises
    :class:`UnreadableJSON` saying which: the one strict reader of the run files (the run record,
    the report, the export), so that a damaged file is never taken for an absent one."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UnreadableJSON(path, "it is not UTF-8 text (a binary or damaged file)") from None
    except FileNotFoundError:
        raise
    except OSError as e:
        raise UnreadableJSON(path, f"it cannot be read ({e.strerror or e})") from None
    if not text.strip():
        raise UnreadableJSON(path, "it is empty (cut short or damaged)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise UnreadableJSON(
            path, f"invalid JSON at line {e.lineno}, column {e.colno} ({e.msg}): cut short or damaged"
        ) from None
    if not isinstance(data, dict):
        raise UnreadableJSON(path, f"it holds {json_kind(data)}, not a JSON object")
    return data
