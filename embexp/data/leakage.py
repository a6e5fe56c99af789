"""Leakage guard: evaluation queries must not appear among training queries.

Checked by id and by normalised text (case-folded, punctuation and extra spaces
removed). ``policy``: ``drop`` removes the leaking queries from training (the default),
``fail`` raises a DataError, ``warn`` only reports.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field

from embexp.data.types import Qrels
from embexp.errors import ConfigError, DataError, Problem

log = logging.getLogger(__name__)
_NON_WORD = re.compile(r"[^\w]+")
POLICIES = ("drop", "fail", "warn")


def normalise_text(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_NON_WORD.sub(" ", text).split())


@dataclass
class LeakageReport:
    by_id: list[str] = field(default_factory=list)  # train query ids that are also eval ids
    by_text: list[tuple[str, str]] = field(
        default_factory=list
    )  # (train id, eval id) with equal normalised text

    @property
    def train_ids(self) -> set[str]:
        return set(self.by_id) | {t for t, _ in self.by_text}

    def __bool__(self) -> bool:
        return bool(self.by_id or self.by_text)

    def describe(self) -> str:
        parts = []
        if self.by_id:
            parts.append(f"{len(self.by_id)} shared query ids (e.g. {self.by_id[:5]})")
        if self.by_text:
            parts.append(
                f"{len(self.by_text)} train/eval query pairs with identical normalised text "
                f"(train, eval): {self.by_text[:5]}"
            )
        return "; ".join(parts) or "no leakage"

    def merged(self, other: LeakageReport) -> LeakageReport:
        return LeakageReport(
            self.by_id + [q for q in other.by_id if q not in self.by_id],
            self.by_text + [p for p in other.by_text if p not in self.by_text],
        )

    def as_dict(self) -> dict:
        return {"by_id": self.by_id, "by_text": [list(p) for p in self.by_text]}


def find_leakage(train_qids, eval_qids, queries: dict[str, str]) -> LeakageReport:
    eval_set = set(eval_qids)
    eval_text: dict[str, str] = {}
    for q in sorted(eval_set):
        if t := normalise_text(queries[q]):  # punctuation-only texts normalise to "": not comparable
            eval_text.setdefault(t, q)
    rep = LeakageReport()
    for q in sorted(train_qids):
        if q in eval_set:
            rep.by_id.append(q)
        elif (t := normalise_text(queries[q])) and (e := eval_text.get(t)) is not None:
            rep.by_text.append((q, e))
    return rep


def guard(
    train: Qrels,
    eval_splits: dict[str, Qrels],
    queries: dict[str, str],
    policy: str = "drop",
    source: str = "<data>",
) -> tuple[Qrels, LeakageReport]:
    """Apply the leakage policy to ``train`` against every eval split; return the clean train qrels."""
    if policy not in POLICIES:
        raise ConfigError("data.leakage", f"must be one of {POLICIES}, got {policy!r}")
    eval_ids = set().union(*[set(s) for s in eval_splits.values()]) if eval_splits else set()
    rep = find_leakage(train, eval_ids, queries)
    if not rep:
        return train, rep
    if policy == "fail":
        raise DataError(
            Problem(
                source,
                None,
                "queries",
                f"leakage between train and eval queries: {rep.describe()} "
                "(set data.leakage=drop to drop them from train)",
            )
        )
    log.warning("leakage guard (%s): %s", policy, rep.describe())
    if policy == "drop":
        bad = rep.train_ids
        train = {q: v for q, v in train.items() if q not in bad}
    return train, rep
