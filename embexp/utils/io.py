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


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_write_jsonl(path: str | Path, rows: Iterator[dict] | list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_json(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)
