"""The run record on its own: what the config hash sees, how a folder is bound, refused, moved
aside, and which states a failure may overwrite."""

import json

import pytest
from omegaconf import OmegaConf

from embexp.errors import ConfigError
from embexp.train.record import (
    HASH_EXCLUDE,
    RunRecord,
    config_hash,
    diff_keys,
    hashed_config,
    relative_to_run,
    with_added_defaults,
)

# what a finished metrics.json holds at least
FINISHED = {
    "metrics": {"final/test/ndcg@10": 0.5},
    "primary_metric": "final/test/ndcg@10",
    "cost": {},
    "data": {},
}


def cfg(**over):
    base = {
        "run_id": "r1",
        "paths": {"root_dir": "/a"},
        "logger": {"wandb": {"project": "p"}},
        "loss": {"_target_": "embexp.losses.InfoNCELoss", "temperature": 0.05},
        "trainer": {"max_epochs": 3, "enable_progress_bar": True},
        "data": {"path": "${paths.root_dir}/data"},
        "callbacks": {"progress_bar": {"leave": False}},
    }
    return OmegaConf.merge(OmegaConf.create(base), OmegaConf.create(over))


def test_hash_ignores_keys_that_cannot_change_results():
    h = config_hash(hashed_config(cfg()))
    same = cfg(run_id="r2", logger={"wandb": {"project": "q"}}, trainer={"enable_progress_bar": False})
    assert config_hash(hashed_config(same)) == h
    assert config_hash(hashed_config(cfg(loss={"temperature": 0.2}))) != h
    assert hashed_config(cfg())["data"]["path"] == "/a/data"  # resolved against the whole config
    assert "paths" not in hashed_config(cfg()) and "callbacks" in hashed_config(cfg())


def test_diff_keys_names_leaves():
    assert diff_keys({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3, "d": 4}}) == [
        ("a.c", 2, 3),
        ("a.d", "<absent>", 4),
    ]


def test_bind_refuses_another_config_and_restores_hydra_files(tmp_path):
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text("original\n")
    rec = RunRecord(tmp_path)
    assert rec.bind(cfg()) is None and (tmp_path / "run.json").exists()
    (tmp_path / ".hydra" / "config.yaml").write_text("overwritten by hydra\n")
    with pytest.raises(ConfigError, match=r"loss\.temperature: 0\.05 -> 0\.2.*run_id=.*force=true"):
        rec.bind(cfg(loss={"temperature": 0.2}))
    assert (tmp_path / ".hydra" / "config.yaml").read_text() == "original\n"
    assert rec.bind(cfg(run_id="other")) is None  # same hash: resume


def test_finished_run_is_returned_and_failures_never_overwrite_it(tmp_path):
    rec = RunRecord(tmp_path)
    rec.bind(cfg())
    rec.finish(FINISHED, [{"query_id": "q"}], {"base_model": "m"})
    assert rec.bind(cfg())["metrics"] == {"final/test/ndcg@10": 0.5}
    rec.fail("boom")
    assert rec.status() == "finished"
    rows = (tmp_path / "per_query.jsonl").read_text().splitlines()
    assert [json.loads(r) for r in rows] == [{"query_id": "q"}]


def test_failed_then_pruned_states(tmp_path):
    rec = RunRecord(tmp_path)
    rec.fail("RuntimeError: x", "tb", optuna={"trial_number": 3})
    assert rec.read()["status"] == "failed" and rec.read()["optuna"]["trial_number"] == 3
    rec.prune(1, {"dev/ndcg@10": 0.1})
    rec.fail("TrialPruned")  # the pruning exception must not turn a pruned record into a failure
    assert rec.status() == "pruned"


def test_start_over_moves_everything_but_this_invocations_files(tmp_path):
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / "train.log").write_text("log\n")
    (run / "metrics.json").write_text("{}")
    (run / "checkpoints").mkdir()
    old = RunRecord(run).start_over()
    assert sorted(p.name for p in run.iterdir()) == [".hydra", "train.log"]
    assert sorted(p.name for p in old.iterdir()) == ["checkpoints", "metrics.json", "train.log"]
    assert RunRecord(run).start_over() is None  # nothing left to move


def test_legacy_finished_folder_without_run_json_is_returned(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({**FINISHED, "status": "finished"}))
    assert RunRecord(tmp_path).bind(cfg())["status"] == "finished"


def test_a_run_recorded_before_a_key_was_added_binds_to_its_old_behaviour(tmp_path):
    """ADDED_KEYS: a folder recorded without train.group_by_length (batches were always shuffled)
    still binds to a config holding it at null, the old behaviour, and to no other value."""
    rec = RunRecord(tmp_path)
    old = cfg(train={"batch_size": 32})
    rec.bind(old)  # as recorded before the key existed
    rec.finish(FINISHED, [], {})
    assert rec.bind(cfg(train={"batch_size": 32, "group_by_length": None}))["metrics"]
    with pytest.raises(ConfigError, match=r"train\.group_by_length: '<absent>' -> 16"):
        rec.bind(cfg(train={"batch_size": 32, "group_by_length": 16}))
    with pytest.raises(ConfigError, match=r"train\.batch_size: 32 -> 64"):  # other keys still count
        rec.bind(cfg(train={"batch_size": 64, "group_by_length": None}))
    assert json.loads((tmp_path / "run.json").read_text())["config"]["train"] == {"batch_size": 32}


def test_a_mined_run_recorded_before_negatives_sources_binds_to_the_builtin_miner(tmp_path):
    """ADDED_KEYS: ``negatives.source`` (2026-12-08); null is the built-in miner every earlier run used."""
    rec = RunRecord(tmp_path)
    rec.bind(cfg(negatives={"kind": "static", "n_negatives": 1}))
    rec.finish(FINISHED, [], {})
    assert rec.bind(cfg(negatives={"kind": "static", "n_negatives": 1, "source": None}))["metrics"]
    with pytest.raises(ConfigError, match=r"negatives\.source: '<absent>' -> 'mod:Cls'"):
        rec.bind(cfg(negatives={"kind": "static", "n_negatives": 1, "source": "mod:Cls"}))


def test_execution_keys_of_the_schema_are_outside_the_config_hash(tmp_path):
    from embexp.config.schema import execution_keys

    keys = set(execution_keys())
    assert {"model.unpad", "model.compile", "eval.cache", "eval.per_query_top", "train.num_workers"} <= keys
    assert keys <= set(HASH_EXCLUDE) and "model.pooling" not in keys and "eval.batch_size" not in keys
    rec = RunRecord(tmp_path)
    rec.bind(cfg(model={"pooling": "mean", "unpad": False}))
    rec.finish(FINISHED, [], {})
    assert rec.bind(cfg(model={"pooling": "mean", "unpad": True}))["metrics"]  # how, not what


def test_with_added_defaults_fills_in_what_an_older_record_lacks():
    old = {"train": {"batch_size": 32}, "loss": {"temperature": 0.05}}
    assert with_added_defaults(old) == {
        "train": {"batch_size": 32, "group_by_length": None},
        "loss": old["loss"],
    }
    new = {"train": {"batch_size": 32, "group_by_length": 16}}
    assert with_added_defaults(new) == new and old == {"train": {"batch_size": 32}, "loss": old["loss"]}
    assert with_added_defaults({"loss": {}}) == {"loss": {}}  # no train group: nothing to fill


def in_folder(run, **over):
    """A config written into ``run`` the way Hydra does: the checkpoint folder inside it."""
    ckpt = {"_target_": "ModelCheckpoint", "dirpath": "${paths.output_dir}/checkpoints"}
    return cfg(paths={"output_dir": str(run)}, callbacks={"model_checkpoint": ckpt}, **over)


def test_paths_inside_the_run_folder_are_hashed_relative_to_it(tmp_path):
    run = tmp_path / "run"
    hashed = hashed_config(in_folder(run), run_dir=run)
    assert hashed["callbacks"]["model_checkpoint"]["dirpath"] == "<run>/checkpoints"
    assert hashed["data"]["path"] == "/a/data"  # outside the folder: as it is
    moved = tmp_path / "elsewhere"
    assert config_hash(hashed_config(in_folder(moved), run_dir=moved)) == config_hash(hashed)
    assert relative_to_run({"p": f"{run}2/x", "q": [str(run)]}, run) == {"p": f"{run}2/x", "q": ["<run>"]}
    # normalised: a path that climbs out of the folder is not inside it
    assert relative_to_run([f"{run}/../prev/model", f"{run}/./ckpt/"], f"{run}/") == [
        f"{run}/../prev/model",
        "<run>/ckpt",
    ]


def test_a_moved_run_folder_still_binds_and_still_refuses_another_config(tmp_path):
    import shutil

    first, moved = tmp_path / "a", tmp_path / "b"
    rec = RunRecord(first)
    rec.bind(in_folder(first))
    rec.finish(FINISHED, [], {})
    shutil.move(first, moved)
    assert RunRecord(moved).bind(in_folder(moved))["metrics"] == {"final/test/ndcg@10": 0.5}
    with pytest.raises(ConfigError, match=r"loss\.temperature: 0\.05 -> 0\.2"):
        RunRecord(moved).bind(in_folder(moved, loss={"temperature": 0.2}))
    assert json.loads((moved / "run.json").read_text())["run_dir"] == str(first)


def test_a_record_from_before_relative_paths_binds_where_hydra_says_it_was_written(tmp_path):
    """run.json written by an older embexp: absolute checkpoint paths, no ``run_dir``; the folder
    it was recorded in is Hydra's ``runtime.output_dir``."""
    import shutil

    first, moved = tmp_path / "a", tmp_path / "b"
    hashed = hashed_config(in_folder(first))  # absolute, as older versions hashed it
    assert hashed["callbacks"]["model_checkpoint"]["dirpath"] == f"{first}/checkpoints"
    hydra = {"hydra.yaml": f"hydra:\n  runtime:\n    output_dir: {first}\n"}
    first.mkdir()
    old = {"config_hash": config_hash(hashed), "config": hashed, "hydra": hydra}
    (first / "run.json").write_text(json.dumps(old))
    assert RunRecord(first).bind(in_folder(first)) is None  # in place
    shutil.move(first, moved)
    assert RunRecord(moved).bind(in_folder(moved)) is None  # moved
    with pytest.raises(ConfigError, match=r"trainer\.max_epochs: 3 -> 4"):
        RunRecord(moved).bind(in_folder(moved, trainer={"max_epochs": 4}))
    del old["hydra"]  # no Hydra files: recorded where it is now, so only in place
    (moved / "run.json").write_text(json.dumps(old))
    with pytest.raises(
        ConfigError, match=r"callbacks\.model_checkpoint\.dirpath: '.*/a/checkpoints' -> '<run>"
    ):
        RunRecord(moved).bind(in_folder(moved))


# ---- files that cannot be trusted, folders that are not a run's ----------------------------------


@pytest.mark.parametrize("name", ["run.json", "metrics.json"])
def test_an_unreadable_run_file_is_named_never_taken_for_an_absent_one(tmp_path, name):
    from embexp.errors import RunFolderError

    rec = RunRecord(tmp_path)
    rec.bind(cfg())
    rec.finish(FINISHED, [], {})
    (tmp_path / name).write_text((tmp_path / name).read_text()[:40])  # truncated
    for other in (cfg(), cfg(loss={"temperature": 0.2})):  # a rerun with another config included
        with pytest.raises(
            RunFolderError, match=rf"run file .*{name} cannot be read: invalid JSON.*force=true"
        ):
            rec.bind(other)


def test_a_foreign_record_is_refused(tmp_path):
    from embexp.errors import RunFolderError

    rec = RunRecord(tmp_path)
    rec.bind(cfg())
    (tmp_path / "metrics.json").write_text('{"status": "finished"}')
    with pytest.raises(RunFolderError, match=r"says finished but has no metrics, primary_metric, cost, data"):
        rec.bind(cfg())
    (tmp_path / "run.json").write_text('{"hello": 1}')
    with pytest.raises(RunFolderError, match=r"run\.json cannot be read: it has no config_hash"):
        rec.bind(cfg())
    (tmp_path / "run.json").write_text("[1, 2]")
    with pytest.raises(RunFolderError, match=r"it holds a list, not a JSON object"):
        rec.bind(cfg())


def test_only_a_runs_own_folder_is_a_run_folder_and_force_keeps_the_invocations_files(tmp_path):
    from embexp.errors import RunFolderError
    from embexp.utils.lock import LOCK_FILE

    mine = tmp_path / "mine"
    (mine / ".hydra").mkdir(parents=True)
    (mine / "train.log").write_text("log\n")
    RunRecord(mine).check_ours()  # what Hydra and the lock put there before a run starts: fine
    (mine / "notes.txt").write_text("x")
    with pytest.raises(RunFolderError, match=r"not an embexp run folder: it holds notes\.txt"):
        RunRecord(mine).check_ours()
    # files that merely share a run file's name are not a run record (force=true must not move them)
    (mine / "metrics.json").write_text('{"status": "finished"}')
    (mine / "run.json").write_text('{"name": "my run"}')
    with pytest.raises(RunFolderError, match=r"it holds metrics\.json, notes\.txt, run\.json but no embexp"):
        RunRecord(mine).check_ours()
    run = tmp_path / "run"
    rec = RunRecord(run)
    rec.bind(cfg())
    (run / "checkpoints").mkdir()
    (run / LOCK_FILE).write_text("")
    (run / ".hydra").mkdir()
    rec.check_ours()
    old = rec.start_over()
    assert sorted(p.name for p in run.iterdir()) == [".embexp.lock", ".hydra"]
    assert sorted(p.name for p in old.iterdir()) == ["checkpoints", "run.json"]


def test_interrupted_is_resumable_and_never_overwrites_a_finished_run(tmp_path):
    rec = RunRecord(tmp_path)
    rec.bind(cfg())
    rec.interrupt("SIGTERM")
    got = rec.read()
    assert got["status"] == "interrupted" and got["signal"] == "SIGTERM"
    assert "no epoch had ended" in got["resume"]
    assert rec.bind(cfg()) is None  # not finished: a rerun resumes
    rec.finish(FINISHED, [], {})
    rec.interrupt("SIGINT")
    assert rec.status() == "finished"


def test_a_held_folder_is_refused_naming_the_holder(tmp_path):
    from embexp.errors import RunFolderError
    from embexp.utils.lock import FolderLock

    with FolderLock(tmp_path):
        with pytest.raises(RunFolderError, match=r"in use by pid \d+ on host .*run_id=<new id>"):
            with RunRecord(tmp_path).lock():
                pass
    with RunRecord(tmp_path).lock():
        pass
