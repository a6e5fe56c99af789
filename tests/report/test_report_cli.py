"""``embexp-report`` as users run it: on synthetic runs (files, options, clean errors), and on a real
tiny multirun out of the box (references, latency on the saved models, the W&B report run)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from conftest import ROOT, TINY, run_cli
from fixture_runs import decision_runs, make_beir, make_run

sys.path.insert(0, str(ROOT / "tests" / "tracking"))
from wandb_offline import OFFLINE_ENV, offline_run_dir, read_records, read_summary  # noqa: E402

FAST = ["latency=false", "wandb=false", "resamples=999"]


@pytest.fixture(scope="module")
def decision(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    return decision_runs(root, make_beir(root / "beir"), seeds=(1, 2))


def test_writes_the_report_and_prints_the_verdict(decision, tmp_path):
    out = tmp_path / "out"
    p = run_cli("embexp.cli.report", str(decision), f"out={out}", *FAST)
    assert p.returncode == 0, p.stderr[-3000:]
    for name in ("report.json", "report.md", "report.html", "fig_metric_bars.png"):
        assert (out / name).exists(), name
    rep = json.loads((out / "report.json").read_text())
    assert rep["verdict"] in p.stdout and "caveat: fewer than 3 seeds" in p.stdout
    assert rep["settings"]["resamples"] == 999


def test_explicit_keys_regroup_and_warn(tmp_path):
    data = make_beir(tmp_path / "beir")
    for name, r, seed in (("a", 8, 1), ("b", 32, 2), ("c", 8, 2)):
        make_run(tmp_path / "runs", name, data, adapter="lora", r=r, seed=seed)
    make_run(tmp_path / "runs", "d", data, adapter="full", seed=1)
    out = tmp_path / "out"
    p = run_cli("embexp.cli.report", str(tmp_path / "runs"), f"out={out}", "keys=adapter.kind", *FAST)
    assert p.returncode == 0, p.stderr[-3000:]
    rep = json.loads((out / "report.json").read_text())
    assert rep["settings"]["keys"] == ["adapter.kind"]
    assert sorted(s["n_seeds"] for s in rep["systems"] if s["kind"] == "finetuned") == [1, 3]
    assert any(
        "kind=lora: grouped by adapter.kind, but its runs also differ in adapter.r" in w
        for w in rep["warnings"]
    )


@pytest.mark.parametrize(
    "arg, message",
    [
        ("bogus=1", "config key 'bogus': unknown option"),
        ("latency=maybe", "config key 'latency': must be true or false"),
        ("alpha=2", "config key 'alpha': out of range"),
    ],
)
def test_bad_options_fail_in_one_line(decision, tmp_path, arg, message):
    p = run_cli("embexp.cli.report", str(decision), f"out={tmp_path}", arg)
    assert p.returncode == 2 and message in p.stderr and "Traceback" not in p.stderr


def test_mismatched_runs_fail_naming_both(tmp_path):
    data = make_beir(tmp_path / "beir")
    a = make_run(tmp_path / "runs", "a", data, seed=1)
    b = make_run(tmp_path / "runs", "b", data, seed=2, fingerprint="another-dataset")
    p = run_cli("embexp.cli.report", str(tmp_path / "runs"), f"out={tmp_path / 'out'}", *FAST)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "cannot compare runs with different eval data fingerprint" in p.stderr
    assert str(a) in p.stderr and str(b) in p.stderr


def test_no_runs_is_a_clean_error(tmp_path):
    p = run_cli("embexp.cli.report", str(tmp_path), f"out={tmp_path / 'out'}", *FAST)
    assert p.returncode == 2 and "no run folders" in p.stderr


@pytest.mark.slow
def test_a_real_multirun_out_of_the_box(tiny_beir, tmp_path):
    """The README's decision workflow on a tiny model: a multirun, then the report on its folder."""
    env = {"EMBEXP_ROOT": str(tmp_path), **OFFLINE_ENV}
    tiny = [o for o in TINY if o != "logger=none"] + ["logger.wandb.mode=offline", "trainer.max_epochs=1"]
    sweep = ["-m", "adapter=lora,full", "seed=1,2"]
    p = run_cli("embexp.cli.train", *sweep, "data=beir", f"data.path={tiny_beir}", *tiny, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    (multirun,) = (tmp_path / "runs" / "train").glob("multirun-*")
    out = tmp_path / "report"
    p = run_cli("embexp.cli.report", str(multirun), f"out={out}", "resamples=999", env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    rep = json.loads((out / "report.json").read_text())
    names = {s["name"]: s for s in rep["systems"]}
    assert {"base model", "BM25", "hybrid: base model"} <= set(names)
    tuned = [s for s in rep["systems"] if s["kind"] == "finetuned"]
    assert sorted(s["config"]["adapter.kind"] for s in tuned) == ["full", "lora"]
    assert all(s["n_seeds"] == 2 for s in tuned)
    cost = {c["system"]: c for c in rep["cost"]}
    assert all(cost[s["name"]]["latency_p50_ms"] > 0 for s in tuned)
    assert cost["base model"]["latency_p95_ms"] >= cost["base model"]["latency_p50_ms"] > 0
    assert rep["wandb_group"] == multirun.name
    wandb_dir = offline_run_dir(out)
    s = read_summary(wandb_dir)
    assert s["state"] == "finished" and s["summary"]["verdict"] == rep["verdict"]
    (run_rec,) = [r["run"] for r in read_records(wandb_dir) if r["type"] == "run"]
    assert run_rec["job_type"] == "report" and run_rec["run_group"] == multirun.name
    # the training runs of that multirun are in the same group, with the flat comparison keys
    train_run = read_summary(offline_run_dir(multirun / "0"))
    assert train_run["config"]["adapter_kind"] in ("lora", "full") and train_run["config"]["seed"] in (1, 2)
    assert Path(out / "report.html").stat().st_size > 10_000
