"""A data card: what a dataset looks like before anything is trained on it.

:func:`data_card` turns a :class:`~embexp.data.prepare.PreparedData` into a JSON-serialisable
dict: queries and (query, positive) pairs per split, positives per query, grades, queries
without a positive, duplicate passages and queries, what the leakage guard found and removed,
and, given a token counter, token-length percentiles of queries and passages against the
model's max lengths (the share of passages truncated: "training on passages, retrieving
chunks"). :func:`format_card` prints it for logs and ``embexp-data inspect``.

Nothing here knows a model: the token counter (``count_tokens(texts, kind) -> lengths``, kind
``query`` or ``passage``, prefixes included, no truncation) comes from the model layer
(``embexp.model.encoder.token_counter`` / ``encoder_token_counter``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence

from embexp.data.leakage import normalise_text
from embexp.data.prepare import PreparedData
from embexp.data.types import Qrels, positives

TokenCounter = Callable[[list[str], str], Sequence[int]]
KINDS = ("query", "passage")
PLURAL = {"query": "queries", "passage": "passages"}
TRUNCATION_WARN = 0.10  # warn when more than this share of a kind's texts is truncated
EXAMPLES = 5  # examples kept: duplicate groups, ids per group, queries without a positive


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation between closest ranks
    (numpy's default ``method="linear"``); ``values`` must not be empty."""
    s = sorted(values)
    pos = (len(s) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return float(s[lo] + (s[hi] - s[lo]) * (pos - lo))


def _distribution(values: Sequence[float], qs=(50, 90)) -> dict:
    keys = ("min", *(f"p{q}" for q in qs), "max", "mean")
    if not values:
        return dict.fromkeys(keys)
    out = {"min": float(min(values))}
    out.update({f"p{q}": percentile(values, q) for q in qs})
    out.update({"max": float(max(values)), "mean": sum(values) / len(values)})
    return out


def split_stats(qrels: Qrels, min_grade: int = 1) -> dict:
    """Queries, (query, positive) pairs, positives per query (over every judged query, zeros
    included), the grade histogram of all judgments, and queries with no positive."""
    n_pos = [len(positives(judged, min_grade)) for judged in qrels.values()]
    grades: dict[int, int] = {}
    for judged in qrels.values():
        for g in judged.values():
            grades[int(g)] = grades.get(int(g), 0) + 1
    empty = sorted(q for q, judged in qrels.items() if not positives(judged, min_grade))
    return {
        "n_queries": len(qrels),
        "n_pairs": sum(n_pos),
        "min_positive_grade": min_grade,
        "positives_per_query": _distribution(n_pos),
        "grades": {str(g): grades[g] for g in sorted(grades)},
        "n_without_positive": len(empty),
        "without_positive_examples": empty[:EXAMPLES],
    }


def _groups(items: Mapping[str, str]) -> list[list[str]]:
    """Ids sharing a non-empty normalised text, groups of two or more, in a stable order."""
    by_text: dict[str, list[str]] = {}
    for key, text in items.items():
        if t := normalise_text(text):
            by_text.setdefault(t, []).append(key)
    return sorted((sorted(ids) for ids in by_text.values() if len(ids) > 1), key=lambda g: (-len(g), g))


def duplicates(data: PreparedData) -> dict:
    """Passages with identical normalised text; query texts repeated among the judged queries
    of train, dev and eval (``across_splits``: groups whose queries sit in different splits)."""
    corpus = data.dataset.corpus
    docs = _groups({d: corpus.passage(i) for i, d in enumerate(corpus.ids)})
    split_of = _split_of(data)
    queries = _groups({q: data.dataset.queries.get(q, "") for q in split_of})
    across = [g for g in queries if len({split_of[q] for q in g}) > 1]
    return {
        "passages": {
            "n_groups": len(docs),
            "n_docs": sum(map(len, docs)),
            "examples": [g[:EXAMPLES] for g in docs[:EXAMPLES]],
        },
        "queries": {
            "n_groups": len(queries),
            "n_queries": sum(map(len, queries)),
            "n_groups_across_splits": len(across),
            "examples": [g[:EXAMPLES] for g in queries[:EXAMPLES]],
        },
    }


def _split_of(data: PreparedData) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, qrels in (("eval", data.eval), ("dev", data.dev), ("train", data.train)):
        for q in qrels:
            out.setdefault(q, name)
    return dict(sorted(out.items()))


def leakage(data: PreparedData) -> dict:
    """The guard's report plus what it removed from train (``warn`` removes nothing)."""
    rep = data.leakage
    return {
        **rep.as_dict(),
        "n_by_id": len(rep.by_id),
        "n_by_text": len(rep.by_text),
        "n_removed_from_train": len(rep.train_ids - set(data.train)),
    }


def _sample(n: int, sample: int | None, rng: random.Random) -> list[int]:
    if sample is None or n <= sample:
        return list(range(n))
    return sorted(rng.sample(range(n), sample))


def token_lengths(
    data: PreparedData,
    count_tokens: TokenCounter,
    max_lengths: Mapping[str, int] | None = None,
    *,
    sample: int | None = 2000,
    seed: int = 0,
) -> dict:
    """Token-length percentiles of the judged queries and of the passages (a seeded sample of
    at most ``sample`` each; ``None``: all), and the share longer than ``max_lengths[kind]``."""
    qids = list(_split_of(data))
    corpus = data.dataset.corpus
    rng = random.Random(seed)
    texts = {
        "query": [data.dataset.queries.get(qids[i], "") for i in _sample(len(qids), sample, rng)],
        "passage": [corpus.passage(i) for i in _sample(len(corpus), sample, rng)],
    }
    total = {"query": len(qids), "passage": len(corpus)}
    out = {}
    for kind in KINDS:
        lengths = [int(n) for n in count_tokens(texts[kind], kind)] if texts[kind] else []
        limit = (max_lengths or {}).get(kind)
        over = sum(n > limit for n in lengths) if limit is not None else None
        out[kind] = {
            "n_sampled": len(lengths),
            "n_total": total[kind],
            **_distribution(lengths, qs=(50, 90, 99)),
            "max_length": limit,
            "n_truncated": over,
            "share_truncated": over / len(lengths) if over is not None and lengths else None,
        }
    return out


def data_card(
    data: PreparedData,
    *,
    min_positive_grade: int = 1,
    count_tokens: TokenCounter | None = None,
    max_lengths: dict[str, int] | None = None,
    sample: int | None = 2000,
    seed: int = 0,
) -> dict:
    """The data card of ``data`` (a JSON-serialisable dict; :func:`format_card` prints it).

    Keys: ``dataset`` (name, source, fingerprints, eval split), ``corpus`` (``n_docs``),
    ``splits`` (``train`` with positives = grade >= ``min_positive_grade``, ``dev`` and ``eval``
    with grade > 0: :func:`split_stats`), ``duplicates``, ``leakage``, ``train_positives`` (how
    ``prepare_data`` chose the training pairs, when it says), ``notes``, ``tokens``
    (None without ``count_tokens``; else per kind: ``n_sampled``, ``n_total``, ``min``, ``p50``,
    ``p90``, ``p99``, ``max``, ``mean``, ``max_length``, ``n_truncated``, ``share_truncated``),
    ``training_signal`` (only when :func:`~embexp.data.trainability.check_training_signal` ran on
    ``data``) and ``warnings`` (:func:`card_warnings`)."""
    ds = data.dataset
    card = {
        "dataset": {
            "name": ds.name,
            "source": ds.source,
            "fingerprint": ds.fingerprint,
            "corpus_fingerprint": ds.corpus_fingerprint,
            "eval_split": data.eval_split,
        },
        "corpus": {"n_docs": len(ds.corpus)},
        "splits": {
            "train": split_stats(data.train, min_positive_grade),
            "dev": split_stats(data.dev, 1),
            "eval": split_stats(data.eval, 1),
        },
        "duplicates": duplicates(data),
        "leakage": leakage(data),
        "train_positives": dict(getattr(data, "selection", None) or {}),  # prepare_data's choice
        "notes": list(data.notes),
        "tokens": None,
    }
    if getattr(data, "training_signal", None) is not None:  # check_training_signal ran (embexp-train)
        card["training_signal"] = data.training_signal
    if count_tokens is not None:
        card["tokens"] = token_lengths(data, count_tokens, max_lengths, sample=sample, seed=seed)
    card["warnings"] = card_warnings(card)
    return card


def card_warnings(card: dict) -> list[str]:
    """What deserves a look before training: truncated texts (> 10%), splits with queries that
    have no positive, multi-positive splits (median positives per query > 1), and training pairs
    or batches that can meet no negative (``training_signal``, when the check ran)."""
    out = []
    for kind, t in (card.get("tokens") or {}).items():
        share = t.get("share_truncated")
        if share is not None and share > TRUNCATION_WARN:
            what = (
                "training on passages, retrieving chunks: chunk the corpus or raise model.passage_max_length"
                if kind == "passage"
                else f"raise model.{kind}_max_length"
            )
            out.append(
                f"{share:.0%} of {PLURAL[kind]} are longer than model.{kind}_max_length={t['max_length']} "
                f"tokens and get truncated ({what})"
            )
    for name, s in card["splits"].items():
        if s["n_without_positive"]:
            out.append(
                f"{name}: {s['n_without_positive']} of {s['n_queries']} queries have no positive "
                f"(grade >= {s['min_positive_grade']}), e.g. {s['without_positive_examples']}"
            )
        median = s["positives_per_query"]["p50"]
        if median is not None and median > 1:
            note = (
                "; each positive is its own training pair, and mining's margin filters measure "
                "candidates against the positive score chosen by negatives.margin_reference"
                if name == "train"
                else ""
            )
            out.append(f"{name}: multi-positive data (median {median:g} positives per query){note}")
    out += (card.get("training_signal") or {}).get("warnings", [])
    return out


def _num(v, fmt: str = "g") -> str:
    return "-" if v is None else format(v, fmt)


SPLIT_HEAD = ("split", "queries", "pairs", "no pos", "positives/query min/p50/p90/max (mean)", "grades")
TOKEN_HEAD = ("tokens", "sampled", "p50", "p90", "p99", "max", "max_len", "truncated")


def _row(cells, widths) -> str:
    """One aligned line: width < 0 left-aligned, > 0 right-aligned, 0 as is."""
    return "  " + "".join(f"{c:<{-w}}" if w < 0 else f"{c:>{w}}" for c, w in zip(cells, widths)).rstrip()


def _split_lines(card: dict) -> list[str]:
    widths = (-14, 8, 8, 8, 3, -40, 0)
    lines = [_row((*SPLIT_HEAD[:4], "", *SPLIT_HEAD[4:]), widths)]
    for name, s in card["splits"].items():
        label = f"eval ({card['dataset']['eval_split']})" if name == "eval" else name
        d = s["positives_per_query"]
        dist = "/".join(_num(d[k]) for k in ("min", "p50", "p90", "max")) + f" ({_num(d['mean'], '.2f')})"
        grades = " ".join(f"{g}:{n}" for g, n in s["grades"].items()) or "-"
        lines.append(
            _row((label, s["n_queries"], s["n_pairs"], s["n_without_positive"], "", dist, grades), widths)
        )
    return lines


def _token_lines(tokens: dict) -> list[str]:
    widths = (-14, 10, 7, 7, 7, 7, 9, 11)
    lines = [_row(TOKEN_HEAD, widths)]
    for kind, t in tokens.items():
        share = "-" if t["share_truncated"] is None else f"{t['share_truncated']:.1%}"
        stats = [_num(t[k], ".0f") for k in ("p50", "p90", "p99", "max")]
        lines.append(
            _row((kind, f"{t['n_sampled']}/{t['n_total']}", *stats, _num(t["max_length"]), share), widths)
        )
    return lines


def format_card(card: dict) -> str:
    """``card`` (from :func:`data_card`, or read back from JSON) as a few aligned lines."""
    ds, leak = card["dataset"], card["leakage"]
    docs, queries = card["duplicates"]["passages"], card["duplicates"]["queries"]
    lines = [
        f"data card: {ds['name']} ({ds['source']}), fingerprint {(ds.get('fingerprint') or '-')[:12]}",
        f"  {'corpus':<14}{card['corpus']['n_docs']} passages",
        *_split_lines(card),
        f"  {'duplicates':<14}passages: {docs['n_groups']} groups, {docs['n_docs']} docs; "
        f"queries: {queries['n_groups']} groups, {queries['n_queries']} queries "
        f"({queries['n_groups_across_splits']} across splits)",
        f"  {'leakage':<14}train queries sharing an eval id: {leak['n_by_id']}, an eval text: "
        f"{leak['n_by_text']}; removed from train: {leak['n_removed_from_train']}",
    ]
    if card.get("tokens"):
        lines += _token_lines(card["tokens"])
    lines += [f"  note: {n}" for n in card.get("notes", [])]
    lines += [f"  warning: {w}" for w in card_warnings(card)]
    return "\n".join(lines)
