"""Signals end a job as *interrupted*, with the shell's status for them (128 + n).

Schedulers stop a job with a signal and count a zero exit status as success: SIGTERM
(``timeout``, Kubernetes, SLURM's time limit and ``scancel``), SIGINT (Ctrl-C), SIGHUP (a closed
terminal), SIGUSR1/SIGUSR2 (SLURM's ``--signal`` warning before the time limit; submitit uses
SIGUSR2). Inside :func:`interruptible` each of them raises :class:`Interrupted` in the main thread
wherever the job is (training, evaluation, writing files), so the job's own ``except``/``finally``
blocks record the state and the process exits with ``128 + n``. A second signal while that
cleanup runs ends the process at once. A signal that was ignored when the block started (``nohup``
ignores SIGHUP; a shell's background job, SIGINT) stays ignored, and a handler a launcher had
installed (submitit's requeue on SIGUSR2) is called after the cleanup.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator

log = logging.getLogger("embexp")

INTERRUPT_SIGNALS = tuple(
    getattr(signal, name)
    for name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1", "SIGUSR2")
    if hasattr(signal, name)
)


class Interrupted(SystemExit):
    """The job was stopped by signal ``signum``; exits with status ``128 + signum``.

    A :class:`SystemExit`, so code that turns ``Exception`` into a failure (Hydra's job runner, a
    sweep's trial wrapper) lets it through, and Lightning re-raises it after its own teardown."""

    def __init__(self, signum: int):
        self.signum = int(signum)
        self.signal_name = signal.Signals(self.signum).name
        super().__init__(128 + self.signum)

    def __str__(self) -> str:
        return f"interrupted by {self.signal_name}"

    def __reduce__(self):  # pickles across processes (submitit, joblib) with its signal
        return (type(self), (self.signum,))


@contextlib.contextmanager
def interruptible(signals: tuple[int, ...] = INTERRUPT_SIGNALS) -> Iterator[None]:
    """Within the block, ``signals`` raise :class:`Interrupted`; outside it the previous handlers
    are back. Only in the main thread (elsewhere Python cannot install handlers: a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []
    owner = os.getpid()

    def handler(signum, frame):
        if os.getpid() != owner:  # a forked child (a DataLoader worker): its previous behaviour
            _as_before(previous.get(signum), signum, frame)
            return
        if fired:  # a second signal while the first one's cleanup runs: stop now
            os.write(2, f"\n{signal.Signals(signum).name} again: stopping at once\n".encode())
            os._exit(128 + signum)
        fired.append(signum)
        log.warning("received %s: stopping (a second signal stops at once)", signal.Signals(signum).name)
        raise Interrupted(signum)

    previous = {}
    for s in signals:
        before = signal.getsignal(s)
        if before is signal.SIG_IGN:
            continue
        previous[s] = before
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, before in previous.items():
            signal.signal(s, before if before is not None else signal.SIG_DFL)
        if fired:
            _chain(previous.get(fired[0]), fired[0])


def _as_before(before, signum: int, frame) -> None:
    """What the signal did before the block, in a process forked inside it: a forked DataLoader
    worker ends as it would have (torch's workers stop quietly on KeyboardInterrupt), so the main
    process sees its own Interrupted, not "worker exited unexpectedly"."""
    if callable(before):
        before(signum, frame)
    else:  # SIG_DFL (or None: set outside Python): the default action, usually ending the process
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _chain(before, signum: int) -> None:
    """Hand the signal to the handler a launcher had installed (submitit requeues the job on its
    preemption signal), after the job recorded its state. Python's own defaults are not called:
    the job already ended as interrupted."""
    if callable(before) and before is not signal.default_int_handler:
        before(signum, None)
