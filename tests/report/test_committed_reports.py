"""The committed SciFact curriculum report (BENCHMARKS.md §12) is what its committed run
records give: rebuilt from ``reports/scifact-curriculum/runs.tar.gz`` without the parts that
need the runs' data or models (BM25/hybrid rows, latency), every base-model and configuration
number and every comparison between them equals the committed ``report.json``."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from embexp.report.build import ReportSettings, build_report

REPORT = Path(__file__).resolve().parents[2] / "reports" / "scifact-curriculum"


def _rows(rows: list[dict], keys: tuple[str, ...], systems: set[str]) -> dict:
    return {tuple(r[k] for k in keys): r for r in rows if r.get("system", r.get("a")) in systems}


def test_curriculum_report_rebuilds_from_its_run_records(tmp_path):
    with tarfile.open(REPORT / "runs.tar.gz") as t:
        t.extractall(tmp_path, filter="data")
    committed = json.loads((REPORT / "report.json").read_text())
    rebuilt = build_report(
        sorted(str(p) for p in tmp_path.iterdir()), ReportSettings(references=False, latency=False)
    )
    ours = {s["name"] for s in committed["systems"] if s["kind"] != "reference"}
    assert {s["name"] for s in rebuilt["systems"]} == ours
    assert len(ours) == 4  # the base model and in_batch / static / iterative
    assert [s["n_seeds"] for s in rebuilt["systems"] if s["kind"] == "finetuned"] == [3, 3, 3]

    key = ("system", "slice", "metric")
    want, got = _rows(committed["summary"], key, ours), _rows(rebuilt["summary"], key, ours)
    assert got.keys() == want.keys()
    for k, row in want.items():
        assert got[k]["mean"] == pytest.approx(row["mean"], abs=1e-12), k
        assert got[k]["per_seed"] == pytest.approx(row["per_seed"], abs=1e-12), k

    key = ("a", "b", "slice", "metric")
    configs = [c for c in committed["comparisons"] if c["family"] == "configurations"]
    want, got = _rows(configs, key, ours), _rows(rebuilt["comparisons"], key, ours)
    assert got.keys() == want.keys() and want
    for k, row in want.items():
        for f in ("mean_a", "mean_b", "diff"):
            assert got[k][f] == pytest.approx(row[f], abs=1e-12), (k, f)
        assert got[k]["significant"] == row["significant"], k
