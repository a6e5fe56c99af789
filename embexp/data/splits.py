"""Dev splits carved from train (by query, seeded) and temporal splits (by timestamp)."""

from __future__ import annotations

import math
import random
from datetime import datetime, timezone

from embexp.data.types import Qrels
from embexp.errors import DataError, Problem


def carve_dev(
    train: Qrels, *, fraction: float = 0.1, max_queries: int | None = None, seed: int = 0
) -> tuple[Qrels, Qrels]:
    """Move a seeded random subset of train *queries* (all their qrels) to dev."""
    qids = sorted(train)
    n = max(1, round(len(qids) * fraction))
    if max_queries is not None:
        n = min(n, max_queries)
    if n >= len(qids):
        raise DataError(
            Problem(
                "<train qrels>",
                None,
                "data.dev_fraction",
                f"cannot carve {n} dev queries from {len(qids)} train queries",
            )
        )
    rng = random.Random(seed)
    dev_ids = set(rng.sample(qids, n))
    return ({q: train[q] for q in qids if q not in dev_ids}, {q: train[q] for q in qids if q in dev_ids})


def parse_timestamp(value, *, file: str = "<queries>", line: int | None = None, qid: str = "") -> float:
    """Epoch seconds from a number or an ISO-8601 string."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, (int, float)):
        try:
            v = float(value)
        except OverflowError:
            v = math.inf
        if math.isfinite(v):
            return v
    if isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            dt = None
        if dt is not None:
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=timezone.utc)
            return dt.timestamp()
    raise DataError(
        Problem(file, line, "timestamp", f"query '{qid}': expected epoch seconds or ISO-8601, got {value!r}")
    )


def temporal_split(qrels: Qrels, timestamps: dict[str, float], *, fraction: float) -> tuple[Qrels, Qrels]:
    """Oldest ``1 - fraction`` of queries stay, the newest ``fraction`` are held out.

    Ties on the boundary timestamp go to the held-out side so no held-out query is older
    than a kept one.
    """
    missing = [q for q in qrels if q not in timestamps]
    if missing:
        raise DataError(
            Problem(
                "<queries>",
                None,
                "timestamp",
                "temporal split needs a timestamp on every query; "
                f"{len(missing)} lack one (first: '{missing[0]}')",
            )
        )
    order = sorted(qrels, key=lambda q: (timestamps[q], q))
    n_hold = max(1, round(len(order) * fraction))
    cut_ts = timestamps[order[len(order) - n_hold]]
    keep = {q: qrels[q] for q in order if timestamps[q] < cut_ts}
    hold = {q: qrels[q] for q in order if timestamps[q] >= cut_ts}
    return keep, hold
