"""The job side of a sweep trial: run the objective, turn failures into a reason the sweeper
can record (and pickle back from another process), keep metrics.json truthful."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from embexp.errors import RunFolderError, user_error

log = logging.getLogger("embexp.sweep")


class TrialError(RuntimeError):
    """A trial that raised: ``reason`` is one line (recorded as the trial's ``fail_reason``),
    ``details`` the traceback. Plain strings only, so it pickles across processes (submitit)."""

    def __init__(self, reason: str, details: str = ""):
        super().__init__(reason, details)
        self.reason, self.details = reason, details

    def __str__(self) -> str:
        return self.reason


def reason_of(e: BaseException) -> str:
    u = user_error(e)
    if u is not None:
        return f"{type(u).__name__}: {u}"
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def run_trial(cfg, objective: Callable[[Any], Any], out: Path) -> Any:
    """``objective(cfg)`` for trial ``cfg.optuna.trial_number``: TrialPruned passes through
    (the sweeper records PRUNED), anything else becomes :class:`TrialError` (FAIL)."""
    import optuna

    try:
        return objective(cfg)
    except optuna.TrialPruned:
        raise
    except Exception as e:
        reason = reason_of(e)
        details = "".join(traceback.format_exception(e))
        log.error("trial %s failed: %s\n%s", cfg.optuna.get("trial_number"), reason, details)
        if isinstance(user_error(e), RunFolderError):  # held by another process, foreign or damaged:
            raise TrialError(reason, details) from None  # never written to (train() said why)
        try:
            from embexp.train.record import RunRecord

            trial = {
                "trial_number": cfg.optuna.get("trial_number"),
                "study_name": cfg.optuna.get("study_name"),
            }
            RunRecord(out).fail(reason, details, optuna=trial)
        except Exception:  # never hide the trial's own error
            log.exception("could not write %s/metrics.json", out)
        raise TrialError(reason, details) from None
