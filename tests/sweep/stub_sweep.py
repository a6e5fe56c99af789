"""The real sweep loop (:class:`embexp.sweep.sweeper.OptunaSweep`) with a stub launcher and no
Hydra app: a job appends its params to ``<sweep dir>/launched.jsonl``, sleeps ``job_s`` and
returns a score; nothing trains. :func:`run_sweep` runs it in-process;
``python stub_sweep.py FUNCTION JSON`` runs :func:`run_sweep` or :func:`take_waiting` in a
worker process (the JSON holds its arguments); workers given the same ``barrier`` start at the
same moment. Also where the tests find PostgreSQL (``EMBEXP_TEST_PG_URL``;
``bash scripts/ci_postgres.sh`` starts one)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

PG_URL = os.environ.get("EMBEXP_TEST_PG_URL", "postgresql://postgres:postgres@127.0.0.1:5432/postgres")
LAUNCHED = "launched.jsonl"


class StubLauncher:
    """Launches a job by recording the swept params of its overrides (what would have run)."""

    def __init__(self, sweep_dir: Path, names: set[str], job_s: float):
        self.log, self.names, self.job_s = sweep_dir / LAUNCHED, names, job_s

    def launch(self, job_overrides, initial_job_idx: int) -> list:
        from hydra.core.utils import JobStatus

        rets = []
        for overrides in job_overrides:
            params = dict(o.split("=", 1) for o in overrides if o.split("=", 1)[0] in self.names)
            with open(self.log, "a") as f:  # one short O_APPEND write per job: workers do not interleave
                f.write(json.dumps({"pid": os.getpid(), "params": params}) + "\n")
            time.sleep(self.job_s)
            score = sum(map(ord, json.dumps(params, sort_keys=True))) % 97 / 97
            rets.append(SimpleNamespace(status=JobStatus.COMPLETED, _return_value=score))
        return rets


def same_space(trial, params) -> dict:
    """A custom_search_space that adds nothing: the space is then not listed (no enumeration)."""
    return {}


def run_sweep(
    sweep_dir,
    storage: str | None = None,
    *,
    params: dict,
    n_trials: int,
    seed: int | None = 0,
    sampler: str = "tpe",
    n_jobs: int = 1,
    job_s: float = 0.0,
    custom: str | None = None,
    barrier: str | None = None,
    workers: int = 1,
):
    """One worker's sweep of study ``stub``; ``barrier``: a folder where ``workers`` workers meet
    before their sweeps start (after every import and set-up, so they race for the storage)."""
    from omegaconf import OmegaConf

    from embexp.sweep.sweeper import OptunaSweep

    sd = Path(sweep_dir).resolve()
    sd.mkdir(parents=True, exist_ok=True)
    sweep = OptunaSweep(
        study_name="stub",
        storage=storage,
        n_trials=n_trials,
        n_jobs=n_jobs,
        sampler=sampler,
        seed=seed,
        params=params,
        custom_search_space=custom,
        heartbeat_interval=1,
        grace_period=60,
        plots=False,
    )
    # what OptunaSweep.setup takes from Hydra
    sweep.config = OmegaConf.create({"optimized_metric": "score", "hydra": {"runtime": {"choices": {}}}})
    sweep.hydra_context = SimpleNamespace(config_loader=SimpleNamespace(load_sweep_config=lambda c, o: c))
    sweep.launcher = StubLauncher(sd, set(params), job_s)
    sweep.sweep_dir = sd
    if barrier:
        meet(Path(barrier), workers)
    sweep.sweep([])
    return sweep


def take_waiting(url: str, barrier: str, workers: int) -> None:
    """Ask study ``stub`` for trials until a fresh one comes (no WAITING trial left), as a
    worker's sweep asks; print the numbers of the WAITING trials this worker took."""
    import optuna

    from embexp.sweep.study import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="stub", storage=open_storage(url))
    meet(Path(barrier), workers)
    taken = []
    while True:
        trial = study.ask()
        if "fixed_params" not in study._storage.get_trial(trial._trial_id).system_attrs:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            break
        taken.append(trial.number)
    print(json.dumps(taken))


def meet(folder: Path, n: int, timeout: float = 120) -> None:
    """Wait until ``n`` processes have come to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / str(os.getpid())).touch()
    t0 = time.time()
    while len(list(folder.iterdir())) < n:
        if time.time() - t0 > timeout:
            raise TimeoutError(f"only {len(list(folder.iterdir()))} of {n} workers came to {folder}")
        time.sleep(0.001)


def launched(sweep_dir) -> list[dict]:
    """The params of every job launched in ``sweep_dir``, in launch order."""
    path = Path(sweep_dir) / LAUNCHED
    return [json.loads(line)["params"] for line in path.read_text().splitlines()] if path.exists() else []


def pg_reachable() -> bool:
    try:
        import psycopg2

        psycopg2.connect(PG_URL, connect_timeout=3).close()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def fresh_pg_database():
    """The URL of a new, empty PostgreSQL database (no Optuna tables yet), dropped afterwards;
    the test is skipped when the user of ``EMBEXP_TEST_PG_URL`` may not create one."""
    import psycopg2
    import pytest
    from sqlalchemy.engine import make_url

    name = f"embexp_test_{uuid.uuid4().hex[:8]}"
    con = psycopg2.connect(PG_URL, connect_timeout=3)
    con.autocommit = True
    try:
        con.cursor().execute(f"CREATE DATABASE {name}")
    except psycopg2.errors.InsufficientPrivilege as e:
        con.close()
        pytest.skip(f"cannot create a database at EMBEXP_TEST_PG_URL: {e}".strip())
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        con.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        con.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(process)d %(name)s: %(message)s")
    {"run_sweep": run_sweep, "take_waiting": take_waiting}[sys.argv[1]](**json.loads(sys.argv[2]))
