"""The negative curriculum compared: ``negatives=in_batch|static|iterative`` x seeds on one
experiment (same data, model, adapter, epochs and batches: the same step budget), then a
table of test nDCG@10 / recall@10 as mean ± std over seeds, per-seed values, the mining
statistics of each curriculum and the training wall time.

    python benchmarks/curriculum.py                       # SciFact, experiment=scifact_lora, seeds 1 2 3
    python benchmarks/curriculum.py --seeds 1 2 --kinds static iterative
    python benchmarks/curriculum.py --out DIR --collect   # only read the runs already in DIR
    python benchmarks/curriculum.py --experiment quickstart --data quickstart -- trainer.max_epochs=2

Each run is ``embexp-train experiment=E negatives=K seed=S hydra.run.dir=OUT/K_sS``; a run
whose directory already holds a finished ``metrics.json`` is read, not redone, and an
interrupted one resumes from its last checkpoint (the run directory is stable), so the grid
can be stopped and restarted, or its runs spread over several shells with ``--seeds``.
Runs execute one after the other: on a small machine, start two shells with
``OMP_NUM_THREADS=1`` and different ``--seeds`` to use two cores for two runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from common import ROOT, SCIFACT, git_rev, machine, print_table  # noqa: E402

KINDS = ("in_batch", "static", "iterative")


def run_dir(out: Path, kind: str, seed: int) -> Path:
    return out / f"{kind}_s{seed}"


def finished(d: Path) -> dict | None:
    f = d / "metrics.json"
    if not f.exists():
        return None
    rec = json.loads(f.read_text())
    return (
        rec
        if rec.get("status", "finished") == "finished" and "final/test/ndcg@10" in rec.get("metrics", {})
        else None
    )


def run_one(args, kind: str, seed: int) -> dict:
    d = run_dir(Path(args.out), kind, seed)
    rec = finished(d)
    if rec is not None:
        print(f"-- {d.name}: finished earlier, read from {d / 'metrics.json'}", flush=True)
        return rec
    if args.collect:
        raise SystemExit(f"{d}: no finished run (without --collect it would be run)")
    data = ["data=quickstart"] if args.data == "quickstart" else [f"data.path={Path(args.data).resolve()}"]
    cmd = [
        sys.executable,
        "-m",
        "embexp.cli.train",
        f"experiment={args.experiment}",
        *data,
        f"negatives={kind}",
        f"seed={seed}",
        "logger=none",
        "eval.show_progress=false",
        "callbacks.progress_bar=null",
        f"hydra.run.dir={d}",
        *args.overrides,
    ]
    print(f"-- {d.name}: {' '.join(cmd[2:])}", flush=True)
    d.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with open(d.parent / f"{d.name}.log", "a") as log:
        p = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        raise SystemExit(f"{d.name} failed (exit {p.returncode}); log: {d.parent / (d.name + '.log')}")
    rec = finished(d)
    if rec is None:
        raise SystemExit(f"{d.name}: exited 0 but wrote no finished metrics.json")
    print(
        f"   {time.perf_counter() - t0:.0f} s, test nDCG@10 {rec['metrics']['final/test/ndcg@10']:.4f}",
        flush=True,
    )
    return rec


def mean_std(xs: list[float]) -> str:
    if not xs:
        return "-"
    if len(xs) == 1:
        return f"{xs[0]:.4f}"
    return f"{statistics.mean(xs):.4f} ± {statistics.stdev(xs):.4f}"


def mining_summary(recs: list[dict]) -> str:
    """Mean over seeds of each round's false-negative estimate / overlap with the previous round."""
    rounds: dict[int, list[dict]] = {}
    for r in recs:
        for rd in (r.get("negatives") or {}).get("rounds", []):
            rounds.setdefault(rd.get("round"), []).append(rd)
    parts = []
    for k in sorted(x for x in rounds if x is not None):
        rs = rounds[k]
        fn = [x["false_negative_rate"] for x in rs if x.get("false_negative_rate") is not None]
        ov = [x["overlap_previous"] for x in rs if x.get("overlap_previous") is not None]
        pr = [x["mean_positive_rank"] for x in rs if x.get("mean_positive_rank") is not None]
        s = f"r{k}: pos rank {statistics.mean(pr):.1f}" if pr else f"r{k}:"
        if fn:
            s += f", FN est {statistics.mean(fn):.3f}"
        if ov:
            s += f", overlap {statistics.mean(ov):.2f}"
        parts.append(s)
    return "; ".join(parts) or "-"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--experiment", default="scifact_lora")
    ap.add_argument("--data", default=str(SCIFACT), help="a BEIR folder, or quickstart")
    ap.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument("--out", default=str(ROOT / "runs" / "bench" / "curriculum"))
    ap.add_argument("--collect", action="store_true", help="only read finished runs; run nothing")
    ap.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run (after --)")
    args = ap.parse_args()
    print(f"# curriculum benchmark: {machine()}, embexp {git_rev()}")
    print(
        f"# experiment={args.experiment} data={args.data} kinds={args.kinds} seeds={args.seeds} "
        f"overrides={args.overrides}; runs in {args.out}"
    )
    recs = {k: {s: run_one(args, k, s) for s in args.seeds} for k in args.kinds}
    rows = []
    for k in args.kinds:
        rs = list(recs[k].values())
        nd = [r["metrics"]["final/test/ndcg@10"] for r in rs]
        rc = [r["metrics"]["final/test/recall@10"] for r in rs]
        wall = [r["cost"]["train_wall_s"] for r in rs if r.get("cost", {}).get("train_wall_s")]
        rows.append(
            [
                k,
                len(rs),
                mean_std(nd),
                mean_std(rc),
                " ".join(f"{x:.4f}" for x in nd),
                f"{statistics.mean(wall) / 60:.1f}" if wall else "-",
                mining_summary(rs),
            ]
        )
    print()
    print_table(
        [
            "negatives",
            "seeds",
            "test nDCG@10",
            "test recall@10",
            "per seed nDCG@10",
            "train min",
            "mining rounds (mean over seeds)",
        ],
        rows,
    )
    base = next(iter(next(iter(recs.values())).values()))["metrics"].get("baseline/test/ndcg@10")
    if base is not None:
        print(f"\nbase model (no fine-tuning): test nDCG@10 {base:.4f}")


if __name__ == "__main__":
    main()
