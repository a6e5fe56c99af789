"""W&B tracking, offline: a tiny training run logs its metrics and cost, and a crashing
job still finishes its run (marked failed).

An offline run is read back from its ``.wandb`` transaction log. wandb >= 0.2x writes no
``files/wandb-summary.json`` offline and 0.31 no longer ships the Python ``DataStore``, so
the log is read with wandb's own reader, ``wandb leet inspect --json`` (every record) and
``--summary --json`` (final state, exit code, summary, config). ``read_records_raw`` is a
pure-Python fallback (leveldb log framing + wandb's protobuf ``Record``) that the tests
check against it, should the CLI's output change.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, run_cli

wandb = pytest.importorskip("wandb")

TINY_WANDB = [
    "model=tiny",
    "train.batch_size=2",
    "eval.show_progress=false",
    "callbacks.progress_bar=null",
    "logger.wandb.mode=offline",
]
OFFLINE_ENV = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DISABLE_GIT": "true"}


# ---- reading an offline run back ----------------------------------------------------------
def offline_run_dir(root: Path) -> Path:
    runs = sorted((Path(root) / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, f"expected one offline run under {root}/wandb, found {runs}"
    return runs[0]


def _leet(run_dir: Path, *flags: str) -> str:
    wandb_cli = Path(sys.executable).with_name("wandb")
    cmd = [str(wandb_cli)] if wandb_cli.exists() else [sys.executable, "-m", "wandb"]
    p = subprocess.run(
        [*cmd, "leet", "inspect", str(run_dir), *flags, "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **OFFLINE_ENV},
    )
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


def read_summary(run_dir: Path) -> dict:
    """``{state, exit_code, summary, config, ...}`` of an offline run, by wandb's own reader."""
    return json.loads(_leet(run_dir, "--summary"))


def read_records(run_dir: Path) -> list[dict]:
    """Every record of the transaction log as JSON (``{"num", "type", <type>: {...}}``)."""
    return [json.loads(line) for line in _leet(run_dir).splitlines() if line.strip()]


def history(records: list[dict]) -> list[dict]:
    return [r["history"]["item"] for r in records if r["type"] == "history"]


def read_records_raw(run_dir: Path) -> list:
    """Fallback reader: the ``.wandb`` file is a 7-byte header (``:W&B``, magic 0xBEE1,
    version) and then a leveldb log (32 KiB blocks; chunks of crc32 u32, length u16, type u8:
    1 full, 2 first, 3 middle, 4 last) of serialised ``wandb_internal_pb2.Record``."""
    from wandb.proto import wandb_internal_pb2

    (path,) = Path(run_dir).glob("*.wandb")
    data = path.read_bytes()
    assert data[:4] == b":W&B" and struct.unpack_from("<HB", data, 4) == (0xBEE1, 0), data[:7]
    block, pos, parts, out = 32768, 7, [], []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # block trailer: zero padding
            pos += block - pos % block
            continue
        _crc, length, kind = struct.unpack_from("<IHB", data, pos)
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 2):
            parts = [chunk]
        elif kind in (3, 4):
            parts.append(chunk)
        else:
            continue  # zero padding of a preallocated tail
        if kind in (1, 4):
            rec = wandb_internal_pb2.Record()
            rec.ParseFromString(b"".join(parts))
            out.append(rec)
    return out


def raw_summary(records) -> dict:
    summary: dict = {}
    for rec in records:
        if rec.WhichOneof("record_type") == "summary":
            for item in rec.summary.update:
                key = "/".join(item.nested_key) if item.nested_key else item.key
                summary[key] = json.loads(item.value_json)
            for item in rec.summary.remove:
                summary.pop("/".join(item.nested_key) if item.nested_key else item.key, None)
    return summary


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
