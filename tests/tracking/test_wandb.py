"""W&B tracking, offline: a tiny training run logs its metrics, cost and the flat comparison
keys; a crashing job still finishes its run (marked failed); the runs of a multirun share a
group. Offline runs are read back by :mod:`wandb_offline`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from wandb_offline import (
    OFFLINE_ENV,
    history,
    offline_run_dir,
    raw_summary,
    read_records,
    read_records_raw,
    read_summary,
)

from conftest import ROOT, compose_config, run_cli

wandb = pytest.importorskip("wandb")

TINY_WANDB = [
    "model=tiny",
    "train.batch_size=2",
    "eval.show_progress=false",
    "callbacks.progress_bar=null",
    "logger.wandb.mode=offline",
]


# ---- a tiny training run with W&B offline -------------------------------------------------
@pytest.fixture(scope="module")
def wandb_train_run(tmp_path_factory):
    from conftest import write_beir

    tmp = tmp_path_factory.mktemp("wandb-train")
    beir = write_beir(tmp / "tiny-beir")
    out = tmp / "run"
    p = run_cli(
        "embexp.cli.train",
        "data=beir",
        f"data.path={beir}",
        *TINY_WANDB,
        "trainer.max_epochs=2",
        f"hydra.run.dir={out}",
        env=OFFLINE_ENV,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    return out


def test_training_run_logs_metrics_and_cost(wandb_train_run):
    out = wandb_train_run
    rec = json.loads((out / "metrics.json").read_text())
    run_dir = offline_run_dir(out)
    s = read_summary(run_dir)
    assert s["state"] == "finished" and s["exit_code"] == 0
    summary = s["summary"]
    # every final/baseline metric of metrics.json, with the same value
    assert summary["final/test/ndcg@10"] == pytest.approx(rec["metrics"]["final/test/ndcg@10"], abs=1e-12)
    for k, v in rec["metrics"].items():
        assert summary[k] == pytest.approx(v, abs=1e-12), k
    # the cost block under cost/
    assert summary["cost/trainable_params"] == rec["cost"]["trainable_params"] > 0
    assert summary["cost/total_params"] == rec["cost"]["total_params"]
    assert summary["cost/adapter"] == "lora" and summary["cost/epochs"] == 2
    assert all(f"cost/{k}" in summary for k, v in rec["cost"].items() if v is not None)
    # the resolved config
    assert s["config"]["adapter"]["kind"] == "lora" and s["config"]["trainer"]["max_epochs"] == 2
    # per epoch: dev metrics in the history, one row per epoch
    rows = [h for h in history(read_records(run_dir)) if "dev/mrr@10" in h]
    assert [r["epoch"] for r in rows] == [0, 1]
    assert all(0.0 <= r["dev/mrr@10"] <= 1.0 for r in rows)
    # the slice table was logged
    assert summary["slices"]["_type"] == "table-file" and summary["slices"]["nrows"] > 0


def test_training_run_config_has_flat_comparison_keys(wandb_train_run):
    from embexp.tracking.wandb import COMPARISON_KEYS

    config = read_summary(offline_run_dir(wandb_train_run))["config"]
    flat = {k: config.get(k) for k in COMPARISON_KEYS}
    assert set(COMPARISON_KEYS) <= set(config)
    assert flat == {
        "experiment": None,
        "adapter_kind": "lora",
        "adapter_r": 16,
        "adapter_alpha": 32,
        "adapter_n_layers": None,
        "loss_name": "infonce",
        "temperature": 0.05,
        "negatives_kind": "in_batch",
        "n_negatives": 0,
        "lr": 5.0e-4,
        "batch_size": 2,
        "max_steps": None,
        "max_epochs": 2,
        "seed": 42,
        "model_name": config["model"]["name_or_path"].rstrip("/").rsplit("/", 1)[-1],
        "data_name": "tiny-beir",
    }
    assert config["adapter"]["kind"] == "lora" and config["loss"]["temperature"] == 0.05  # nested kept
    records = read_records(offline_run_dir(wandb_train_run))
    (run_rec,) = [r["run"] for r in records if r["type"] == "run"]
    assert not run_rec.get("run_group")  # a single run: no group


def test_raw_reader_agrees_with_wandb_reader(wandb_train_run):
    run_dir = offline_run_dir(wandb_train_run)
    raw = read_records_raw(run_dir)
    leet = read_records(run_dir)
    assert len(raw) == len(leet) and raw[0].WhichOneof("record_type") == "header"
    summary_raw, summary = raw_summary(raw), read_summary(run_dir)["summary"]
    for k in ("final/test/ndcg@10", "cost/trainable_params", "baseline/test/ndcg@10"):
        assert summary_raw[k] == summary[k], k
    exits = [r.exit.exit_code for r in raw if r.WhichOneof("record_type") == "exit"]
    assert exits == [0]


# ---- a crashing job still finishes its run ------------------------------------------------
def test_wandb_run_finishes_on_exception(tmp_path):
    from embexp.tracking.wandb import wandb_run

    cfg = {"wandb": {"mode": "offline", "project": "embexp-test"}}
    with pytest.raises(RuntimeError, match="boom"):
        with wandb_run(cfg, run_dir=tmp_path, name="crash", config={"a": 1}) as run:
            assert run is not None and wandb.run is run
            run.log({"x": 1.5})
            run.summary["y"] = 2
            raise RuntimeError("boom")
    assert wandb.run is None
    s = read_summary(offline_run_dir(tmp_path))
    assert s["exit_code"] == 1 and s["state"] != "finished"
    assert s["summary"]["x"] == 1.5 and s["summary"]["y"] == 2 and s["config"]["a"] == 1


def test_wandb_run_success_and_disabled(tmp_path):
    from embexp.tracking.wandb import wandb_run

    with wandb_run(
        {"wandb": {"mode": "offline", "project": "embexp-test"}}, run_dir=tmp_path, name="ok", config={}
    ) as run:
        run.log({"x": 1})
    assert wandb.run is None
    assert read_summary(offline_run_dir(tmp_path))["exit_code"] == 0
    for cfg in (None, {"wandb": None}, {"wandb": {"mode": "disabled"}}):
        with wandb_run(cfg, run_dir=tmp_path / "off", name="off", config={}) as run:
            assert run is None
    assert not (tmp_path / "off").exists()


CRASH = """
import sys, wandb
import embexp.model.encoder as enc
def boom(self, *a, **k):
    raise RuntimeError("boom while saving")
enc.BiEncoder.save = boom
from embexp.cli.train import main
try:
    main()
finally:
    print("WANDB_RUN_AFTER=" + ("none" if wandb.run is None else "open"), flush=True)
"""


def test_crashing_training_job_finishes_its_run_as_failed(tiny_beir, tmp_path):
    out = tmp_path / "run"
    args = [
        "data=beir",
        f"data.path={tiny_beir}",
        *TINY_WANDB,
        "trainer.max_epochs=1",
        "train.baseline=false",
        f"hydra.run.dir={out}",
    ]
    p = subprocess.run(
        [sys.executable, "-c", CRASH, *args],
        cwd=ROOT,
        env={**os.environ, **OFFLINE_ENV},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode != 0 and "boom while saving" in p.stderr, p.stderr[-3000:]
    assert "WANDB_RUN_AFTER=none" in p.stdout
    rec = json.loads((out / "metrics.json").read_text())  # the run record says so too
    assert rec["status"] == "failed" and "boom while saving" in rec["reason"]
    s = read_summary(offline_run_dir(out))
    assert s["exit_code"] == 1 and s["state"] != "finished"
    assert "dev/mrr@10" in s["summary"]  # what was logged before the crash is kept


# ---- one W&B group per multirun / sweep ---------------------------------------------------------
GROUP_APP = """
import json, sys
import hydra
from embexp.cli.common import CONF_DIR
from embexp.tracking.wandb import comparison_keys, wandb_settings

@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def main(cfg):
    keys = comparison_keys(cfg)
    print("JOB=" + json.dumps([wandb_settings(cfg.logger)["group"], keys["seed"], keys["experiment"]]))

main()
"""


def _group_app(*args: str) -> list[list]:
    p = subprocess.run(
        [sys.executable, "-c", GROUP_APP, *args, "model=tiny", "logger.wandb.mode=offline"],
        cwd=ROOT,
        env={**os.environ, **OFFLINE_ENV},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    return [json.loads(line[4:]) for line in p.stdout.splitlines() if line.startswith("JOB=")]


def test_runs_of_a_multirun_share_a_wandb_group(tmp_path):
    sweep = tmp_path / "multirun-20250101-120000"
    jobs = _group_app("-m", "seed=1,2", f"hydra.sweep.dir={sweep}")
    assert jobs == [[sweep.name, 1, None], [sweep.name, 2, None]]
    # the sweep folder's default name (a timestamp) is resolved once for every job
    jobs = _group_app("-m", "seed=1,2", f"paths.log_dir={tmp_path / 'logs'}")
    assert jobs[0][0].startswith("multirun-") and jobs[0][0] == jobs[1][0]
    # a single run: no group (test_training_run_...), unless one is given; the experiment choice
    # is a comparison key
    jobs = _group_app("experiment=quickstart", "logger.wandb.group=mine", f"hydra.run.dir={tmp_path / 'r2'}")
    assert jobs == [["mine", 42, "quickstart"]]


def test_wandb_group_outside_hydra_is_null_and_not_hashed():
    from embexp.train.record import HASH_EXCLUDE

    assert "logger" in HASH_EXCLUDE  # the group never changes a run's config hash
    cfg = compose_config(["model=tiny"])
    assert cfg.logger.wandb.group is None


def test_model_selection_lands_in_the_summary_with_its_paired_test_flattened():
    from types import SimpleNamespace

    from embexp.tracking.wandb import log_run_summary

    final = {"epoch": 2, "kept": True, "p": 0.37, "diff": 0.023, "reason": "epoch 1 beats ..."}
    record = {
        "metrics": {"final/test/ndcg@10": 0.7},
        "cost": {},
        "model_selection": {"selected": "final (epoch 2)", "warning": None, "final_vs_best": final},
    }
    logged = []
    run = SimpleNamespace(summary={}, log=logged.append)
    log_run_summary(run, record)
    assert run.summary["model_selection/selected"] == "final (epoch 2)"
    assert {k: run.summary[f"model_selection/final_vs_best/{k}"] for k in final} == final
    assert not any(k.endswith("/final_vs_best") or k.endswith("/warning") for k in run.summary)


def test_the_logger_passes_no_anonymous_setting(tmp_path, monkeypatch):
    """Lightning's WandbLogger always sends anonymous=None, which wandb answers with a
    deprecation warning in every run's log; the logger embexp builds leaves it out."""
    from embexp.tracking.wandb import make_logger

    monkeypatch.setenv("WANDB_MODE", "offline")
    node = compose_config(["model=tiny"]).logger
    logger = make_logger(node, save_dir=tmp_path, run_id="r1", config={})
    assert logger is not None and "anonymous" not in logger._wandb_init
