"""Weights & Biases: offline by default, online when configured; always finished.

``mode`` resolution: ``logger.wandb.mode`` if set, else ``$WANDB_MODE`` if set, else
``online`` when an API key is configured (``$WANDB_API_KEY``), else ``offline``.

A training run's config carries :func:`comparison_keys` flat at its top level (W&B's group-by
and parallel coordinates); the runs of one multirun or sweep share a group
(``${embexp_wandb_group:}``, conf/logger/wandb.yaml); :func:`log_report` logs a comparison
report (``embexp-report``) as a run of ``job_type=report``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from embexp.eval.keys import parse_metric_key

log = logging.getLogger(__name__)


def resolve_mode(mode: str | None) -> str:
    if mode:
        return mode
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    return "online" if os.environ.get("WANDB_API_KEY") else "offline"


def wandb_settings(logger_cfg) -> dict | None:
    """The ``wandb`` node of the logger config as kwargs for ``wandb.init``, or None."""
    if logger_cfg is None:
        return None
    node = logger_cfg.get("wandb") if hasattr(logger_cfg, "get") else None
    if not node:
        return None
    mode = resolve_mode(node.get("mode"))
    if mode == "disabled":
        return None
    return {
        "project": node.get("project", "embexp"),
        "entity": node.get("entity"),
        "group": node.get("group"),
        "tags": list(node.get("tags") or []),
        "job_type": node.get("job_type"),
        "mode": mode,
    }


@contextlib.contextmanager
def wandb_run(
    logger_cfg,
    *,
    run_dir: str | Path,
    name: str,
    config: dict[str, Any],
    run_id: str | None = None,
    **overrides,
):
    """Yield a wandb run (or None when tracking is off); ``wandb.finish()`` always runs.
    ``overrides`` replace settings of the logger config (``group``, ``job_type``, ...)."""
    kwargs = wandb_settings(logger_cfg)
    if kwargs is None:
        yield None
        return
    kwargs.update(overrides)
    import wandb

    run = wandb.init(
        dir=str(run_dir),
        name=name,
        id=run_id,
        resume="allow" if run_id else None,
        config=config,
        reinit="finish_previous",
        **kwargs,
    )
    try:
        yield run
    except BaseException:
        wandb.finish(exit_code=1)
        raise
    else:
        wandb.finish()


# flat key -> (config key, or None for a Hydra group choice)
COMPARISON_KEYS: dict[str, str | None] = {
    "experiment": None,
    "adapter_kind": "adapter.kind",
    "adapter_r": "adapter.r",
    "adapter_alpha": "adapter.alpha",
    "adapter_n_layers": "adapter.n_layers",
    "loss_name": "loss._target_",
    "temperature": "loss.temperature",
    "negatives_kind": "negatives.kind",
    "n_negatives": "negatives.n_negatives",
    "lr": "optimizer.lr",
    "batch_size": "train.batch_size",
    "max_steps": "train.max_steps",
    "max_epochs": "trainer.max_epochs",
    "seed": "seed",
    "model_name": "model.name_or_path",
    "data_name": "data.name",
}


def _hydra_choice(group: str) -> str | None:
    """Hydra's runtime choice of a config group (``experiment=scifact_lora``), or None."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            choice = HydraConfig.get().runtime.choices.get(group)
            return None if choice in (None, "null") else str(choice)
    except Exception as e:  # a HydraConfig without runtime choices
        log.debug("no Hydra choice of %s: %s", group, e)
    return None


def _scalar(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def comparison_keys(cfg) -> dict[str, Any]:
    """Flat scalars to compare runs by (W&B group-by, parallel coordinates): the choices behind a
    run, named so that none shadows a top-level key of the nested config (``adapter_kind`` next
    to ``adapter``). A key the config lacks is None; ``loss_name`` is the ``loss=`` choice (else
    the loss class), ``model_name`` the last part of the model path."""
    from omegaconf import OmegaConf

    cfg = cfg if OmegaConf.is_config(cfg) else OmegaConf.create(dict(cfg or {}))
    out: dict[str, Any] = {}
    for flat, key in COMPARISON_KEYS.items():
        if key is None:
            value = _hydra_choice(flat)
        else:
            value = OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)
        out[flat] = _scalar(value)
    if out["loss_name"] is not None:
        out["loss_name"] = _hydra_choice("loss") or str(out["loss_name"]).rsplit(".", 1)[-1]
    if out["model_name"] is not None:
        out["model_name"] = str(out["model_name"]).rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
    return out


def make_logger(logger_cfg, *, save_dir: str | Path, run_id: str, config: dict[str, Any]):
    """Lightning's ``WandbLogger`` for a training run (id = run id, so a resumed run continues
    its W&B run), or None when tracking is off."""
    settings = wandb_settings(logger_cfg)
    if settings is None:
        return None
    from lightning.pytorch.loggers import WandbLogger

    mode = settings.pop("mode")
    os.environ["WANDB_MODE"] = mode
    logger = WandbLogger(
        name=run_id,
        id=run_id.replace("/", "-"),
        save_dir=str(save_dir),
        offline=mode == "offline",
        resume="allow",
        config=config,
        **{k: v for k, v in settings.items() if v is not None},
    )
    # Lightning always passes anonymous=None, which wandb >= 0.19 answers with a deprecation
    # warning in every run's log ("The anonymous setting has no effect"): not a setting of ours
    init = getattr(logger, "_wandb_init", None)
    if isinstance(init, dict) and init.get("anonymous") is None:
        init.pop("anonymous", None)
    return logger


def finish(logger, ok: bool) -> None:
    """``wandb.finish`` for a Lightning logger; a crashed or interrupted run is marked failed."""
    if logger is not None:
        import wandb

        wandb.finish(exit_code=0 if ok else 1)


def log_eval(run, result, *, prefix: str = "") -> None:
    """Metrics into the summary and a slice table."""
    if run is None:
        return
    import wandb

    flat = {f"{prefix}{k}": v for k, v in result.metrics.items()}
    run.log(flat)
    for k, v in flat.items():
        run.summary[k] = v
    table = slice_table(result.metrics)
    if table:
        cols = list(table[0])
        run.log({f"{prefix}slices": wandb.Table(columns=cols, data=[[r[c] for c in cols] for r in table])})


def slice_table(metrics: dict[str, float]) -> list[dict]:
    """Rows (split, slice, n_queries, metrics...) from the evaluator's flat keys."""
    rows: dict[tuple[str, str], dict] = {}
    for k, v in metrics.items():
        key = parse_metric_key(k)
        if key is not None:
            rows.setdefault((key.split, key.slice), {"split": key.split, "slice": key.slice})[key.metric] = v
    return list(rows.values())


def log_run_summary(
    run, record: dict, *, model_dir: str | Path | None = None, log_model: bool = False
) -> None:
    """Baseline/final metrics and cost into the run summary, slices as a table, the
    adapter or model as an artifact."""
    if run is None:
        return
    import wandb

    for k, v in record["metrics"].items():
        run.summary[k] = v
    for k, v in record.get("cost", {}).items():
        if v is not None:
            run.summary[f"cost/{k}"] = v
    for k, v in (record.get("model_selection") or {}).items():
        if isinstance(v, dict):  # final_vs_best: the paired test of the best epoch against the final weights
            for kk, vv in v.items():
                run.summary[f"model_selection/{k}/{kk}"] = vv
        elif v is not None and k != "warning":
            run.summary[f"model_selection/{k}"] = v
    warnings = record.get("warnings") or []
    run.summary["n_warnings"] = len(warnings)
    if warnings:
        run.summary["warnings"] = "\n".join(warnings)
        run.log({"warnings": wandb.Table(columns=["warning"], data=[[w] for w in warnings])})
    rows = slice_table(record["metrics"])
    if rows:
        cols = sorted({c for r in rows for c in r}, key=lambda c: (c not in ("split", "slice"), c))
        run.log({"slices": wandb.Table(columns=cols, data=[[r.get(c) for c in cols] for r in rows])})
    if log_model and model_dir is not None and Path(model_dir).exists():
        art = wandb.Artifact(name=f"model-{run.id}", type="model", metadata=record.get("cost", {}))
        art.add_dir(str(model_dir))
        run.log_artifact(art)


# ---- the comparison report (embexp-report) -----------------------------------------------------
REPORT_TABLES = ("summary", "comparisons", "recovery", "regressions", "cost")
REPORT_FILES = ("report.html", "report.json", "report.md")


def log_report(logger_cfg, report: dict, out_dir: str | Path, *, group: str | None) -> str | None:
    """The report as a W&B run of ``job_type=report`` (in ``group`` when given, else the logger
    config's): verdict, primary metric and every system's overall (slice ``all``) means in the
    summary; its tables under ``tables/``; ``out_dir/fig_*.png`` under ``figures/``; the report
    files as an artifact of type ``report``. The run id, or None when tracking is off."""
    out_dir = Path(out_dir)
    digest = hashlib.sha1(json.dumps(report, sort_keys=True, default=str).encode()).hexdigest()[:8]
    overrides: dict[str, Any] = {"job_type": "report"}
    if group is not None:
        overrides["group"] = group
    with wandb_run(
        logger_cfg,
        run_dir=out_dir,
        name=f"report-{digest}",
        config=_report_config(report),
        **overrides,
    ) as run:
        if run is None:
            return None
        _log_report_summary(run, report)
        _log_report_tables(run, report)
        _log_report_files(run, out_dir, name=f"report-{_artifact_slug(group) or digest}")
        return run.id


def _report_config(report: dict) -> dict:
    systems = {
        str(s.get("name")): {k: s.get(k) for k in ("kind", "label", "n_seeds", "config")}
        for s in report.get("systems") or []
    }
    return {
        "title": report.get("title"),
        "eval": report.get("eval") or {},
        "settings": report.get("settings") or {},
        "systems": systems,
    }


def _log_report_summary(run, report: dict) -> None:
    settings = report.get("settings") or {}
    primary = settings.get("primary")
    run.summary["title"] = report.get("title")
    run.summary["verdict"] = report.get("verdict")
    run.summary["primary"] = primary
    run.summary["n_systems"] = len(report.get("systems") or [])
    for row in report.get("summary") or []:
        if row.get("slice") == "all" and row.get("mean") is not None:
            run.summary[f"{row.get('system')}/{row.get('metric')}"] = row["mean"]
    for key in ("caveats", "warnings"):
        notes = [str(n) for n in report.get(key) or []]
        run.summary[f"n_{key}"] = len(notes)
        if notes:
            run.summary[key] = "\n".join(notes)


def _log_report_tables(run, report: dict) -> None:
    import wandb

    tables = {}
    for key in (*REPORT_TABLES, "caveats", "warnings"):
        rows = report.get(key) or []
        rows = [r if isinstance(r, dict) else {key[:-1]: r} for r in rows]
        if not rows:
            continue
        cols = list(dict.fromkeys(c for r in rows for c in r))
        data = [[_cell(r.get(c)) for c in cols] for r in rows]
        tables[f"tables/{key}"] = wandb.Table(columns=cols, data=data, allow_mixed_types=True)
    if tables:
        run.log(tables)


def _cell(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, default=str)


def _log_report_files(run, out_dir: Path, *, name: str) -> None:
    import wandb

    figures = sorted(out_dir.glob("fig_*.png"))
    if figures:
        run.log({f"figures/{p.stem.removeprefix('fig_')}": wandb.Image(str(p)) for p in figures})
    files = [out_dir / f for f in REPORT_FILES if (out_dir / f).is_file()]
    if (out_dir / "report.html").is_file():
        run.log({"report": wandb.Html(str(out_dir / "report.html"))})
    if not files:
        return
    art = wandb.Artifact(name=name, type="report")
    for path in [*files, *figures]:  # the figures too: report.html may link them
        art.add_file(str(path))
    run.log_artifact(art)


def _artifact_slug(text: str | None) -> str:
    """An artifact name part: letters, digits, ``-``, ``_``, ``.`` only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text or "")).strip("-.")[:100]
