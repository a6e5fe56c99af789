"""Fault injection for subprocess tests (importable with PYTHONPATH=tests/train).

``+callbacks.fault._target_=faults.KillAtStep``: the process SIGKILLs itself when the global
step named by ``$EMBEXP_TEST_KILL_AT_STEP`` starts. Without the variable it does nothing, so
the killed run and its rerun share one config (and one config hash)."""

import os
import signal

import lightning.pytorch as pl


class KillAtStep(pl.Callback):
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        step = os.environ.get("EMBEXP_TEST_KILL_AT_STEP")
        if step is not None and trainer.global_step == int(step):
            os.kill(os.getpid(), signal.SIGKILL)
