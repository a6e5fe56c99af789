"""The run record: the one module that writes a run folder's result files, in every state.

A run folder is bound to its configuration the first time a run starts in it::

    run.json            config hash + the hashed (resolved) config, Hydra's files as first
                        written, the folder's path, creation time; a rerun or resume with
                        another hash is refused
    baseline.json       the base model's metrics and per-query rows (survive a resume)
    metrics.json        status finished | failed | pruned, metrics, cost, data card, negatives
    per_query.jsonl     per-query metrics of baseline and final on the eval split
    provenance.json     base model, data fingerprint, resolved config, code version

Paths inside the run folder (the checkpoint callbacks' ``dirpath``) are hashed relative to it
(``<run>/checkpoints``), so a folder moved or copied elsewhere still binds: a rerun returns its
results and a killed run resumes there (:class:`embexp.train.callbacks.RunState` points the
restored checkpoint callbacks at the new folder).

Every file is written atomically (``embexp.utils.io``). ``force=true`` moves an existing
folder's contents aside to ``<run>.old-<time>/`` and starts over. In a multi-process (DDP) run
only global rank 0 writes (:func:`is_rank_zero`); the other ranks read and check, and return
what rank 0 writes.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf

from embexp.config.schema import execution_keys
from embexp.errors import ConfigError, RunFolderError
from embexp.utils.dist import is_main_process
from embexp.utils.io import (
    UnreadableJSON,
    atomic_write_json,
    atomic_write_jsonl,
    atomic_write_text,
    read_json_object,
)
from embexp.utils.lock import LOCK_FILE, FolderLock, FolderLocked, describe

log = logging.getLogger("embexp.train")

RUN_FILE, METRICS_FILE, BASELINE_FILE = "run.json", "metrics.json", "baseline.json"
PER_QUERY_FILE, PROVENANCE_FILE = "per_query.jsonl", "provenance.json"
HYDRA_DIR = ".hydra"
FINISHED_KEYS = ("metrics", "primary_metric", "cost", "data")  # what a finished metrics.json holds
STATUSES = ("finished", "failed", "interrupted", "pruned")  # what metrics.json says of a run
RUN_MARK = "<run>"  # a hashed path inside the run folder is recorded relative to it

# Keys that cannot change a run's results: where it is written, how it is shown or tracked,
# a sweep trial's identity, and the schema keys marked EXECUTION (how the same math runs:
# kernels, padding, batch sizes of encoding, workers). Everything else is part of the config hash.
HASH_EXCLUDE = (
    "hydra",
    "paths",
    "logger",
    "run_id",
    "force",
    "task_name",
    "optuna",
    "optimized_metric",
    "callbacks.progress_bar",
    "callbacks.progress_log",
    "callbacks.pruning",
    "trainer.enable_progress_bar",
    "trainer.enable_model_summary",
    "trainer.log_every_n_steps",
    *execution_keys(),
)

# Hashed keys added after runs were recorded, with the value a run recorded without them ran
# with: such a run's folder still binds to a config that holds the key at that value (a rerun
# returns its results; a killed run resumes), and to no other value.
ADDED_KEYS: dict[str, Any] = {
    "train.group_by_length": None,  # 2026-12-06: batches were always shuffled
    "negatives.source": None,  # 2026-12-08: negatives were always the built-in miner's
}


# ---- DDP: only rank 0 writes -----------------------------------------------------------------
def is_rank_zero() -> bool:
    """Whether this process writes the run files: global rank 0 of a DDP run, or the only process
    (:func:`embexp.utils.dist.is_main_process`: before the Trainer exists, from the launcher's
    environment; a process on a node with ``NODE_RANK`` > 0 is never rank 0)."""
    return is_main_process()


def hashed_config(cfg, run_dir: str | Path | None = None) -> dict:
    """The resolved config minus :data:`HASH_EXCLUDE` (excluded keys are never resolved), with
    every path inside ``run_dir`` written relative to it (:func:`relative_to_run`)."""
    hashed = _resolve_within(cfg, _drop_excluded(OmegaConf.to_container(cfg, resolve=False)))
    return relative_to_run(hashed, run_dir)


def relative_to_run(config: Any, run_dir: str | Path | None) -> Any:
    """``config`` with each string that is ``run_dir`` or a path inside it (normalised: no ``..``
    out of it) written as ``<run>/...`` (``run_dir`` as given and made absolute, both normalised:
    Hydra hands out absolute folders)."""
    if run_dir is None:
        return config
    for prefix in {os.path.normpath(p) for p in (run_dir, os.path.abspath(run_dir))} - {os.sep}:
        config = rebase_paths(config, prefix, RUN_MARK)
    return config


def rebase_paths(node: Any, old: str, new: str) -> Any:
    """``node`` (dicts, their keys included, and lists) with each string that is the normalised
    path ``old`` or a path inside it rewritten to the same place under ``new``; a path that climbs
    out of ``old`` (``old/../x``) is left as it is."""
    if isinstance(node, dict):
        return {rebase_paths(k, old, new): rebase_paths(v, old, new) for k, v in node.items()}
    if isinstance(node, list):
        return [rebase_paths(v, old, new) for v in node]
    if isinstance(node, str) and node.startswith(old):
        norm = os.path.normpath(node)
        if norm == old or norm.startswith(old + os.sep):
            return new + norm[len(old) :]
    return node


def _invocation_entry(p: Path) -> bool:
    """What every invocation puts in its run folder before a run starts: Hydra's ``.hydra/`` and
    job log, and the folder lock."""
    return p.name in (HYDRA_DIR, LOCK_FILE) or (p.suffix == ".log" and p.is_file())


def _drop_excluded(c: dict) -> dict:
    for key in HASH_EXCLUDE:
        *parents, leaf = key.split(".")
        node = c
        for p in parents:
            node = node.get(p) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    return c


def _resolve_within(cfg, kept: dict) -> dict:
    """Resolve the kept keys against the full ``cfg`` (interpolations may point elsewhere)."""

    def walk(node, path):
        if isinstance(node, dict):
            return {k: walk(v, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, f"{path}[{i}]") for i, v in enumerate(node)]
        if isinstance(node, str) and "${" in node:
            value = OmegaConf.select(cfg, path, throw_on_resolution_failure=False)
            return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
        return node

    return walk(kept, "")


def _parent(config: dict, key: str) -> tuple[dict | None, str]:
    """The dict that holds dotted ``key`` in ``config`` (None where a parent is missing), and its leaf."""
    *parents, leaf = key.split(".")
    node: Any = config
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    return (node if isinstance(node, dict) else None), leaf


def _without_added_defaults(hashed: dict, recorded: dict) -> dict:
    """``hashed`` without the :data:`ADDED_KEYS` that ``recorded`` lacks and ``hashed`` holds at
    their old behaviour's value: the config such a run was recorded with."""
    out = copy.deepcopy(hashed)
    for key, value in ADDED_KEYS.items():
        (new, leaf), (old, _) = _parent(out, key), _parent(recorded, key)
        # type and value: 0, 0.0 and False are different settings
        if new is not None and leaf in new and type(new[leaf]) is type(value) and new[leaf] == value:
            if old is None or leaf not in old:
                del new[leaf]
    return out


def with_added_defaults(recorded: dict) -> dict:
    """A recorded hashed config with each :data:`ADDED_KEYS` entry it lacks filled in at its old
    behaviour's value, so that runs recorded before and after a key was added compare equal
    (``embexp-report``)."""
    out = copy.deepcopy(recorded)
    for key, value in ADDED_KEYS.items():
        node, leaf = _parent(out, key)
        if node is not None and leaf not in node:
            node[leaf] = value
    return out


def config_hash(hashed: dict) -> str:
    return hashlib.sha256(json.dumps(hashed, sort_keys=True, default=str).encode()).hexdigest()[:16]


def diff_keys(old: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``(key, old, new)`` for every leaf that differs (a missing side is ``<absent>``)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new), key=str):
            key = f"{prefix}.{k}" if prefix else str(k)
            out += diff_keys(old.get(k, "<absent>"), new.get(k, "<absent>"), key)
        return out
    return [] if old == new else [(prefix or "<root>", old, new)]


class RunRecord:
    """Reads and writes one run folder. ``bind`` before any work; then ``save_baseline``,
    ``finish`` / ``fail`` / ``prune``."""

    def __init__(self, out: str | Path):
        self.out = Path(out)

    def path(self, name: str) -> Path:
        return self.out / name

    # ---- state --------------------------------------------------------------------------
    def read(self, name: str = METRICS_FILE, *, strict: bool = True) -> dict | None:
        """A run file's JSON object; None when it does not exist. A file that exists but cannot be
        read (empty, cut short, damaged, not an object) is never taken for an absent one: it raises
        :class:`RunFolderError` naming it, or gives None with ``strict=False``."""
        try:
            return read_json_object(self.path(name))
        except FileNotFoundError:
            return None
        except UnreadableJSON as e:
            if not strict:
                return None
            raise self.unreadable(e.path, e.why) from None

    def unreadable(self, path: Path, why: str) -> RunFolderError:
        return RunFolderError(
            f"run file {path} cannot be read: {why}. The run's state cannot be trusted, so nothing "
            f"is resumed or returned from it. Start this run over with force=true (the folder's files "
            f"are moved aside to {self.out.name}.old-<time>/ for inspection), or start a new run with "
            "run_id=<new id>"
        )

    def status(self, *, strict: bool = True) -> str | None:
        rec = self.read(strict=strict)
        return rec.get("status") if rec else None

    # ---- whose folder ---------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the folder for this process's life (one writer per run folder): a second process
        fails at once, naming the holder. DDP: rank 0 holds it for every rank."""
        if not is_rank_zero():
            yield
            return
        try:
            held = FolderLock(self.out).acquire()
        except FolderLocked as e:
            bound = self.read(RUN_FILE, strict=False)  # Hydra rewrote .hydra/ for this invocation
            if bound and bound.get("hydra"):
                self._restore_hydra(bound["hydra"])
            raise RunFolderError(
                f"run folder {self.out} is in use by {describe(e.holder)}. Only one process may "
                "write a run folder: wait for that one to end (rerunning the same command then "
                "returns or resumes its run), or start a new run with run_id=<new id>; force=true "
                "does not take a folder from a live process"
            ) from None
        try:
            yield
        finally:
            held.release()

    def check_ours(self) -> None:
        """Refuse a folder that holds files but is not a run's (``hydra.run.dir`` pointed at a
        folder of someone's files, or at the parent of runs): a run never starts there and
        ``force=true`` never moves its files. A run's folder holds what only embexp writes: a
        ``run.json`` with a config hash, a ``metrics.json`` with a run's status (and, finished,
        its results), ``baseline.json`` or ``checkpoints/`` (a damaged ``run.json`` beside those is
        then said by :meth:`bind`)."""
        if not self.out.is_dir() or self._looks_like_a_run():
            return
        others = sorted(p.name for p in self.out.iterdir() if not _invocation_entry(p))
        if others:
            shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
            raise RunFolderError(
                f"{self.out} is not an embexp run folder: it holds {shown} but no embexp run record. "
                "A run starts only in a new or empty folder, and force=true moves only a run's own "
                "files: choose another run_id, or point hydra.run.dir at a new folder"
            )

    def _looks_like_a_run(self) -> bool:
        bound = self.read(RUN_FILE, strict=False)
        if bound is not None and bound.get("config_hash") and isinstance(bound.get("config"), dict):
            return True
        rec = self.read(strict=False)
        if rec is not None and rec.get("status") in STATUSES:
            if rec["status"] != "finished" or all(k in rec for k in FINISHED_KEYS):
                return True
        return self.path(BASELINE_FILE).is_file() or self.path("checkpoints").is_dir()

    # ---- binding --------------------------------------------------------------------------
    def bind(self, cfg) -> dict | None:
        """Bind the folder to ``cfg``; the finished record when the run is already done.

        Raises :class:`ConfigError` when the folder was made with another config."""
        hashed = hashed_config(cfg, run_dir=self.out)
        h = config_hash(hashed)
        bound = self.read(RUN_FILE)
        if bound is not None and not (isinstance(bound.get("config"), dict) and bound.get("config_hash")):
            raise self.unreadable(self.path(RUN_FILE), "it has no config_hash and config (not embexp's)")
        if bound is None and self.status() == "finished":  # a folder from before run.json existed
            done = self._finished_record()
            log.warning("run %s has no run.json (an older embexp): its config is not checked", self.out)
            return done
        if bound is not None:
            self._restore_hydra(bound.get("hydra") or {})
            if bound.get("config_hash") != h:  # an older embexp's record, or another config
                recorded = self._recorded_config(bound)
                as_recorded = _without_added_defaults(hashed, recorded)
                if config_hash(recorded) != config_hash(as_recorded):
                    raise ConfigError("run_id", self._mismatch(diff_keys(recorded, as_recorded)))
        elif is_rank_zero():  # DDP: the other ranks only check against rank 0's run.json
            hydra_files = {p.name: p.read_text() for p in sorted(self.path(HYDRA_DIR).glob("*.yaml"))}
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_json(
                self.path(RUN_FILE),
                {
                    "config_hash": h,
                    "config": hashed,
                    "hydra": hydra_files,
                    "run_dir": os.path.abspath(self.out),
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                },
            )
        if self.status() == "finished":
            log.info("run %s already finished; returning its results (force=true reruns it)", self.out)
            return self._finished_record()
        return None

    def _finished_record(self) -> dict:
        """The finished ``metrics.json``, which holds at least :data:`FINISHED_KEYS`."""
        done = self.read() or {}
        missing = [k for k in FINISHED_KEYS if k not in done]
        if missing:
            raise self.unreadable(
                self.path(METRICS_FILE), f"it says finished but has no {', '.join(missing)}"
            )
        return done

    def _recorded_config(self, bound: dict) -> dict:
        """The hashed config of ``run.json`` as this version hashes it: keys excluded since it was
        written dropped, paths inside the folder where it was recorded made relative to it (a
        record from before ``run_dir`` was stored names its folder in Hydra's ``hydra.yaml``)."""
        recorded = _drop_excluded(copy.deepcopy(bound.get("config") or {}))
        where = bound.get("run_dir")
        if where is None:
            try:
                where = yaml.safe_load(bound["hydra"]["hydra.yaml"])["hydra"]["runtime"]["output_dir"]
            except (KeyError, TypeError, yaml.YAMLError):  # no Hydra files: it was recorded here
                where = None
        return relative_to_run(recorded, where or self.out)

    def _mismatch(self, diffs: list[tuple[str, Any, Any]]) -> str:
        shown = "; ".join(f"{k}: {o!r} -> {n!r}" for k, o, n in diffs[:10])
        more = f" (and {len(diffs) - 10} more)" if len(diffs) > 10 else ""
        what = "finished" if self.status() == "finished" else "started"
        return (
            f"the run folder {self.out} was {what} with another config; differing keys: "
            f"{shown or '(the hashed config changed)'}{more}. Start a new run with run_id=<new id>, "
            "or start this one over with force=true (the old folder is moved aside)"
        )

    def _restore_hydra(self, files: dict[str, str]) -> None:
        """Hydra rewrote ``.hydra/*.yaml`` for this invocation: put the bound run's back."""
        if not is_rank_zero():  # DDP: rank 0 does it
            return
        for name, text in files.items():
            atomic_write_text(self.path(HYDRA_DIR) / name, text)

    def start_over(self) -> Path | None:
        """``force=true``: move everything but this invocation's Hydra files, log and lock aside
        (the caller holds the lock and checked the folder is a run's: :meth:`check_ours`)."""
        if not is_rank_zero():  # DDP: rank 0 does it
            return None
        entries = [p for p in self.out.iterdir() if not _invocation_entry(p)] if self.out.exists() else []
        # the record last: a move cut short (a kill) leaves a folder still recognised as a run's
        entries.sort(key=lambda p: p.name in (RUN_FILE, METRICS_FILE))
        if not entries:
            return None
        old = self.out.with_name(f"{self.out.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        old.mkdir(parents=True, exist_ok=True)
        for p in entries:
            shutil.move(str(p), str(old / p.name))
        for p in self.out.glob("*.log"):
            shutil.copy2(p, old / p.name)
        log.info("force=true: moved the previous run's files to %s", old)
        return old

    # ---- baseline -----------------------------------------------------------------------------
    def load_baseline(self) -> dict | None:
        """The saved baseline; an unreadable one is evaluated again (the base model's numbers do
        not depend on the run), said in the log."""
        rec = self.read(BASELINE_FILE, strict=False)
        if rec is None and self.path(BASELINE_FILE).exists():
            log.warning("%s cannot be read: the baseline is evaluated again", self.path(BASELINE_FILE))
        return rec if rec is not None and "metrics" in rec else None

    def save_baseline(self, metrics: dict, rows: list[dict], wall_s: float | None) -> dict:
        rec = {"metrics": metrics, "per_query": rows, "wall_s": wall_s}
        if is_rank_zero():  # DDP: rank 0 writes
            atomic_write_json(self.path(BASELINE_FILE), rec)
        return rec

    # ---- terminal states ----------------------------------------------------------------------
    def finish(self, record: dict, rows: list[dict], provenance: dict) -> dict:
        record = {**record, "status": "finished"}
        if not is_rank_zero():  # DDP: rank 0 writes
            return record
        atomic_write_jsonl(self.path(PER_QUERY_FILE), rows)
        atomic_write_json(self.path(PROVENANCE_FILE), provenance)
        atomic_write_json(self.path(METRICS_FILE), record)  # last: its presence means done
        log.info("wrote %s", self.path(METRICS_FILE))
        return record

    def fail(self, reason: str, details: str = "", **extra) -> None:
        """Record a failure unless the run had finished or was pruned (never hide either)."""
        if self.status(strict=False) in ("finished", "pruned") or not is_rank_zero():  # DDP: rank 0
            return
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(
            self.path(METRICS_FILE), {"status": "failed", "reason": reason, "traceback": details, **extra}
        )

    def interrupt(self, signal_name: str, **extra) -> None:
        """Record a run stopped by a signal: resumable (``last.ckpt`` is the last complete epoch)."""
        if self.status(strict=False) in ("finished", "pruned") or not is_rank_zero():
            return
        last = self.path("checkpoints") / "last.ckpt"
        atomic_write_json(
            self.path(METRICS_FILE),
            {
                "status": "interrupted",
                "signal": signal_name,
                "reason": f"interrupted by {signal_name}",
                "resume": (
                    f"rerun the same command: it resumes from {last}"
                    if last.exists()
                    else "rerun the same command: no epoch had ended, training starts again"
                ),
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                **extra,
            },
        )

    def prune(self, epoch: int, metrics: dict, **extra) -> None:
        if not is_rank_zero():  # DDP: rank 0 writes
            return
        atomic_write_json(
            self.path(METRICS_FILE), {"status": "pruned", "epoch": int(epoch), "metrics": metrics, **extra}
        )
