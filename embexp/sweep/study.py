"""Optuna building blocks from plain config values: storage, study, sampler, pruner, the budget
rules and the duplicate check (no param set runs twice in a study)."""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from embexp.errors import ConfigError, causes
from embexp.eval.keys import FINAL

log = logging.getLogger("embexp.sweep")

SAMPLERS = ("tpe", "random", "grid", "cmaes", "nsga2")
PRUNERS = ("none", "median", "percentile", "hyperband", "successive_halving", "threshold")
FAIL_REASON = "fail_reason"  # user attr of a trial that raised
NOT_RUN = "not_run"  # user attr of a trial closed unlaunched: budget filled elsewhere, or a duplicate
DUPLICATE_OF = "duplicate_of"  # user attr of a trial closed unlaunched: the trial that holds its params
RACE_TRIES = 8  # attempts at opening a storage or a study while other workers set up the same one
RACE_SIGNS = ("already exists", "duplicate key", "unique constraint", "database is locked", "deadlock")
_PASSWORD = re.compile(r"(://[^:/@]*:)(.*)@")
T = TypeVar("T")


class StudyStorageError(ConfigError):
    """The storage, or the study in it, could not be opened: one line (a ConfigError, so the CLI
    prints it without a traceback) naming the storage URL with its password masked, and the cause."""

    def __init__(self, url: str, what: str, cause: BaseException):
        text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
        password = _PASSWORD.search(url)
        if password and password.group(2):
            text = text.replace(password.group(2), "***")
        super().__init__(
            "hydra.sweeper.storage", f"{what} in {mask_url(url)} failed: {type(cause).__name__}: {text}"
        )


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for logs and messages)."""
    return _PASSWORD.sub(r"\1***@", url)


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
    rdb_url = _with_driver(url)
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:"):
        Path(url.split(":///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
        # the driver does not begin transactions (it would, too late): see _begin_immediate
        engine_kwargs["connect_args"] = {"timeout": 60, "isolation_level": None}
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
    storage = _settle(
        lambda: optuna.storages.RDBStorage(rdb_url, engine_kwargs=engine_kwargs, **kwargs),
        url,
        "opening the study storage",
    )
    if url.startswith("sqlite:"):
        _begin_immediate(storage.engine)
    return storage


def _begin_immediate(engine) -> None:
    """Every transaction on a SQLite storage takes the database's write lock as it begins.

    Optuna turns a WAITING trial (a retry, an enqueued param set) RUNNING by reading its state,
    then writing it, in one transaction; PostgreSQL and MySQL lock the row it read (SELECT ...
    FOR UPDATE), SQLite ignores that, and Python's driver begins the transaction only at the
    write: two workers then both take the same trial and both run it. BEGIN IMMEDIATE makes
    each read-then-write atomic (other workers wait, up to the 60 s busy timeout)."""
    from sqlalchemy import event

    event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))


def open_study(storage, url: str, name: str, directions: Sequence[str], pruner) -> tuple[Any, bool]:
    """The study ``name`` in ``storage`` and whether this call created it: it is created when
    missing, else loaded (an earlier run or another worker made it, maybe a moment ago)."""
    import optuna

    def create_or_load() -> tuple[Any, bool]:
        try:
            study = optuna.create_study(
                study_name=name, storage=storage, pruner=pruner, directions=list(directions)
            )
            return study, True
        except optuna.exceptions.DuplicatedStudyError:
            return optuna.load_study(study_name=name, storage=storage, pruner=pruner), False

    return _settle(create_or_load, url, f"opening study '{name}'")


def _settle(fn: Callable[[], T], url: str, what: str) -> T:
    """``fn()``, tried again (at most RACE_TRIES times, after a short random pause that grows)
    while it loses a race with workers setting up the same tables, schema version or study;
    any other failure, or a race that does not settle, is a one-line :class:`StudyStorageError`."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as e:
            if attempt == RACE_TRIES or not _lost_race(e):
                raise StudyStorageError(url, what, e) from e
            log.info("%s: another worker is setting up the same storage; retrying", what)
            time.sleep(random.uniform(0.05, 0.25) * attempt)


def _lost_race(e: BaseException | None) -> bool:
    """Whether ``e`` (or an error behind it) is what a worker gets when another one creates the
    same tables, schema version row or study at the same moment (worth another try), unlike a
    wrong URL, a database that is down or a missing driver."""
    import optuna
    import sqlalchemy.exc

    return any(
        isinstance(c, (sqlalchemy.exc.IntegrityError, optuna.exceptions.DuplicatedStudyError))
        or any(sign in str(c).lower() for sign in RACE_SIGNS)
        for c in causes(e)
    )


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
        return _tpe(seed, kw)
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


def _tpe(seed: int | None, kw: dict):
    """TPE with ``constant_liar`` on unless ``sampler_kwargs`` says otherwise: the study's RUNNING
    trials count as bad results, so parallel asks (several workers, a batch of ``n_jobs``) spread
    out instead of proposing the same region. It changes nothing for one worker asking one trial
    at a time (no RUNNING trial then), so it is always on (as in Optuna 5 by default)."""
    import warnings

    import optuna
    from optuna.exceptions import ExperimentalWarning

    kw = {"constant_liar": True, **kw}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)  # experimental before Optuna 5
        return optuna.samplers.TPESampler(seed=seed, **kw)


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
    if parts[0] in (FINAL, "best"):
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
    not_run / duplicate: closed unlaunched (budget filled elsewhere / params held by another trial).
    """
    from optuna.trial import TrialState

    retried = retried_numbers(all_trials if all_trials is not None else trials)
    c = {
        "complete": 0,
        "pruned": 0,
        "running": 0,
        "failed": 0,
        "retried": 0,
        "not_run": 0,
        "duplicate": 0,
        "waiting": 0,
    }
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
            if t.user_attrs.get(DUPLICATE_OF) is not None:
                c["duplicate"] += 1
            elif t.user_attrs.get(NOT_RUN):
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


# ---- duplicates: no param set runs twice --------------------------------------------------


def params_of(trial) -> dict:
    """A trial's param set: its sampled params, or for a WAITING trial added by
    ``enqueue_trial`` (whose ``params`` stay empty until it is asked) the ones it will run with."""
    return trial.params or dict(trial.system_attrs.get("fixed_params") or {})


def holders(trials) -> list:
    """The trials that stand for a run of their params: COMPLETE, PRUNED, RUNNING, WAITING (a
    retry or an enqueued config, asked next) and FAIL that raised (it counts, and a config that
    fails would fail again). Not a trial closed unlaunched, nor a retried one (its retry holds
    its params)."""
    from optuna.trial import TrialState

    retried = retried_numbers(trials)
    return [
        t
        for t in trials
        if t.state != TrialState.FAIL or not (t.user_attrs.get(NOT_RUN) or t.number in retried)
    ]


def find_duplicate(trial_number: int, trials):
    """The lowest-numbered other trial holding the params of trial ``trial_number`` (``trials``
    read after they were all suggested), or None.

    Race-free across workers: each stores its params before it reads the others', so of two
    trials sampled alike at the same moment, the one read last sees the other's (both may see
    each other: then neither runs, never both)."""
    mine = params_of(next(t for t in trials if t.number == trial_number))
    return next((t for t in holders(trials) if t.number != trial_number and params_of(t) == mine), None)


def unheld(configs: Sequence[Mapping[str, Any]], trials) -> list[Mapping[str, Any]]:
    """The param sets of a finite space (``SearchSpace.configs()``) that no trial holds."""
    held = {frozenset(params_of(t).items()) for t in holders(trials)}
    return [c for c in configs if frozenset(c.items()) not in held]
