"""Requeue on SLURM: a run warned by SLURM before its time limit puts its job back in the queue.

As Lightning's SLURM environment does (``auto_requeue``): when the job was launched by
``sbatch`` (``SLURM_JOB_ID`` set, not an interactive ``srun``) and the run is stopped by the
requeue signal (SIGUSR1, ``#SBATCH --signal=B:USR1@120``, or ``$EMBEXP_REQUEUE_SIGNAL``), rank 0
runs ``scontrol requeue <job>`` after the run recorded itself as interrupted. The requeued job
runs the same script; the same ``run_id`` resumes from ``last.ckpt``. embexp's own handler
replaces Lightning's for that signal (Lightning does not install its handler where one exists).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess

from embexp.utils.dist import is_main_process

log = logging.getLogger("embexp.train")


def requeue_signal() -> int:
    name = os.environ.get("EMBEXP_REQUEUE_SIGNAL", "SIGUSR1").upper()
    name = name if name.startswith("SIG") else f"SIG{name}"
    return int(getattr(signal, name, signal.SIGUSR1))


def slurm_job_id() -> str | None:
    """The id ``scontrol requeue`` takes (an array task as ``<job>_<task>``), or None outside a
    batch job (interactive ``srun``/``salloc`` sessions are not requeued)."""
    if os.environ.get("SLURM_JOB_NAME") in ("bash", "interactive"):
        return None
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    job = f"{array}_{task}" if array and task else os.environ.get("SLURM_JOB_ID")
    return job if job and re.fullmatch(r"[0-9_]+", job) else None


def requeue_if_slurm(signum: int) -> bool:
    """``scontrol requeue`` this job when ``signum`` is the requeue signal; whether it was asked."""
    job = slurm_job_id()
    if job is None or signum != requeue_signal() or not is_main_process():
        return False
    try:
        done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        log.warning("could not requeue SLURM job %s: %s", job, e)
        return False
    if done.returncode == 0:
        log.info("requeued SLURM job %s: it resumes this run when it starts again", job)
        return True
    log.warning(
        "scontrol requeue %s failed (%s): %s (was the job submitted with --requeue?)",
        job,
        done.returncode,
        (done.stderr or done.stdout).strip(),
    )
    return False
