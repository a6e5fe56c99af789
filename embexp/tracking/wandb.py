"""Weights & Biases: offline by default, online when configured; always finished.

``mode`` resolution: ``logger.wandb.mode`` if set, else ``$WANDB_MODE`` if set, else
``online`` when an API key is configured (``$WANDB_API_KEY``), else ``offline``.
"""

from __future__ import annotations

import contextlib
import logging
import os
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


def make_logger(logger_cfg, *, save_dir: str | Path, run_id: str, config: dict[str, Any]):
    """Lightning's ``WandbLogger`` for a training run (id = run id, so a resumed run continues
    its W&B run), or None when tracking is off."""
    settings = wandb_settings(logger_cfg)
    if settings is None:
        return None
    from lightning.pytorch.loggers import WandbLogger

    mode = settings.pop("mode")
    os.environ["WANDB_MODE"] = mode
    return WandbLogger(
        name=run_id,
        id=run_id.replace("/", "-"),
        save_dir=str(save_dir),
        offline=mode == "offline",
        resume="allow",
        config=config,
        **{k: v for k, v in settings.items() if v is not None},
    )


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
        if v is not None and k != "warning":
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
