"""Fault injection for subprocess tests (importable with PYTHONPATH=tests/train).

``+callbacks.fault._target_=faults.Faults`` adds one callback that does nothing unless an
environment variable asks for a fault, so a faulty run and its rerun share one config (and one
config hash):

- ``EMBEXP_TEST_KILL_AT_STEP=N``: SIGKILL itself when global step N starts;
- ``EMBEXP_TEST_SIGNAL_AT_STEP=N`` (or ``test``: when the final evaluation starts) with
  ``EMBEXP_TEST_SIGNAL=SIGTERM|SIGINT|SIGUSR1|...``: send itself that signal;
- ``EMBEXP_TEST_PAUSE_AT_STEP=N`` with ``EMBEXP_TEST_PAUSE_FILE=F``: at step N write ``F.reached``
  and wait (up to two minutes) while ``F`` exists, so a test can act while the run is alive;
- ``EMBEXP_TEST_DISK_FULL_AT_EPOCH=E`` (``EMBEXP_TEST_DISK_FULL_BYTES``, default 64 KiB): from
  epoch E on no file may grow past that size (RLIMIT_FSIZE with SIGXFSZ ignored: a larger write
  fails with an OSError mid-file, as on a full disk, while the small run-record files still fit).
"""

import os
import signal
import time

import lightning.pytorch as pl


def _env(name: str) -> str | None:
    return os.environ.get(f"EMBEXP_TEST_{name}")


class Faults(pl.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        step = trainer.global_step
        if _env("KILL_AT_STEP") is not None and step == int(_env("KILL_AT_STEP")):
            os.kill(os.getpid(), signal.SIGKILL)
        if _env("SIGNAL_AT_STEP") == str(step):
            self._signal()
        if _env("PAUSE_AT_STEP") is not None and step == int(_env("PAUSE_AT_STEP")):
            self._pause(_env("PAUSE_FILE"))

    def on_test_start(self, trainer, pl_module):
        if _env("SIGNAL_AT_STEP") == "test":
            self._signal()

    def on_train_epoch_start(self, trainer, pl_module):
        epoch = _env("DISK_FULL_AT_EPOCH")
        if epoch is not None and trainer.current_epoch == int(epoch):
            import resource

            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            limit = int(_env("DISK_FULL_BYTES") or 64 * 1024)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

    @staticmethod
    def _signal():
        os.kill(os.getpid(), getattr(signal, _env("SIGNAL") or "SIGTERM"))

    @staticmethod
    def _pause(gate: str):
        open(gate + ".reached", "w").close()
        deadline = time.monotonic() + 120
        while os.path.exists(gate) and time.monotonic() < deadline:
            time.sleep(0.05)


KillAtStep = Faults  # the name older tests and commands use
