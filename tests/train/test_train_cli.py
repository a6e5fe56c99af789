"""embexp-train end to end on tiny models: fast_dev_run of every experiment, a full tiny
run with resume, a 2-job multirun, bad config values failing before training."""

import json

import pytest

from conftest import ROOT, TINY, run_cli

EXPERIMENTS = sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_fast_dev_run_every_experiment(name, tiny_beir, tmp_path):
    p = run_cli(
        "embexp.cli.train",
        f"experiment={name}",
        "data=beir",
        f"data.path={tiny_beir}",
        *TINY,
        "debug=fast_dev_run",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert p.returncode == 0, p.stderr[-3000:]
    rec = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert rec["status"] == "finished" and "final/test/ndcg@10" in rec["metrics"]


def test_tiny_run_writes_everything_and_resumes(tiny_beir, tmp_path):
    run = tmp_path / "run"
    args = ["data=beir", f"data.path={tiny_beir}", *TINY, "trainer.max_epochs=2", f"hydra.run.dir={run}"]
    p = run_cli("embexp.cli.train", *args)
    assert p.returncode == 0, p.stderr[-3000:]
    rec = json.loads((run / "metrics.json").read_text())
    for k in (
        "baseline/test/ndcg@10",
        "baseline/dev/mrr@10",
        "final/test/ndcg@10",
        "final/test/slice/jargon/ndcg@10",
    ):
        assert k in rec["metrics"], k
    c = rec["cost"]
    assert c["trainable_params"] < c["total_params"] and c["adapter"] == "lora"
    for k in ("train_wall_s", "reembed_corpus_s", "peak_rss_mb", "pairs_per_s", "model_size_mb"):
        assert c[k] is not None and c[k] > 0, k
    assert (run / "model" / "adapter_config.json").exists()
    assert (run / "checkpoints" / "last.ckpt").exists()
    prov = json.loads((run / "provenance.json").read_text())
    assert (
        prov["data"]["fingerprint"] == rec["data"]["fingerprint"]
        and prov["config"]["adapter"]["kind"] == "lora"
    )
    rows = [json.loads(line) for line in (run / "per_query.jsonl").read_text().splitlines()]
    assert {r["model"] for r in rows} == {"baseline", "final"}
    # embexp-eval on the saved adapter reproduces the run's final test metrics
    ev = tmp_path / "eval"
    pe = run_cli(
        "embexp.cli.eval",
        "data=beir",
        f"data.path={tiny_beir}",
        "model=checkpoint",
        f"model.name_or_path={run / 'model'}",
        "logger=none",
        f"hydra.run.dir={ev}",
    )
    assert pe.returncode == 0, pe.stderr[-3000:]
    m_eval = json.loads((ev / "metrics.json").read_text())["metrics"]
    assert m_eval["test/ndcg@10"] == pytest.approx(rec["metrics"]["final/test/ndcg@10"], abs=1e-6)
    # same run dir again: finished work is returned, not redone
    p2 = run_cli("embexp.cli.train", *args)
    assert p2.returncode == 0 and "already finished" in (p2.stdout + p2.stderr)
    # a killed run (metrics.json missing, last.ckpt present) resumes from last.ckpt
    (run / "metrics.json").unlink()
    p3 = run_cli("embexp.cli.train", *args)
    assert p3.returncode == 0, p3.stderr[-3000:]
    assert "resuming from" in (p3.stdout + p3.stderr)
    assert json.loads((run / "metrics.json").read_text())["cost"]["epochs"] == 2


def test_two_job_multirun(tiny_beir, tmp_path):
    """Out of the box: no hydra.sweep.dir given, folders under paths.root_dir."""
    p = run_cli(
        "embexp.cli.train",
        "-m",
        "data=beir",
        f"data.path={tiny_beir}",
        *TINY,
        "debug=fast_dev_run",
        "adapter=lora,full",
        env={"EMBEXP_ROOT": str(tmp_path)},
    )
    assert p.returncode == 0, p.stderr[-3000:]
    (sweep,) = (tmp_path / "runs" / "train").glob("multirun-*")
    recs = [json.loads((sweep / str(i) / "metrics.json").read_text()) for i in (0, 1)]
    assert sorted(r["cost"]["adapter"] for r in recs) == ["full", "lora"]


@pytest.mark.parametrize(
    "bad, key",
    [
        ("trainer.max_epochs=abc", "trainer.max_epochs"),
        ("+los.temperature=0.1", "los"),
        ("model.name_or_path=/nonexistent/model", "model.name_or_path"),
        ("train.batch_size=1", "train.batch_size"),
    ],
)
def test_bad_config_fails_before_any_work(bad, key, tiny_beir, tmp_path):
    """The CLI surface of the config checks (every case is in tests/config/test_bad_configs.py):
    named in one line, exit 2, and nothing in the run folder but Hydra's files and the log."""
    run = tmp_path / "run"
    p = run_cli("embexp.cli.train", "data=beir", f"data.path={tiny_beir}", *TINY, bad, f"hydra.run.dir={run}")
    assert p.returncode == 2 and f"config key '{key}'" in p.stderr, p.stderr[-2000:]
    assert "Traceback" not in p.stderr
    assert sorted(x.name for x in run.iterdir()) == [".hydra", "train.log"]


def test_a_check_against_the_loaded_model_fails_before_training(tiny_beir, tmp_path):
    p = run_cli(
        "embexp.cli.train",
        "data=beir",
        f"data.path={tiny_beir}",
        *TINY,
        "adapter.target_modules=[q_proj]",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert p.returncode == 2 and "config key 'adapter.target_modules'" in p.stderr, p.stderr[-2000:]
    assert (
        not (tmp_path / "run" / "baseline.json").exists() and not (tmp_path / "run" / "checkpoints").exists()
    )


def test_a_compiled_bucketed_unpadded_run_trains_and_shares_the_config_hash(tiny_beir, tmp_path):
    base = ["data=beir", f"data.path={tiny_beir}", *TINY, "debug=fast_dev_run"]
    plain = run_cli("embexp.cli.train", *base, f"hydra.run.dir={tmp_path / 'plain'}")
    assert plain.returncode == 0, plain.stderr[-3000:]
    args = [*base, "model.compile=true", "model.compile_backend=eager", "model.pad_to_multiple_of=16"]
    args += ["model.unpad=true", "model.unpad_kernel=padded"]
    p = run_cli("embexp.cli.train", *args, f"hydra.run.dir={tmp_path / 'compiled'}")
    assert p.returncode == 0, p.stderr[-3000:]
    rec = json.loads((tmp_path / "compiled" / "metrics.json").read_text())
    assert rec["status"] == "finished" and rec["cost"]["train_steps"] == 1
    runs = [json.loads((tmp_path / d / "run.json").read_text())["config"] for d in ("plain", "compiled")]
    for cfg in runs:  # how the model runs is not what it is: out of the hashed config
        execution = {"compile", "compile_backend", "pad_to_multiple_of", "unpad", "unpad_kernel"}
        assert "model" in cfg and not execution & set(cfg["model"])
    assert runs[0]["model"] == runs[1]["model"]


def test_a_run_grouped_by_length_trains_and_the_key_is_hashed(tiny_beir, tmp_path):
    """train.group_by_length changes which examples share a batch: part of the config hash."""
    base = ["data=beir", f"data.path={tiny_beir}", *TINY, "debug=fast_dev_run"]
    p = run_cli("embexp.cli.train", *base, "train.group_by_length=4", f"hydra.run.dir={tmp_path / 'g'}")
    assert p.returncode == 0, p.stderr[-3000:]
    rec = json.loads((tmp_path / "g" / "run.json").read_text())
    assert rec["config"]["train"]["group_by_length"] == 4
    assert json.loads((tmp_path / "g" / "metrics.json").read_text())["status"] == "finished"
    log = p.stdout + p.stderr
    assert log.count("train.group_by_length=4: batches from length-sorted windows of 8 examples;") == 1
    assert "in shuffled batches)" in log
