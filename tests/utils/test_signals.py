"""Signals inside ``interruptible()`` become :class:`Interrupted` (exit status 128 + n), in the
main thread wherever the job is; ignored signals stay ignored; a launcher's handler is called
after the job's cleanup; a second signal stops at once."""

import os
import signal
import subprocess
import sys

import pytest

from embexp.utils.signals import Interrupted, interruptible


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGHUP])
def test_a_signal_raises_interrupted_with_the_shells_status(sig):
    inherited = signal.signal(sig, signal.SIG_DFL)  # under nohup, SIGHUP arrives ignored (and stays so)
    try:
        _raises_interrupted(sig)
    finally:
        signal.signal(sig, inherited)


def _raises_interrupted(sig):
    before = signal.getsignal(sig)
    cleaned = []
    with pytest.raises(Interrupted) as e:
        with interruptible():
            try:
                os.kill(os.getpid(), sig)
                for _ in range(10**6):  # the handler runs between bytecodes
                    pass
            finally:
                cleaned.append(True)
    assert e.value.code == 128 + sig and e.value.signal_name == signal.Signals(sig).name
    assert cleaned and signal.getsignal(sig) == before  # the job's finally ran; handlers restored
    assert isinstance(e.value, SystemExit) and not isinstance(e.value, Exception)


def test_an_ignored_signal_stays_ignored_and_a_launchers_handler_runs_after_cleanup():
    seen = []
    old_hup = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    old_usr2 = signal.signal(signal.SIGUSR2, lambda s, f: seen.append(("launcher", s)))
    try:
        with interruptible():
            os.kill(os.getpid(), signal.SIGHUP)  # nohup: ignored, nothing raised
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        with pytest.raises(Interrupted):
            with interruptible():
                try:
                    os.kill(os.getpid(), signal.SIGUSR2)
                    for _ in range(10**6):
                        pass
                finally:
                    seen.append(("cleanup", None))
        assert seen == [("cleanup", None), ("launcher", signal.SIGUSR2)]
    finally:
        signal.signal(signal.SIGHUP, old_hup)
        signal.signal(signal.SIGUSR2, old_usr2)


SECOND = """
import os, signal, time
from embexp.utils.signals import interruptible
with interruptible():
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    finally:
        print("cleanup started", flush=True)
        os.kill(os.getpid(), signal.SIGINT)  # a second signal while cleaning up
        time.sleep(5)
        print("cleanup finished", flush=True)
"""


def test_a_second_signal_during_cleanup_stops_at_once():
    p = subprocess.run([sys.executable, "-c", SECOND], capture_output=True, text=True, timeout=60)
    assert p.returncode == 128 + signal.SIGINT
    assert "cleanup started" in p.stdout and "cleanup finished" not in p.stdout


def test_interrupted_pickles_with_its_signal():
    import pickle

    e = pickle.loads(pickle.dumps(Interrupted(signal.SIGTERM)))
    assert e.signum == signal.SIGTERM and e.code == 143 and str(e) == "interrupted by SIGTERM"


def test_a_forked_child_keeps_the_signals_previous_behaviour():
    """DataLoader workers are forked inside the block: a Ctrl-C or SIGTERM to the process group
    must end them as before (not as Interrupted, which torch reports as a worker that "exited
    unexpectedly" and turns the run's interruption into a failure)."""
    with interruptible():
        pid = os.fork()
        if pid == 0:  # the child: SIGTERM's default action ends it
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(10**7):
                    pass
            finally:
                os._exit(3)  # reached only if the signal raised or was ignored
        _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM
