"""From a ``data`` config node (typed: ``embexp.config.schema.BeirData`` and kin) to validated,
leak-free train/dev/eval splits."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

from embexp.config.schema import DATA_SCHEMAS, BeirData, HfData, PairsData, QuickstartData
from embexp.config.store import to_schema
from embexp.data.beir import load_beir
from embexp.data.leakage import POLICIES, LeakageReport, guard
from embexp.data.splits import carve_dev, parse_timestamp, temporal_split
from embexp.data.types import Qrels, RetrievalDataset, positives
from embexp.errors import ConfigError, DataError, Problem

log = logging.getLogger(__name__)
KINDS = tuple(DATA_SCHEMAS)
DataConfig = BeirData | PairsData | QuickstartData | HfData


@dataclass
class PreparedData:
    dataset: RetrievalDataset
    train: Qrels
    dev: Qrels
    eval_split: str
    leakage: LeakageReport = field(default_factory=LeakageReport)
    notes: list[str] = field(default_factory=list)
    # query id -> the positives it trains on (grade >= min_positive_grade, capped at
    # max_positives_per_query), sorted; None: every train judgment with grade >= 1
    train_positives: dict[str, list[str]] | None = None
    selection: dict = field(default_factory=dict)  # how train_positives was chosen (summary)
    # what the training pairs can learn from (embexp.data.trainability.check_training_signal); None:
    # not checked (the data card then has no such section)
    training_signal: dict | None = None

    def __post_init__(self) -> None:
        if self.train_positives is None:
            self.train_positives, self.selection = select_positives(self.train)

    @property
    def eval(self) -> Qrels:
        return self.dataset.qrels[self.eval_split]

    def train_qrels(self) -> Qrels:
        """The training pairs as graded qrels (only the judgments training uses as positives)."""
        return {q: {d: self.train[q][d] for d in docs} for q, docs in self.train_positives.items()}

    @property
    def n_train_pairs(self) -> int:
        return sum(map(len, self.train_positives.values()))

    def summary(self) -> dict:
        return {
            "name": self.dataset.name,
            "source": self.dataset.source,
            "fingerprint": self.dataset.fingerprint,
            "corpus_fingerprint": self.dataset.corpus_fingerprint,
            "n_docs": len(self.dataset.corpus),
            "n_train_queries": len(self.train),
            "n_train_pairs": self.n_train_pairs,
            "positives": self.selection,
            "n_dev_queries": len(self.dev),
            "eval_split": self.eval_split,
            "n_eval_queries": len(self.eval),
            "leakage": self.leakage.as_dict(),
            "notes": self.notes,
        }


def select_positives(
    train: Qrels, min_grade: int = 1, cap: int | None = None, seed: int = 0
) -> tuple[dict[str, list[str]], dict]:
    """The training positives per query: judgments with grade >= ``min_grade``; with ``cap``,
    at most ``cap`` per query, highest grades first and a seeded draw within a grade (the
    draw of one query depends only on ``seed`` and its id). Returns (positives, summary)."""
    out: dict[str, list[str]] = {}
    n_graded = n_below = n_capped = 0
    for q in sorted(train):
        judged = train[q]
        pos = sorted(positives(judged, min_grade))
        n_graded += len(positives(judged))
        n_below += len(positives(judged)) - len(pos)
        if cap is not None and len(pos) > cap:
            rng = random.Random(f"{seed}\x00{q}")  # str seeds hash with SHA-512: stable across runs
            keyed = sorted(pos, key=lambda d: (-judged[d], rng.random()))
            n_capped += len(pos) - cap
            pos = sorted(keyed[:cap])
        if pos:
            out[q] = pos
    summary = {
        "min_positive_grade": int(min_grade),
        "max_positives_per_query": cap,
        "n_relevant_judgments": n_graded,
        "n_below_min_grade": n_below,
        "n_dropped_by_cap": n_capped,
        "n_pairs": sum(map(len, out.values())),
        "n_queries": len(out),
    }
    return out, summary


def data_config(cfg) -> DataConfig:
    """The ``data`` node (DictConfig, dict or schema object) as its schema object, checked:
    kind, types, unknown keys, ``dev_fraction``/``test_fraction`` ranges (the schema's), the
    leakage policy (this layer's). Errors name ``data.<key>``."""
    d = to_schema(cfg, DATA_SCHEMAS, "data")
    if d.leakage not in POLICIES:
        raise ConfigError("data.leakage", f"must be one of {POLICIES}, got {d.leakage!r}")
    if not d.path:
        raise ConfigError("data.path", "must be set")
    return d


def load_dataset(cfg) -> RetrievalDataset:
    d = data_config(cfg)
    if isinstance(d, QuickstartData):
        from embexp.data import quickstart

        p = Path(d.path).expanduser()
        if not (p / "corpus.jsonl").exists():
            log.info("generating quickstart data in %s (seed %s)", p, d.seed)
            quickstart.generate(p, seed=d.seed)
        return load_beir(p, name=d.name or "quickstart")
    if isinstance(d, PairsData):
        from embexp.data.pairs import load_pairs

        return load_pairs(d.path, test_fraction=d.test_fraction, seed=d.split_seed, temporal=d.temporal)
    if isinstance(d, HfData):
        from embexp.data.hf import load_hf

        return load_hf(d)
    return load_beir(d.path, name=d.name, skip_unknown_ids=d.skip_unknown_ids)


def _split_file(ds: RetrievalDataset, split: str) -> str:
    """Where a split would come from: ``qrels/<split>.tsv`` of a BEIR folder, else the source file."""
    return f"{ds.source}/qrels/{split}.tsv" if Path(ds.source).is_dir() else ds.source


def prepare_data(cfg, *, need_train: bool = True) -> PreparedData:
    """Load, choose splits, carve a dev split when missing, and apply the leakage guard.

    The guard runs on train against the eval split *before* a dev split is carved, so a
    train query that leaks into eval can never end up in the carved dev split (where the
    guard would no longer see it); train is then guarded against dev as well.
    """
    d = data_config(cfg)
    policy = d.leakage
    ds = load_dataset(d)
    eval_split = d.split
    if eval_split not in ds.qrels:
        raise DataError(
            Problem(
                _split_file(ds, eval_split),
                None,
                "data.split",
                f"split '{eval_split}' not found; available: {sorted(ds.qrels)}",
            )
        )
    notes: list[str] = []
    train_split, dev_split = d.train_split, d.dev_split
    train: Qrels = dict(ds.qrels.get(train_split, {}))
    dev: Qrels = {}
    if need_train and not train:
        raise DataError(
            Problem(
                _split_file(ds, train_split),
                None,
                "data.train_split",
                f"no training split '{train_split}'; available: {sorted(ds.qrels)}",
            )
        )
    train, report = guard(
        train, {eval_split: ds.qrels[eval_split]}, ds.queries, policy=policy, source=ds.source
    )
    if dev_split and dev_split in ds.qrels and dev_split != eval_split:
        dev = dict(ds.qrels[dev_split])
    elif train:
        frac = d.dev_fraction  # in (0, 1): the schema checks it
        if d.temporal and all("timestamp" in ds.query_meta.get(q, {}) for q in train):
            ts = {q: parse_timestamp(ds.query_meta[q]["timestamp"], qid=q) for q in train}
            train, dev = temporal_split(train, ts, fraction=frac)
            notes.append(f"dev split: newest {frac:.0%} of train queries by timestamp")
        else:
            train, dev = carve_dev(train, fraction=frac, max_queries=d.dev_max_queries, seed=d.dev_seed)
            notes.append(f"dev split: {len(dev)} train queries carved at random (seed {d.dev_seed})")
        ds.qrels["dev"] = dev
    if dev:
        train, dev_report = guard(train, {"dev": dev}, ds.queries, policy=policy, source=ds.source)
        report = report.merged(dev_report)
    if report:
        notes.append(f"leakage guard ({policy}): {report.describe()}")
    chosen, selection = _training_positives(d, ds, train, need_train, notes)
    return PreparedData(
        dataset=ds,
        train=train,
        dev=dev,
        eval_split=eval_split,
        leakage=report,
        notes=notes,
        train_positives=chosen,
        selection=selection,
    )


def _training_positives(d, ds: RetrievalDataset, train: Qrels, need_train: bool, notes: list[str]):
    """:func:`select_positives` with the data node's grade threshold, cap and seed; a note when
    they removed pairs, an error when nothing is left to train on."""
    chosen, selection = select_positives(
        train, d.min_positive_grade, d.max_positives_per_query, seed=d.sample_seed
    )
    if selection["n_below_min_grade"] or selection["n_dropped_by_cap"]:
        notes.append(
            f"training pairs: {selection['n_pairs']} of {selection['n_relevant_judgments']} relevant "
            f"judgments ({selection['n_below_min_grade']} below data.min_positive_grade="
            f"{d.min_positive_grade}, {selection['n_dropped_by_cap']} over "
            f"data.max_positives_per_query={d.max_positives_per_query})"
        )
    if need_train and not chosen:
        raise DataError(
            Problem(
                _split_file(ds, d.train_split),
                None,
                "data.min_positive_grade",
                f"no training pair has a grade >= {d.min_positive_grade}",
            )
        )
    return chosen, selection
