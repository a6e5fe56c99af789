"""What pruning saves: the same Optuna sweep (same search, sampler seed and trial budget) run
once without pruning and once with the median pruner; prints the trial-epochs each spent
(training epochs summed over trials, the cost pruning cuts) and the best dev value each
found (plus that trial's test nDCG@10 and the sweep's wall time).

    python benchmarks/pruning.py                                  # MiniLM, quickstart data
    python benchmarks/pruning.py --model tiny --n-trials 4 --epochs 2   # smoke test (meaningless scores)
    python benchmarks/pruning.py --data ../shared/datasets/scifact --search lora_rank_alpha_lr

--data: ``quickstart`` (generated on first use) or a BEIR folder. --search: a conf/hparams_search
name. The median pruner prunes a trial whose dev metric after an epoch is below the median of
earlier trials at that epoch, once --startup trials have finished and from epoch --warmup on.
Both sweeps sample the same configs until pruning changes the history (a fresh study with the
same seed). Compare trial-epochs, not wall time: the first sweep also pays one-off costs
(generating the quickstart data, the embedding cache), and this box may be shared.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from common import ROOT, git_rev, machine, print_table  # noqa: E402


def run_sweep(args, pruner: str, out: Path) -> dict:
    data = (
        ["data=quickstart"]
        if args.data == "quickstart"
        else ["data=beir", f"data.path={Path(args.data).resolve()}"]
    )
    sd = out / pruner
    cmd = [
        sys.executable,
        "-m",
        "embexp.cli.train",
        f"hparams_search={args.search}",
        *data,
        f"model={args.model}",
        "logger=none",
        "eval.show_progress=false",
        "callbacks.progress_bar=null",
        "callbacks.early_stopping=null",
        f"trainer.max_epochs={args.epochs}",
        f"hydra.sweep.dir={sd}",
        f"hydra.sweeper.study_name=pruning-bench-{pruner}",
        f"hydra.sweeper.n_trials={args.n_trials}",
        f"hydra.sweeper.seed={args.seed}",
        f"hydra.sweeper.pruner={pruner}",
    ]
    if pruner == "median":
        cmd += [
            f"++hydra.sweeper.pruner_kwargs.n_startup_trials={args.startup}",
            f"++hydra.sweeper.pruner_kwargs.n_warmup_steps={args.warmup}",
        ]
    cmd += args.overrides
    print(f"\n== {pruner}: {' '.join(cmd[2:])}", flush=True)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    (out / f"{pruner}.log").write_text(p.stdout + p.stderr)
    if p.returncode != 0:
        sys.exit(f"sweep with pruner={pruner} failed (log: {out / f'{pruner}.log'}):\n{p.stderr[-3000:]}")
    with open(sd / "trials.csv") as f:
        rows = list(csv.DictReader(f))
    epochs = sum(int(r["last_epoch"]) + 1 for r in rows if r["last_epoch"] != "")
    states = {s: sum(r["state"] == s for r in rows) for s in ("COMPLETE", "PRUNED", "FAIL")}
    metric = [c for c in rows[0] if c not in ("number", "state") and not c.startswith("params.")][0]
    done = [r for r in rows if r["state"] == "COMPLETE" and r[metric] != ""]
    best = max(done, key=lambda r: float(r[metric])) if done else None
    test = None
    if best is not None:
        rec = json.loads((Path(best["run_dir"]) / "metrics.json").read_text())
        test = rec["metrics"].get("final/test/ndcg@10")
    return {
        "pruner": pruner,
        "trials": len(rows),
        **{k.lower(): v for k, v in states.items()},
        "trial_epochs": epochs,
        "best": float(best[metric]) if best else None,
        "best_trial": best["number"] if best else None,
        "best_test_ndcg@10": test,
        "wall_s": round(wall, 1),
        "metric": metric,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--model", default="minilm-l6", help="conf/model name (tiny: random 2-layer BERT, for a smoke test)"
    )
    ap.add_argument("--data", default="quickstart", help="quickstart or a BEIR folder")
    ap.add_argument("--search", default="temperature_x_loss", help="conf/hparams_search name")
    ap.add_argument("--n-trials", type=int, default=12)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--startup", type=int, default=3, help="median pruner: trials finished before any pruning"
    )
    ap.add_argument("--warmup", type=int, default=1, help="median pruner: epochs never pruned (0-based)")
    ap.add_argument("--out", default=None, help="keep the sweeps here (default: a temporary folder)")
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides for both sweeps")
    args = ap.parse_args()
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="embexp-pruning-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"# pruning benchmark: {machine()}, embexp {git_rev()}")
    print(
        f"# search={args.search} model={args.model} data={args.data} n_trials={args.n_trials} "
        f"epochs={args.epochs} seed={args.seed}; sweeps in {out}"
    )
    pruned = run_sweep(args, "median", out)  # first: it is also the 12-trial TPE + median sweep (issue 4)
    res = [run_sweep(args, "none", out), pruned]
    metric = res[0]["metric"]
    print()
    print_table(
        [
            "pruner",
            "trials",
            "complete",
            "pruned",
            "failed",
            "trial-epochs",
            f"best {metric}",
            "best trial",
            "its test ndcg@10",
            "wall s",
        ],
        [
            [
                r["pruner"],
                r["trials"],
                r["complete"],
                r["pruned"],
                r["fail"],
                r["trial_epochs"],
                f"{r['best']:.4f}" if r["best"] is not None else "-",
                r["best_trial"],
                f"{r['best_test_ndcg@10']:.4f}" if r["best_test_ndcg@10"] is not None else "-",
                r["wall_s"],
            ]
            for r in res
        ],
    )
    a, b = res
    if a["trial_epochs"]:
        print(
            f"\nmedian pruning spent {b['trial_epochs']}/{a['trial_epochs']} trial-epochs "
            f"({100 * (1 - b['trial_epochs'] / a['trial_epochs']):.0f}% saved)"
        )


if __name__ == "__main__":
    main()
