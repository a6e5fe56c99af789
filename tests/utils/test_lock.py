"""One writer per folder: the lock is held for a process's life, refused at once to a second
process (naming the first), and released by the kernel however the holder ends."""

import os
import signal
import subprocess
import sys
import time

import pytest

from embexp.utils.lock import LOCK_FILE, FolderLock, FolderLocked, describe

HOLD = """
import sys, time
from embexp.utils.lock import FolderLock
lock = FolderLock(sys.argv[1]).acquire()
print("held", flush=True)
time.sleep(60)
"""


@pytest.fixture()
def holder(tmp_path):
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    yield p
    p.kill()
    p.wait()


def test_a_second_process_is_refused_at_once_and_told_who_holds_it(tmp_path, holder):
    t0 = time.monotonic()
    with pytest.raises(FolderLocked) as e:
        FolderLock(tmp_path).acquire()
    assert time.monotonic() - t0 < 1  # never waits
    assert e.value.holder["pid"] == holder.pid
    assert f"pid {holder.pid} on host" in describe(e.value.holder) and "-c" in describe(e.value.holder)


def test_the_kernel_releases_the_lock_of_a_killed_process(tmp_path, holder):
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with FolderLock(tmp_path) as lock:  # free at once: nothing stale to clean up
        assert lock.held and f'"pid": {os.getpid()}' in (tmp_path / LOCK_FILE).read_text()
    assert (tmp_path / LOCK_FILE).read_text() == ""  # released: the holder's name is cleared


def test_within_one_process_the_lock_is_reentrant_per_object_and_exclusive_across_objects(tmp_path):
    lock = FolderLock(tmp_path).acquire()
    assert lock.acquire() is lock
    with pytest.raises(FolderLocked):  # another open file description: flock is per description
        FolderLock(tmp_path).acquire()
    lock.release()
    FolderLock(tmp_path).acquire().release()
    assert describe({}).startswith("another process")
