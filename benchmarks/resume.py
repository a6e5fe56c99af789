"""Resume overhead: how long a killed SciFact LoRA run takes from restart to its first new step,
next to a fresh start's time to its first step (which includes the baseline evaluation and
mining round 0). Both come from the run's own log line ("first training step N: X s after the
process started" / "resumed at step N: X s ...").

    python benchmarks/resume.py                       # SciFact, experiment=scifact_lora
    python benchmarks/resume.py --extra negatives=iterative trainer.precision=32-true eval.dtype=fp32

The first run is killed (SIGKILL) a few seconds into its second epoch, i.e. after last.ckpt of
epoch 0 was written; the same command is then run again in the same folder and stopped at its
first new step (``--finish`` lets it train to the end).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, SCIFACT, git_rev, machine, print_table

LINE = re.compile(r"(first training|resumed at) step (\d+): ([\d.]+) s after the process started")


def launch(cmd: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(cmd, cwd=ROOT, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env)


def first_step(log: Path) -> tuple[str, int, float] | None:
    for m in LINE.finditer(log.read_text()):
        return m.group(1), int(m.group(2)), float(m.group(3))
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=str(SCIFACT))
    ap.add_argument("--experiment", default="scifact_lora")
    ap.add_argument("--out", default=None, help="run folder (default: a temporary one, removed after)")
    ap.add_argument("--kill-after", type=float, default=5.0, help="seconds after last.ckpt appears")
    ap.add_argument("--extra", nargs="*", default=[])
    ap.add_argument(
        "--finish",
        action="store_true",
        help="let the resumed run finish (default: stop it at its first step)",
    )
    args = ap.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="embexp-resume-")) / "run"
    cmd = [
        sys.executable,
        "-m",
        "embexp.cli.train",
        f"experiment={args.experiment}",
        f"data.path={args.data}",
        "logger=none",
        "callbacks.progress_bar=null",
        "eval.show_progress=false",
        "trainer.max_epochs=2",
        *args.extra,
        f"hydra.run.dir={out}",
    ]
    print("command:", " ".join(cmd[2:]))
    t0 = time.time()
    proc = launch(cmd, out.parent / "first.log")
    last = out / "checkpoints" / "last.ckpt"
    while not last.exists():
        if proc.poll() is not None:
            sys.exit(f"the first run ended before its first checkpoint; see {out.parent / 'first.log'}")
        time.sleep(0.5)
    time.sleep(args.kill_after)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = time.time() - t0
    t1 = time.time()
    second = launch(cmd, out.parent / "second.log")
    while first_step(out.parent / "second.log") is None and second.poll() is None:
        time.sleep(0.5)
    if not args.finish:  # the overhead is measured: no need to train the rest
        second.send_signal(signal.SIGKILL)
    rc = second.wait()
    total2 = time.time() - t1
    fresh, resumed = first_step(out.parent / "first.log"), first_step(out.parent / "second.log")
    print(
        f"\nmachine: {machine()}; embexp {git_rev()}; "
        f"first run killed after {killed_at:.0f} s; rerun exit {rc} "
        f"after {total2:.0f} s\n"
    )
    print_table(
        ["start", "first step", "seconds from process start to that step"],
        [
            ["fresh", fresh[1] if fresh else "?", f"{fresh[2]:.1f}" if fresh else "?"],
            [
                "resumed (from last.ckpt)",
                resumed[1] if resumed else "?",
                f"{resumed[2]:.1f}" if resumed else "?",
            ],
        ],
    )
    if args.out is None:
        shutil.rmtree(out.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
