"""How long ``embexp-report`` takes on 20 runs of 300 eval queries (latency measurement excluded).

    OMP_NUM_THREADS=2 python benchmarks/report_speed.py --out /tmp/report-bench

Writes synthetic finished runs (``tests/report/fixture_runs.py``: real run-folder files whose
aggregates come from their per-query rows) — 5 configurations x 4 seeds, 300 test queries, a
3,000-document corpus for BM25 and the hybrids — then times reading + grouping + references +
statistics (``build_report``) and the files (``write_report``: figures, markdown, HTML, JSON),
with the default 9,999 resamples. Prints a table; the target (issue 12) is < 30 s in total.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # conftest (the BEIR writer)
sys.path.insert(0, str(ROOT / "tests" / "report"))

from fixture_runs import make_beir, make_run  # noqa: E402

CONFIGS = [  # (name, adapter, r, lr, quality)
    ("lora_r8", "lora", 8, 1e-3, 0.55),
    ("lora_r32", "lora", 32, 1e-3, 0.6),
    ("full_2e-5", "full", 16, 2e-5, 0.65),
    ("full_5e-5", "full", 16, 5e-5, 0.62),
    ("last_layer", "last_layer", 16, 1e-4, 0.5),
]


def make_runs(out: Path, seeds: int) -> Path:
    data = make_beir(out / "beir", n_docs=3000, n_test=300, n_train=100)
    multirun = out / "multirun"
    n = 0
    for seed in range(1, seeds + 1):
        for name, adapter, r, lr, quality in CONFIGS:
            make_run(
                multirun,
                str(n),
                data,
                adapter=adapter,
                r=r,
                lr=lr,
                seed=seed,
                quality=quality,
                experiment=name,
            )
            n += 1
    return multirun


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--resamples", type=int, default=9999)
    args = ap.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    t = time.perf_counter()
    multirun = make_runs(args.out, args.seeds)
    made = time.perf_counter() - t

    from embexp.report.build import ReportSettings, build_report
    from embexp.report.render import write_report

    t = time.perf_counter()
    rep = build_report([str(multirun)], ReportSettings(latency=False, resamples=args.resamples))
    built = time.perf_counter() - t
    t = time.perf_counter()
    write_report(rep, args.out / "report")
    written = time.perf_counter() - t
    n_runs = sum(len(s["runs"]) for s in rep["systems"] if s["kind"] == "finetuned")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}")  # fmt: skip
    print(f"runs: {n_runs}, eval queries: {rep['eval']['n_queries']}, systems: {len(rep['systems'])}, "
          f"comparisons: {len(rep['comparisons'])}, resamples: {args.resamples}")  # fmt: skip
    print(f"(the {n_runs} synthetic runs were written in {made:.1f} s, not counted)")
    print("| phase | seconds |\n|---|---|")
    print(f"| read, group, references, statistics (build_report) | {built:.1f} |")
    print(f"| figures, report.md, report.html, report.json (write_report) | {written:.1f} |")
    print(f"| **total** (target < 30 s) | **{built + written:.1f}** |")


if __name__ == "__main__":
    main()
