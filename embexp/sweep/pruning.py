"""Pruning inside a trial: after every validation epoch, report the dev metric to the study
and stop the trial when the pruner says so (never after the final epoch: the trial has
finished training by then, and its value counts as COMPLETE).

The sweeper passes the trial's identity as overrides (``++optuna.study_name=...
++optuna.storage=... ++optuna.trial_number=N ++optuna.pruner=median ...``); the job loads the
study from the storage, so this works in the sweeper's process (basic launcher) and in
other processes or machines (submitit) alike.
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning.pytorch as pl

from embexp.train.record import RunRecord

log = logging.getLogger("embexp.sweep")


class PruningHook:
    """``(EvalResult, epoch)`` -> ``trial.report`` -> maybe prune (see :class:`PruningCallback`)."""

    def __init__(self, ocfg, out: Path, run_id: str | None = None, max_epochs: int | None = None):
        import optuna

        from embexp.sweep.study import make_pruner, open_storage

        self.out, self.run_id = Path(out), run_id
        self.metric = str(ocfg.get("pruning_metric") or "")
        self.number = int(ocfg.trial_number)
        pruner = make_pruner(ocfg.get("pruner") or "none", dict(ocfg.get("pruner_kwargs") or {}))
        storage = open_storage(str(ocfg.storage))
        self.study = optuna.load_study(study_name=str(ocfg.study_name), storage=storage, pruner=pruner)
        trial_id = self.study._storage.get_trial_id_from_study_id_trial_number(
            self.study._study_id, self.number
        )
        self.trial = optuna.trial.Trial(self.study, trial_id)
        self.enabled = len(self.study.directions) == 1  # Optuna prunes single-objective studies only
        self._warned = False
        # after the last epoch training is over: pruning saves nothing and would hide a finished
        # trial's value (PRUNED instead of COMPLETE), so that epoch is reported, never pruned
        self.last_epoch = int(max_epochs) - 1 if max_epochs is not None and int(max_epochs) > 0 else None

    def __call__(self, result, epoch: int) -> None:
        import optuna

        if not self.enabled:
            return
        value = result.metrics.get(self.metric)
        if value is None:
            if not self._warned:
                log.warning(
                    "pruning metric %s not among the dev metrics (%s...): trial %d is not pruned",
                    self.metric,
                    ", ".join(list(result.metrics)[:5]),
                    self.number,
                )
                self._warned = True
            return
        self.trial.report(float(value), step=int(epoch))
        if self.last_epoch is not None and epoch >= self.last_epoch:
            return
        if self.trial.should_prune():
            msg = f"pruned after epoch {epoch}: {self.metric}={float(value):.4f}"
            log.info("trial %d %s", self.number, msg)
            dev = {k: v for k, v in result.metrics.items() if "/slice/" not in k}
            trial = {"study_name": self.study.study_name, "trial_number": self.number}
            RunRecord(self.out).prune(
                epoch, {self.metric: float(value), **dev}, run_id=self.run_id, optuna=trial
            )
            raise optuna.TrialPruned(msg)


class PruningCallback(pl.Callback):
    """Reports the dev metric to the trial after every validation and prunes when told.

    In ``conf/callbacks/default.yaml`` for every run; inert unless the sweeper passed the
    trial's identity (``optuna`` node), so a plain run and a sweep trial share one config."""

    def __init__(self, optuna=None, out_dir: str | None = None, run_id: str | None = None):
        self.ocfg, self.out_dir, self.run_id = optuna, out_dir, run_id
        self.hook: PruningHook | None = None

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self.ocfg is not None and self.hook is None and stage == "fit":
            out = self.out_dir or trainer.default_root_dir
            self.hook = PruningHook(self.ocfg, Path(out), self.run_id, max_epochs=trainer.max_epochs)

    def on_validation_end(self, trainer, pl_module) -> None:
        result = getattr(pl_module, "last_eval", None)
        if self.hook is None or trainer.sanity_checking or result is None:
            return
        if getattr(pl_module, "last_eval_epoch", None) == trainer.current_epoch:
            self.hook(result, trainer.current_epoch)
