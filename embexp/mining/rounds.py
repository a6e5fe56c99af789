"""One round of hard negatives, as the built-in miner makes it: what mining needs from the data
layer (:class:`MiningInputs`), corpus and query encoding through the evaluator's code path,
:func:`mine_with_encoder`, a negatives file read as a pool under the same guard
(:func:`pool_from_file`), and what a round records (provenance, log line, coverage).
:mod:`embexp.mining.curriculum` decides when a round happens; :mod:`embexp.mining.sources` says
who makes it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from embexp.config.schema import EvalConfig
from embexp.data.leakage import find_leakage, normalise_text
from embexp.data.prepare import PreparedData
from embexp.data.types import positives
from embexp.errors import DataError, Problem
from embexp.mining.files import read_negatives
from embexp.mining.miner import MiningParams, MiningResult, mine

log = logging.getLogger("embexp.mining")


# ---- what mining needs from the data layer --------------------------------------------------
@dataclass
class MiningInputs:
    """The queries mined for and the documents each must never get, from PreparedData.

    Queries: the training queries with a positive, minus any that share an id or
    normalised text with a dev or eval query (even when ``data.leakage=warn`` kept them
    in training). ``exclude[q]``: the positives, in *any* split, of every query whose
    id or normalised text equals ``q``'s.
    """

    data: PreparedData
    query_ids: list[str]
    exclude: dict[str, set[str]]
    skipped: list[str] = field(default_factory=list)
    _text_ids: np.ndarray | None = None

    @classmethod
    def from_data(cls, data: PreparedData) -> MiningInputs:
        ds = data.dataset
        train = data.train_qrels()  # the queries that train, with their training positives
        held_out = set(data.eval) | set(data.dev)
        skipped = sorted(find_leakage(train, held_out, ds.queries).train_ids)
        by_text: dict[str, set[str]] = {}
        by_id: dict[str, set[str]] = {}
        for qrels in [*ds.qrels.values(), data.train, data.dev]:
            for q, r in qrels.items():
                pos = positives(r)
                by_id.setdefault(q, set()).update(pos)
                t = normalise_text(ds.queries.get(q, ""))
                if t:
                    by_text.setdefault(t, set()).update(pos)
        query_ids = sorted(set(train) - set(skipped))
        exclude = {}
        for q in query_ids:
            t = normalise_text(ds.queries[q])
            exclude[q] = by_id.get(q, set()) | (by_text.get(t, set()) if t else set())
        if skipped:
            log.warning(
                "mining: %d training queries share an id or text with dev/eval queries "
                "and get no mined negatives: %s",
                len(skipped),
                skipped[:5],
            )
        return cls(data, query_ids, exclude, skipped)

    @property
    def qrels(self):
        return self.data.train_qrels()

    @property
    def queries(self) -> list[str]:
        return [self.data.dataset.queries[q] for q in self.query_ids]

    def text_ids(self) -> np.ndarray:
        """One integer per corpus row, equal iff the normalised passage texts are equal."""
        if self._text_ids is None:
            seen: dict[str, int] = {}
            c = self.data.dataset.corpus
            self._text_ids = np.fromiter(
                (seen.setdefault(normalise_text(c.passage(i)), len(seen)) for i in range(len(c))),
                dtype=np.int64,
                count=len(c),
            )
        return self._text_ids


# ---- encoding + mining --------------------------------------------------------------------
def encode_corpus(
    encoder,
    data: PreparedData,
    *,
    batch_size: int = EvalConfig.batch_size,
    dtype: str = "auto",
    cache_dir=None,
    show_progress: bool = False,
) -> tuple[np.ndarray, bool]:
    """Corpus embeddings through the evaluator's code path and embedding cache (same keys)."""
    from embexp.eval.cache import EmbeddingCache
    from embexp.eval.embed import embed_corpus

    ds = data.dataset
    return embed_corpus(
        encoder,
        ds.corpus,
        cache=EmbeddingCache.under(cache_dir),
        corpus_fingerprint=ds.corpus_fingerprint,
        batch_size=batch_size,
        dtype=dtype,
        show_progress=show_progress,
    )


def mine_with_encoder(
    encoder,
    data: PreparedData,
    params: MiningParams,
    *,
    inputs: MiningInputs | None = None,
    corpus_embeddings: np.ndarray | None = None,
    corpus_source: str = "given",
    batch_size: int = EvalConfig.batch_size,
    dtype: str = "auto",
    cache_dir=None,
    veto_pairs=None,
    veto=None,
    previous: dict[str, list[str]] | None = None,
    round: int = 0,
    show_progress: bool = False,
) -> MiningResult:
    """Encode (corpus unless given, training queries always) and mine one round; the
    stats gain ``encode_corpus_s``, ``encode_queries_s``, ``corpus_source`` and ``wall_s``."""
    t0 = time.perf_counter()
    inputs = inputs or MiningInputs.from_data(data)
    timings: dict = {"encode_corpus_s": 0.0, "corpus_source": corpus_source}
    if corpus_embeddings is None:
        t = time.perf_counter()
        corpus_embeddings, cached = encode_corpus(
            encoder,
            data,
            batch_size=batch_size,
            dtype=dtype,
            cache_dir=cache_dir,
            show_progress=show_progress,
        )
        timings["encode_corpus_s"] = time.perf_counter() - t
        timings["corpus_source"] = "cache" if cached else "encoded"
    t = time.perf_counter()
    from embexp.eval.embed import encode_texts

    q = encode_texts(encoder, inputs.queries, "query", batch_size=batch_size, dtype=dtype)  # DDP: sharded
    timings["encode_queries_s"] = time.perf_counter() - t
    result = mine(
        corpus_embeddings,
        q,
        inputs.query_ids,
        inputs.qrels,
        data.dataset.corpus.ids,
        params,
        exclude=inputs.exclude,
        doc_text_ids=inputs.text_ids() if params.text_filter else None,
        veto_pairs=veto_pairs,
        veto=veto,
        previous=previous,
        round=round,
    )
    result.stats.update(timings)
    result.stats["n_queries_skipped_leakage"] = len(inputs.skipped)
    result.stats["wall_s"] = time.perf_counter() - t0
    return result


def check_known(doc_ids, inputs: MiningInputs, where: str, field: str) -> None:
    """A DataError naming ``where`` and ``field`` when a given negative is not in the corpus."""
    corpus = inputs.data.dataset.corpus.index
    unknown = sorted(d for d in set(doc_ids) if d not in corpus)
    if unknown:
        raise DataError(
            Problem(where, None, field, f"{len(unknown)} doc ids not in the corpus, e.g. {unknown[:5]}")
        )


def never_negatives(q: str, inputs: MiningInputs) -> set[str]:
    """What query ``q`` must never get as a negative: its exclusions and the document with its id."""
    return inputs.exclude.get(q, set()) | {q}


def pool_from_file(path: str | Path, inputs: MiningInputs) -> tuple[dict[str, list[str]], dict]:
    """A negatives file as a pool, under the same guard as mining: only training queries,
    never a document in ``exclude[q]`` (or with the query's id). Unknown doc ids fail."""
    rows = read_negatives(path)
    check_known({n["doc_id"] for negs in rows.values() for n in negs}, inputs, str(path), "negatives")
    allowed = set(inputs.query_ids)
    unmatched = sorted(set(rows) - allowed)
    foreign = sorted(set(unmatched) - set(inputs.skipped))  # not training queries at all
    pool, dropped_docs = {}, 0
    for q, negs in rows.items():
        if q not in allowed:
            continue
        never = never_negatives(q, inputs)
        keep = [n["doc_id"] for n in negs if n["doc_id"] not in never]
        dropped_docs += len(negs) - len(keep)
        pool[q] = keep
    info = {
        "source_file": str(path),
        "n_file_queries": len(rows),
        "n_queries": len(pool),
        "n_queries_dropped": len(unmatched),
        "n_queries_dropped_leakage": len(set(rows) & set(inputs.skipped)),
        "n_negatives_dropped": dropped_docs,
        "n_negatives": sum(map(len, pool.values())),
        # what the ids look like, for a coverage warning when they do not match (file_coverage_cause)
        "unmatched_query_examples": foreign[:2],
        "training_query_examples": inputs.query_ids[:2],
    }
    if info["n_queries_dropped"] or dropped_docs:
        log.warning(
            "negatives file %s: dropped %d non-training queries "
            "and %d negatives that are positives of the query",
            path,
            info["n_queries_dropped"],
            dropped_docs,
        )
    return pool, info


def provenance_record(
    kind,
    round_,
    epoch,
    encoder,
    fingerprint,
    data: PreparedData,
    params: MiningParams,
    veto_cfg: dict,
    stats: dict,
    code: dict,
    extra: dict | None = None,
) -> dict:
    return {
        "kind": kind,
        "round": round_,
        "epoch": epoch,
        "encoder": {
            "name_or_path": str(encoder.spec.name_or_path),
            "fingerprint": fingerprint,
            "spec": vars(encoder.spec),
        }
        if encoder is not None
        else None,
        "encoder_fingerprint": fingerprint,
        "dataset_fingerprint": data.dataset.fingerprint,
        "corpus_fingerprint": data.dataset.corpus_fingerprint,
        "data": data.summary(),
        "params": params.as_dict(),
        "veto": veto_cfg,
        "stats": stats,
        "time_s": stats.get("wall_s"),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "code": code,
        **(extra or {}),
    }


def describe_round(rec: dict) -> str:
    def f(key, fmt="{:.3f}"):
        v = rec.get(key)
        return "-" if v is None else fmt.format(v)

    return (
        f"mining round {rec.get('round')} "
        f"({rec.get('source', 'mined')}, corpus {rec.get('corpus_source', '-')}): "
        f"{rec.get('n_queries')} queries, {rec.get('n_negatives')} negatives in {f('wall_s', '{:.2f}')} s "
        f"(mine {f('mine_s', '{:.3f}')} s); mean positive rank {f('mean_positive_rank', '{:.1f}')}; removed "
        f"text {f('removed_text_share')}, margin_abs {f('removed_margin_abs_share')}, "
        f"margin_rel {f('removed_margin_rel_share')}, "
        f"veto {f('removed_veto_share')}; false-negative est. {f('false_negative_rate')}; "
        f"overlap with previous {f('overlap_previous')}; training examples with mined negatives "
        f"{f('example_coverage', '{:.1%}')} ({rec.get('n_examples_topped_up', '-')} topped up at random)"
    )


def file_coverage_cause(
    rec: dict, pool: dict[str, list[str]], train_positives: dict, n_negatives: int
) -> str:
    """Why a pool read from ``negatives.file`` leaves training examples without mined negatives:
    training queries the file does not name (its ids match no training query, or only training
    queries held out of mining), or queries it gives too few negatives (after dropping those that
    are positives of the query)."""
    file, total, matched = rec.get("source_file"), rec.get("n_file_queries"), rec.get("n_queries", 0)
    missing = [q for q in train_positives if q not in pool]
    short = [q for q in train_positives if q in pool and len(pool[q]) < max(1, n_negatives)]
    if len(missing) >= len(short):
        leak = rec.get("n_queries_dropped_leakage") or 0
        foreign = (rec.get("n_queries_dropped") or 0) - leak
        looks = (
            f"file ids look like {', '.join(map(repr, rec.get('unmatched_query_examples') or []))}; "
            f"training ids look like {', '.join(map(repr, rec.get('training_query_examples') or []))}"
        )
        why = [f"{foreign} are not training queries ({looks})"] if foreign else []
        if leak:
            why.append(f"{leak} are training queries held out of mining as look-alikes of dev/eval queries")
        if not matched and not leak:
            head = f"none of the {total} query ids in {file} are training queries ({looks})"
            way = "; a file mined for other data or another split, or ids written another way"
        elif not matched:
            head, way = f"none of the {total} query ids in {file} can be used: {'; '.join(why)}", ""
        else:
            head = (
                f"only {matched} of the {total} query ids in {file} are training queries "
                f"({'; '.join(why)}), and {len(missing)} of the {len(train_positives)} training queries "
                "are not in it"
            )
            way = ""
        return head + way + "; mine negatives for this data (embexp-mine, or leave negatives.file unset)"
    dropped = rec.get("n_negatives_dropped") or 0
    return f"{file} gives {len(short)} training queries fewer than {max(1, n_negatives)} negatives" + (
        f" ({dropped} of its negatives are positives of their query and were dropped)" if dropped else ""
    )


def example_coverage(
    pool: dict[str, list[str]], train_positives: dict[str, list[str]], n_negatives: int
) -> dict:
    """How many training examples (query, positive pairs) a pool serves: ``example_coverage`` is the
    share that get all ``n_negatives`` mined (``example_coverage_any``: at least one); the others
    are topped up with random documents by the collate (``n_examples_topped_up``, and
    ``n_random_negatives`` drawn per epoch)."""
    n_neg = max(1, n_negatives)
    n_ex = full = any_ = n_random = 0
    for q, docs in train_positives.items():
        have, n = len(pool.get(q, ())), len(docs)
        n_ex += n
        full += n if have >= n_neg else 0
        any_ += n if have > 0 else 0
        n_random += n * max(0, n_neg - have)
    return {
        "n_examples": n_ex,
        "example_coverage": full / n_ex if n_ex else None,
        "example_coverage_any": any_ / n_ex if n_ex else None,
        "n_examples_topped_up": n_ex - full,
        "n_random_negatives": n_random,
    }
