"""The error types users see: bad data, bad configuration, runs that cannot be compared.

Both carry where the problem is, so the message always names file, line and
field (data) or the config key (configuration). Entry points catch them and
print the message without a traceback.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Problem:
    """One bad row or value: where it is and what is wrong."""

    file: str
    line: int | None
    field: str | None
    message: str
    kind: str = "field"  # what ``field`` names: a JSON "field", a table "column" (data=hf)

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        what = f"{self.kind} '{self.field}': " if self.field else ""
        return f"{where}: {what}{self.message}"


class DataError(ValueError):
    """Invalid input data. ``problems`` lists every problem found, the message shows the first.

    The message reads ``FILE:LINE: field 'F': what is wrong (and N more such lines ...)``.
    """

    def __init__(self, problems: list[Problem] | Problem, *, not_kept: int = 0):
        if isinstance(problems, Problem):
            problems = [problems]
        if not problems:
            raise ValueError("DataError needs at least one problem")
        self.problems = problems
        self.not_kept = not_kept  # problems found beyond ProblemCollector's limit (counted, not stored)
        first = problems[0]
        self.file, self.line, self.field = first.file, first.line, first.field
        msg = str(first)
        same = [p for p in problems[1:] if p.field == first.field and p.file == first.file]
        others = [p for p in problems[1:] if not (p.field == first.field and p.file == first.file)]
        if same:
            lines = [str(p.line) for p in same[:5] if p.line is not None]
            shown = (
                f" ({'line' if len(same) == 1 else 'lines'} "
                f"{', '.join(lines)}{', ...' if len(same) > 5 else ''})"
                if lines
                else ""
            )
            msg += f" (and {len(same)} more such line{'s' if len(same) != 1 else ''}{shown})"
        if others:
            msg += f"; plus {len(others)} other problem{'s' if len(others) != 1 else ''}, first: {others[0]}"
        if not_kept:
            msg += f"; {not_kept} further problem{'s' if not_kept != 1 else ''} not listed"
        super().__init__(msg)


class ConfigError(ValueError):
    """An invalid configuration value; the message names the key."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"config key '{key}': {message}")


class ReportError(ValueError):
    """Runs that cannot be compared (different eval data, split or base model) or none to read;
    the message names the runs."""


class ProblemCollector:
    """Collect problems while reading a file, raise one DataError at the end."""

    def __init__(self, limit: int = 10_000, *, kind: str = "field"):
        self.problems: list[Problem] = []
        self.limit = limit
        self.kind = kind  # Problem.kind of every problem added
        self.not_kept = 0

    def add(self, file: str | Path, line: int | None, field: str | None, message: str) -> None:
        if len(self.problems) < self.limit:
            self.problems.append(Problem(str(file), line, field, message, self.kind))
        else:
            self.not_kept += 1

    def __bool__(self) -> bool:
        return bool(self.problems)

    def raise_if_any(self) -> None:
        if self.problems:
            raise DataError(self.problems, not_kept=self.not_kept)


class RunFolderError(ValueError):
    """A run folder that cannot be used as asked: held by another process, not an embexp run's,
    or holding a file that cannot be read. The message names the folder or file and the ways out."""


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
UNKNOWN_FILE = "<unknown file>"


class DiskFullError(OSError):
    """A write that ran out of space (a full disk, a quota, a file-size limit); ``filename`` is
    the file being written. Whatever was there before is intact (writes are atomic)."""

    def __init__(self, path: str | Path, cause: OSError):
        super().__init__(cause.errno, cause.strerror or str(cause), str(path))

    def __str__(self) -> str:
        where = (
            f"{self.filename}: could not be written: {self.strerror} (errno {self.errno}); nothing "
            "half-written was left in its place"
            if self.filename != UNKNOWN_FILE
            else f"a write ran out of space: {self.strerror} (errno {self.errno})"
        )
        return (
            f"{where}. Free some space (or raise the quota) and rerun the same command: a run "
            "resumes from its last complete checkpoint"
        )


def causes(e: BaseException | None, limit: int = 10) -> Iterator[BaseException]:
    """``e`` and the errors behind it (``__cause__``, else ``__context__``), nearest first: Hydra,
    Lightning, torch and safetensors wrap the error that says what happened."""
    while e is not None and limit > 0:
        yield e
        e, limit = e.__cause__ or e.__context__, limit - 1


# what libraries that wrap the OSError of a full disk (safetensors, torch's zip writer) still say
_FULL_TEXTS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large",
}


def disk_full(e: BaseException | None) -> DiskFullError | None:
    """The out-of-space error behind ``e``, as a :class:`DiskFullError`."""
    for c in causes(e):
        if isinstance(c, DiskFullError):
            return c
        if isinstance(c, OSError) and c.errno in DISK_FULL_ERRNOS:
            return DiskFullError(c.filename or UNKNOWN_FILE, c)
        text = str(c).lower()
        for code, said in _FULL_TEXTS.items():
            if said in text:
                return DiskFullError(UNKNOWN_FILE, OSError(code, os.strerror(code)))
    return None


def user_error(e: BaseException | None) -> BaseException | None:
    """The error behind ``e`` that is said in one line (Hydra wraps errors raised in
    ``instantiate``): bad data or config, runs that cannot be compared, a run folder that cannot
    be used, a full disk."""
    for c in causes(e):
        if isinstance(c, (DataError, ConfigError, ReportError, RunFolderError)):
            return c
    return disk_full(e)
