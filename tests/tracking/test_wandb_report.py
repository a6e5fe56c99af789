"""The comparison report as a W&B run (``log_report``), offline and read back: job type, group,
summary, tables, figures and the report artifact; nothing when tracking is off."""

from __future__ import annotations

import struct
import zlib

import pytest
from wandb_offline import OFFLINE_ENV, offline_run_dir, read_records, read_summary

wandb = pytest.importorskip("wandb")

REPORT = {
    "title": "LoRA vs full on tiny-beir",
    "eval": {"dataset": "tiny-beir", "split": "test", "n_queries": 4, "base_model": "tiny-random-bert"},
    "settings": {"keys": ["adapter.kind"], "primary": "ndcg@10"},
    "systems": [
        {"name": "lora", "kind": "trained", "label": "LoRA r=16", "n_seeds": 2, "config": {"r": 16}},
        {"name": "full", "kind": "trained", "label": "full", "n_seeds": 2, "config": {}},
    ],
    "summary": [
        {
            "system": "lora",
            "slice": "all",
            "metric": "ndcg@10",
            "n_queries": 4,
            "mean": 0.61,
            "ci_low": 0.5,
            "ci_high": 0.7,
            "ci_method": "bootstrap",
            "flag": None,
        },
        {
            "system": "full",
            "slice": "all",
            "metric": "ndcg@10",
            "n_queries": 4,
            "mean": 0.64,
            "ci_low": 0.52,
            "ci_high": 0.75,
            "ci_method": "bootstrap",
            "flag": "few queries",
        },
        {
            "system": "lora",
            "slice": "seen",
            "metric": "ndcg@10",
            "n_queries": 2,
            "mean": 0.9,
            "ci_low": None,
            "ci_high": None,
            "ci_method": None,
            "flag": None,
        },
    ],
    "comparisons": [
        {
            "a": "lora",
            "b": "full",
            "slice": "all",
            "metric": "ndcg@10",
            "diff": -0.03,
            "ci_low": -0.1,
            "ci_high": 0.04,
            "p": 0.4,
            "p_holm": 0.8,
            "significant": False,
        },
    ],
    "recovery": [
        {
            "cheaper": "lora",
            "full": "full",
            "slice": "all",
            "metric": "ndcg@10",
            "ratio": 0.95,
            "ci_low": 0.8,
            "ci_high": 1.1,
            "stable": True,
        },
    ],
    "regressions": [],
    "cost": [{"system": "lora", "trainable_params": 1000, "train_s": 1.5}, {"system": "full", "train_s": 3}],
    "verdict": "LoRA recovers 95% of full fine-tuning (CI 80-110%).",
    "caveats": ["4 test queries"],
    "warnings": [],
}


def write_png(path, size=4) -> None:
    """A tiny valid RGB PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * size for _ in range(size))
    ihdr = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


@pytest.fixture()
def report_dir(tmp_path, monkeypatch):
    for k, v in OFFLINE_ENV.items():
        monkeypatch.setenv(k, v)
    for k in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR"):  # artifact staging: not the user's folders
        monkeypatch.setenv(k, str(tmp_path / k.lower()))
    out = tmp_path / "report"
    out.mkdir()
    write_png(out / "fig_recovery.png")
    (out / "report.html").write_text("<html><body><h1>LoRA vs full</h1></body></html>")
    (out / "report.md").write_text("# LoRA vs full\n")
    return out


def test_log_report_offline(report_dir):
    from embexp.tracking.wandb import log_report

    cfg = {"wandb": {"mode": "offline", "project": "embexp-test", "group": "from-config"}}
    run_id = log_report(cfg, REPORT, report_dir, group="multirun-20250101-000000")
    assert run_id and wandb.run is None
    run_dir = offline_run_dir(report_dir)
    assert run_dir.name.endswith(run_id)
    s = read_summary(run_dir)
    assert s["exit_code"] == 0 and s["state"] == "finished"
    summary, config = s["summary"], s["config"]
    assert summary["verdict"] == REPORT["verdict"] and summary["n_systems"] == 2
    assert summary["primary"] == "ndcg@10" and summary["n_caveats"] == 1 and summary["n_warnings"] == 0
    assert summary["lora/ndcg@10"] == 0.61 and summary["full/ndcg@10"] == 0.64  # slice "all" only
    for key, nrows in [("summary", 3), ("comparisons", 1), ("recovery", 1), ("cost", 2), ("caveats", 1)]:
        assert summary[f"tables/{key}"]["_type"] == "table-file", key
        assert summary[f"tables/{key}"]["nrows"] == nrows, key
    assert "tables/regressions" not in summary and "tables/warnings" not in summary  # empty: not logged
    assert summary["figures/recovery"]["_type"] == "image-file"
    assert summary["report"]["_type"] == "html-file"
    assert config["title"] == REPORT["title"] and config["systems"]["lora"]["n_seeds"] == 2
    assert config["settings"]["primary"] == "ndcg@10" and config["eval"]["n_queries"] == 4

    records = read_records(run_dir)
    (run_rec,) = [r["run"] for r in records if r["type"] == "run"]
    assert run_rec["job_type"] == "report" and run_rec["run_group"] == "multirun-20250101-000000"
    assert run_rec["display_name"].startswith("report-")
    arts = [r["artifact"] for r in records if r["type"] == "artifact"]
    assert {a["type"] for a in arts} == {"report", "run_table"}  # each logged table is one too
    arts = [a for a in arts if a["type"] == "report"]
    assert [a["name"] for a in arts] == ["report-multirun-20250101-000000"]
    paths = {e["path"] for e in arts[0]["manifest"]["contents"]}
    assert paths == {"report.html", "report.md", "fig_recovery.png"}  # no report.json here


def test_log_report_group_from_config_and_empty_report(report_dir):
    from embexp.tracking.wandb import log_report

    cfg = {"wandb": {"mode": "offline", "project": "embexp-test", "group": "from-config"}}
    (report_dir / "report.html").unlink()
    (report_dir / "report.md").unlink()
    (report_dir / "fig_recovery.png").unlink()
    run_id = log_report(cfg, {"title": "empty"}, report_dir, group=None)
    run_dir = offline_run_dir(report_dir)
    s = read_summary(run_dir)
    assert run_id and s["exit_code"] == 0 and s["summary"]["n_systems"] == 0
    assert not [k for k in s["summary"] if k.startswith(("tables/", "figures/"))]
    records = read_records(run_dir)
    (run_rec,) = [r["run"] for r in records if r["type"] == "run"]
    assert run_rec["run_group"] == "from-config" and run_rec["job_type"] == "report"
    assert not [r for r in records if r["type"] == "artifact" and r["artifact"]["type"] == "report"]


@pytest.mark.parametrize("cfg", [None, {"wandb": None}, {"wandb": {"mode": "disabled"}}])
def test_log_report_tracking_off(tmp_path, cfg):
    from embexp.tracking.wandb import log_report

    assert log_report(cfg, REPORT, tmp_path, group="g") is None
    assert not (tmp_path / "wandb").exists()
