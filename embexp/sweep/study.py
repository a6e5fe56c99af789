"""Optuna building blocks from plain config values: storage, sampler, pruner, budget counting."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from embexp.errors import ConfigError

log = logging.getLogger("embexp.sweep")

SAMPLERS = ("tpe", "random", "grid", "cmaes", "nsga2")
PRUNERS = ("none", "median", "percentile", "hyperband", "successive_halving", "threshold")
FAIL_REASON = "fail_reason"  # user attr of a trial that raised
NOT_RUN = "not_run"  # user attr of a trial asked after another worker filled the budget


def default_storage(sweep_dir: str | Path) -> str:
    return f"sqlite:///{Path(sweep_dir).resolve() / 'optuna.db'}"


def retry_callback(max_retry: int | None):
    """Optuna's retry-on-stale callback (renamed in 4.9: RetryFailedTrialCallback before)."""
    import optuna.storages as s

    cls = getattr(s, "RetryHeartbeatStaleTrialCallback", None) or s.RetryFailedTrialCallback
    return cls(max_retry=max_retry, inherit_intermediate_values=True)


def open_storage(
    url: str,
    *,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    max_retry: int | None = None,
):
    """An Optuna storage for ``url``.

    ``sqlite:///PATH``, ``postgresql://...``, ``mysql://...``: RDBStorage (heartbeats when
    ``heartbeat_interval`` is set); ``journal:PATH``: a journal file (no heartbeats).
    """
    import inspect

    import optuna

    if url.startswith("journal:"):
        from optuna.storages.journal import JournalFileBackend

        path = Path(url[len("journal:") :])
        path.parent.mkdir(parents=True, exist_ok=True)
        if heartbeat_interval:
            log.warning(
                "journal storage has no heartbeats: trials of a killed worker stay RUNNING "
                "(use sqlite:// or postgresql://)"
            )
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    if "://" not in url:
        raise ConfigError(
            "hydra.sweeper.storage",
            f"expected a database URL (sqlite:///PATH, postgresql://...) or journal:PATH, got {url!r}",
        )
    url = _with_driver(url)
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:"):
        Path(url.split(":///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs["connect_args"] = {"timeout": 60}
    else:
        engine_kwargs["pool_pre_ping"] = True
    kwargs: dict[str, Any] = {}
    if heartbeat_interval:
        name = (
            "heartbeat_stale_trial_callback"
            if "heartbeat_stale_trial_callback" in inspect.signature(optuna.storages.RDBStorage).parameters
            else "failed_trial_callback"
        )
        kwargs = {
            "heartbeat_interval": int(heartbeat_interval),
            "grace_period": int(grace_period) if grace_period else None,
            name: retry_callback(max_retry),
        }
    for attempt in range(5):
        try:
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)
        except Exception as e:  # workers starting together race to create the tables of a new database
            if attempt == 4 or "already exists" not in str(e):
                raise
            import random
            import time

            log.info("storage tables being created by another worker; retrying")
            time.sleep(0.5 + random.random())


def _with_driver(url: str) -> str:
    """``postgresql://`` means psycopg 3 to SQLAlchemy 2.1+; use psycopg2 when only it is installed."""
    if url.startswith(("postgresql://", "postgres://")):
        import importlib.util

        if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
            return "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


def make_sampler(
    name: str,
    seed: int | None,
    kwargs: Mapping[str, Any] | None,
    *,
    grid: Mapping[str, list] | None = None,
    n_objectives: int = 1,
):
    import optuna

    name = str(name).lower()
    classes = {
        "tpe": optuna.samplers.TPESampler,
        "random": optuna.samplers.RandomSampler,
        "grid": optuna.samplers.GridSampler,
        "cmaes": optuna.samplers.CmaEsSampler,
        "nsga2": optuna.samplers.NSGAIISampler,
    }
    kw = _accepted(classes[name], dict(kwargs or {}), "sampler_kwargs") if name in classes else {}
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, **kw)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed, **kw)
    if name == "grid":
        return optuna.samplers.GridSampler(dict(grid or {}), seed=seed, **kw)
    if name == "cmaes":
        try:
            import cmaes  # noqa: F401
        except ImportError as e:
            raise ConfigError(
                "hydra.sweeper.sampler", "cmaes needs the 'cmaes' package (pip install cmaes)"
            ) from e
        if n_objectives > 1:
            raise ConfigError("hydra.sweeper.sampler", "cmaes is single-objective; use nsga2")
        return optuna.samplers.CmaEsSampler(seed=seed, **kw)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, **kw)
    raise ConfigError("hydra.sweeper.sampler", f"expected one of {', '.join(SAMPLERS)}, got {name!r}")


def make_pruner(name: str | None, kwargs: Mapping[str, Any] | None = None):
    import optuna

    kw = dict(kwargs or {})
    name = str(name or "none").lower()
    table = {
        "none": optuna.pruners.NopPruner,
        "median": optuna.pruners.MedianPruner,
        "percentile": optuna.pruners.PercentilePruner,
        "hyperband": optuna.pruners.HyperbandPruner,
        "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
        "threshold": optuna.pruners.ThresholdPruner,
    }
    if name not in table:
        raise ConfigError("hydra.sweeper.pruner", f"expected one of {', '.join(PRUNERS)}, got {name!r}")
    if name == "none":
        return table[name]()
    try:
        return table[name](**_accepted(table[name], kw, "pruner_kwargs"))
    except (TypeError, ValueError) as e:
        raise ConfigError("hydra.sweeper.pruner_kwargs", f"{name}: {e}") from e


def _accepted(cls, kw: dict, where: str) -> dict:
    """The kwargs ``cls`` takes; others are dropped with a warning (a sweep config written for
    one pruner or sampler stays usable with ``hydra.sweeper.pruner=OTHER`` on the command line)."""
    import inspect

    params = inspect.signature(cls).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return kw
    dropped = sorted(set(kw) - set(params))
    if dropped:
        log.warning("hydra.sweeper.%s: %s does not take %s; ignored", where, cls.__name__, ", ".join(dropped))
    return {k: v for k, v in kw.items() if k in params}


def directions_of(direction: Any) -> list[str]:
    ds = [direction] if isinstance(direction, str) else list(direction)
    out = []
    for d in ds:
        d = str(d).lower()
        if d in ("max", "maximise"):
            d = "maximize"
        if d in ("min", "minimise"):
            d = "minimize"
        if d not in ("maximize", "minimize"):
            raise ConfigError("hydra.sweeper.direction", f"expected maximize or minimize, got {d!r}")
        out.append(d)
    if not out:
        raise ConfigError("hydra.sweeper.direction", "at least one direction")
    return out


def pruning_metric_for(optimized: Any) -> str | None:
    """The per-epoch (dev) key for an optimized metric: final/test/ndcg@10 -> dev/ndcg@10."""
    if not isinstance(optimized, str) or not optimized:
        return None
    parts = optimized.split("/")
    if parts[0] in ("final", "best"):
        parts = parts[1:]
    if parts and parts[0] in ("dev", "test", "train", "val"):
        parts = parts[1:]
    return "dev/" + "/".join(parts) if parts else None


# ---- budget -------------------------------------------------------------------------------


def retried_numbers(trials) -> set[int]:
    """Numbers of FAIL trials whose retry was enqueued (stale trials of a killed worker, or
    trials interrupted with Ctrl-C): the retry stands in for them in the budget."""
    out: set[int] = set()
    for t in trials:
        out.update(t.system_attrs.get("retry_history") or [])
    return out


def counts(trials, all_trials=None) -> dict[str, int]:
    """Trials by what they mean for the budget (``n_trials``).

    counted: COMPLETE + PRUNED + RUNNING + FAIL that raised (not retried, not 'not run').
    failed: FAIL that raised. WAITING (enqueued retries) are asked before new trials.
    """
    from optuna.trial import TrialState

    retried = retried_numbers(all_trials if all_trials is not None else trials)
    c = {"complete": 0, "pruned": 0, "running": 0, "failed": 0, "retried": 0, "not_run": 0, "waiting": 0}
    for t in trials:
        if t.state == TrialState.COMPLETE:
            c["complete"] += 1
        elif t.state == TrialState.PRUNED:
            c["pruned"] += 1
        elif t.state == TrialState.RUNNING:
            c["running"] += 1
        elif t.state == TrialState.WAITING:
            c["waiting"] += 1
        elif t.state == TrialState.FAIL:
            if t.user_attrs.get(NOT_RUN):
                c["not_run"] += 1
            elif t.number in retried:
                c["retried"] += 1
            else:
                c["failed"] += 1
    c["finished"] = c["complete"] + c["pruned"]
    c["counted"] = c["finished"] + c["running"] + c["failed"]
    return c


def counted_before(trial_number: int, trials) -> int:
    """Budget-counting trials (WAITING retries included) numbered below ``trial_number``."""
    c = counts([t for t in trials if t.number < trial_number], all_trials=trials)
    return c["counted"] + c["waiting"]
