"""After a sweep: ``trials.csv``, ``best_params.yaml``, Optuna's plots (HTML with plotly,
PNG with matplotlib) in the sweep directory, and the same to a W&B summary run."""

from __future__ import annotations

import csv
import io
import logging
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from embexp.sweep.study import DUPLICATE_OF, FAIL_REASON, NOT_RUN, counts, retried_numbers
from embexp.utils.io import atomic_path, atomic_write_text

log = logging.getLogger("embexp.sweep")
REPORT_MODE = 0o644  # trials.csv and best_params.yaml are for everyone to read


def _num(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def trial_rows(study, names: Sequence[str]) -> list[dict]:
    """One row per trial: number, state, values, params, duration, failure reason (or why it was
    not launched, and the trial holding its params when it was a duplicate), ..."""
    trials = study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    pnames = sorted({p for t in trials for p in t.params})
    rows = []
    for t in trials:
        row: dict[str, Any] = {"number": t.number, "state": t.state.name}
        vals = t.values if t.values is not None else [None] * len(names)
        for n, v in zip(names, vals):
            row[n] = _num(v)
        for p in pnames:
            row[f"params.{p}"] = t.params.get(p)
        steps = sorted(t.intermediate_values)
        row["last_epoch"] = steps[-1] if steps else None
        row["last_reported"] = _num(t.intermediate_values[steps[-1]]) if steps else None
        dur = t.duration
        row["duration_s"] = round(dur.total_seconds(), 2) if dur is not None else None
        row["started"] = t.datetime_start.isoformat(timespec="seconds") if t.datetime_start else None
        row["retry_of"] = t.system_attrs.get("failed_trial")
        row["retried"] = t.number in retried
        row["duplicate_of"] = t.user_attrs.get(DUPLICATE_OF)
        row["fail_reason"] = (
            (
                t.user_attrs.get(FAIL_REASON)
                or t.user_attrs.get(NOT_RUN)
                or ("heartbeat lost (worker killed)" if t.number in retried else None)
            )
            if t.state.name == "FAIL"
            else None
        )
        row["run_dir"] = t.user_attrs.get("run_dir")
        row["worker"] = t.user_attrs.get("worker")
        rows.append(row)
    return rows


def write_trials_csv(rows: list[dict], path: Path) -> None:
    cols: list[str] = []
    for r in rows:
        cols += [c for c in r if c not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols or ["number"])
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    atomic_write_text(path, buf.getvalue(), mode=REPORT_MODE)


def best_summary(study, names: Sequence[str], directions: Sequence[str], fixed: Sequence[str] = ()) -> dict:
    from optuna.trial import TrialState

    c = counts(study.get_trials(deepcopy=False))
    out: dict[str, Any] = {
        "study_name": study.study_name,
        "optimized_metric": names[0] if len(names) == 1 else list(names),
        "direction": directions[0] if len(directions) == 1 else list(directions),
        "n_complete": c["complete"],
        "n_pruned": c["pruned"],
        "n_failed": c["failed"],
        "n_retried": c["retried"],
    }

    def entry(t) -> dict:
        ov = list(t.user_attrs.get("overrides") or [])
        return {
            "trial": t.number,
            "values": {n: float(v) for n, v in zip(names, t.values)},
            "params": dict(t.params),
            "run_dir": t.user_attrs.get("run_dir"),
            "command": " ".join(
                ["embexp-train", *(f for f in fixed if not f.startswith("hparams_search=")), *ov]
            ),  # this trial as a single run
        }

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        out["best"] = None
    elif len(directions) == 1:
        b = study.best_trial
        e = entry(b)
        out.update(
            {
                "best_trial": b.number,
                "best_value": float(b.value),
                "params": dict(b.params),
                "run_dir": e["run_dir"],
                "command": e["command"],
            }
        )
    else:
        out["pareto_front"] = [entry(t) for t in study.best_trials]
    return out


def write_plots(study, out_dir: Path, names: Sequence[str]) -> dict[str, Any]:
    """HTML (plotly) and PNG (matplotlib) plots; returns {name: plotly figure} for W&B."""
    from optuna.trial import TrialState

    figs: dict[str, Any] = {}
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        log.info("no complete trial yet: no plots")
        return figs
    out_dir.mkdir(parents=True, exist_ok=True)
    multi = len(study.directions) > 1
    tkw = {"target": (lambda t: t.values[0]), "target_name": names[0]} if multi else {"target_name": names[0]}
    n_params = len({p for t in complete for p in t.params})
    plots = [("optimization_history", "plot_optimization_history", tkw)]
    if len(complete) >= 2 and n_params >= 1:
        plots.append(("param_importances", "plot_param_importances", tkw))
    if n_params >= 1:
        plots.append(("parallel_coordinate", "plot_parallel_coordinate", tkw))
    if any(t.intermediate_values for t in study.get_trials(deepcopy=False)) and not multi:
        plots.append(("intermediate_values", "plot_intermediate_values", {}))
    if multi:
        plots.append(("pareto_front", "plot_pareto_front", {"target_names": list(names)}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import optuna.visualization as vis

            for name, fn, kw in plots:
                try:
                    fig = getattr(vis, fn)(study, **kw)
                    with atomic_path(out_dir / f"{name}.html") as tmp:
                        fig.write_html(str(tmp), include_plotlyjs="directory")
                    figs[name] = fig
                except Exception as e:
                    log.info("plot %s skipped: %s", name, e)
        except ImportError:
            log.warning("plotly is not installed: no HTML plots (pip install plotly)")
        try:
            import matplotlib

            matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt
            import optuna.visualization.matplotlib as mvis

            for name, fn, kw in plots:
                try:
                    ax = getattr(mvis, fn)(study, **kw)
                    fig = (ax.flat[0] if hasattr(ax, "flat") else ax).get_figure()
                    fig.set_size_inches(10, 6)
                    fig.tight_layout()
                    with atomic_path(out_dir / f"{name}.png") as tmp:
                        fig.savefig(tmp, dpi=100)
                    plt.close(fig)
                except Exception as e:
                    log.info("png %s skipped: %s", name, e)
        except ImportError:
            log.warning("matplotlib is not installed: no PNG plots")
    return figs


def log_to_wandb(
    logger_cfg, sweep_dir: Path, study, rows: list[dict], best: dict, figs: dict, sweeper_conf: dict
) -> None:
    from embexp.tracking.wandb import wandb_run

    run_id = f"{study.study_name}-summary".replace("/", "-")
    with wandb_run(
        logger_cfg,
        run_dir=sweep_dir,
        name=run_id,
        run_id=run_id,
        config=sweeper_conf,
        group=study.study_name,
        job_type="sweep",
    ) as run:
        if run is not None:
            _log_summary(run, sweep_dir, rows, best, figs)


def _log_summary(run, sweep_dir: Path, rows: list[dict], best: dict, figs: dict) -> None:
    import wandb

    cols = list(rows[0]) if rows else ["number"]
    run.log(
        {
            "trials": wandb.Table(
                columns=cols,
                data=[
                    [
                        ("" if r.get(c) is None else r.get(c))
                        if not isinstance(r.get(c), (int, float))
                        else r.get(c)
                        for c in cols
                    ]
                    for r in rows
                ],
            )
        }
    )
    for name, fig in figs.items():
        try:
            run.log({f"optuna/{name}": fig})
        except Exception as e:
            log.info("W&B plot %s skipped: %s", name, e)
    for png in sorted((sweep_dir / "plots").glob("*.png")):
        run.log({f"optuna_png/{png.stem}": wandb.Image(str(png))})
    for k, v in best.items():
        if isinstance(v, (int, float, str)) or v is None:
            run.summary[k] = v
    if best.get("params"):
        for k, v in best["params"].items():
            run.summary[f"best_params/{k}"] = v
    for f in ("trials.csv", "best_params.yaml"):
        if (sweep_dir / f).exists():
            run.save(str(sweep_dir / f), base_path=str(sweep_dir), policy="now")


def write_reports(
    study,
    sweep_dir: Path,
    names: Sequence[str],
    directions: Sequence[str],
    *,
    logger_cfg=None,
    plots: bool = True,
    sweeper_conf: dict | None = None,
    fixed: Sequence[str] = (),
) -> None:
    sweep_dir = Path(sweep_dir)
    rows = trial_rows(study, names)
    write_trials_csv(rows, sweep_dir / "trials.csv")
    best = best_summary(study, names, directions, fixed)
    best_yaml = yaml.safe_dump(best, sort_keys=False, default_flow_style=False)
    atomic_write_text(sweep_dir / "best_params.yaml", best_yaml, mode=REPORT_MODE)
    log.info("wrote %s and %s", sweep_dir / "trials.csv", sweep_dir / "best_params.yaml")
    if best.get("best_trial") is not None:
        log.info(
            "best trial %d: %s=%.4f %s", best["best_trial"], names[0], best["best_value"], best["params"]
        )
    figs = write_plots(study, sweep_dir / "plots", names) if plots else {}
    try:
        log_to_wandb(logger_cfg, sweep_dir, study, rows, best, figs, sweeper_conf or {})
    except Exception:
        log.exception("logging the sweep to W&B failed")
