"""Optuna sweeps end to end on a tiny random model and a 6-document BEIR folder: a TPE +
median sweep with its reports; a failing trial next to a pruned one; a worker killed with
SIGKILL mid-trial and the same command re-run; two workers sharing a PostgreSQL study;
the submitit local launcher."""

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, TINY, run_cli
from stub_sweep import PG_URL, pg_reachable

FINISHED = ("COMPLETE", "PRUNED")


def sweep_args(beir, sweep_dir, *extra, plots=False, grace=2):
    """Tiny trials; plots (6 s of plotly + matplotlib) only where a test looks at them. A short
    grace period makes a killed worker's trial stale fast; where another worker checks for
    stale trials meanwhile, a longer one keeps a busy machine's late heartbeat from counting."""
    return [
        "data=beir",
        f"data.path={beir}",
        *TINY,
        "trainer.max_epochs=2",
        f"hydra.sweep.dir={sweep_dir}",
        "hydra.sweeper.heartbeat_interval=1",
        f"hydra.sweeper.grace_period={grace}",
        f"hydra.sweeper.plots={str(plots).lower()}",
        *extra,
    ]


def rows(sweep_dir: Path) -> list[dict]:
    with open(sweep_dir / "trials.csv") as f:
        return list(csv.DictReader(f))


def load_study(url: str, name: str):
    import optuna

    from embexp.sweep.study import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=open_storage(url))


def test_tpe_median_sweep_writes_reports(tiny_beir, tmp_path):
    sd = tmp_path / "sweep"
    p = run_cli(
        "embexp.cli.train",
        "hparams_search=temperature_x_loss",
        *sweep_args(
            tiny_beir,
            sd,
            "hydra.sweeper.n_trials=3",
            "hydra.sweeper.pruner_kwargs.n_startup_trials=1",
            "hydra.sweeper.pruner_kwargs.n_warmup_steps=0",
            plots=True,
        ),
    )
    assert p.returncode == 0, p.stderr[-3000:]
    table = rows(sd)
    assert [r["number"] for r in table] == ["0", "1", "2"] and all(r["state"] in FINISHED for r in table)
    for r in table:  # conditional space: the temperature only for InfoNCE, the margin only for triplet
        assert bool(r["params.loss.temperature"]) == (r["params.loss"] == "infonce")
        assert bool(r["params.loss.margin"]) == (r["params.loss"] == "triplet")
        rec = json.loads((Path(r["run_dir"]) / "metrics.json").read_text())
        assert Path(r["run_dir"]).name == f"trial_{r['number']}" and rec["status"] in ("finished", "pruned")
        assert r["last_epoch"] != ""  # the dev metric was reported every epoch
    best = yaml.safe_load((sd / "best_params.yaml").read_text())
    assert (
        best["optimized_metric"] == "final/dev/ndcg@10"
        and best["best_trial"] in (0, 1, 2)
        and "loss" in best["params"]
    )
    assert "hparams_search" not in best["command"] and f"loss={best['params']['loss']}" in best["command"]
    for plot in ("optimization_history", "parallel_coordinate", "intermediate_values"):
        assert (sd / "plots" / f"{plot}.html").stat().st_size > 1000, plot
        assert (sd / "plots" / f"{plot}.png").stat().st_size > 1000, plot
    study = load_study(f"sqlite:///{sd / 'optuna.db'}", best["study_name"])
    assert len(study.trials) == 3


def test_failing_trial_is_recorded_and_the_sweep_goes_on(tiny_beir, tmp_path):
    """Grid over a valid and an invalid temperature: the invalid one FAILs with the config
    error as its reason; the valid one is pruned by a threshold no dev metric reaches. Each
    trial logs to its own (offline) W&B run in the study's group; the sweep to a summary run."""
    sd = tmp_path / "sweep"
    args = sweep_args(
        tiny_beir,
        sd,
        "hydra/sweeper=embexp_optuna",
        "hydra.sweeper.sampler=grid",
        "hydra.sweeper.study_name=failing",
        "hydra.sweeper.pruner=threshold",
        "+hydra.sweeper.pruner_kwargs.lower=2.0",
        "optimized_metric=final/dev/mrr@10",
        "loss.temperature=choice(-1,0.05)",
        "train.baseline=false",
    )
    args = [a for a in args if a != "logger=none"] + ["logger=wandb"]
    p = run_cli("embexp.cli.train", "-m", *args, env={"WANDB_MODE": "offline"})
    assert p.returncode == 0, p.stderr[-3000:]
    table = {r["params.loss.temperature"]: r for r in rows(sd)}
    bad, good = table["-1"], table["0.05"]
    assert (
        bad["state"] == "FAIL"
        and "loss.temperature" in bad["fail_reason"]
        and "ConfigError" in bad["fail_reason"]
    )
    assert json.loads((Path(bad["run_dir"]) / "metrics.json").read_text())["status"] == "failed"
    assert good["state"] == "PRUNED" and good["last_epoch"] == "0" and good["fail_reason"] == ""
    rec = json.loads((Path(good["run_dir"]) / "metrics.json").read_text())
    assert rec["status"] == "pruned" and "dev/mrr@10" in rec["metrics"] and rec["epoch"] == 0
    cfg = yaml.safe_load((Path(good["run_dir"]) / ".hydra" / "config.yaml").read_text())
    assert (
        cfg["logger"]["wandb"]["group"] == "failing"
        and f"trial_{good['number']}" in cfg["logger"]["wandb"]["tags"]
    )
    assert list((Path(good["run_dir"]) / "wandb").glob("offline-run-*")), "trial W&B run"
    assert list((sd / "wandb").glob("offline-run-*")), "sweep summary W&B run"
    assert yaml.safe_load((sd / "best_params.yaml").read_text())["best"] is None  # nothing completed


def _running(db: Path) -> list[int]:
    try:
        with sqlite3.connect(db, timeout=5) as con:
            return [n for (n,) in con.execute("SELECT number FROM trials WHERE state = 'RUNNING'")]
    except sqlite3.Error:
        return []


def _wait_mid_trial(sd: Path, proc, timeout: float = 300) -> None:
    """Until a trial (not the first) is RUNNING and has written last.ckpt (an epoch is done)."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        assert proc.poll() is None, "sweep ended before it could be killed"
        if (sd / "optuna.db").exists() and any(
            n >= 1 and (sd / f"trial_{n}" / "checkpoints" / "last.ckpt").exists()
            for n in _running(sd / "optuna.db")
        ):
            return
        time.sleep(0.2)
    raise AssertionError("no trial got past its first epoch in time")


# a step budget whose "epochs" (1 step) are shorter than a pass (2 steps): the retried trial must
# complete the budget (a budgeted retry used to stop an epoch short and enter the study COMPLETE)
BUDGET = ["trainer.max_epochs=3", "train.max_steps=5", "train.val_every_steps=1"]


def test_sigkill_mid_trial_then_rerun_finishes_the_study(tiny_beir, tmp_path):
    sd = tmp_path / "sweep"
    cmd = [
        sys.executable,
        "-m",
        "embexp.cli.train",
        "-m",
        *sweep_args(
            tiny_beir,
            sd,
            "hydra/sweeper=embexp_optuna",
            "hydra.sweeper.study_name=killed",
            "hydra.sweeper.n_trials=4",
            "hydra.sweeper.sampler=random",
            "hydra.sweeper.seed=0",
            *BUDGET,
            "train.baseline=false",
            "loss.temperature=interval(0.02,0.1)",
        ),
    ]
    log = open(tmp_path / "first.log", "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_mid_trial(sd, proc)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    running = _running(sd / "optuna.db")
    assert len(running) == 1, running
    killed = running[0]
    had_ckpt = (sd / f"trial_{killed}" / "checkpoints" / "last.ckpt").exists()
    # the kill can land after the run wrote its results but before Optuna heard of them
    rec = sd / f"trial_{killed}" / "metrics.json"
    done_at_kill = rec.exists() and json.loads(rec.read_text()).get("status") == "finished"
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    study = load_study(f"sqlite:///{sd / 'optuna.db'}", "killed")
    finished = [t for t in study.trials if t.state.name in FINISHED]
    assert len(finished) == 4
    assert study.trials[killed].state.name == "FAIL"  # stale: its heartbeat stopped
    retries = [t for t in finished if t.system_attrs.get("failed_trial") == killed]
    assert len(retries) == 1 and retries[0].user_attrs["run_dir"] == str(sd / f"trial_{killed}")
    assert retries[0].params == study.trials[killed].params
    dirs = [t.user_attrs["run_dir"] for t in finished]
    assert len(set(dirs)) == 4 and len({t.number for t in finished}) == 4  # nothing ran twice
    assert all(json.loads((Path(d) / "metrics.json").read_text())["status"] == "finished" for d in dirs)
    retry_log = (sd / f"trial_{killed}" / "train.log").read_text()
    if done_at_kill:  # the retry returns the results the killed process had written, never reruns
        assert "already finished; returning its results" in retry_log
    elif had_ckpt:  # the retry picked up the killed run's last epoch
        assert "resuming from" in retry_log
    # the retried trial ends bit for bit where an uninterrupted run of its config ends
    temp = retries[0].params["loss.temperature"]
    plain = tmp_path / "plain"
    args = ["data=beir", f"data.path={tiny_beir}", *TINY, *BUDGET, "train.baseline=false"]
    p = run_cli("embexp.cli.train", *args, f"loss.temperature={temp!r}", f"hydra.run.dir={plain}")
    assert p.returncode == 0, p.stderr[-3000:]
    retried = json.loads((sd / f"trial_{killed}" / "metrics.json").read_text())
    whole = json.loads((plain / "metrics.json").read_text())
    assert retried["cost"]["train_steps"] == whole["cost"]["train_steps"]  # early stopping may end it
    assert whole["metrics"] == retried["metrics"]
    table = rows(sd)
    assert len(table) == 5 and [r for r in table if r["number"] == str(killed)][0]["retried"] == "True"


@pytest.mark.skipif(
    not pg_reachable(),
    reason=f"no PostgreSQL at EMBEXP_TEST_PG_URL={PG_URL} (bash scripts/ci_postgres.sh starts one)",
)
def test_two_workers_share_a_postgres_study(tiny_beir, tmp_path):
    import optuna

    name = f"embexp-test-{uuid.uuid4().hex[:8]}"
    sd = tmp_path / "sweep"
    cmd = [
        sys.executable,
        "-m",
        "embexp.cli.train",
        "-m",
        *sweep_args(
            tiny_beir,
            sd,
            "hydra/sweeper=embexp_optuna",
            f"hydra.sweeper.study_name={name}",
            f"hydra.sweeper.storage={PG_URL}",
            "hydra.sweeper.n_trials=4",
            "hydra.sweeper.seed=0",
            "trainer.max_epochs=1",
            "train.baseline=false",
            "loss.temperature=interval(0.02,0.1)",
            grace=30,
        ),
    ]
    procs = [
        subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    try:
        outs = [pr.communicate(timeout=600)[0] for pr in procs]
        assert all(pr.returncode == 0 for pr in procs), "\n".join(o[-2000:] for o in outs)
        study = load_study(PG_URL, name)
        finished = [t for t in study.trials if t.state.name in FINISHED]
        assert len(finished) == 4
        launched = [t for t in study.trials if not t.user_attrs.get("not_run")]
        assert (
            len(launched) == 4 and len({t.user_attrs["run_dir"] for t in launched}) == 4
        )  # no trial ran twice
        assert sorted(p.name for p in sd.glob("trial_*")) == sorted(f"trial_{t.number}" for t in finished)
        assert (
            len({t.params["loss.temperature"] for t in finished}) == 4
        )  # the two workers did not sample alike
    finally:
        try:
            from embexp.sweep.study import open_storage

            optuna.delete_study(study_name=name, storage=open_storage(PG_URL))
        except Exception:
            pass


def test_submitit_local_launcher_two_objectives(tiny_beir, tmp_path):
    """lora_vs_full (NSGA-II: dev nDCG@10 up, trainable params down, conditional adapter knobs)
    with both trials of the batch in their own processes (submitit's local executor)."""
    sd = tmp_path / "sweep"
    p = run_cli(
        "embexp.cli.train",
        "hparams_search=lora_vs_full",
        *sweep_args(
            tiny_beir,
            sd,
            "hydra/launcher=submitit_local",
            "hydra.launcher.timeout_min=10",
            "hydra.sweeper.n_trials=2",
            "hydra.sweeper.n_jobs=2",
            "trainer.max_epochs=1",
            "adapter.n_layers=choice(1,2)",
            plots=True,
        ),
    )  # the tiny model has 2 layers
    assert p.returncode == 0, p.stderr[-3000:]
    table = rows(sd)
    assert [r["state"] for r in table] == ["COMPLETE", "COMPLETE"]
    for r in table:
        assert float(r["cost/trainable_params"]) > 0 and r["final/dev/ndcg@10"] != ""
        assert bool(r.get("params.adapter.r")) == (r["params.adapter"] == "lora")
        assert bool(r.get("params.adapter.n_layers")) == (r["params.adapter"] == "last_layer")
        rec = json.loads((Path(r["run_dir"]) / "metrics.json").read_text())
        assert rec["status"] == "finished" and rec["cost"]["trainable_params"] == float(
            r["cost/trainable_params"]
        )
    assert list((sd / ".submitit").iterdir())  # the jobs went through submitit
    best = yaml.safe_load((sd / "best_params.yaml").read_text())
    assert best["optimized_metric"] == ["final/dev/ndcg@10", "cost/trainable_params"] and best["pareto_front"]
    assert set(best["pareto_front"][0]["values"]) == {"final/dev/ndcg@10", "cost/trainable_params"}
    assert (sd / "plots" / "pareto_front.html").exists() and (sd / "plots" / "pareto_front.png").exists()
