"""Finished runs read back from their folders, grouped into the configurations a report compares.

A run folder is whatever ``embexp-train`` wrote (``embexp/train/record.py``): ``run.json`` (the
hashed config), ``metrics.json``, ``per_query.jsonl`` (final and baseline rows on the eval split),
``provenance.json``. Nothing else is needed, so any finished run — a single run, a multirun job, a
sweep trial — can be reported on.

Grouping: the configuration keys are the flattened config keys whose values differ between the
runs (never the seed or a key that follows it, such as ``negatives.seed: ${seed}``; never run ids,
paths, tracking or progress settings: :data:`IGNORED`), or the keys given explicitly. Runs with equal
values of those keys are one configuration; their seeds are aggregated. A configuration is named by
its experiment, or by the values of the first keys (:data:`LABEL_ORDER`, then alphabetically) that
tell the configurations apart.

Damaged or foreign run files (invalid JSON, a JSON value that is not a run record, a missing field)
are errors naming the file, what is wrong and the ways out (:func:`read_record`), never runs skipped
with a warning: a report that drops a run it cannot read changes its verdict without anyone seeing
it. Only runs whose own record says they did not finish (failed, pruned) are skipped, with a note.
"""

from __future__ import annotations

import csv
import fnmatch
import glob
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embexp.errors import ReportError
from embexp.eval.keys import FINAL
from embexp.train.record import METRICS_FILE, PER_QUERY_FILE, PROVENANCE_FILE, RUN_FILE, with_added_defaults
from embexp.utils.io import UnreadableJSON, json_kind, read_json_object

log = logging.getLogger("embexp.report")

# Config keys that never make two runs different configurations (fnmatch patterns on dotted keys).
IGNORED = (
    "seed",
    "data.sample_seed",
    "callbacks.*.dirpath",
    "trainer.default_root_dir",
    "run_id",
    "paths.*",
    "hydra.*",
    "logger.*",
    "train.baseline",  # whether the run also evaluated the base model: never changes its own results
)
SKIP_DIRS = {"checkpoints", "model", "wandb", ".hydra", "__pycache__"}


@dataclass
class RunResult:
    """One finished run, as the report reads it."""

    path: Path
    run_id: str
    seed: int | None
    config: dict[str, Any]  # flat dotted keys of the hashed config
    experiment: str | None  # Hydra's choice of the experiment group, when there was one
    metrics: dict[str, float]
    cost: dict[str, Any]
    data: dict[str, Any]
    base_model: str
    rows: dict[str, dict[str, dict]]  # "final" | "baseline" -> query id -> per-query row
    dev_history: list[dict] = field(default_factory=list)
    monitor: str | None = None
    warnings: list[str] = field(default_factory=list)
    wandb_group: str | None = None
    primary: str | None = None  # eval.primary, e.g. ndcg@10
    selected: str | None = None  # which weights the run kept: "epoch N" or "base" (model_selection)
    full_config: dict = field(default_factory=dict)  # provenance.json's resolved config (data, eval, model)

    @property
    def name(self) -> str:
        return self.run_id or self.path.name


@dataclass
class Configuration:
    """Runs that differ only in seed: one row of the report."""

    name: str
    values: dict[str, Any]  # the grouping keys' values
    runs: list[RunResult]

    @property
    def seeds(self) -> list[int | None]:
        return [r.seed for r in self.runs]


# ---- finding and reading runs ---------------------------------------------------------------
def find_run_dirs(paths: Sequence[str | Path]) -> list[Path]:
    """Run folders under the given run dirs, multirun/sweep dirs or globs (sorted, unique)."""
    found: list[Path] = []
    for p in paths:
        matches = sorted(glob.glob(str(p))) or [str(p)]
        for m in matches:
            mp = Path(m)
            if not mp.exists():
                raise ReportError(f"{mp}: no such run, multirun or sweep folder")
            found += _runs_under(mp)
    unique = sorted({f.resolve() for f in found})
    if not unique:
        raise ReportError(f"no run folders (with {METRICS_FILE}) under: {', '.join(map(str, paths))}")
    return unique


def _runs_under(root: Path) -> list[Path]:
    if (root / METRICS_FILE).exists() and (root / RUN_FILE).exists():
        return [root]
    out = []
    trials = root / "trials.csv"  # a sweep directory lists its trials' run folders
    if trials.exists():
        with open(trials, newline="") as f:
            out += [Path(r["run_dir"]) for r in csv.DictReader(f) if r.get("run_dir")]
        out = [p for p in out if (p / METRICS_FILE).exists()]
    if root.is_dir():
        for child in sorted(root.iterdir()):
            if child.is_dir() and child.name not in SKIP_DIRS and ".old-" not in child.name:
                out += _runs_under(child)
    return out


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists become tuples (hashable, comparable)."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(node, list):
        return {
            prefix: tuple(flatten(v, "x")["x"] if not isinstance(v, dict) else json.dumps(v) for v in node)
        }
    return {prefix: node}


def ways_out(run: Path) -> str:
    """What to do about a run folder whose files the report cannot use."""
    return (
        f"ways out: move or delete the run folder {run} (or leave it out of embexp-report's paths), "
        "or run it again from scratch (embexp-train with the same config, run_id and force=true, "
        "which moves the damaged files aside)"
    )


def unusable(path: Path, what: str, line: int | None = None) -> ReportError:
    """The error for a run file the report cannot use: the file (and line), what is wrong, the
    ways out."""
    where = f"{path}:{line}" if line is not None else str(path)
    return ReportError(f"{where}: {what}; {ways_out(path.parent)}")


def require(path: Path, record: dict, fields: dict[str, type]) -> None:
    """``record`` (read from ``path``) has ``fields``, each of its type; else :func:`unusable`."""
    for name, kind in fields.items():
        if name not in record:
            raise unusable(path, f"missing field '{name}' (not a record embexp-train wrote, or damaged)")
        if not isinstance(record[name], kind):
            raise unusable(path, f"field '{name}' is {json_kind(record[name])}, expected {json_kind(kind())}")


def read_record(path: Path, fields: dict[str, type] | None = None) -> dict:
    """A run's JSON file as a dict, with ``fields`` present and of their types; anything else
    (missing, unreadable, invalid JSON, not an object, a field missing or of another type) is a
    :class:`ReportError` from :func:`unusable`."""
    try:
        record = read_json_object(path)
    except FileNotFoundError:
        raise unusable(path, "is missing (a finished run writes it)") from None
    except UnreadableJSON as e:
        raise unusable(path, e.why) from None
    require(path, record, fields or {})
    return record


def _check_metrics(path: Path, metrics: dict) -> None:
    """A finished run's metric values are numbers (what every table and test computes with)."""
    for key, value in metrics.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise unusable(path, f"field 'metrics': '{key}' is {json_kind(value)}, expected a number")


def _read_rows(path: Path) -> dict[str, dict[str, dict]]:
    """``per_query.jsonl`` by model (``final``, ``baseline``) and query id; a bad line, or no
    ``final`` rows, is a :class:`ReportError` naming the file (and line)."""
    rows: dict[str, dict[str, dict]] = {}
    try:
        f = open(path, encoding="utf-8")
    except FileNotFoundError:
        raise unusable(path, "is missing (a finished run writes it)") from None
    with f:
        try:
            for i, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    r = json.loads(line)
                    rows.setdefault(r.get("model", FINAL), {})[str(r["query_id"])] = r
                except json.JSONDecodeError as e:
                    raise unusable(path, f"not a per-query row (invalid JSON: {e.msg})", i) from None
                except (KeyError, AttributeError, TypeError):
                    raise unusable(path, "not a per-query row (missing field 'query_id')", i) from None
        except UnicodeDecodeError:
            raise unusable(path, "is not UTF-8 text (a binary or damaged file)") from None
    if FINAL not in rows:
        raise unusable(
            path, "no rows of the fine-tuned model (model 'final'): the file is cut short or foreign"
        )
    return rows


def _experiment(path: Path) -> str | None:
    hydra_file = path / ".hydra" / "hydra.yaml"
    if not hydra_file.exists():
        return None
    import yaml

    try:
        choices = ((yaml.safe_load(hydra_file.read_text()) or {}).get("hydra") or {}).get("runtime", {})
        return (choices.get("choices") or {}).get("experiment")
    except yaml.YAMLError:
        return None


def load_run(path: str | Path) -> RunResult | None:
    """The finished run in ``path``; None (with a log line) for a failed, pruned or running one.

    A damaged or foreign file is a :class:`ReportError` (:func:`read_record`), not a skipped run.
    """
    path = Path(path)
    metrics = read_record(path / METRICS_FILE, {"status": str})
    if metrics.get("status") != "finished":
        log.warning("skipping %s: status %s", path, metrics.get("status"))
        return None
    require(path / METRICS_FILE, metrics, {"metrics": dict})
    _check_metrics(path / METRICS_FILE, metrics["metrics"])
    prov = read_record(path / PROVENANCE_FILE, {"config": dict})
    data = metrics.get("data") or prov.get("data")
    if not isinstance(data, dict):
        raise unusable(
            path / METRICS_FILE,
            f"missing field 'data' (the evaluated dataset; nor is it in {PROVENANCE_FILE}): "
            "not a record embexp-train wrote, or damaged",
        )
    hashed = with_added_defaults(read_record(path / RUN_FILE, {"config": dict})["config"])  # keys added since
    full = prov["config"]
    group = ((full.get("logger") or {}).get("wandb") or {}).get("group")
    history = metrics.get("dev_history") or []
    return RunResult(
        path=path,
        run_id=str(metrics.get("run_id") or full.get("run_id") or path.name),
        seed=metrics.get("seed", full.get("seed")),
        config=flatten(hashed),
        experiment=_experiment(path),
        metrics=metrics["metrics"],
        cost=metrics.get("cost") or {},
        data=data,
        base_model=str(prov.get("base_model") or (prov.get("encoder_spec") or {}).get("name_or_path")),
        rows=_read_rows(path / PER_QUERY_FILE),
        dev_history=history,
        monitor=full.get("monitor"),
        warnings=list(metrics.get("warnings") or []),
        wandb_group=group,
        primary=str(metrics.get("primary_metric") or "").split("/")[-1] or None,
        selected=(metrics.get("model_selection") or {}).get("selected"),
        full_config=full,
    )


def load_runs(paths: Sequence[str | Path]) -> tuple[list[RunResult], list[str]]:
    """Every finished run under ``paths``, and notes on the folders skipped."""
    runs, notes = [], []
    for d in find_run_dirs(paths):
        r = load_run(d)
        if r is None:
            notes.append(f"skipped {d}: not finished")
        else:
            runs.append(r)
    if not runs:
        raise ReportError(f"no finished runs under: {', '.join(map(str, paths))}")
    return runs, notes


# ---- what may be compared ---------------------------------------------------------------------
def check_comparable(runs: Sequence[RunResult]) -> list[str]:
    """Refuse runs evaluated on other data, another split or from another base model (the message
    names both runs); return warnings (different step budgets)."""
    ref = runs[0]

    def eval_set(r: RunResult) -> tuple:
        return (r.data.get("fingerprint"), r.data.get("eval_split"), sorted(r.rows.get(FINAL, {})))

    for r in runs[1:]:
        for what, a, b in (
            ("eval data fingerprint", ref.data.get("fingerprint"), r.data.get("fingerprint")),
            ("eval split", ref.data.get("eval_split"), r.data.get("eval_split")),
            ("base model", ref.base_model, r.base_model),
        ):
            if a != b:
                raise ReportError(
                    f"cannot compare runs with different {what}: {ref.path} ({a}) vs {r.path} ({b})"
                )
        if eval_set(r) != eval_set(ref):
            raise ReportError(f"cannot compare runs evaluated on different queries: {ref.path} vs {r.path}")
    by_steps: dict = {}
    for r in runs:
        by_steps.setdefault(r.cost.get("train_steps"), []).append(r.name)
    if len(by_steps) > 1:
        shown = "; ".join(
            f"{steps} steps: {len(names)} run{'s' if len(names) != 1 else ''} ({', '.join(names[:2])}"
            f"{', ...' if len(names) > 2 else ''})"
            for steps, names in sorted(by_steps.items(), key=lambda kv: str(kv[0]))
        )
        return [f"step budgets differ between runs ({shown}): differences may be budget, not recipe"]
    return []


# ---- grouping -----------------------------------------------------------------------------
def _ignored(key: str) -> bool:
    return any(fnmatch.fnmatchcase(key, pat) for pat in IGNORED)


def differing_keys(runs: Iterable[RunResult]) -> list[str]:
    """Config keys (not :data:`IGNORED`, not a copy of the seed) whose values differ between runs."""
    runs = list(runs)
    keys = sorted({k for r in runs for k in r.config if not _ignored(k)})
    return [
        k
        for k in keys
        if len({repr(r.config.get(k, "<absent>")) for r in runs}) > 1 and not _follows_seed(k, runs)
    ]


def _follows_seed(key: str, runs: list[RunResult]) -> bool:
    """True for a seed key (``*seed``) equal to its run's seed in every run that has it
    (``negatives.seed: ${seed}``, absent where no miner runs): it varies with the seed, so it never
    defines a configuration. A seed key set on its own (``negatives.seed=7``) still does."""
    having = [r for r in runs if key in r.config]
    return (
        fnmatch.fnmatchcase(key.split(".")[-1], "*seed")
        and bool(having)
        and all(type(r.config[key]) is int and r.config[key] == r.seed for r in having)
    )


# keys shown first in a configuration's name (the rest follow alphabetically)
LABEL_ORDER = (
    "adapter.kind",
    "adapter.r",
    "loss._target_",
    "negatives.kind",
    "optimizer.lr",
    "loss.temperature",
)


def _label_keys(values: list[dict[str, Any]]) -> list[str]:
    """The first keys, in :data:`LABEL_ORDER` then alphabetically, whose values tell these
    configurations apart (a mined curriculum is ``kind=iterative``, not every miner setting)."""
    keys = sorted({k for v in values for k in v}, key=_label_rank)

    def distinct(ks: list[str]) -> int:
        return len({tuple(repr(v.get(k)) for k in ks) for v in values})

    chosen: list[str] = []
    for k in keys:
        if distinct(chosen) == len(values):
            break
        if distinct([*chosen, k]) > distinct(chosen):
            chosen.append(k)
    return chosen


def _label_rank(key: str) -> tuple:
    return (LABEL_ORDER.index(key) if key in LABEL_ORDER else len(LABEL_ORDER), key)


def _label(values: dict[str, Any], keys: list[str]) -> str:
    """``kind=iterative, lr=0.001``; a key's full name where its last part is ambiguous in ``keys``."""
    tails = [k.split(".")[-1] for k in keys]
    shown = [k for k in keys if values.get(k) is not None]  # None: a key this configuration lacks
    return (
        ", ".join(
            f"{k if tails.count(k.split('.')[-1]) > 1 else k.split('.')[-1]}={_short(values[k])}"
            for k in shown
        )
        or "defaults"
    )


def _experiment_of(runs: list[RunResult]) -> str | None:
    experiments = {r.experiment for r in runs}
    return str(experiments.pop()) if len(experiments) == 1 and None not in experiments else None


def _short(v: Any) -> str:
    if isinstance(v, tuple):
        return "[" + ",".join(map(str, v)) + "]"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def group_runs(
    runs: Sequence[RunResult], keys: Sequence[str] | None = None
) -> tuple[list[Configuration], list[str]]:
    """Configurations by the differing keys (or ``keys``); the keys used are returned too."""
    keys = list(keys) if keys else differing_keys(runs)
    groups: dict[tuple, list[RunResult]] = {}
    for r in runs:
        groups.setdefault(tuple(repr(r.config.get(k, "<absent>")) for k in keys), []).append(r)
    configs = []
    for members in groups.values():
        values = {k: members[0].config.get(k) for k in keys}
        members.sort(key=lambda r: (r.seed is None, r.seed if r.seed is not None else 0, r.name))
        configs.append(Configuration(_experiment_of(members) or "", values, members))
    named = [c for c in configs if c.name]
    unnamed = [c for c in configs if not c.name]
    label_keys = (
        _label_keys([c.values for c in configs]) if len(configs) > 1 else sorted(keys, key=_label_rank)
    )
    for c in unnamed:
        c.name = _label(c.values, label_keys) if c.values else "all runs"
    for name in {c.name for c in named}:  # one experiment with other values: add what tells them apart
        same = [c for c in named if c.name == name]
        if len(same) > 1:
            clash_keys = _label_keys([c.values for c in same])
            for c in same:
                c.name = f"{name} ({_label(c.values, clash_keys)})"
    names = [c.name for c in configs]
    for i, c in enumerate(configs):  # values that print alike (1e-05 and 1.0e-5, a key absent or null)
        if names.count(c.name) > 1:
            c.name = f"{c.name} #{names[:i].count(c.name) + 1}"
    configs.sort(key=lambda c: c.name)
    return configs, keys
