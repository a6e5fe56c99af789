"""Runs you can trust after a crash or a rerun: a kill -9 mid-epoch then a rerun ends bit for
bit where an uninterrupted run ends (dropout on, mined negatives re-mined every epoch); the
baseline rows and the full cost survive; a changed config or ``force`` is never silently
answered with old results."""

import json
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
    "trainer.deterministic=true",
    "seed=3",
    "eval.show_progress=false",
    "callbacks.progress_bar=null",
    "+callbacks.fault._target_=faults.KillAtStep",
]


@pytest.fixture(scope="module")
def qs_data(tmp_path_factory):
    from embexp.data import quickstart

    return quickstart.generate(
        tmp_path_factory.mktemp("qs") / "qs", seed=0, n_products=2, n_train=200, n_dev=40, n_test=60
    )


def train(run_dir, data, *extra, kill_at=None):
    env = {"PYTHONPATH": FAULTS}
    if kill_at is not None:
        env["EMBEXP_TEST_KILL_AT_STEP"] = str(kill_at)
    return run_cli(
        "embexp.cli.train",
        "data=beir",
        f"data.path={data}",
        *ARGS,
        *extra,
        f"hydra.run.dir={run_dir}",
        env=env,
    )


def metrics(run_dir):
    return json.loads((run_dir / "metrics.json").read_text())


@pytest.fixture(scope="module")
def uninterrupted(qs_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "uninterrupted"
    p = train(out, qs_data)
    assert p.returncode == 0, p.stderr[-3000:]
    return out


def test_kill_mid_epoch_then_rerun_is_bit_exact(qs_data, uninterrupted, tmp_path):
    ref = metrics(uninterrupted)
    steps_per_epoch = ref["cost"]["train_steps"] // 3
    kill_at = steps_per_epoch + steps_per_epoch // 2  # the middle of epoch 1
    run = tmp_path / "killed"
    p = train(run, qs_data, kill_at=kill_at)
    assert p.returncode == -signal.SIGKILL
    assert not (run / "metrics.json").exists()
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["epoch"] == 0 and "embexp_run_state" in ckpt and "embexp_curriculum" in ckpt

    p = train(run, qs_data)
    assert p.returncode == 0, p.stderr[-3000:]
    log = p.stdout + p.stderr
    assert "resuming from" in log and f"resumed at step {steps_per_epoch}:" in log
    got = metrics(run)
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
    ref_rows = [json.loads(line) for line in (uninterrupted / "per_query.jsonl").read_text().splitlines()]
    assert rows == ref_rows


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
