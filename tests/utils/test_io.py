"""Atomic writes: a reader or a crash never sees half a file, and a full disk is one named
error that leaves the previous file as it was and no temporary file behind."""

import errno
import subprocess
import sys

import pytest

from embexp.errors import DiskFullError, user_error
from embexp.utils.io import atomic_open, atomic_write_text


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "last.ckpt"
    target.write_bytes(b"the previous complete file")
    with pytest.raises(DiskFullError) as e:
        with atomic_open(target) as f:
            f.write(b"half of the new")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert target.read_bytes() == b"the previous complete file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
    assert e.value.filename == str(target) and user_error(e.value) is e.value
    assert "rerun the same command" in str(e.value)


def test_other_errors_pass_through_unchanged(tmp_path):
    with pytest.raises(ValueError):
        with atomic_open(tmp_path / "x"):
            raise ValueError("not a disk problem")
    assert not list(tmp_path.iterdir())


FULL = """
import resource, signal, sys, torch
from embexp.utils.io import atomic_open
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, resource.RLIM_INFINITY))
try:
    with atomic_open(sys.argv[1]) as f:
        torch.save({"w": torch.zeros(100_000)}, f)  # torch wraps the OSError in a RuntimeError
except OSError as e:
    print(type(e).__name__, e.errno, e.filename)
"""


def test_a_real_out_of_space_write_under_torch_is_named(tmp_path):
    target = tmp_path / "ckpt"
    atomic_write_text(target, "old")
    p = subprocess.run([sys.executable, "-c", FULL, str(target)], capture_output=True, text=True, timeout=120)
    assert p.stdout.split() == ["DiskFullError", str(errno.EFBIG), str(target)], p.stderr[-2000:]
    assert target.read_text() == "old" and sorted(x.name for x in tmp_path.iterdir()) == ["ckpt"]
