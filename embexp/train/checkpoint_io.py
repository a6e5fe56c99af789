"""Checkpoints written in place atomically and read with errors that say the way out.

Lightning's own writer streams the checkpoint into a temporary file of the system's temp folder
and then copies it over the target: when the copy crosses file systems and the disk fills, the
target is truncated and the previous checkpoint is gone (the run can no longer resume). Here the
new file is written next to its target, fsynced, then renamed over it
(:func:`embexp.utils.io.atomic_open`): ``last.ckpt`` always holds the last *complete* checkpoint,
and a full disk leaves no partial file behind, only one :class:`~embexp.errors.DiskFullError`.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO

from embexp.errors import RunFolderError
from embexp.utils.io import atomic_open


def _is_local(path) -> bool:
    return "://" not in str(path) or str(path).startswith("file://")


class AtomicCheckpointIO(TorchCheckpointIO):
    """:class:`TorchCheckpointIO` with an in-place atomic save and a named load error (local
    paths; a remote URL keeps Lightning's own handling)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None or not _is_local(path):
            return super().save_checkpoint(checkpoint, path, storage_options=storage_options)
        target = Path(str(path).removeprefix("file://"))
        with atomic_open(target, mode=0o644) as f:
            torch.save(checkpoint, f)

    def load_checkpoint(self, path, *args, **kwargs):
        try:
            return super().load_checkpoint(path, *args, **kwargs)
        except FileNotFoundError:
            raise
        except Exception as e:
            raise unreadable_checkpoint(path, e) from None


def unreadable_checkpoint(path, e: BaseException) -> RunFolderError:
    """The error for a checkpoint that cannot be loaded: what the file looks like, and the ways
    out. The loader's own advice is not repeated (torch suggests ``weights_only=False``, which
    would execute whatever the file holds)."""
    file = Path(str(path))
    run = file.parent.parent
    return RunFolderError(
        f"checkpoint {path} cannot be read: {_what_is_wrong(file, e)}. The run cannot resume from it. "
        f"Start this run over with force=true (the folder's files are moved aside to "
        f"{run.name}.old-<time>/, the checkpoint included, for inspection), or start a new run with "
        "run_id=<new id>"
    )


def _what_is_wrong(file: Path, e: BaseException) -> str:
    """A checkpoint is a zip archive (torch's format) holding a pickle of plain types."""
    try:
        size = file.stat().st_size
        with open(file, "rb") as f:
            head = f.read(4)
    except OSError:
        return f"it cannot be opened ({type(e).__name__})"
    if size == 0:
        return "it is empty"
    if not zipfile.is_zipfile(file):
        if head.startswith(b"PK"):
            return f"it is truncated or damaged ({size} bytes, not a complete checkpoint archive)"
        return "it is not a checkpoint archive"
    if isinstance(e, pickle.UnpicklingError):
        return "it holds objects embexp never writes (refused: loading it could run code)"
    return f"it is a damaged checkpoint archive ({type(e).__name__})"
