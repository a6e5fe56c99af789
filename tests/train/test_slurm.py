"""SLURM requeue on the requeue signal: only inside a batch job, only for that signal, with the
array task's id, and a failed ``scontrol`` is said, not raised."""

import os
import signal

import pytest

from embexp.train.slurm import requeue_if_slurm, slurm_job_id


@pytest.fixture()
def scontrol(tmp_path, monkeypatch):
    calls = tmp_path / "calls"
    script = tmp_path / "bin" / "scontrol"
    script.parent.mkdir()
    script.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit ${{SCONTROL_RC:-0}}\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")
    for k in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_JOB_NAME"):
        monkeypatch.delenv(k, raising=False)
    return calls


def test_requeues_a_batch_job_on_the_requeue_signal_only(scontrol, monkeypatch):
    assert not requeue_if_slurm(signal.SIGUSR1)  # not under SLURM
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    assert not requeue_if_slurm(signal.SIGTERM) and not scontrol.exists()
    assert requeue_if_slurm(signal.SIGUSR1)
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "70")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "3")
    assert slurm_job_id() == "70_3" and requeue_if_slurm(signal.SIGUSR1)
    monkeypatch.setenv("EMBEXP_REQUEUE_SIGNAL", "USR2")
    assert requeue_if_slurm(signal.SIGUSR2)
    assert scontrol.read_text().splitlines() == ["requeue 77", "requeue 70_3", "requeue 70_3"]


def test_an_interactive_session_or_a_failing_scontrol_is_not_requeued(scontrol, monkeypatch, caplog):
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("SLURM_JOB_NAME", "bash")
    assert not requeue_if_slurm(signal.SIGUSR1)
    monkeypatch.delenv("SLURM_JOB_NAME")
    monkeypatch.setenv("SCONTROL_RC", "1")
    assert not requeue_if_slurm(signal.SIGUSR1)
    assert "was the job submitted with --requeue?" in caplog.text
