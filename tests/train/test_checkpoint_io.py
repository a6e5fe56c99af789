"""Checkpoints are written next to their target and renamed into place, and a checkpoint that
cannot be read is named with what is wrong and the ways out (never torch's ``weights_only``
advice)."""

import io
import os
import pickle

import pytest
import torch

from embexp.errors import RunFolderError
from embexp.train.checkpoint_io import AtomicCheckpointIO


@pytest.fixture()
def ckpt_io():
    return AtomicCheckpointIO()


def test_save_is_in_place_and_loads_back(ckpt_io, tmp_path):
    path = tmp_path / "checkpoints" / "last.ckpt"
    ckpt_io.save_checkpoint({"w": torch.arange(3.0), "epoch": 2}, path)
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt"]
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    got = ckpt_io.load_checkpoint(path, weights_only=True)
    assert got["epoch"] == 2 and torch.equal(got["w"], torch.arange(3.0))


def _evil() -> bytes:
    buf = io.BytesIO()
    torch.save({"f": os.system}, buf)
    return buf.getvalue()


@pytest.mark.parametrize(
    "content, what",
    [
        (lambda good: good[:2000], "it is truncated or damaged"),
        (lambda good: b"", "it is empty"),
        (lambda good: b"not a checkpoint", "it is not a checkpoint archive"),
        (lambda good: pickle.dumps({"epoch": 1}), "it is not a checkpoint archive"),
        (lambda good: _evil(), "it holds objects embexp never writes"),
    ],
    ids=["truncated", "empty", "garbage", "bare-pickle", "foreign-objects"],
)
def test_an_unreadable_checkpoint_is_named_with_the_ways_out(ckpt_io, tmp_path, content, what):
    path = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ckpt_io.save_checkpoint({"w": torch.randn(2000)}, path)
    path.write_bytes(content(path.read_bytes()))
    with pytest.raises(RunFolderError) as e:
        ckpt_io.load_checkpoint(path, weights_only=True)
    msg = str(e.value)
    assert msg.startswith(f"checkpoint {path} cannot be read: {what}")
    assert "force=true" in msg and "run_id=<new id>" in msg and "run.old-<time>" in msg
    assert "weights_only" not in msg
