"""Hard-negative mining over an already-embedded corpus: retrieve, window, filter, sample.

Pure over arrays (no model, no files): :func:`mine` takes corpus and query embeddings and
returns, per training query, the selected negatives with their score and rank, plus the
statistics of the round. Every step is vectorised over all queries at once (one FAISS
search, boolean masks over the ``(n_queries, k)`` result); for timings see BENCHMARKS.md.

Definitions (the contract every config and caller relies on)
------------------------------------------------------------
``s(q, d) = <e_q, e_d>``: inner product of L2-normalised embeddings (cosine).

excluded set ``X(q)``
    Every document that is a positive (relevance > 0) of ``q`` in the training qrels,
    plus the caller's ``exclude[q]`` (the data layer passes the positives of *every*
    split of every query with the same normalised text), plus the document whose id
    equals ``q``'s id (the BEIR convention). Excluded documents are never returned and
    do not take up a rank.
rank
    1-based position in the descending-score list **after removing** ``X(q)``: rank 1
    is the highest-scoring document that is not a positive. Filters below do not
    renumber: a document keeps its rank whether or not a filter removes its neighbours.
``depth`` D
    Only ranks ``1..D`` are retrieved (FAISS searches ``D + max |X(q)|`` so removing
    positives never shortens the list).
``window = [a, b]``
    Candidates are the documents with ``a <= rank <= b`` (both inclusive, ``b <= D``).
reference positive score ``p(q)`` (``margin_reference``)
    ``best`` (default): the **highest** score among ``q``'s training positives — a candidate
    is dropped when it scores within the margin of (or above) the query's best positive,
    i.e. when it looks like one more answer to the query. ``lowest``: the lowest score among
    them — a candidate must be clearly below *every* labelled positive. With one positive
    per query both are that positive's score. With many positives per query (dense,
    graded labels) ``lowest`` is the score of a positive the model ranks deep (often
    hundreds of ranks down), so the margins remove nearly every window candidate and the
    collate tops the examples up with random documents; ``best`` keeps the window's hard
    negatives while still dropping near-duplicates of the best answer. Labelled positives
    never need the margin: every one of them (any split, any grade > 0) is in ``X(q)``.
    Measurements (coverage and quality on SciFact and on multi-positive data) in BENCHMARKS.md.
filters (applied to window candidates in this order; a candidate counts only for the
first filter that removes it, so the per-filter shares add up to the removed share)
    1. ``text``: its normalised text (:func:`embexp.data.leakage.normalise_text`) equals
       that of a document in ``X(q)``.
    2. ``margin_abs = m``: removed when ``s > p(q) - m``; kept iff ``s <= p(q) - m``
       (sentence-transformers ``mine_hard_negatives(absolute_margin=m)``).
    3. ``margin_rel = r``: removed when ``s > p(q) * (1 - r)``; kept iff
       ``s <= (1 - r) * p(q)`` (sentence-transformers ``relative_margin=r``;
       NV-Retriever's "TopK-PercPos" with 95 % is ``r = 0.05``).
    4. ``veto``: ``(query id, doc id)`` pairs from a label file, then a callable
       ``veto(query_id, doc_ids) -> set`` (e.g. a cross-encoder) that sees the
       survivors of 1-3 in rank order.
sampling (``pool = pool_size or n_negatives`` survivors per query)
    ``top``: the ``pool`` best-ranked survivors. ``random``: a uniform sample without
    replacement, keyed by a hash of ``(seed, round, query id, document)``: the same seed
    and round give the same negatives, and one query's draw does not depend on others.
    ``fill_below_window`` (default true): a query with fewer than ``pool`` survivors in the
    window takes the best-ranked survivors *below* it (ranks ``b+1..D``, same filters) — the
    queries whose positive the model ranks deep, where every window candidate scores above
    the positive and the margin removes it. Only queries with fewer survivors even down to
    ``D`` get fewer negatives (the collate tops them up with random non-positive documents).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import NamedTuple

import numpy as np

from embexp.config.schema import MinedNegatives
from embexp.data.types import positives
from embexp.errors import ConfigError
from embexp.eval.index import DenseIndex, check_normalised

SAMPLING = ("top", "random")
REFERENCES = ("best", "lowest")
FILTERS = ("text", "margin_abs", "margin_rel", "veto")
VetoHook = Callable[[str, list[str]], "set[str] | Sequence[str]"]


def _is_int(x) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _is_num(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


@dataclass(frozen=True)
class MiningParams:
    """The mining values of a ``negatives`` node (:class:`~embexp.config.schema.MinedNegatives`,
    the one home of their defaults) as :func:`mine` reads them: a view with no defaults of its
    own, built with :meth:`of`; :meth:`validate` is the mining layer's check of them."""

    window: tuple[int, int]
    sampling: str
    n_negatives: int
    pool_size: int | None  # negatives kept per query; None = n_negatives
    depth: int
    margin_abs: float | None
    margin_rel: float | None
    margin_reference: str
    text_filter: bool
    fill_below_window: bool
    seed: int

    @classmethod
    def of(cls, neg: MinedNegatives, prefix: str = "negatives") -> MiningParams:
        """The view of a ``negatives`` schema object, checked (errors name ``{prefix}.{key}``)."""
        w = neg.window
        values = {f.name: getattr(neg, f.name) for f in fields(cls)}
        values["window"] = tuple(w) if isinstance(w, (list, tuple)) else w
        return cls(**values).validate(prefix)

    @property
    def n_pool(self) -> int:
        return int(self.pool_size or self.n_negatives)

    def validate(self, prefix: str = "negatives") -> MiningParams:
        """Raise :class:`ConfigError` naming ``{prefix}.{key}`` for the first bad value."""
        w = self.window
        if not isinstance(w, (tuple, list)) or len(w) != 2 or not all(_is_int(x) for x in w):
            raise ConfigError(f"{prefix}.window", f"must be two integer ranks [start, end], got {w!r}")
        if w[0] < 1:
            raise ConfigError(f"{prefix}.window", f"ranks are 1-based: start must be >= 1, got {list(w)}")
        if w[0] > w[1]:
            raise ConfigError(f"{prefix}.window", f"start must be <= end, got {list(w)}")
        if self.sampling not in SAMPLING:
            raise ConfigError(f"{prefix}.sampling", f"must be one of {SAMPLING}, got {self.sampling!r}")
        if not _is_int(self.n_negatives) or self.n_negatives < 1:
            raise ConfigError(
                f"{prefix}.n_negatives", f"mining needs a positive integer, got {self.n_negatives!r}"
            )
        if self.pool_size is not None and (not _is_int(self.pool_size) or self.pool_size < self.n_negatives):
            raise ConfigError(
                f"{prefix}.pool_size",
                f"must be null or an integer >= n_negatives ({self.n_negatives}), got {self.pool_size!r}",
            )
        if not _is_int(self.depth) or self.depth < w[1]:
            raise ConfigError(
                f"{prefix}.depth", f"must be an integer >= the window end ({w[1]}), got {self.depth!r}"
            )
        if self.margin_abs is not None and (not _is_num(self.margin_abs) or self.margin_abs < 0):
            raise ConfigError(
                f"{prefix}.margin_abs", f"must be null or a number >= 0, got {self.margin_abs!r}"
            )
        if self.margin_rel is not None and (not _is_num(self.margin_rel) or not 0 <= self.margin_rel < 1):
            raise ConfigError(
                f"{prefix}.margin_rel", f"must be null or a number in [0, 1), got {self.margin_rel!r}"
            )
        if self.margin_reference not in REFERENCES:
            raise ConfigError(
                f"{prefix}.margin_reference", f"must be one of {REFERENCES}, got {self.margin_reference!r}"
            )
        for key in ("text_filter", "fill_below_window"):
            if not isinstance(getattr(self, key), bool):
                raise ConfigError(f"{prefix}.{key}", f"must be true or false, got {getattr(self, key)!r}")
        if not _is_int(self.seed):
            raise ConfigError(f"{prefix}.seed", f"must be an integer, got {self.seed!r}")
        return self

    def as_dict(self) -> dict:
        out = asdict(self)
        out["window"] = list(self.window)
        return out


class Negative(NamedTuple):
    doc_id: str
    score: float
    rank: int  # 1-based, after removing the query's excluded documents


@dataclass
class MiningResult:
    negatives: dict[str, list[Negative]]  # query id -> negatives, best rank first
    stats: dict[str, float | int | None]

    def doc_ids(self) -> dict[str, list[str]]:
        """The pool as :meth:`PairDataModule.set_negatives` takes it."""
        return {q: [n.doc_id for n in negs] for q, negs in self.negatives.items()}

    def rows(self) -> list[dict]:
        """JSONL rows: ``{"query_id", "negatives": [{"doc_id", "score", "rank"}]}``."""
        return [
            {"query_id": q, "negatives": [n._asdict() for n in negs]}
            for q, negs in sorted(self.negatives.items())
        ]


def _splitmix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _query_seed(seed: int, round_: int, qid: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(f"{seed}\x00{round_}\x00{qid}".encode(), digest_size=8).digest(), "little"
    )


def _ragged(rows: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(row index repeated per element, concatenated elements)."""
    counts = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    flat = np.concatenate(rows).astype(np.int64) if rows and counts.sum() else np.zeros(0, dtype=np.int64)
    return np.repeat(np.arange(len(rows), dtype=np.int64), counts), flat


def _positive_scores_and_ranks(
    Q: np.ndarray, C: np.ndarray, pq: np.ndarray, pr: np.ndarray, max_cells: int = 1 << 25
) -> tuple[np.ndarray, np.ndarray]:
    """Score and raw rank (1 + number of documents scoring strictly higher) of each
    (query row, positive row) pair, by chunked matmul; ``pq`` is sorted."""
    scores = np.empty(len(pq), dtype=np.float32)
    ranks = np.empty(len(pq), dtype=np.int64)
    chunk = max(1, max_cells // max(1, C.shape[0]))
    for s in range(0, Q.shape[0], chunk):
        lo, hi = np.searchsorted(pq, [s, s + chunk])
        if lo == hi:
            continue
        S = Q[s : s + chunk] @ C.T  # (chunk, n_docs)
        lq = pq[lo:hi] - s
        ps = S[lq, pr[lo:hi]]  # (pairs,)
        scores[lo:hi] = ps
        ranks[lo:hi] = (S[lq] > ps[:, None]).sum(1) + 1
    return scores, ranks


class _Retrieval(NamedTuple):
    """The ``(n_queries, k)`` search result and the masks over it."""

    scores: np.ndarray  # (n_queries, k) inner products, best first
    idx: np.ndarray  # (n_queries, k) corpus rows, -1 where the index returned fewer
    valid: np.ndarray  # idx >= 0
    rank: np.ndarray  # 1-based rank after removing X(q) (meaningful where kept)
    kept: np.ndarray  # a result that is not in X(q)
    cand: np.ndarray  # in the window, not excluded, query has a training positive
    has_pos: np.ndarray  # (n_queries,)
    qrow: np.ndarray  # (n_queries, 1) query row numbers
    search_s: float


class _Selection(NamedTuple):
    """The selected negatives flattened row-major (by query, then by rank)."""

    rows: np.ndarray  # query row of each selected negative
    bounds: np.ndarray  # (n_queries + 1,) query i's negatives are [bounds[i], bounds[i + 1])
    scores: np.ndarray
    ranks: np.ndarray


def _query_rows(
    query_ids: list[str],
    qrels: Mapping[str, Mapping[str, int]],
    exclude: Mapping[str, set[str]],
    row_of: dict[str, int],
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Corpus rows per query: (training positives, excluded set X(q), X(q) without the
    document that has the query's own id — the documents whose texts the text filter uses)."""
    pos_rows, excl_rows, text_rows = [], [], []
    for q in query_ids:
        pos = sorted({row_of[d] for d in positives(qrels.get(q, {})) if d in row_of})
        x = set(pos) | {row_of[d] for d in exclude.get(q, ()) if d in row_of}  # X(q)
        text_rows.append(np.asarray(sorted(x), dtype=np.int64))
        if q in row_of:  # BEIR: the document with the query's own id is never a hit
            x = x | {row_of[q]}
        pos_rows.append(np.asarray(pos, dtype=np.int64))
        excl_rows.append(np.asarray(sorted(x), dtype=np.int64))
    return pos_rows, excl_rows, text_rows


def _retrieve(
    C: np.ndarray,
    Q: np.ndarray,
    excl_rows: list[np.ndarray],
    has_pos: np.ndarray,
    params: MiningParams,
    index: DenseIndex | None,
) -> _Retrieval:
    """Search ``depth + max |X(q)|`` deep, rank after removing X(q), mark the window candidates."""
    nq, nc = Q.shape[0], C.shape[0]
    xq, xr = _ragged(excl_rows)
    max_excl = int(max((len(r) for r in excl_rows), default=0))
    k = min(nc, params.depth + max_excl)
    t = time.perf_counter()
    if index is None:
        index = DenseIndex(C.shape[1]).add(C)
    scores, idx = index.search(Q, k)  # (n_queries, k), best first
    search_s = time.perf_counter() - t
    qrow = np.arange(nq, dtype=np.int64)[:, None]  # (n_queries, 1)
    valid = idx >= 0
    excluded = np.isin(qrow * nc + idx, xq * nc + xr)  # (n_queries, k)
    keep = valid & ~excluded
    rank = np.cumsum(keep, axis=1)  # 1-based rank of each kept column
    a, b = params.window
    cand = keep & (rank >= a) & (rank <= min(b, params.depth)) & has_pos[:, None]
    return _Retrieval(scores, idx, valid, rank, keep, cand, has_pos, qrow, search_s)


def _text_hits(ret: _Retrieval, doc_text_ids: np.ndarray, text_rows: list[np.ndarray]) -> np.ndarray:
    """Filter 1: the result's normalised text equals that of one of the query's excluded documents."""
    tid = np.asarray(doc_text_ids, dtype=np.int64)
    nt = int(tid.max()) + 1 if tid.size else 1
    tq, tr = _ragged(text_rows)
    return np.isin(ret.qrow * nt + tid[np.where(ret.valid, ret.idx, 0)], tq * nt + tid[tr])


def _veto_hits(
    ret: _Retrieval,
    alive: np.ndarray,
    query_ids: list[str],
    corpus_ids: np.ndarray,
    row_of: dict[str, int],
    veto_pairs: set[tuple[str, str]] | None,
    veto: VetoHook | None,
) -> np.ndarray:
    """Filter 4: the label file's pairs, then the hook on the other ``alive`` results in rank order."""
    hit = np.zeros_like(alive)
    if veto_pairs:
        nc = len(corpus_ids)
        qpos = {q: i for i, q in enumerate(query_ids)}
        codes = np.asarray(
            [qpos[q] * nc + row_of[d] for q, d in veto_pairs if q in qpos and d in row_of], dtype=np.int64
        )
        hit |= np.isin(ret.qrow * nc + ret.idx, codes)
    if veto is not None:
        alive = alive & ~hit
        for i in np.flatnonzero(alive.any(1)):
            cols = np.flatnonzero(alive[i])
            ids = [str(x) for x in corpus_ids[ret.idx[i, cols]]]
            vetoed = set(veto(query_ids[i], ids) or ())
            for c, d in zip(cols, ids):
                if d in vetoed:
                    hit[i, c] = True
    return hit


def _apply_filters(
    ret: _Retrieval,
    ref: np.ndarray,
    params: MiningParams,
    text_rows: list[np.ndarray],
    doc_text_ids: np.ndarray | None,
    veto_pairs: set[tuple[str, str]] | None,
    veto: VetoHook | None,
    query_ids: list[str],
    corpus_ids: np.ndarray,
    row_of: dict[str, int],
) -> tuple[np.ndarray, dict[str, int]]:
    """Filters 1-4 over the window candidates, first match wins: (survivors, removed count per
    filter that ran)."""
    cand, scores = ret.cand, ret.scores
    removed = np.zeros_like(cand)
    n_removed: dict[str, int] = {}

    def apply(name: str, hit: np.ndarray) -> None:
        r = cand & ~removed & hit
        n_removed[name] = int(r.sum())
        removed[...] = removed | r

    if params.text_filter and doc_text_ids is not None:
        apply("text", _text_hits(ret, doc_text_ids, text_rows))
    if params.margin_abs is not None:
        apply("margin_abs", scores > (ref - np.float32(params.margin_abs))[:, None])
    if params.margin_rel is not None:
        apply("margin_rel", scores > (ref * np.float32(1.0 - params.margin_rel))[:, None])
    if veto_pairs or veto is not None:
        apply("veto", _veto_hits(ret, cand & ~removed, query_ids, corpus_ids, row_of, veto_pairs, veto))
    return cand & ~removed, n_removed


def _sample(
    survivors: np.ndarray, ret: _Retrieval, params: MiningParams, query_ids: list[str], round_: int
) -> np.ndarray:
    """The selected ``(n_queries, k)`` mask: the ``pool`` best-ranked survivors, or a keyed draw."""
    n_pool = params.n_pool
    if params.sampling == "top":
        return survivors & (np.cumsum(survivors, axis=1) <= n_pool)
    nq = len(query_ids)
    qseed = np.fromiter((_query_seed(params.seed, round_, q) for q in query_ids), dtype=np.uint64, count=nq)
    keys = _splitmix64(qseed[:, None] ^ _splitmix64(np.where(ret.valid, ret.idx, 0).astype(np.uint64)))
    keys = np.where(survivors, keys, np.iinfo(np.uint64).max)
    order = np.argsort(keys, axis=1, kind="stable")[:, :n_pool]  # (n_queries, n_pool)
    sel = np.zeros_like(survivors)
    np.put_along_axis(sel, order, True, axis=1)
    sel &= survivors
    return sel


def _collect(
    sel: np.ndarray, ret: _Retrieval, corpus_ids: np.ndarray, query_ids: list[str]
) -> tuple[dict[str, list[Negative]], _Selection]:
    """Per query with a training positive, its selected negatives in rank order."""
    rows, cols = np.nonzero(sel)  # row-major: by query, then by rank
    bounds = np.searchsorted(rows, np.arange(len(query_ids) + 1))
    sel_ids, sel_scores, sel_ranks = (
        corpus_ids[ret.idx[rows, cols]],
        ret.scores[rows, cols],
        ret.rank[rows, cols],
    )
    negatives: dict[str, list[Negative]] = {}
    for i, q in enumerate(query_ids):
        lo, hi = bounds[i], bounds[i + 1]
        if ret.has_pos[i]:
            negatives[q] = [
                Negative(str(d), float(s), int(r))
                for d, s, r in zip(sel_ids[lo:hi], sel_scores[lo:hi], sel_ranks[lo:hi])
            ]
    return negatives, _Selection(rows, bounds, sel_scores, sel_ranks)


def _stats(
    round_: int,
    ret: _Retrieval,
    survivors: np.ndarray,
    n_removed: dict[str, int],
    n_pool: int,
    picked: _Selection,
    negatives: dict[str, list[Negative]],
    pos_score: np.ndarray,
    pos_rank: np.ndarray,
    ref: np.ndarray,
    previous: Mapping[str, Sequence[str]] | None,
) -> dict[str, float | int | None]:
    """The round's statistics (every key but the timings ``search_s`` and ``mine_s``)."""
    has_pos = ret.has_pos
    n_cand = int(ret.cand.sum())
    n_sel = len(picked.rows)
    counts = np.diff(picked.bounds)[has_pos]
    stats: dict[str, float | int | None] = {
        "round": int(round_),
        "n_queries": int(has_pos.sum()),
        "n_queries_short": int((counts < n_pool).sum()),
        "n_queries_empty": int((counts == 0).sum()),
        "n_candidates": n_cand,
        "n_negatives": n_sel,
        "negatives_per_query": n_sel / max(1, int(has_pos.sum())),
        "kept_share": int(survivors.sum()) / n_cand if n_cand else None,
    }
    for name in FILTERS:
        stats[f"removed_{name}_share"] = (
            (n_removed[name] / n_cand if n_cand else 0.0) if name in n_removed else None
        )
    stats["mean_positive_rank"] = float(pos_rank.mean()) if pos_rank.size else None
    stats["median_positive_rank"] = float(np.median(pos_rank)) if pos_rank.size else None
    stats["mean_positive_score"] = float(pos_score.mean()) if pos_score.size else None
    stats["mean_negative_score"] = float(picked.scores.mean()) if n_sel else None
    stats["mean_negative_rank"] = float(picked.ranks.mean()) if n_sel else None
    # false-negative estimate: kept negatives scoring above the reference positive score
    stats["false_negative_rate"] = float((picked.scores > ref[picked.rows]).mean()) if n_sel else None
    if previous is not None:
        inter = sum(len(set(previous.get(q, ())) & {n.doc_id for n in negs}) for q, negs in negatives.items())
        stats["overlap_previous"] = inter / n_sel if n_sel else None
    else:
        stats["overlap_previous"] = None
    return stats


def mine(
    corpus_embeddings: np.ndarray,
    query_embeddings: np.ndarray,
    query_ids: Sequence[str],
    qrels: Mapping[str, Mapping[str, int]],
    corpus_ids: Sequence[str],
    params: MiningParams,
    *,
    exclude: Mapping[str, set[str]] | None = None,
    doc_text_ids: np.ndarray | None = None,
    veto_pairs: set[tuple[str, str]] | None = None,
    veto: VetoHook | None = None,
    previous: Mapping[str, Sequence[str]] | None = None,
    round: int = 0,
    index: DenseIndex | None = None,
) -> MiningResult:
    """Mine hard negatives for ``query_ids`` (rows of ``query_embeddings``).

    ``qrels``: the training qrels (positives: relevance > 0); ``corpus_ids``: rows of
    ``corpus_embeddings``; ``exclude``: further documents never to return per query;
    ``doc_text_ids``: one integer per corpus row, equal iff the normalised texts are
    equal (``None`` disables the text filter); ``veto_pairs`` / ``veto``: see the module
    docstring; ``previous``: the last round's pool (for the overlap statistic);
    ``round``: part of the random-sampling key; ``index``: a prebuilt index over
    ``corpus_embeddings``. See the module docstring for the exact semantics.
    """
    params.validate()
    t0 = time.perf_counter()
    C = check_normalised(corpus_embeddings, "corpus embeddings")
    Q = check_normalised(query_embeddings, "query embeddings")
    query_ids = list(query_ids)
    nq, nc = len(query_ids), C.shape[0]
    if Q.shape[0] != nq:
        raise ValueError(f"{Q.shape[0]} query embeddings for {nq} query ids")
    if len(corpus_ids) != nc:
        raise ValueError(f"{nc} corpus embeddings for {len(corpus_ids)} corpus ids")
    corpus_ids = np.asarray(corpus_ids, dtype=object)
    row_of = {d: i for i, d in enumerate(corpus_ids)}
    pos_rows, excl_rows, text_rows = _query_rows(query_ids, qrels, exclude or {}, row_of)
    pq, pr = _ragged(pos_rows)
    has_pos = np.bincount(pq, minlength=nq) > 0  # (n_queries,)
    ret = _retrieve(C, Q, excl_rows, has_pos, params, index)

    # reference positive score p(q): the best (or lowest) training-positive score
    pos_score, pos_rank = _positive_scores_and_ranks(Q, C, pq, pr)
    if params.margin_reference == "best":
        ref = np.full(nq, -np.inf, dtype=np.float32)
        np.maximum.at(ref, pq, pos_score)
    else:
        ref = np.full(nq, np.inf, dtype=np.float32)
        np.minimum.at(ref, pq, pos_score)

    survivors, n_removed = _apply_filters(
        ret, ref, params, text_rows, doc_text_ids, veto_pairs, veto, query_ids, corpus_ids, row_of
    )
    sel = _sample(survivors, ret, params, query_ids, round)
    n_filled = 0
    if params.fill_below_window:
        need = params.n_pool - sel.sum(1)  # (n_queries,)
        below = ret.kept & (ret.rank > params.window[1]) & (ret.rank <= params.depth)
        below &= ret.has_pos[:, None] & (need > 0)[:, None]
        filters = (text_rows, doc_text_ids, veto_pairs, veto, query_ids, corpus_ids, row_of)
        deep, _ = _apply_filters(ret._replace(cand=below), ref, params, *filters)
        fill = deep & (np.cumsum(deep, axis=1) <= need[:, None])  # the best-ranked ones
        n_filled = int(fill.any(1).sum())
        sel = sel | fill
    negatives, picked = _collect(sel, ret, corpus_ids, query_ids)
    stats = _stats(
        round, ret, survivors, n_removed, params.n_pool, picked, negatives, pos_score, pos_rank, ref, previous
    )
    stats["n_queries_filled_below_window"] = n_filled
    stats["search_s"] = ret.search_s
    stats["mine_s"] = time.perf_counter() - t0
    return MiningResult(negatives, stats)
