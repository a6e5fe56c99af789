"""Retrieval metrics over ranked runs, following trec_eval conventions.

Inputs
------
``Run = dict[str, list[str]]``
    query id -> ranked doc ids, best first, no duplicates.
``Qrels = dict[str, dict[str, int]]``
    query id -> {doc id: graded relevance}. A grade ``<= 0`` means "judged not
    relevant"; a doc absent from the qrels of a query is not relevant either.

Which queries are scored
------------------------
Every query id in ``qrels`` with at least one relevant doc (grade > 0) gets a
score. A query in ``qrels`` but missing from ``run`` is scored as an empty
ranking (all metrics 0). Queries in ``run`` but not in ``qrels`` are ignored.
Queries whose qrels contain no relevant doc are **excluded** (they have no
defined recall / nDCG); note that trec_eval instead scores them as 0 and counts
them in its averages, so averages differ from trec_eval's ``all`` line when
such queries exist.

Definitions (for one query; ``rel(d)`` = grade of doc ``d``, taken as 0 when
unjudged or ``<= 0``; ``d_r`` = doc at rank ``r`` (1-based); ``R`` = number of
docs with ``rel > 0``; ``is_rel(d) = rel(d) > 0``; ranks beyond the end of the
run contribute nothing)
-----------------------------------------------------------------------------
nDCG@k (trec_eval ``ndcg_cut_k``), linear gain::

    DCG@k  = sum_{r=1..k} rel(d_r) / log2(r + 1)
    IDCG@k = same sum over all judged docs with rel > 0 sorted by rel desc,
             cut at k
    nDCG@k = DCG@k / IDCG@k

recall@k (``recall_k``)::

    recall@k = |{r <= k : is_rel(d_r)}| / R

precision@k (``P_k``), ``k`` in the denominator even if the run is shorter::

    precision@k = |{r <= k : is_rel(d_r)}| / k

MRR@k (trec_eval ``recip_rank`` on the run truncated to ``k``)::

    mrr@k = 1 / min{r <= k : is_rel(d_r)}, or 0 if there is none

MAP@k (``map_cut_k``), divided by *all* relevant docs, not ``min(k, R)``::

    map@k = (sum_{r <= k, is_rel(d_r)} precision@r) / R

hit_rate@k (``success_k``)::

    hit_rate@k = 1 if any r <= k has is_rel(d_r) else 0

Implementation: all queries are scored together in blocks as a
(queries x max_k) gain matrix; cumulative sums along the rank axis give every
metric at every cutoff in O(max_k) numpy work per query, with no per-k Python
loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from operator import itemgetter

import numpy as np

from embexp.data.types import Qrels, positives

Run = dict[str, list[str]]

METRIC_NAMES: tuple[str, ...] = ("ndcg", "recall", "precision", "mrr", "map", "hit_rate")

# Rows scored per numpy block; bounds memory at ~block * max_k * 8 bytes per matrix.
_BLOCK = 4096


def _check_k_values(k_values: Sequence[int]) -> list[int]:
    if isinstance(k_values, (str, bytes)) or not k_values:
        raise ValueError(f"k_values must be a non-empty sequence of positive ints, got {k_values!r}")
    ks: list[int] = []
    for k in k_values:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"k_values must be positive ints, got {k!r} in {list(k_values)!r}")
        if int(k) not in ks:
            ks.append(int(k))
    return ks


def metric_keys(k_values: Sequence[int]) -> list[str]:
    """The keys ``per_query_metrics`` returns for ``k_values``, in its order."""
    ks = _check_k_values(k_values)
    return [f"{name}@{k}" for name in METRIC_NAMES for k in ks]


def per_query_metrics(run: Run, qrels: Qrels, k_values: Sequence[int]) -> dict[str, dict[str, float]]:
    """Score every query of ``qrels`` that has a relevant doc; see the module docstring.

    Returns ``{query id: {"ndcg@k", "recall@k", "precision@k", "mrr@k",
    "map@k", "hit_rate@k" for each k: value}}``. Only the top ``max(k_values)``
    docs of each ranking are read. Raises ``ValueError`` for bad ``k_values``
    or a duplicate doc id within a query's top ``max(k_values)``.
    """
    ks = _check_k_values(k_values)
    keys = metric_keys(ks)
    max_k = max(ks)

    qids = [q for q, judged in qrels.items() if positives(judged)]
    out: dict[str, dict[str, float]] = {}
    if not qids:
        return out

    ranks = np.arange(1, max_k + 1, dtype=np.float64)
    discount = 1.0 / np.log2(ranks + 1.0)
    cut = np.asarray(ks, dtype=np.intp) - 1  # column index of each cutoff
    k_arr = np.asarray(ks, dtype=np.float64)
    empty: list[str] = []

    for start in range(0, len(qids), _BLOCK):
        block = qids[start : start + _BLOCK]
        # Sparse fill: only relevant docs are looked up in the ranking, so the
        # Python work per query is O(|ranking| in C + |relevant docs|).
        g_rows: list[int] = []
        g_cols: list[int] = []
        g_vals: list[int] = []
        i_rows: list[int] = []
        i_cols: list[int] = []
        i_vals: list[int] = []
        n_rel: list[int] = []
        for i, q in enumerate(block):
            ranked = run.get(q, empty)[:max_k]
            position = dict(zip(ranked, range(len(ranked))))
            if len(position) != len(ranked):
                raise ValueError(f"run for query {q!r} has duplicate doc ids in its top {max_k}")
            relevant = [(d, g) for d, g in qrels[q].items() if g > 0]
            n_rel.append(len(relevant))
            for d, g in relevant:
                r = position.get(d)
                if r is not None:
                    g_rows.append(i)
                    g_cols.append(r)
                    g_vals.append(g)
            ideal_gains = sorted((g for _, g in relevant), reverse=True)[:max_k]
            i_rows.extend([i] * len(ideal_gains))
            i_cols.extend(range(len(ideal_gains)))
            i_vals.extend(ideal_gains)

        gains = np.zeros((len(block), max_k), dtype=np.float64)
        gains[g_rows, g_cols] = g_vals
        ideal = np.zeros((len(block), max_k), dtype=np.float64)
        ideal[i_rows, i_cols] = i_vals
        num_rel = np.asarray(n_rel, dtype=np.float64)[:, None]
        is_rel = gains > 0

        dcg = np.cumsum(gains * discount, axis=1)[:, cut]
        idcg = np.cumsum(ideal * discount, axis=1)[:, cut]  # > 0: every query has a relevant doc
        ndcg = dcg / idcg

        hits_cum = np.cumsum(is_rel, axis=1, dtype=np.float64)
        hits = hits_cum[:, cut]
        recall = hits / num_rel
        precision = hits / k_arr

        ap = np.cumsum(np.where(is_rel, hits_cum / ranks, 0.0), axis=1)[:, cut] / num_rel

        first = np.where(is_rel.any(axis=1), is_rel.argmax(axis=1) + 1, max_k + 1)[:, None]
        mrr = np.where(first <= k_arr, 1.0 / first, 0.0)
        hit_rate = (hits > 0).astype(np.float64)

        # Column order must match metric_keys: metric-major, then k.
        table = np.concatenate([ndcg, recall, precision, mrr, ap, hit_rate], axis=1).tolist()
        for q, values in zip(block, table):
            out[q] = dict(zip(keys, values))
    return out


def aggregate(
    per_query: dict[str, dict[str, float]], query_ids: Iterable[str] | None = None
) -> dict[str, float]:
    """Mean of each metric over ``query_ids`` (all of ``per_query`` if None).

    Returns ``{}`` when there are no queries. Raises ``KeyError`` if a given
    query id is not in ``per_query`` (for instance a query without relevant
    docs, which ``per_query_metrics`` excludes) rather than silently averaging
    over fewer queries. All queries must carry the same metric keys.
    """
    ids = list(per_query) if query_ids is None else list(query_ids)
    if not ids:
        return {}
    missing = [q for q in ids if q not in per_query]
    if missing:
        raise KeyError(
            f"{len(missing)} query id(s) have no per-query metrics (not in qrels or no "
            f"relevant doc), e.g. {missing[:5]!r}"
        )
    keys = list(per_query[ids[0]])
    if not keys:
        return {}
    getter = itemgetter(*keys)
    rows = [getter(per_query[q]) for q in ids]
    if len(keys) == 1:
        rows = [(r,) for r in rows]
    means = np.asarray(rows, dtype=np.float64).mean(axis=0)
    return dict(zip(keys, means.tolist()))
