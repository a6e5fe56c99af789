"""From a ``data`` config node to validated, leak-free train/dev/eval splits."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from embexp.data.beir import available_splits, load_beir
from embexp.data.leakage import POLICIES, LeakageReport, guard
from embexp.data.splits import carve_dev, parse_timestamp, temporal_split
from embexp.data.types import Qrels, RetrievalDataset
from embexp.errors import ConfigError, DataError, Problem

log = logging.getLogger(__name__)
KINDS = ("beir", "quickstart", "pairs")


@dataclass
class PreparedData:
    dataset: RetrievalDataset
    train: Qrels
    dev: Qrels
    eval_split: str
    leakage: LeakageReport = field(default_factory=LeakageReport)
    notes: list[str] = field(default_factory=list)

    @property
    def eval(self) -> Qrels:
        return self.dataset.qrels[self.eval_split]

    def summary(self) -> dict:
        return {
            "name": self.dataset.name,
            "source": self.dataset.source,
            "fingerprint": self.dataset.fingerprint,
            "corpus_fingerprint": self.dataset.corpus_fingerprint,
            "n_docs": len(self.dataset.corpus),
            "n_train_queries": len(self.train),
            "n_dev_queries": len(self.dev),
            "eval_split": self.eval_split,
            "n_eval_queries": len(self.eval),
            "leakage": self.leakage.as_dict(),
            "notes": self.notes,
        }


def _get(cfg, key, default=None):
    return cfg.get(key, default) if hasattr(cfg, "get") else getattr(cfg, key, default)


def load_dataset(cfg) -> RetrievalDataset:
    kind = _get(cfg, "kind", "beir")
    if kind not in KINDS:
        raise ConfigError("data.kind", f"must be one of {KINDS}, got {kind!r}")
    path = _get(cfg, "path")
    if kind == "quickstart":
        from embexp.data import quickstart

        p = Path(path).expanduser()
        if not (p / "corpus.jsonl").exists():
            log.info("generating quickstart data in %s (seed %s)", p, _get(cfg, "seed", 0))
            quickstart.generate(p, seed=int(_get(cfg, "seed", 0)))
        return load_beir(p, name=_get(cfg, "name") or "quickstart")
    if kind == "pairs":
        from embexp.data.pairs import load_pairs

        return load_pairs(path, test_fraction=float(_get(cfg, "test_fraction", 0.2)), seed=int(_get(cfg, "split_seed", 0)), temporal=bool(_get(cfg, "temporal", False)))
    if path in (None, "", "???"):
        raise ConfigError("data.path", "set the BEIR folder, e.g. data.path=../shared/datasets/scifact")
    return load_beir(path, name=_get(cfg, "name"), skip_unknown_ids=bool(_get(cfg, "skip_unknown_ids", False)))


def _split_file(ds: RetrievalDataset, split: str) -> str:
    """Where a split would come from: ``qrels/<split>.tsv`` of a BEIR folder, else the source file."""
    return f"{ds.source}/qrels/{split}.tsv" if Path(ds.source).is_dir() else ds.source


def prepare_data(cfg, *, need_train: bool = True) -> PreparedData:
    """Load, choose splits, carve a dev split when missing, and apply the leakage guard.

    The guard runs on train against the eval split *before* a dev split is carved, so a
    train query that leaks into eval can never end up in the carved dev split (where the
    guard would no longer see it); train is then guarded against dev as well.
    """
    policy = _get(cfg, "leakage", "drop")
    if policy not in POLICIES:
        raise ConfigError("data.leakage", f"must be one of {POLICIES}, got {policy!r}")
    ds = load_dataset(cfg)
    eval_split = _get(cfg, "split", "test")
    if eval_split not in ds.qrels:
        raise DataError(Problem(_split_file(ds, eval_split), None, "data.split", f"split '{eval_split}' not found; available: {sorted(ds.qrels)}"))
    notes: list[str] = []
    train_split = _get(cfg, "train_split", "train")
    dev_split = _get(cfg, "dev_split", "dev")
    train: Qrels = dict(ds.qrels.get(train_split, {}))
    dev: Qrels = {}
    if need_train and not train:
        raise DataError(Problem(_split_file(ds, train_split), None, "data.train_split", f"no training split '{train_split}'; available: {sorted(ds.qrels)}"))
    train, report = guard(train, {eval_split: ds.qrels[eval_split]}, ds.queries, policy=policy, source=ds.source)
    if dev_split and dev_split in ds.qrels and dev_split != eval_split:
        dev = dict(ds.qrels[dev_split])
    elif train:
        frac = float(_get(cfg, "dev_fraction", 0.1))
        if not 0 < frac < 1:
            raise ConfigError("data.dev_fraction", f"must be in (0, 1), got {frac}")
        if _get(cfg, "temporal", False) and all("timestamp" in ds.query_meta.get(q, {}) for q in train):
            ts = {q: parse_timestamp(ds.query_meta[q]["timestamp"], qid=q) for q in train}
            train, dev = temporal_split(train, ts, fraction=frac)
            notes.append(f"dev split: newest {frac:.0%} of train queries by timestamp")
        else:
            train, dev = carve_dev(train, fraction=frac, max_queries=_get(cfg, "dev_max_queries"), seed=int(_get(cfg, "dev_seed", 0)))
            notes.append(f"dev split: {len(dev)} train queries carved at random (seed {_get(cfg, 'dev_seed', 0)})")
        ds.qrels["dev"] = dev
    if dev:
        train, dev_report = guard(train, {"dev": dev}, ds.queries, policy=policy, source=ds.source)
        report = report.merged(dev_report)
    if report:
        notes.append(f"leakage guard ({policy}): {report.describe()}")
    return PreparedData(dataset=ds, train=train, dev=dev, eval_split=eval_split, leakage=report, notes=notes)
