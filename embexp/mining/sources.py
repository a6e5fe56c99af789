"""Where a round of hard negatives comes from: the built-in miner, or a source of yours.

``negatives.kind`` says *when* a pool is made (``static``: once, before training;
``iterative``: again every ``refresh_every`` epochs; ``warmup_epochs`` first); a
:class:`NegativeSource` says *what* one round is. The curriculum
(:mod:`embexp.mining.curriculum`) keeps the schedule, the pool's files, provenance, coverage
checks and checkpoint state, whatever the source.

The default source is :class:`MinerSource`, the dense miner (window, margins, filters,
sampling; ``embexp/mining/miner.py``). A pool read from ``negatives.file`` is not a source: it
is given once, before training, and checked against the same guard
(:func:`embexp.mining.rounds.pool_from_file`). A source of yours is one Python file and one YAML:

.. code-block:: python

    # my_negatives.py
    from embexp.mining.miner import MiningResult, Negative

    class SameProduct:
        def __init__(self, negatives):        # the negatives node (MinedNegatives)
            self.n = negatives.pool_size or negatives.n_negatives

        def __call__(self, request):           # -> MiningResult
            ...

.. code-block:: yaml

    # conf/negatives/same_product.yaml (or a folder on hydra.searchpath)
    defaults:
      - static
      - _self_
    source: my_negatives:SameProduct

``embexp-train negatives=same_product`` then trains with it, ``negatives.kind=iterative``
re-mines with it, and every other key of ``negatives`` (``n_negatives``, ``warmup_epochs``,
``min_coverage``, ...) means what it means for the miner. ``tests/mining/plugins/`` holds a
working example (``lexical``: the documents sharing most words with the query).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from embexp.config.schema import MinedNegatives
from embexp.data.prepare import PreparedData
from embexp.errors import ConfigError
from embexp.mining.miner import MiningParams, MiningResult
from embexp.mining.rounds import MiningInputs, check_known, mine_with_encoder, never_negatives
from embexp.utils.hooks import import_hook

log = logging.getLogger("embexp.mining")


@dataclass
class MiningRequest:
    """What one round may use. ``inputs`` (:class:`~embexp.mining.rounds.MiningInputs`):
    the training queries to mine for (``query_ids``) and, per query, the documents it must
    never get (``exclude``: its positives in any split, and those of queries with the same
    text); a source must not return them (the curriculum drops any it does, and the data
    module never uses a positive as a negative)."""

    data: PreparedData
    inputs: MiningInputs
    encoder: object | None  # the current encoder (BiEncoder); None where none is loaded
    corpus_embeddings: np.ndarray | None  # the current encoder's, when a validation just made them
    round: int  # 0 for the pool before training
    epoch: int | None  # the epoch whose end re-mines; None before training
    previous: dict[str, list[str]] | None  # the last round's pool
    corpus_source: str = "given"  # where corpus_embeddings came from (baseline, validation, ...)
    cache_dir: str | None = None  # the embedding cache a source that encodes the corpus may use


class NegativeSource(Protocol):
    """One round of hard negatives: ``source(request)`` -> :class:`MiningResult` (per training
    query, its negatives best first, and the round's statistics, any keys; ``n_queries`` and
    ``n_negatives`` are shown in the log line). Built with the ``negatives`` node."""

    def __call__(self, request: MiningRequest) -> MiningResult: ...


class MinerSource:
    """The built-in source: the dense miner (``embexp/mining/miner.py``: window, margins, text
    filter, veto, sampling) over the request's corpus vectors (the corpus is encoded, through
    the evaluator's cache, when the request brings none) and the training queries encoded with
    the request's encoder."""

    def __init__(self, params: MiningParams, *, batch_size: int, dtype: str, veto_pairs=None, veto=None):
        self.params, self.batch_size, self.dtype = params, batch_size, dtype
        self.veto_pairs, self.veto = veto_pairs, veto

    def __call__(self, request: MiningRequest) -> MiningResult:
        return mine_with_encoder(
            request.encoder,
            request.data,
            self.params,
            inputs=request.inputs,
            corpus_embeddings=request.corpus_embeddings,
            corpus_source=request.corpus_source,
            batch_size=self.batch_size,
            dtype=self.dtype,
            cache_dir=request.cache_dir,
            veto_pairs=self.veto_pairs,
            veto=self.veto,
            previous=request.previous,
            round=request.round,
        )


def load_source(negatives: MinedNegatives) -> NegativeSource | None:
    """The source ``negatives.source`` names, built with the node; None for the built-in miner.
    A name that does not import or does not build is a ConfigError naming ``negatives.source``."""
    spec = getattr(negatives, "source", None)
    if spec in (None, ""):
        return None
    factory = import_hook(str(spec), "negatives.source")
    try:
        source = factory(negatives)
    except Exception as e:  # the user's constructor: say which key brought it in
        raise ConfigError("negatives.source", f"{spec} could not be built: {type(e).__name__}: {e}") from e
    if not callable(source):
        msg = f"{spec}(negatives) must return a callable source, got {source!r}"
        raise ConfigError("negatives.source", msg)
    return source


def plugin_round(source: NegativeSource, spec: str, request: MiningRequest) -> MiningResult:
    """One round from a source of yours (``negatives.source`` = ``spec``), under the guard the
    miner and a negatives file obey: a document id not in the corpus is a DataError naming the
    source; queries that are not mined for (not training queries, or held out as look-alikes of
    dev/eval queries) and any document a query must never get (its positives in any split, the
    document with the query's own id) are dropped, and counted in the round's statistics."""
    t0 = time.perf_counter()
    result = source(request)
    if not isinstance(result, MiningResult):
        raise TypeError(f"negatives.source {spec} returned {type(result).__name__}, not a MiningResult")
    result, dropped = guard(result, request.inputs, spec)
    stats = {  # the source's own statistics, then what the guard left (its counts win)
        **result.stats,
        "n_queries": sum(1 for v in result.negatives.values() if v),
        "n_negatives": sum(len(v) for v in result.negatives.values()),
        "corpus_source": request.corpus_source,
        **dropped,
        "wall_s": time.perf_counter() - t0,
    }
    if dropped["n_negatives_dropped"] or dropped["n_queries_dropped"]:
        log.warning(
            "negatives.source %s: dropped %d queries that are not mined for and %d negatives that are "
            "positives of the query (or the query's own id)",
            spec,
            dropped["n_queries_dropped"],
            dropped["n_negatives_dropped"],
        )
    return MiningResult(result.negatives, stats)


def guard(result: MiningResult, inputs: MiningInputs, spec: str) -> tuple[MiningResult, dict]:
    """``result`` restricted to what training may use (see :func:`plugin_round`; a document listed
    twice for a query is kept once), and what went."""
    check_known(
        (n.doc_id for negs in result.negatives.values() for n in negs), inputs, str(spec), "negatives.source"
    )
    allowed = set(inputs.query_ids)
    kept, dropped = {}, 0
    for q, negs in result.negatives.items():
        if q not in allowed:
            continue
        never = never_negatives(q, inputs)
        ok, seen = [], set()  # a document twice would count twice in coverage and in training
        for n in negs:
            if n.doc_id not in never and n.doc_id not in seen:
                ok.append(n)
                seen.add(n.doc_id)
        dropped += len(negs) - len(ok)
        kept[q] = ok
    counts = {"n_queries_dropped": len(set(result.negatives) - allowed), "n_negatives_dropped": dropped}
    return MiningResult(kept, dict(result.stats)), counts
