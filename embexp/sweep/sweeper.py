"""The Optuna sweep loop behind ``hydra/sweeper=embexp_optuna``.

One process running this loop is a *worker*; several workers (machines) share a study
through a PostgreSQL storage. Per batch of ``n_jobs`` trials::

    fail stale trials (heartbeat lost: worker killed) -> retries enqueued as WAITING
    count the budget (COMPLETE + PRUNED + RUNNING + FAIL that raised) against n_trials
    ask -> sample the space (define-by-run, conditional params) -> params another trial holds?
        closed unlaunched, ask again (a finite space: a param set no trial holds is enqueued)
    -> job overrides
    record heartbeats of the batch's trials while the launcher runs the jobs
    tell: COMPLETE (values) | PRUNED (the job raised TrialPruned) | FAIL (+ reason)

then, whatever happened, trials.csv, best_params.yaml and plots in the sweep directory.
"""

from __future__ import annotations

import logging
import math
import os
import random
import socket
import threading
import time
import traceback
import zlib
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from embexp.errors import ConfigError
from embexp.sweep.space import SearchSpace, override_value
from embexp.sweep.study import (
    DUPLICATE_OF,
    FAIL_REASON,
    NOT_RUN,
    counted_before,
    counts,
    default_storage,
    directions_of,
    find_duplicate,
    make_pruner,
    make_sampler,
    mask_url,
    open_storage,
    open_study,
    pruning_metric_for,
    retry_callback,
    unheld,
)
from embexp.utils.signals import Interrupted

log = logging.getLogger("embexp.sweep")

# keys the sweeper sets on every job; a command-line value for them is dropped
OWN_KEYS = ("run_id", "hydra.sweep.dir", "hydra.sweep.subdir")
# a worker whose sampler proposes only param sets other trials hold, this many times in a row, stops
MAX_DUPLICATES_IN_A_ROW = 20


class SweepAborted(RuntimeError):
    """Too many trials failed (``max_failure_rate``)."""


class SpaceUsedUp(Exception):
    """No new param set to launch: the sweep ends (cleanly, with this message)."""


def _plain(v: Any) -> Any:
    return OmegaConf.to_container(v, resolve=True) if isinstance(v, (DictConfig, ListConfig)) else v


class Heartbeats:
    """Records heartbeats of the current batch's trials from a daemon thread."""

    def __init__(self, storage, interval: int | None):
        self.storage, self.interval = storage, interval
        self.trial_ids: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, trial_id: int) -> None:
        if not self.interval:
            return
        with self._lock:
            self.trial_ids.add(trial_id)
        self._beat(trial_id)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="optuna-heartbeat", daemon=True)
            self._thread.start()

    def remove(self, trial_id: int) -> None:
        with self._lock:
            self.trial_ids.discard(trial_id)

    def _beat(self, trial_id: int) -> None:
        try:
            self.storage.record_heartbeat(trial_id)
        except Exception as e:  # a database hiccup must not kill the sweep
            log.warning("heartbeat for trial id %s failed: %s", trial_id, e)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                ids = list(self.trial_ids)
            for tid in ids:
                self._beat(tid)

    def stop(self) -> None:
        self._stop.set()


class OptunaSweep:
    def __init__(self, **conf: Any) -> None:
        c = {k: _plain(v) for k, v in conf.items()}
        self.study_name: str | None = c.get("study_name")
        self.storage_url: str | None = c.get("storage")
        self.direction = c.get("direction", "maximize")
        self.n_trials = int(c.get("n_trials", 20))
        self.n_jobs = max(1, int(c.get("n_jobs", 1)))
        self.sampler_name = str(c.get("sampler", "tpe"))
        self.seed = c.get("seed")
        self.sampler_kwargs = dict(c.get("sampler_kwargs") or {})
        self.params = dict(c.get("params") or {})
        self.conditional = dict(c.get("conditional") or {})
        self.custom_search_space = c.get("custom_search_space")
        self.pruner_name = str(c.get("pruner") or "none")
        self.pruner_kwargs = dict(c.get("pruner_kwargs") or {})
        self.pruning_metric = c.get("pruning_metric")
        self.max_failure_rate = float(c.get("max_failure_rate", 0.5))
        self.heartbeat_interval = c.get("heartbeat_interval")
        self.grace_period = c.get("grace_period")
        self.max_retry = c.get("max_retry", 2)
        self.plots = bool(c.get("plots", True))
        self.trial_dir = str(c.get("trial_dir") or "trial_{number}")
        from embexp.sweep.study import PRUNERS, SAMPLERS

        if self.sampler_name.lower() not in SAMPLERS:
            raise ConfigError(
                "hydra.sweeper.sampler", f"expected one of {', '.join(SAMPLERS)}, got {self.sampler_name!r}"
            )
        if self.pruner_name.lower() not in PRUNERS:
            raise ConfigError(
                "hydra.sweeper.pruner", f"expected one of {', '.join(PRUNERS)}, got {self.pruner_name!r}"
            )
        if self.n_trials <= 0:
            raise ConfigError("hydra.sweeper.n_trials", f"must be positive, got {self.n_trials}")
        if not 0 <= self.max_failure_rate <= 1:
            raise ConfigError(
                "hydra.sweeper.max_failure_rate", f"must be in [0, 1], got {self.max_failure_rate}"
            )
        self.job_idx = 0
        self.launcher = None
        self.duplicates_in_a_row = 0

    # ---- Hydra plumbing ------------------------------------------------------------------

    def setup(self, *, hydra_context, task_function, config: DictConfig) -> None:
        from hydra.core.hydra_config import HydraConfig
        from hydra.core.plugins import Plugins

        HydraConfig.instance().set_config(
            config
        )  # Hydra's multirun leaves it unset: ${hydra:...} in paths/sweep dir need it
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )
        self.sweep_dir = Path(str(config.hydra.sweep.dir)).resolve()

    def _base_lookup(self, key: str) -> Any:
        choices = OmegaConf.select(self.config, "hydra.runtime.choices") or {}
        if key in choices:
            return choices[key]
        return OmegaConf.select(self.config, key, default=None)

    def _objective_names(self, n: int) -> list[str]:
        opt = _plain(OmegaConf.select(self.config, "optimized_metric", default=None))
        names = [opt] if isinstance(opt, str) else list(opt or [])
        if not names:
            names = ["value"] if n == 1 else [f"value_{i}" for i in range(n)]
        if len(names) != n:
            raise ConfigError(
                "optimized_metric",
                f"{len(names)} key(s) {names} but {n} direction(s) in hydra.sweeper.direction",
            )
        return [str(x) for x in names]

    # ---- the sweep -----------------------------------------------------------------------

    def sweep(self, arguments: list[str]) -> Any:
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, self.sweep_dir / "multirun.yaml")
        space = self._search_space(arguments)
        directions = directions_of(self.direction)
        names = self._objective_names(len(directions))
        grid = space.grid() if self.sampler_name.lower() == "grid" else None
        self.url = self.storage_url or default_storage(self.sweep_dir)
        rdb = not self.url.startswith("journal:")
        hb = int(self.heartbeat_interval) if (self.heartbeat_interval and rdb) else None
        storage = open_storage(
            self.url, heartbeat_interval=hb, grace_period=self.grace_period, max_retry=self.max_retry
        )
        study, study_name = self._open_study(storage, directions, grid)
        self._note_command(study, space, names)
        self.configs = space.configs()
        n_target = self._target(self.configs)
        self._set_report_metric()
        self.study_name_resolved = study_name
        log.info(
            "study %s in %s: %s, %s sampler, %s pruner on %s, %d trials in total (%d per batch)",
            study_name,
            mask_url(self.url),
            "/".join(directions),
            self.sampler_name,
            self.pruner_name,
            self.report_metric,
            n_target,
            self.n_jobs,
        )
        self._run_and_report(study, storage, hb, space, n_target, names, directions)
        return None

    def _search_space(self, arguments: list[str]) -> SearchSpace:
        """The search space from ``params``/``conditional`` and the sweep overrides on the
        command line (less the keys the sweeper sets itself)."""
        arguments = [a for a in arguments if a.split("=", 1)[0].lstrip("+~") not in OWN_KEYS]
        space = SearchSpace.build(
            self.params, arguments, self.conditional, self.custom_search_space, base_lookup=self._base_lookup
        )
        if not space.params:
            raise ConfigError(
                "hydra.sweeper.params",
                "nothing to search: give params (hparams_search config) "
                "or sweep overrides like 'loss.temperature=interval(0.01,0.1)'",
            )
        return space

    def _target(self, configs: list | None) -> int:
        """``n_trials``, or the number of distinct param sets of a finite space (choices and int
        ranges only) when that is smaller: such a sweep ends once every set has run."""
        if configs is None or len(configs) >= self.n_trials:
            return self.n_trials
        say = log.info if self.sampler_name.lower() == "grid" else log.warning
        say(
            "the search space has %d distinct param sets: n_trials=%d is capped at %d",
            len(configs),
            self.n_trials,
            len(configs),
        )
        return len(configs)

    def _open_study(self, storage, directions: list[str], grid: dict | None) -> tuple[Any, str]:
        """Create or join the study (pruner, per-worker seeded sampler); returns it and its name.
        A resumed study must have the configured directions."""
        import optuna

        if len(directions) > 1 and self.pruner_name != "none":
            log.warning(
                "pruning needs a single objective: pruner=%s ignored for %d objectives",
                self.pruner_name,
                len(directions),
            )
            self.pruner_name = "none"
        pruner = make_pruner(self.pruner_name, self.pruner_kwargs)
        study_name = self.study_name or (
            OmegaConf.select(self.config, "hydra.runtime.choices.hparams_search") or "embexp"
        )
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study, created = open_study(storage, self.url, study_name, directions, pruner)
        seed = self._worker_seed(study, created)
        study.sampler = make_sampler(
            self.sampler_name, seed, self.sampler_kwargs, grid=grid, n_objectives=len(directions)
        )
        self.rng = random.Random(seed)  # picks the param set enqueued after a duplicate
        have = [d.name.lower() for d in study.directions]
        if have != directions:
            raise ConfigError(
                "hydra.sweeper.direction",
                f"study '{study_name}' in {mask_url(self.url)} has directions {have}, not {directions}",
            )
        return study, study_name

    def _set_report_metric(self) -> None:
        """Warn when optimising on the test split; pick the metric trials report for pruning."""
        opt = _plain(OmegaConf.select(self.config, "optimized_metric", default=None))
        if opt is None or any("/test/" in str(k) for k in ([opt] if isinstance(opt, str) else opt)):
            log.warning(
                "optimising %s: selecting configs on the test split overfits it; "
                "optimized_metric=final/dev/ndcg@10 keeps test for the final report",
                opt or "the test primary metric (optimized_metric is null)",
            )
        self.report_metric = (
            self.pruning_metric
            or pruning_metric_for(opt)
            or f"dev/{OmegaConf.select(self.config, 'eval.primary', default='ndcg@10')}"
        )

    def _run_and_report(
        self,
        study,
        storage,
        hb: int | None,
        space: SearchSpace,
        n_target: int,
        names: list[str],
        directions: list[str],
    ) -> None:
        """Run the trial loop with heartbeats; then, whatever happened, write the sweep reports."""
        from embexp.sweep.report import write_reports

        beats = Heartbeats(storage, hb)
        try:
            self._loop(study, space, n_target, hb, beats)
        finally:
            beats.stop()
            try:
                write_reports(
                    study,
                    self.sweep_dir,
                    names,
                    directions,
                    logger_cfg=OmegaConf.select(self.config, "logger"),
                    plots=self.plots,
                    sweeper_conf=self._conf_dict(),
                    fixed=[line for line in space.overrides({})],
                )
            except Exception:
                log.exception("writing the sweep reports failed")

    def _worker_seed(self, study, created: bool) -> int | None:
        """``seed`` as is for the worker that created the study (a fresh study is reproducible).
        A worker that joins or resumes it mixes in the study's trial count (not to replay the
        samples it has) and its host and pid: workers started together on one study, SQLite
        included, must not draw alike (the duplicate check would then turn most of their asks
        away)."""
        if self.seed is None:
            return None
        if created:
            return int(self.seed)
        n = len(study.get_trials(deepcopy=False))
        worker = zlib.crc32(f"{socket.gethostname()}:{os.getpid()}".encode())
        return (int(self.seed) * 1_000_003 + n * 7919 + worker) % (2**31)

    def _conf_dict(self) -> dict:
        return {
            "study_name": self.study_name_resolved,
            "storage": mask_url(self.url),
            "direction": self.direction,
            "n_trials": self.n_trials,
            "n_jobs": self.n_jobs,
            "sampler": self.sampler_name,
            "seed": self.seed,
            "pruner": self.pruner_name,
            "pruning_metric": self.report_metric,
            "params": self.params,
            "conditional": self.conditional,
        }

    def _note_command(self, study, space: SearchSpace, names: list[str]) -> None:
        """Remember what the study searches; warn when a resumed study is asked something else."""
        spec = {
            "params": {k: repr(v) for k, v in space.params.items()},
            "fixed": sorted(space.fixed.values()),
            "optimized_metric": names,
        }
        old = study.user_attrs.get("embexp_spec")
        if old is None:
            study.set_user_attr("embexp_spec", spec)
        elif old != spec:
            log.warning(
                "study '%s' was started with a different search (params/fixed overrides/metric); "
                "its trials are mixed in.\n  was: %s\n  now: %s",
                study.study_name,
                old,
                spec,
            )

    def _loop(self, study, space: SearchSpace, n_target: int, hb: int | None, beats: Heartbeats) -> None:
        import warnings

        from optuna.exceptions import ExperimentalWarning
        from optuna.storages import fail_stale_trials

        warnings.filterwarnings("ignore", category=ExperimentalWarning)
        allowed_failures = int(self.max_failure_rate * n_target + 1e-9)
        waited = False
        while True:
            if hb:
                fail_stale_trials(study)
            trials = study.get_trials(deepcopy=False)
            c = counts(trials)
            if c["failed"] > allowed_failures:
                raise SweepAborted(
                    f"{c['failed']} trials failed, more than max_failure_rate={self.max_failure_rate} "
                    f"x n_trials={n_target}; see fail_reason in {self.sweep_dir / 'trials.csv'}"
                )
            to_run = min(self.n_jobs, n_target - c["counted"])
            if to_run <= 0:
                if c["running"] and hb:  # other workers' trials, or stale ones not yet past the grace period
                    if not waited:
                        log.info(
                            "budget taken; waiting for %d running trial(s) of other workers (or stale ones)",
                            c["running"],
                        )
                        waited = True
                    time.sleep(min(hb, 10))
                    continue
                break
            try:
                self._run_batch(study, space, to_run, n_target, beats)
            except SpaceUsedUp as e:
                log.warning("stopping this worker before n_trials=%d: %s", n_target, e)
                break
        c = counts(study.get_trials(deepcopy=False))
        log.info(
            "study %s: %d complete, %d pruned, %d failed (%d retried after a lost worker), "
            "%d not launched as duplicates",
            study.study_name,
            c["complete"],
            c["pruned"],
            c["failed"],
            c["retried"],
            c["duplicate"],
        )

    def _job_overrides(self, trial, number_for_dir: int, sampled: dict, space: SearchSpace) -> list[str]:
        sub = self.trial_dir.format(number=number_for_dir)
        name = self.study_name_resolved
        ov = space.overrides(sampled)
        ov += [
            f"hydra.sweep.dir={override_value(str(self.sweep_dir))}",
            f"hydra.sweep.subdir={override_value(sub)}",
            f"run_id={override_value(f'{name}-{sub}'.replace('/', '-'))}",
            f"++optuna.study_name={override_value(name)}",
            f"++optuna.storage={override_value(self.url)}",
            f"++optuna.trial_number={trial.number}",
            f"++optuna.pruner={override_value(self.pruner_name)}",
            f"++optuna.pruner_kwargs={override_value(self.pruner_kwargs)}",
            f"++optuna.pruning_metric={override_value(self.report_metric)}",
        ]
        wb = OmegaConf.select(self.config, "logger.wandb")
        if isinstance(wb, DictConfig):
            tags = (
                [str(t) for t in (wb.get("tags") or [])]
                + [f"trial_{trial.number}"]
                + [f"{k}={v}"[:64] for k, v in sampled.items()]
            )
            ov += [f"logger.wandb.group={override_value(name)}", f"logger.wandb.tags={override_value(tags)}"]
        return ov

    def _run_batch(self, study, space: SearchSpace, to_run: int, n_target: int, beats: Heartbeats) -> None:
        """Ask up to ``to_run`` trials, launch them together, tell their results. Raises
        :class:`SpaceUsedUp` (after launching the trials already asked) when none is left."""
        batch: list[tuple[Any, list[str]]] = []
        used_up: SpaceUsedUp | None = None
        for _ in range(to_run):
            try:
                job = self._next_job(study, space, n_target, beats)
            except SpaceUsedUp as e:
                used_up = e
                break
            if job is not None:
                batch.append(job)
        if batch:
            self._launch(study, batch, beats)
        if used_up is not None:
            raise used_up

    def _next_job(
        self, study, space: SearchSpace, n_target: int, beats: Heartbeats
    ) -> tuple[Any, list[str]] | None:
        """The next trial to launch and its job overrides; None when its slot stays empty (the
        budget was filled by another worker; its config does not compose: FAIL). A trial whose
        params another trial holds is closed unlaunched and the study asked again."""
        from optuna.trial import TrialState

        while True:
            trial = study.ask()
            beats.add(trial._trial_id)
            root = study._storage.get_trial(trial._trial_id).system_attrs.get("failed_trial")
            if root is None and counted_before(trial.number, study.get_trials(deepcopy=False)) >= n_target:
                trial.set_user_attr(NOT_RUN, "budget filled by another worker; never launched")
                self._close(study, trial, TrialState.FAIL, beats)
                return None
            try:
                sampled = space.sample(trial)
            except Exception as e:
                self._fail(study, trial, f"config: {_reason(e)}", beats)
                return None
            dup = find_duplicate(trial.number, study.get_trials(deepcopy=False))
            if dup is None:
                self.duplicates_in_a_row = 0
                return self._prepare(study, trial, root, sampled, space, beats)
            self._skip_duplicate(study, trial, dup, beats)

    def _skip_duplicate(self, study, trial, dup, beats: Heartbeats) -> None:
        """Close ``trial`` unlaunched since ``dup`` holds its params: FAIL with ``not_run`` and
        ``duplicate_of`` (not counted, ignored by the samplers). On a finite space a param set
        that no trial holds is enqueued for the next ask. Raises :class:`SpaceUsedUp` when there
        is none, or after MAX_DUPLICATES_IN_A_ROW duplicates in a row (an unlisted space)."""
        from optuna.trial import TrialState

        trial.set_user_attr(DUPLICATE_OF, dup.number)
        trial.set_user_attr(NOT_RUN, f"same params as trial {dup.number} ({dup.state.name}); never launched")
        self._close(study, trial, TrialState.FAIL, beats)
        log.info(
            "trial %d: same params as trial %d (%s); not launched", trial.number, dup.number, dup.state.name
        )
        self.duplicates_in_a_row += 1
        if dup.state == TrialState.RUNNING:  # maybe a worker that skips this trial as we skip its own:
            time.sleep(random.uniform(0, 0.2))  # a random pause keeps the two from meeting again
        if self.duplicates_in_a_row >= MAX_DUPLICATES_IN_A_ROW:
            raise SpaceUsedUp(
                f"the sampler proposed {self.duplicates_in_a_row} param sets in a row that other trials "
                "hold (the search space looks used up)"
            )
        if self.configs is not None:
            left = unheld(self.configs, study.get_trials(deepcopy=False))
            if not left:
                raise SpaceUsedUp(
                    f"all {len(self.configs)} param sets of the search space have run or are running"
                )
            study.enqueue_trial(self.rng.choice(left))

    def _prepare(
        self, study, trial, root: int | None, sampled: dict, space: SearchSpace, beats: Heartbeats
    ) -> tuple[Any, list[str]] | None:
        """The job overrides of a sampled trial, checked by composing its config (a config that
        does not compose fails the trial here, not in the launcher); None when it fails."""
        number = root if root is not None else trial.number
        try:
            overrides = self._job_overrides(trial, number, sampled, space)
            self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        except Exception as e:
            self._fail(study, trial, f"config: {_reason(e)}", beats)
            return None
        run_dir = self.sweep_dir / self.trial_dir.format(number=number)
        trial.set_user_attr("run_dir", str(run_dir))
        trial.set_user_attr("overrides", [f"{k}={override_value(v)}" for k, v in sampled.items()])
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        if root is not None:
            trial.set_user_attr(FAIL_REASON, None)  # copied from the failed original
            log.info(
                "trial %d retries trial %d (interrupted, or its worker was lost) in %s",
                trial.number,
                root,
                run_dir,
            )
        return trial, overrides

    def _launch(self, study, batch: list[tuple[Any, list[str]]], beats: Heartbeats) -> None:
        """Hand the batch to the launcher; tell each trial its job's result."""
        for trial, _ov in batch:
            log.info(
                "trial %d: %s", trial.number, " ".join(trial.user_attrs.get("overrides", [])) or "(no params)"
            )
        try:
            rets = self.launcher.launch([tuple(ov) for _, ov in batch], initial_job_idx=self.job_idx)
        except (KeyboardInterrupt, SystemExit) as e:  # a signal (embexp's Interrupted) or Ctrl-C
            why = str(e) if isinstance(e, Interrupted) else "interrupted (Ctrl-C)"
            for trial, _ in batch:
                self._fail(study, trial, f"{why}; retried on the next run", beats, retry=True)
            raise
        except Exception as e:
            log.error(
                "the launcher failed for trials %s:\n%s", [t.number for t, _ in batch], traceback.format_exc()
            )
            for trial, _ in batch:
                self._fail(study, trial, f"launcher: {_reason(e)}", beats)
            return
        finally:
            self.job_idx += len(batch)
        for (trial, _), ret in zip(batch, rets):
            self._tell(study, trial, ret, beats)

    def _close(self, study, trial, state, beats: Heartbeats, values=None) -> None:
        """Tell ``trial`` its end and stop its heartbeat."""
        try:
            _safe_tell(study, trial, values, state=state)
        finally:
            beats.remove(trial._trial_id)

    def _tell(self, study, trial, ret, beats: Heartbeats) -> None:
        import optuna
        from hydra.core.utils import JobStatus
        from optuna.trial import TrialState

        n = len(study.directions)
        value = getattr(ret, "_return_value", None)
        if ret.status == JobStatus.COMPLETED:
            values, why = _values(value, n)
            if why:
                self._fail(study, trial, why, beats)
                return
            self._close(study, trial, TrialState.COMPLETE, beats, values if n > 1 else values[0])
            log.info("trial %d complete: %s", trial.number, values if n > 1 else values[0])
        elif isinstance(value, optuna.TrialPruned):
            self._close(study, trial, TrialState.PRUNED, beats)
            log.info("trial %d pruned: %s", trial.number, value)
        else:
            self._fail(study, trial, _reason(value), beats)

    def _fail(self, study, trial, reason: str, beats: Heartbeats, retry: bool = False) -> None:
        from optuna.trial import TrialState

        log.warning("trial %d failed: %s", trial.number, reason)
        try:
            try:
                trial.set_user_attr(FAIL_REASON, reason[:4000])
            except Exception:  # finished meanwhile (declared stale by another worker)
                pass
            _safe_tell(study, trial, state=TrialState.FAIL)
            if retry:
                frozen = study._storage.get_trial(trial._trial_id)
                retry_callback(self.max_retry)(study, frozen)
        finally:
            beats.remove(trial._trial_id)


def _safe_tell(study, trial, *args, **kwargs) -> None:
    """``study.tell`` outside ``optimize``: the grid sampler calls ``study.stop()`` once the grid
    is used up, which raises there; the trial's state is stored regardless (and the loop ends
    on the budget, which a finite space caps at its size)."""
    from optuna.exceptions import UpdateFinishedTrialError

    try:
        study.tell(trial, *args, **kwargs)
    except (
        UpdateFinishedTrialError
    ):  # declared stale meanwhile (heartbeat later than grace_period) and retried
        log.warning(
            "trial %d was declared stale by another worker (a heartbeat came later than grace_period) "
            "and retried; this result is not recorded",
            trial.number,
        )
    except RuntimeError as e:
        if "Study.stop" not in str(e):
            raise


def _values(value: Any, n: int) -> tuple[list[float] | None, str | None]:
    vals = list(value) if isinstance(value, (list, tuple, ListConfig)) else [value]
    if len(vals) != n:
        return None, f"the job returned {len(vals)} value(s) {vals!r} for {n} objective(s)"
    out = []
    for v in vals:
        if v is None:
            return None, "the job returned no value (optimized_metric missing from metrics.json?)"
        try:
            f = float(v)
        except (TypeError, ValueError):
            return None, f"the job returned a non-number {v!r}"
        if not math.isfinite(f):
            return None, f"the objective is {f}"
        out.append(f)
    return out, None


def _reason(e: Any) -> str:
    from embexp.errors import user_error as _user_error

    if e is None:
        return "unknown error"
    reason = getattr(e, "reason", None)
    if reason:
        return str(reason)
    if isinstance(e, BaseException):
        u = _user_error(e)
        if u is not None:
            e = u
        return f"{type(e).__name__}: {e}".strip()
    return str(e)
