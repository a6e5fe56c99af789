"""The job side of a trial: a failure is recorded in the trial's run folder, except when the
folder itself was refused (held by another process, foreign or damaged): that folder is never
written to."""

import pytest
from omegaconf import OmegaConf

from embexp.errors import RunFolderError
from embexp.sweep.trial import TrialError, run_trial

CFG = OmegaConf.create({"optuna": {"trial_number": 3, "study_name": "s"}})


def _raise(e):
    def objective(cfg):
        raise e

    return objective


def test_a_failing_trial_is_recorded_in_its_folder(tmp_path):
    with pytest.raises(TrialError, match="RuntimeError: boom"):
        run_trial(CFG, _raise(RuntimeError("boom")), tmp_path)
    assert '"status": "failed"' in (tmp_path / "metrics.json").read_text()


def test_a_refused_folder_is_never_written_to(tmp_path):
    """A retry of a trial whose run is still alive elsewhere used to overwrite the live run's
    metrics.json with "failed"; a foreign folder got one written into it."""
    (tmp_path / "metrics.json").write_text("{damaged")
    with pytest.raises(TrialError, match="RunFolderError: .* in use by pid 1"):
        run_trial(CFG, _raise(RunFolderError(f"run folder {tmp_path} is in use by pid 1")), tmp_path)
    assert (tmp_path / "metrics.json").read_text() == "{damaged"
    with pytest.raises(TrialError):
        run_trial(CFG, _raise(RunFolderError("not an embexp run folder")), tmp_path / "foreign")
    assert not (tmp_path / "foreign").exists()
