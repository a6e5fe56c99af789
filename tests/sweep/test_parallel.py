"""Several workers on one study: they create or join it at the same moment (the storage race is
retried; a lasting failure is one line) and no param set runs twice (the duplicate check, TPE's
constant liar, per-worker seeds); a finite space ends the sweep once every param set ran. The
real sweep loop with a stub launcher (stub_sweep.py): no training, seconds."""

import contextlib
import csv
import itertools
import json
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc
from optuna.distributions import IntDistribution
from optuna.trial import TrialState

from embexp.errors import ConfigError
from embexp.sweep import study as study_mod
from embexp.sweep.study import counts, find_duplicate, holders, open_storage, open_study, unheld

from conftest import ROOT, TINY, run_cli
from stub_sweep import fresh_pg_database, launched, pg_reachable, run_sweep

optuna.logging.set_verbosity(optuna.logging.WARNING)
HERE = Path(__file__).resolve().parent
GRID = {"a": "choice(0,1,2)", "b": "range(0,4)"}  # 12 param sets
SECRET_URL = "postgresql://u:s3cret@127.0.0.1:1/optuna"  # nothing listens on port 1


def load(url: str):
    return optuna.load_study(study_name="stub", storage=open_storage(url))


def assert_each_param_set_held_once(study) -> None:
    """No two trials that ran, run or will run hold the same params; every trial closed as a
    duplicate names a trial that holds its params."""
    trials = study.get_trials(deepcopy=False)
    held = [tuple(sorted(t.params.items())) for t in holders(trials)]
    assert len(held) == len(set(held)), held
    by_number = {t.number: t for t in trials}
    for t in trials:
        if t.user_attrs.get("duplicate_of") is not None:
            assert t.state == TrialState.FAIL and by_number[t.user_attrs["duplicate_of"]].params == t.params


def test_find_duplicate_among_the_trials_that_hold_params():
    """COMPLETE, PRUNED, RUNNING, WAITING and FAIL that raised hold their params; a trial closed
    unlaunched or one that was retried (its retry holds them) does not."""
    study = optuna.create_study()
    dist = {"a": IntDistribution(0, 9)}

    def add(a, state, user=None, system=None):
        value = 0.5 if state == TrialState.COMPLETE else None
        t = optuna.trial.create_trial(
            state=state,
            value=value,
            params={"a": a},
            distributions=dist,
            user_attrs=user,
            system_attrs=system,
        )
        study.add_trial(t)

    add(0, TrialState.COMPLETE)  # 0
    add(1, TrialState.PRUNED)  # 1
    add(2, TrialState.FAIL, user={"fail_reason": "OOM"})  # 2: it counts, it would fail again
    add(3, TrialState.FAIL, user={"not_run": "same params as trial 0", "duplicate_of": 0})  # 3
    add(4, TrialState.FAIL)  # 4: its worker was killed ...
    study.enqueue_trial({"a": 6})
    study.ask().suggest_int("a", 0, 9)  # 5: RUNNING
    add(4, TrialState.WAITING, system={"failed_trial": 4, "retry_history": [4]})  # 6: ... 4 retried
    trials = study.get_trials(deepcopy=False)
    for a, holder in {0: 0, 1: 1, 2: 2, 3: None, 4: 6, 5: None, 6: 5, 7: None}.items():
        probe = optuna.trial.create_trial(state=TrialState.RUNNING, params={"a": a}, distributions=dist)
        probe.number = len(trials)
        dup = find_duplicate(probe.number, [*trials, probe])
        assert (dup.number if dup else None) == holder, a
    configs = [{"a": a} for a in range(10)]
    assert unheld(configs, trials) == [{"a": a} for a in (3, 5, 7, 8, 9)]


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_a_finite_space_ends_the_sweep_once_every_param_set_ran(sampler, tmp_path, caplog):
    """4 param sets, n_trials=10: each runs once, and the sweep ends with a message."""
    sd = tmp_path / "sweep"
    with caplog.at_level("INFO", logger="embexp.sweep"):
        run_sweep(sd, params={"a": "choice(0,1)", "b": "choice(x,y)"}, n_trials=10, sampler=sampler)
    runs = launched(sd)
    assert sorted(map(json.dumps, runs)) == sorted(
        json.dumps({"a": a, "b": b}) for a, b in itertools.product("01", "xy")
    )
    assert "the search space has 4 distinct param sets: n_trials=10 is capped at 4" in caplog.text
    study = load(f"sqlite:///{sd / 'optuna.db'}")
    assert counts(study.trials)["counted"] == 4
    assert_each_param_set_held_once(study)


def test_a_sampler_that_only_repeats_itself_is_stopped(tmp_path, caplog):
    """A space that cannot be listed (custom_search_space) with 2 param sets, n_trials=6: both
    run once, then the worker stops after 20 duplicates in a row, without an error."""
    sd = tmp_path / "sweep"
    with caplog.at_level("INFO", logger="embexp.sweep"):
        run_sweep(sd, params={"a": "choice(0,1)"}, n_trials=6, custom="stub_sweep.same_space")
    assert sorted(r["a"] for r in launched(sd)) == ["0", "1"]
    assert "proposed 20 param sets in a row that other trials hold" in caplog.text
    study = load(f"sqlite:///{sd / 'optuna.db'}")
    n_skipped = counts(study.trials)["duplicate"]
    assert n_skipped >= 20  # and any before the second set came up
    assert_each_param_set_held_once(study)
    table = list(csv.DictReader((sd / "trials.csv").open()))  # reports written as after any sweep
    skipped = [r for r in table if r["duplicate_of"]]
    assert len(skipped) == n_skipped and all("never launched" in r["fail_reason"] for r in skipped)


def test_storage_race_is_retried_and_a_lasting_failure_is_one_line(monkeypatch):
    """The error a worker gets when another one stamps the schema version at the same moment is
    retried after a short random pause; when it does not settle, or on any other error (not
    retried), the error is one line naming the storage with its password masked."""
    calls, pauses = [], []

    def storage_failing(times, error):
        def make(url, **kwargs):
            calls.append(url)
            if len(calls) <= times:
                raise error
            return "storage"

        return make

    race = sqlalchemy.exc.IntegrityError(
        "INSERT INTO alembic_version", {}, Exception("UNIQUE constraint failed: alembic_version.version_num")
    )
    monkeypatch.setattr(time, "sleep", pauses.append)
    monkeypatch.setattr(optuna.storages, "RDBStorage", storage_failing(2, race))
    assert open_storage(SECRET_URL) == "storage" and len(calls) == 3
    assert len(pauses) == 2 and all(0 < p <= 0.5 for p in pauses)
    for times, error, tries in [
        (99, race, study_mod.RACE_TRIES),
        (99, sqlalchemy.exc.OperationalError("connect", {}, Exception("Connection refused")), 1),
    ]:
        calls.clear()
        monkeypatch.setattr(optuna.storages, "RDBStorage", storage_failing(times, error))
        with pytest.raises(ConfigError) as e:
            open_storage(SECRET_URL)
        msg = str(e.value)
        assert len(calls) == tries and "\n" not in msg and "s3cret" not in msg
        assert "postgresql://u:***@127.0.0.1:1/optuna" in msg and type(error).__name__ in msg


def test_open_study_creates_once_then_joins():
    """Only the worker that created the study seeds its sampler with ``seed`` as is."""
    storage = optuna.storages.InMemoryStorage()
    pruner = optuna.pruners.NopPruner()
    first, created = open_study(storage, "memory", "s", ["maximize"], pruner)
    again, created_again = open_study(storage, "memory", "s", ["maximize"], pruner)
    assert (created, created_again) == (True, False) and first._study_id == again._study_id


def test_cli_storage_that_cannot_be_opened_is_one_line(tmp_path):
    """The sweep's own errors read like a single run's: one line, exit status 2, no traceback,
    and never the database password."""
    p = run_cli(
        "embexp.cli.train",
        "-m",
        "hydra/sweeper=embexp_optuna",
        f"hydra.sweeper.storage={SECRET_URL}",
        "loss.temperature=interval(0.01,0.1)",
        *TINY,
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    )
    assert p.returncode == 2, p.stderr[-3000:]
    assert "Traceback" not in p.stderr and "s3cret" not in p.stderr + p.stdout, p.stderr[-3000:]
    line = [x for x in p.stderr.splitlines() if x.startswith("error: ")]
    assert len(line) == 1 and "hydra.sweeper.storage" in line[0] and "u:***@127.0.0.1:1" in line[0]


def start_together(function: str, n: int, **kw) -> list[str]:
    """``stub_sweep.FUNCTION(**kw)`` in ``n`` worker processes that start at the same moment
    (``kw["barrier"]``); their outputs, once all ended cleanly."""
    cmd = [sys.executable, str(HERE / "stub_sweep.py"), function, json.dumps({**kw, "workers": n})]
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(n)
    ]
    outs = [pr.communicate(timeout=300) for pr in procs]
    for pr, (_, err) in zip(procs, outs):
        assert pr.returncode == 0 and "Traceback" not in err, err[-3000:]
    return [out + err for out, err in outs]


def run_workers(sd: Path, url: str, n_trials: int, n: int = 2) -> list[str]:
    """``n`` worker processes that start the same sweep at the same moment; their logs."""
    return start_together(
        "run_sweep",
        n,
        sweep_dir=str(sd),
        storage=url,
        params=GRID,
        n_trials=n_trials,
        seed=0,
        job_s=0.2,
        barrier=str(sd / f"barrier-{n_trials}"),
    )


def test_workers_never_take_the_same_waiting_trial(tmp_path):
    """Three workers ask a SQLite study holding 60 WAITING trials (retries of killed trials,
    param sets enqueued after a duplicate) at the same moment: each is taken by one of them
    (Optuna reads the state, then writes RUNNING; SQLite has no row lock to make that atomic)."""
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="stub", storage=open_storage(url))
    for a in range(60):
        study.enqueue_trial({"a": a})
    outs = start_together("take_waiting", 3, url=url, barrier=str(tmp_path / "barrier"))
    taken = [n for out in outs for n in json.loads(out.splitlines()[0])]
    assert sorted(taken) == list(range(60))


@pytest.mark.parametrize(
    "backend",
    [
        "sqlite",
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(
                not pg_reachable(),
                reason="no PostgreSQL at EMBEXP_TEST_PG_URL (bash scripts/ci_postgres.sh starts one)",
            ),
        ),
    ],
)
def test_two_workers_start_together_and_run_each_param_set_once(backend, tmp_path):
    """Two processes start one seeded TPE sweep of a new database at the same moment (both set
    up its tables and the study), then the same two extend it past the size of its space: every
    one of the 12 param sets runs exactly once, and both workers end cleanly."""
    sd = tmp_path / "sweep"
    sqlite = contextlib.nullcontext(f"sqlite:///{sd / 'optuna.db'}")
    with fresh_pg_database() if backend == "postgresql" else sqlite as url:
        logs = run_workers(sd, url, n_trials=8)
        runs = [tuple(sorted(r.items())) for r in launched(sd)]
        assert len(runs) == len(set(runs)) == 8, "\n".join(logs)
        logs += run_workers(sd, url, n_trials=20)
        runs = [tuple(sorted(r.items())) for r in launched(sd)]
        assert len(runs) == len(set(runs)) == 12, "\n".join(logs)
        assert all("n_trials=20 is capped at 12" in out for out in logs[2:])
        study = load(url)
        assert counts(study.trials)["counted"] == 12
        assert_each_param_set_held_once(study)
