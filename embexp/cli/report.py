"""``embexp-report``: the evidence for a decision, from finished runs.

    embexp-report runs/train/multirun-20261128-173659 out=reports/lora-vs-full
    embexp-report 'runs/train/scifact-*' out=DIR keys=adapter.kind,optimizer.lr latency=false

Arguments are run folders, multirun or sweep folders, or globs (quoted); options are
``name=value``: ``out`` (default ``./report``), ``keys`` (comma-separated config keys that define a
configuration; default: the keys that differ between the runs), ``metrics``, ``alpha``,
``confidence``, ``resamples``, ``seed``, ``references``, ``latency``, ``wandb`` (true | false).
Writes ``report.json``, ``report.md`` (+ PNG figures) and ``report.html`` in ``out``, prints the
verdict, and logs a ``job_type=report`` W&B run in the runs' group (offline unless configured).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from embexp.cli.common import clean_errors, setup_env
from embexp.errors import ConfigError

log = logging.getLogger("embexp.report")
BOOLS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}
OPTIONS = (
    "out",
    "keys",
    "metrics",
    "alpha",
    "confidence",
    "resamples",
    "seed",
    "references",
    "latency",
    "wandb",
)
USAGE = "usage: embexp-report RUN_OR_MULTIRUN_DIR... [out=DIR] [keys=a.b,c.d] [latency=false] [wandb=false]"


def parse_args(argv: list[str]) -> tuple[list[str], dict]:
    paths, opts = [], {}
    for a in argv:
        name, eq, value = a.partition("=")
        if eq and name in OPTIONS:
            opts[name] = value
        elif eq and "/" not in name and not Path(a).exists():
            raise ConfigError(name, f"unknown option (options: {', '.join(OPTIONS)})")
        else:
            paths.append(a)
    if not paths:
        raise ConfigError("paths", f"no run folders given; {USAGE}")
    return paths, opts


def _bool(opts: dict, name: str, default: bool) -> bool:
    v = opts.get(name)
    if v is None:
        return default
    if v.lower() not in BOOLS:
        raise ConfigError(name, f"must be true or false, got {v!r}")
    return BOOLS[v.lower()]


def _number(opts: dict, name: str, kind, default, ok):
    v = opts.get(name)
    if v is None:
        return default
    try:
        x = kind(v)
    except ValueError:
        raise ConfigError(name, f"must be a {kind.__name__}, got {v!r}") from None
    if not ok(x):
        raise ConfigError(name, f"out of range: {v}")
    return x


def settings_from(opts: dict):
    from embexp.report.build import DEFAULT_METRICS, ReportSettings

    split = [k.strip() for k in opts.get("keys", "").split(",") if k.strip()]
    metrics = [m.strip() for m in opts.get("metrics", ",".join(DEFAULT_METRICS)).split(",") if m.strip()]
    return ReportSettings(
        keys=split or None,
        metrics=metrics,
        alpha=_number(opts, "alpha", float, 0.05, lambda x: 0 < x < 1),
        confidence=_number(opts, "confidence", float, 0.95, lambda x: 0 < x < 1),
        resamples=_number(opts, "resamples", int, 9999, lambda x: x >= 99),
        seed=_number(opts, "seed", int, 0, lambda x: x >= 0),
        references=_bool(opts, "references", True),
        latency=_bool(opts, "latency", True),
    )


def report(argv: list[str]) -> dict:
    from embexp.report.build import build_report
    from embexp.report.render import write_report

    paths, opts = parse_args(argv)
    settings = settings_from(opts)
    out = Path(opts.get("out") or "report")
    rep = build_report(paths, settings)
    files = write_report(rep, out)
    if _bool(opts, "wandb", True):
        _log_wandb(rep, paths, out)
    print(rep["verdict"])
    for c in rep["caveats"]:
        print(f"  caveat: {c}")
    for w in rep["warnings"]:
        log.warning(w)
    print(f"wrote {files['md']}, {files['html']}, {files['json']}")
    return rep


def _log_wandb(rep: dict, paths, out: Path) -> None:
    from embexp.report.runs import find_run_dirs
    from embexp.tracking.wandb import log_report
    from embexp.utils.io import read_json

    first = find_run_dirs(paths)[0]
    logger_cfg = (read_json(first / "provenance.json").get("config") or {}).get("logger")
    run_id = log_report(logger_cfg, rep, out, group=rep.get("wandb_group"))
    if run_id:
        log.info("W&B report run %s (group %s)", run_id, rep.get("wandb_group"))


@clean_errors
def main(argv: list[str] | None = None) -> None:
    setup_env()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return
    report(argv)


if __name__ == "__main__":
    main()
