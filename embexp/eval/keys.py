"""The evaluator's flat metric keys, built and parsed in one place.

::

    {split}/{metric}                   test/ndcg@10, dev/n_queries
    {split}/slice/{slice}/{metric}     test/slice/jargon/ndcg@10

``split`` is the evaluator's name; a run prefixes it with its stage (:data:`BASELINE`: the
untouched base model, :data:`FINAL`: the model training hands over;
``baseline/test/ndcg@10``, ``final/test/slice/jargon/ndcg@10``, :func:`staged`) and tags its
per-query rows with the same name (``"model": "final"``); the parsed ``split`` is then
``baseline/test``. ``metric`` is always the last segment and never holds a ``/``.
"""

from __future__ import annotations

from typing import NamedTuple

SLICE = "slice"
ALL = "all"  # the slice name of an overall (unsliced) key
BASELINE, FINAL = "baseline", "final"  # a run's stages: metric key prefix and per-query "model"
STAGES = (BASELINE, FINAL)


class MetricKey(NamedTuple):
    split: str
    slice: str  # ALL for an overall key
    metric: str


def metric_key(split: str, metric: str, slice: str | None = None) -> str:
    """``split/metric``, or ``split/slice/<slice>/metric`` for a slice."""
    return f"{split}/{metric}" if slice is None else f"{split}/{SLICE}/{slice}/{metric}"


def parse_metric_key(key: str) -> MetricKey | None:
    """The inverse of :func:`metric_key`; None for a ``slice`` key without a slice name."""
    parts = key.split("/")
    if SLICE not in parts:
        return MetricKey("/".join(parts[:-1]), ALL, parts[-1])
    i = parts.index(SLICE)
    if len(parts) < i + 3:
        return None
    return MetricKey("/".join(parts[:i]), "/".join(parts[i + 1 : -1]), parts[-1])


def is_slice_key(key: str) -> bool:
    return f"/{SLICE}/" in key


def staged(stage: str, metrics: dict) -> dict:
    """``metrics`` with every key prefixed by ``stage`` (``test/ndcg@10`` -> ``final/test/ndcg@10``)."""
    return {f"{stage}/{k}": v for k, v in metrics.items()}


def split_stage(key: str) -> tuple[str | None, str]:
    """``(stage, rest)`` of a staged key; ``(None, key)`` when it names no stage."""
    stage, _, rest = key.partition("/")
    return (stage, rest) if stage in STAGES and rest else (None, key)
