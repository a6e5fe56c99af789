"""One writer per folder: an OS-level lock held for a process's life.

``flock`` on a lock file inside the folder: the kernel releases it when the process ends, however
it ends (SIGKILL included), so a lock is never stale. On Linux NFS, ``flock`` is carried out with
POSIX record locks and holds across machines. The file also names its holder (pid, host, start
time, command line), so the second process can say who holds the folder.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

LOCK_FILE = ".embexp.lock"


class FolderLocked(Exception):
    """Another live process holds the folder's lock; ``holder`` is what it wrote (may be empty)."""

    def __init__(self, folder: Path, holder: dict):
        self.folder, self.holder = folder, holder
        super().__init__(f"{folder} is held by {describe(holder)}")


def describe(holder: dict) -> str:
    """``pid 123 on host h since 2026-12-07T21:00:00 (embexp-train run_id=x)``, or what is known."""
    if not holder:
        return "another process (it has not written its name yet)"
    parts = [f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}"]
    if holder.get("started"):
        parts.append(f"since {holder['started']}")
    text = " ".join(parts)
    if holder.get("command"):
        text += f" ({holder['command']})"
    return text


class FolderLock:
    """``with FolderLock(folder):`` holds ``folder/.embexp.lock`` or raises :class:`FolderLocked`
    at once (never waits). Re-entrant within one object; released on exit or by the kernel."""

    def __init__(self, folder: str | Path, name: str = LOCK_FILE):
        self.folder = Path(folder)
        self.path = self.folder / name
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> FolderLock:
        if self._fd is not None:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FolderLocked(self.folder, read_holder(self.path)) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": " ".join([os.path.basename(sys.argv[0] or "python"), *sys.argv[1:]])[:500],
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)  # nobody holds it now; the file stays (unlinking would race)
        except OSError:
            pass
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def read_holder(path: Path) -> dict:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}
