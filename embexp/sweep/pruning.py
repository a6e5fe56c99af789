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

from embexp.utils.io import atomic_write_json

log = logging.getLogger("embexp.sweep")


class PruningHook:
    """``module.eval_hooks`` entry: ``(EvalResult, epoch)`` -> ``trial.report`` -> maybe prune."""

    def __init__(self, ocfg, out: Path, run_id: str | None = None, max_epochs: int | None = None):
        import optuna

        from embexp.sweep.study import make_pruner, open_storage

        self.out, self.run_id = Path(out), run_id
        self.metric = str(ocfg.get("pruning_metric") or "")
        self.number = int(ocfg.trial_number)
        pruner = make_pruner(ocfg.get("pruner") or "none", dict(ocfg.get("pruner_kwargs") or {}))
        storage = open_storage(str(ocfg.storage))
        self.study = optuna.load_study(study_name=str(ocfg.study_name), storage=storage, pruner=pruner)
        trial_id = self.study._storage.get_trial_id_from_study_id_trial_number(self.study._study_id, self.number)
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
                log.warning("pruning metric %s not among the dev metrics (%s...): trial %d is not pruned", self.metric, ", ".join(list(result.metrics)[:5]), self.number)
                self._warned = True
            return
        self.trial.report(float(value), step=int(epoch))
        if self.last_epoch is not None and epoch >= self.last_epoch:
            return
        if self.trial.should_prune():
            msg = f"pruned after epoch {epoch}: {self.metric}={float(value):.4f}"
            log.info("trial %d %s", self.number, msg)
            atomic_write_json(self.out / "metrics.json", {
                "status": "pruned",
                "run_id": self.run_id,
                "epoch": int(epoch),
                "metrics": {self.metric: float(value), **{k: v for k, v in result.metrics.items() if "/slice/" not in k}},
                "optuna": {"study_name": self.study.study_name, "trial_number": self.number},
            })
            raise optuna.TrialPruned(msg)


def attach_pruning(module, ocfg, out: Path, run_id: str | None = None, max_epochs: int | None = None) -> PruningHook:
    hook = PruningHook(ocfg, out, run_id, max_epochs)
    module.eval_hooks.append(hook)
    return hook
