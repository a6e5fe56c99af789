"""Runs you can trust after a crash, a signal or a rerun: a kill -9 mid-epoch then a rerun ends
bit for bit where an uninterrupted run ends (dropout on, mined negatives re-mined every epoch) on
the fp32 path and under bf16 autocast, for full passes and for step budgets; a signal ends a run
as interrupted (status 128 + n) and a full disk with one line, each leaving a resumable folder;
the baseline rows and the full cost survive; a changed config or ``force`` is never silently
answered with old results."""

import json
import os
import signal

import pytest
import torch
import yaml

from conftest import ROOT, run_cli

FAULTS = str(ROOT / "tests" / "train")
ARGS = [
    "model=tiny",
    "logger=none",
    "adapter=full",
    "negatives=iterative",
    "train.batch_size=16",
    "trainer.max_epochs=3",
    "seed=3",
    "eval.show_progress=false",
    "callbacks.progress_bar=null",
    "+callbacks.fault._target_=faults.Faults",
]
# The two numeric paths, each forced on whatever CPU runs the tests (bf16 is the default where the
# CPU has AMX, fp32 elsewhere; bf16 without AMX is slow but runs): resume is bit-exact on both.
PATHS = {
    "fp32": ["trainer.precision=32-true", "eval.dtype=fp32", "trainer.deterministic=true"],
    "bf16": ["trainer.precision=bf16-mixed", "eval.dtype=bf16", "trainer.deterministic=false"],
}


@pytest.fixture(scope="module")
def qs_data(tmp_path_factory):
    from embexp.data import quickstart

    return quickstart.generate(
        tmp_path_factory.mktemp("qs") / "qs", seed=0, n_products=2, n_train=200, n_dev=40, n_test=60
    )


def train(run_dir, data, *extra, kill_at=None, path="fp32", env=None):
    env = {"PYTHONPATH": FAULTS, **(env or {})}
    if kill_at is not None:
        env["EMBEXP_TEST_KILL_AT_STEP"] = str(kill_at)
    return run_cli(
        "embexp.cli.train",
        "data=beir",
        f"data.path={data}",
        *ARGS,
        *PATHS[path],
        *extra,
        f"hydra.run.dir={run_dir}",
        env=env,
    )


def metrics(run_dir):
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.fixture(scope="module")
def whole_runs(qs_data, tmp_path_factory):
    """The uninterrupted run on each numeric path, made once per module when first asked for."""
    made = {}

    def get(path: str):
        if path not in made:
            out = tmp_path_factory.mktemp("runs") / f"uninterrupted-{path}"
            p = train(out, qs_data, path=path)
            assert p.returncode == 0, p.stderr[-3000:]
            made[path] = out
        return made[path]

    return get


@pytest.fixture(scope="module")
def uninterrupted(whole_runs):
    return whole_runs("fp32")


@pytest.mark.parametrize("path", ["fp32", "bf16"])
def test_kill_mid_epoch_then_rerun_is_bit_exact(qs_data, whole_runs, path, tmp_path):
    ref = metrics(whole_runs(path))
    steps_per_epoch = ref["cost"]["train_steps"] // 3
    kill_at = steps_per_epoch + steps_per_epoch // 2  # the middle of epoch 1
    run = tmp_path / "killed"
    p = train(run, qs_data, kill_at=kill_at, path=path)
    assert p.returncode == -signal.SIGKILL
    assert not (run / "metrics.json").exists()
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["epoch"] == 0 and "embexp_run_state" in ckpt and "embexp_curriculum" in ckpt

    p = train(run, qs_data, path=path)
    assert p.returncode == 0, p.stderr[-3000:]
    log = p.stdout + p.stderr
    assert "resuming from" in log and f"resumed at step {steps_per_epoch}:" in log
    got = metrics(run)
    assert got["cost"]["precision"] == ref["cost"]["precision"] == PATHS[path][0].split("=")[1]
    assert got["metrics"] == ref["metrics"]  # every key, slices included, bit for bit
    assert got["cost"]["best_epoch"] == ref["cost"]["best_epoch"]
    assert got["model_selection"] == ref["model_selection"]  # the paired test of best vs final included
    assert got["cost"]["train_steps"] == ref["cost"]["train_steps"]
    assert got["negatives"]["n_rounds"] == ref["negatives"]["n_rounds"] == 3
    # the full cost: both segments of training are counted
    assert got["cost"]["train_wall_s"] > 0.5 * ref["cost"]["train_wall_s"]
    # baseline rows survive the resume (the paired tests of a report need them)
    rows = [json.loads(line) for line in (run / "per_query.jsonl").read_text().splitlines()]
    assert sum(r["model"] == "baseline" for r in rows) == sum(r["model"] == "final" for r in rows) > 0
    ref_rows = [json.loads(line) for line in (whole_runs(path) / "per_query.jsonl").read_text().splitlines()]
    assert rows == ref_rows


@pytest.mark.slow
def test_a_budgeted_run_killed_mid_epoch_completes_its_budget_bit_exact(qs_data, tmp_path):
    """``train.max_steps`` is how the quickstart, sweeps and the BENCHMARKS grids run. A killed
    budgeted run restarts its killed epoch from the last checkpoint (an epoch's batches are planned
    from (seed, epoch)), validates where the uninterrupted run validates and ends where it ends:
    killed in the middle of a full epoch, then again in the last, partial one."""
    # 200 pairs / 16 = 13 steps a pass; validation every 8 steps: epochs of 8, 8 and a partial 5
    budget = ["train.max_steps=21", "train.val_every_steps=8"]
    whole, run = tmp_path / "whole", tmp_path / "killed"
    p = train(whole, qs_data, *budget)
    assert p.returncode == 0, p.stderr[-3000:]
    ref = metrics(whole)
    assert ref["cost"]["train_steps"] == 21 and [h["step"] for h in ref["dev_history"]] == [8, 16, 21]
    p = train(run, qs_data, *budget, kill_at=12)  # mid-epoch 1: last.ckpt holds step 8
    assert p.returncode == -signal.SIGKILL
    p = train(run, qs_data, *budget, kill_at=18)  # resumed, then killed in the partial last epoch
    assert p.returncode == -signal.SIGKILL and "resumed at step 8:" in p.stdout + p.stderr
    p = train(run, qs_data, *budget)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "resumed at step 16:" in p.stdout + p.stderr
    got = metrics(run)
    assert got["cost"]["train_steps"] == ref["cost"]["train_steps"]
    assert got["dev_history"] == ref["dev_history"]  # validated at the same steps, the same scores
    assert got["model_selection"] == ref["model_selection"]
    assert got["metrics"] == ref["metrics"]


@pytest.mark.slow
def test_signals_end_the_run_interrupted_and_the_rerun_ends_where_the_whole_run_ends(
    qs_data, uninterrupted, tmp_path
):
    """What schedulers send first (SIGTERM: SLURM, Kubernetes, ``timeout``), Ctrl-C and SLURM's
    warning signal: the process exits with 128 + n (never 0), ``metrics.json`` says
    ``interrupted`` and names the signal, ``last.ckpt`` is intact, and rerunning the same command
    resumes; here SIGTERM mid-training, then SIGINT during the final evaluation (after the budget
    was spent), then SLURM's SIGUSR1 (which also requeues the job), then a clean finish that equals
    the uninterrupted run bit for bit."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "scontrol.calls"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    (bin_dir / "scontrol").chmod(0o755)
    slurm = {"SLURM_JOB_ID": "4242", "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    ref = metrics(uninterrupted)
    steps_per_epoch = ref["cost"]["train_steps"] // 3
    run = tmp_path / "signalled"
    for sig, at, epoch, env in (
        ("SIGTERM", str(steps_per_epoch + 2), 0, {}),
        ("SIGINT", "test", 2, {}),
        ("SIGUSR1", "test", 2, slurm),
    ):
        p = train(run, qs_data, env={"EMBEXP_TEST_SIGNAL_AT_STEP": at, "EMBEXP_TEST_SIGNAL": sig, **env})
        assert p.returncode == 128 + getattr(signal, sig), (sig, p.stderr[-3000:])
        rec = metrics(run)
        assert rec["status"] == "interrupted" and rec["signal"] == sig, rec
        ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
        assert ckpt["epoch"] == epoch
    assert calls.read_text().split() == ["requeue", "4242"]  # only the SLURM job asked to be requeued
    p = train(run, qs_data)
    assert p.returncode == 0, p.stderr[-3000:]
    got = metrics(run)
    assert got["status"] == "finished"
    assert got["cost"]["train_steps"] == ref["cost"]["train_steps"]  # no step after the budget
    assert got["metrics"] == ref["metrics"] and got["model_selection"] == ref["model_selection"]


@pytest.mark.slow
def test_a_full_disk_says_one_line_and_keeps_the_last_complete_checkpoint(qs_data, uninterrupted, tmp_path):
    """The disk fills while epoch 1's checkpoints are written: one line on stderr (no traceback),
    no partial checkpoint beside the good ones, ``last.ckpt`` still the complete epoch-0
    checkpoint, and the rerun (space freed) resumes to the uninterrupted run's result."""
    run = tmp_path / "full"
    p = train(run, qs_data, env={"EMBEXP_TEST_DISK_FULL_AT_EPOCH": "1"})
    assert p.returncode == 2, p.stderr[-3000:]
    last_line = p.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: ") and ".ckpt: could not be written" in last_line, p.stderr[-2000:]
    assert "Traceback" not in p.stderr
    ckpts = sorted(x.name for x in (run / "checkpoints").iterdir())
    assert not [n for n in ckpts if n.endswith(".tmp")], ckpts
    for name in ckpts:  # whatever is there is complete
        torch.load(run / "checkpoints" / name, map_location="cpu", weights_only=True)
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 0
    assert metrics(run)["status"] == "failed"
    p = train(run, qs_data)
    assert p.returncode == 0, p.stderr[-3000:]
    assert metrics(run)["metrics"] == metrics(uninterrupted)["metrics"]


def test_an_unpadded_run_killed_mid_epoch_resumes_bit_exact(qs_data, uninterrupted, tmp_path):
    """``model.unpad`` draws its dropout masks over the real tokens only: another stream of random
    numbers than the padded run's, but one stream, restored with the checkpoint."""
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    p = train(whole, qs_data, "model.unpad=true")
    assert p.returncode == 0, p.stderr[-3000:]
    ref = metrics(whole)
    steps_per_epoch = ref["cost"]["train_steps"] // 3
    p = train(killed, qs_data, "model.unpad=true", kill_at=2 * steps_per_epoch + 1)  # early in epoch 2
    assert p.returncode == -signal.SIGKILL and not (killed / "metrics.json").exists()
    p = train(killed, qs_data, "model.unpad=true")
    assert p.returncode == 0, p.stderr[-3000:]
    assert f"resumed at step {2 * steps_per_epoch}:" in p.stdout + p.stderr
    assert metrics(killed)["metrics"] == ref["metrics"]
    # the unpadded forward did run: other dropout masks than the padded run's, so other final weights
    weights = [
        json.loads((d / "provenance.json").read_text())["final_encoder_fingerprint"] for d in (whole, killed)
    ]
    padded = json.loads((uninterrupted / "provenance.json").read_text())["final_encoder_fingerprint"]
    assert weights[0] == weights[1] != padded


def test_a_length_grouped_run_killed_then_moved_resumes_bit_exact_where_it_is(
    qs_data, uninterrupted, tmp_path
):
    """Two promises checked on one killed run (one run instead of two keeps the suite short):

    - ``train.group_by_length``: each epoch's length-sorted batches are planned again from (seed,
      epoch) after a kill, so the resumed run steps on the batches of an uninterrupted one;
    - a run folder moved after a kill (another disk, an archive) still binds to its config and
      resumes where it is now with the best epoch so far and its score. The checkpoint here keeps
      the *lowest* dev score (training is unchanged), so the best epoch is one checkpointed before
      the kill, and a resume that lost the score would take a later one.

    A finished folder copied elsewhere then reruns as done."""
    import shutil

    grouped, lowest = "train.group_by_length=4", "callbacks.model_checkpoint.mode=min"
    whole = tmp_path / "whole"
    p = train(whole, qs_data, grouped)
    assert p.returncode == 0, p.stderr[-3000:]
    ref = metrics(whole)
    assert ref["dev_history"] != metrics(uninterrupted)["dev_history"]  # grouping changed the batches
    steps_per_epoch = ref["cost"]["train_steps"] // 3
    first, moved, again = tmp_path / "a" / "run", tmp_path / "b" / "run", tmp_path / "c" / "run"
    p = train(first, qs_data, grouped, lowest, kill_at=2 * steps_per_epoch + 1)  # 2 epochs checkpointed
    assert p.returncode == -signal.SIGKILL and not (first / "metrics.json").exists()
    shutil.move(first.parent, moved.parent)
    p = train(moved, qs_data, grouped, lowest)
    assert p.returncode == 0, p.stderr[-3000:]
    log = p.stdout + p.stderr
    assert f"resumed at step {2 * steps_per_epoch}:" in log and "run folder moved" in log
    assert "dirpath has changed" not in log  # Lightning kept the best score
    got = metrics(moved)
    assert got["dev_history"] == ref["dev_history"]  # the same training, bit for bit
    scores = [h["dev/mrr@10"] for h in ref["dev_history"]]
    best_epoch = scores.index(min(scores))
    assert got["model_selection"]["best_epoch"] == best_epoch < 2, scores
    ckpt = torch.load(moved / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    (best,) = [s for k, s in ckpt["callbacks"].items() if k.startswith("ModelCheckpoint") and s["monitor"]]
    assert best["best_model_path"] == str(moved / "checkpoints" / f"best-epoch{best_epoch:02d}.ckpt")
    assert list(best["best_k_models"]) == [best["best_model_path"]]
    recorded = json.loads((moved / "run.json").read_text())["config"]["callbacks"]
    assert recorded["last_checkpoint"]["dirpath"] == "<run>/checkpoints"
    shutil.copytree(moved.parent, again.parent)  # a finished run copied: its results, nothing redone
    p = train(again, qs_data, grouped, lowest)
    assert p.returncode == 0 and "already finished" in p.stdout + p.stderr
    assert metrics(again) == got


def test_last_checkpoint_holds_the_latest_epoch(uninterrupted):
    ckpt = torch.load(uninterrupted / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["epoch"] == 2  # the last of 3 epochs, whatever the monitored metric did
    best = metrics(uninterrupted)["cost"]["best_epoch"]
    assert (uninterrupted / "checkpoints" / f"best-epoch{best:02d}.ckpt").exists()


def test_rerun_with_a_changed_key_is_refused_and_the_folder_kept(qs_data, uninterrupted):
    before = (uninterrupted / "metrics.json").read_text()
    hydra_cfg = (uninterrupted / ".hydra" / "config.yaml").read_text()
    p = train(uninterrupted, qs_data, "loss.temperature=0.2")
    assert p.returncode == 2
    assert "config key 'run_id'" in p.stderr and "loss.temperature: 0.05 -> 0.2" in p.stderr
    assert "force=true" in p.stderr and "run_id=" in p.stderr
    assert (uninterrupted / "metrics.json").read_text() == before
    assert (uninterrupted / ".hydra" / "config.yaml").read_text() == hydra_cfg  # not overwritten
    assert yaml.safe_load(hydra_cfg)["loss"]["temperature"] == 0.05
    # the same config again: the finished results, nothing redone
    p = train(uninterrupted, qs_data)
    assert p.returncode == 0 and "already finished" in p.stdout + p.stderr


def test_force_starts_over(qs_data, uninterrupted, tmp_path):
    import shutil

    run = tmp_path / "forced"
    shutil.copytree(uninterrupted, run)
    p = train(run, qs_data, "force=true", "trainer.max_epochs=1")
    assert p.returncode == 0, p.stderr[-3000:]
    log = p.stdout + p.stderr
    assert "resuming" not in log and "moved the previous run's files" in log
    rec = metrics(run)
    assert rec["cost"]["epochs"] == 1 and rec["cost"]["baseline_eval_s"] > 0
    assert rec["cost"]["train_steps"] == metrics(uninterrupted)["cost"]["train_steps"] // 3
    (old,) = tmp_path.glob("forced.old-*")
    assert metrics(old)["cost"]["epochs"] == 3  # the previous results, kept aside
    assert json.loads((run / "run.json").read_text())["config"]["trainer"]["max_epochs"] == 1
