"""The in-trial pruning hook on a real Optuna study (SQLite), without a model: it reports
every epoch, prunes when the pruner says so, and never after the final epoch."""

from types import SimpleNamespace

import optuna
import pytest
from omegaconf import OmegaConf

from embexp.sweep.pruning import PruningHook

METRIC = "dev/ndcg@10"


def hook_for(tmp_path, max_epochs):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="s", storage=url, direction="maximize")
    trial = study.ask()
    ocfg = OmegaConf.create(
        {
            "study_name": "s",
            "storage": url,
            "trial_number": trial.number,
            "pruning_metric": METRIC,
            # prunes every reported value below 2.0, i.e. every value a metric in [0, 1] can take
            "pruner": "threshold",
            "pruner_kwargs": {"lower": 2.0},
        }
    )
    return PruningHook(ocfg, tmp_path, "run", max_epochs=max_epochs), study, trial.number


def result(v):
    return SimpleNamespace(metrics={METRIC: v, "dev/recall@10": 0.9})


def test_prunes_before_the_final_epoch_and_writes_the_record(tmp_path):
    hook, study, n = hook_for(tmp_path, max_epochs=3)
    with pytest.raises(optuna.TrialPruned, match="after epoch 1"):
        hook(result(0.5), 1)
    assert study.trials[n].intermediate_values == {1: 0.5}
    assert '"status": "pruned"' in (tmp_path / "metrics.json").read_text()


def test_final_epoch_is_reported_not_pruned(tmp_path):
    hook, study, n = hook_for(tmp_path, max_epochs=3)
    hook(result(0.7), 2)  # the pruner would prune 0.7, but training is over
    assert study.trials[n].intermediate_values == {2: 0.7}
    assert not (tmp_path / "metrics.json").exists()


def test_without_max_epochs_every_epoch_may_prune(tmp_path):
    hook, _, _ = hook_for(tmp_path, max_epochs=None)
    with pytest.raises(optuna.TrialPruned):
        hook(result(0.7), 2)
