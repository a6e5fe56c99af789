"""Only the run's own folder is touched, by one process at a time, and a damaged one is named:
a second process on a live run folder fails at once naming the holder (``force=true`` cannot take
the folder from it), a ``run_id`` that is not a folder name is refused before any folder exists,
a folder of someone else's files is never a run folder, and an unreadable ``last.ckpt`` or
``run.json`` gives one line with the ways out instead of a traceback or silently old results."""

import json
import subprocess
import sys
import time

import pytest
import yaml

from conftest import ROOT, TINY, run_cli

FAULTS = str(ROOT / "tests" / "train")
SMALL = [*TINY, "trainer.max_epochs=2", "train.max_steps=4", "+callbacks.fault._target_=faults.Faults"]


def train_args(data, run_dir, *extra):
    return ["embexp.cli.train", "data=beir", f"data.path={data}", *SMALL, *extra, f"hydra.run.dir={run_dir}"]


def train(data, run_dir, *extra, env=None):
    return run_cli(*train_args(data, run_dir, *extra), env={"PYTHONPATH": FAULTS, **(env or {})})


def last_line(p) -> str:
    return p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""


@pytest.mark.slow
def test_a_live_run_folder_has_one_writer_and_force_cannot_take_it(tiny_beir, tmp_path):
    """Two identical commands with one run folder used to both do all the work; ``force=true`` with
    another config used to move the live run's files aside and bind the folder to the wrong config."""
    import os

    run, gate = tmp_path / "run", tmp_path / "gate"
    gate.touch()
    env = {
        **os.environ,
        "PYTHONPATH": FAULTS,
        "EMBEXP_TEST_PAUSE_AT_STEP": "2",
        "EMBEXP_TEST_PAUSE_FILE": str(gate),
    }
    first = subprocess.Popen(
        [sys.executable, "-m", *train_args(tiny_beir, run)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not (tmp_path / "gate.reached").exists():
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()[1][-3000:]
            time.sleep(0.1)
        second = train(tiny_beir, run)
        assert second.returncode == 2
        assert f"is in use by pid {first.pid}" in last_line(second) and "run_id=" in last_line(second)
        forced = train(tiny_beir, run, "force=true", "loss.temperature=0.2")
        assert forced.returncode == 2 and f"pid {first.pid}" in last_line(forced)
        assert not list(tmp_path.glob("run.old-*"))  # nothing moved aside
        assert yaml.safe_load((run / ".hydra" / "config.yaml").read_text())["loss"]["temperature"] == 0.05
    finally:
        gate.unlink(missing_ok=True)
        _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err[-3000:]
    rec = json.loads((run / "metrics.json").read_text())
    assert rec["status"] == "finished" and rec["cost"]["train_steps"] == 4
    assert json.loads((run / "run.json").read_text())["config"]["loss"]["temperature"] == 0.05
    assert not [p.name for p in (run / "checkpoints").iterdir() if "-v" in p.name]  # one writer's files
    again = train(tiny_beir, run)  # the holder is gone: the finished run is returned
    assert again.returncode == 0 and "already finished" in again.stdout + again.stderr


@pytest.mark.parametrize("run_id", ["../../escape", "", "a/b", ".."])
def test_a_run_id_that_is_not_a_folder_name_is_refused_before_any_folder_exists(tiny_beir, tmp_path, run_id):
    p = run_cli(
        "embexp.cli.train",
        "data=beir",
        f"data.path={tiny_beir}",
        *TINY,
        f"paths.root_dir={tmp_path / 'project'}",
        f"run_id={run_id}",
    )
    assert p.returncode == 2, p.stderr[-2000:]
    assert last_line(p).startswith("error: config key 'run_id':") and "Traceback" not in p.stderr
    assert not (tmp_path / "project").exists() and not (tmp_path / "escape").exists()


def test_a_folder_of_other_files_is_never_a_run_folder(tiny_beir, tmp_path):
    """``hydra.run.dir`` at a folder of the user's files (or at ``runs/train`` itself, which holds
    other runs): the run does not start there, and ``force=true`` moves nothing of theirs (without
    ``force`` the same check refuses first: ``tests/train/test_record.py``)."""
    mine = tmp_path / "my-notes"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine\n")
    (mine / "other-run").mkdir()
    p = train(tiny_beir, mine, "force=true")
    assert p.returncode == 2
    assert "is not an embexp run folder" in last_line(p) and "notes.txt" in last_line(p)
    assert (mine / "notes.txt").read_text() == "mine\n" and (mine / "other-run").is_dir()
    assert not list(tmp_path.glob("my-notes.old-*")) and not (mine / "run.json").exists()


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory):
    """A run killed in its second epoch: ``last.ckpt`` holds epoch 0."""
    from conftest import write_beir

    data = write_beir(tmp_path_factory.mktemp("beir") / "tiny")
    run = tmp_path_factory.mktemp("runs") / "killed"
    p = train(data, run, env={"EMBEXP_TEST_KILL_AT_STEP": "3"})
    assert p.returncode < 0 and (run / "checkpoints" / "last.ckpt").exists(), p.stderr[-3000:]
    return data, run


@pytest.mark.slow
def test_an_unreadable_last_checkpoint_is_named_with_the_ways_out(killed_run, tmp_path):
    import shutil

    data, src = killed_run
    run = tmp_path / "run"
    shutil.copytree(src, run)
    last = run / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:20_000])  # truncated, as a copy cut short leaves it
    p = train(data, run)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    line = last_line(p)
    assert f"checkpoint {last} cannot be read: it is truncated" in line
    assert "force=true" in line and "run_id=" in line and "weights_only" not in line
    p = train(data, run, "force=true")  # the way out: starts over, the damaged file kept aside
    assert p.returncode == 0, p.stderr[-3000:]
    (old,) = tmp_path.glob("run.old-*")
    assert (old / "checkpoints" / "last.ckpt").stat().st_size == 20_000


@pytest.mark.slow
def test_a_truncated_run_json_is_never_taken_for_an_older_run(killed_run, tmp_path):
    """It used to be read as "no run.json (an older embexp)": a rerun with another config was
    accepted and resumed the old run under the new config's name."""
    import shutil

    data, src = killed_run
    run = tmp_path / "run"
    shutil.copytree(src, run)
    (run / "run.json").write_text((run / "run.json").read_text()[:300])
    for extra in ([], ["loss.temperature=0.2"]):
        p = train(data, run, *extra)
        assert p.returncode == 2 and "Traceback" not in p.stderr
        assert f"run file {run / 'run.json'} cannot be read: invalid JSON" in last_line(p)
        assert "force=true" in last_line(p)
    assert not (run / "metrics.json").exists()  # nothing resumed, nothing recorded
