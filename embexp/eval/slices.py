"""Query slices: subsets of eval queries reported with the same metrics.

- user-given: ``slices`` field on queries, and/or a file mapping query id -> slice
  names (TSV ``query-id<TAB>slice[,slice...]`` or JSON ``{query_id: [slices]}``);
- ``jargon``: the query contains an acronym (``ACH``, ``2FA``), a code (``TX-4410-B``,
  ``SKU123``), or a rare corpus term (a word in at most ``rare_max_df`` documents), or
  is tagged ``jargon`` in the data;
- ``head`` / ``tail``: with a ``frequency`` field, head = frequency at or above the
  ``head_quantile`` quantile, tail = at or below the ``tail_quantile`` quantile of the
  eval queries' frequencies. Without one, by training exposure: the *seen share* of a
  query is the share of its relevant documents that are training positives; head = seen
  share >= ``seen_share`` (default 0.5), tail = below it. With one relevant document per
  query (SciFact) this is "the fine-tune saw this answer" vs "never saw it"; with many
  (dense labels, where nearly every relevant document is some training query's positive)
  it still splits the queries whose answers were mostly trained on from the others.

An empty built-in slice is not reported as a metric; :func:`build_slices` records why in
``notes`` (logged by the evaluator's builder and written to ``metrics.json``).
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from pathlib import Path

import numpy as np

from embexp.config.schema import SlicesConfig
from embexp.data.types import Corpus, Qrels, positives, positives_by_query
from embexp.errors import DataError, Problem
from embexp.utils.hooks import import_hook
from embexp.utils.io import open_text

_ACRONYM = re.compile(r"\b(?=[A-Z0-9]*[A-Z])[A-Z0-9]{2,6}s?\b")  # ACH, NSF, 2FA, RMAs
_CODE = re.compile(
    r"\b(?=[\w-]*\d)(?=[\w-]*[A-Za-z])[A-Za-z0-9]+(?:-[A-Za-z0-9]+)+\b"
    r"|\b(?=\w*\d)(?=\w*[A-Za-z])[A-Za-z]{1,5}\d{2,}[A-Za-z]?\b"
)
_WORD = re.compile(r"[a-z][a-z\-]{3,}")
log = logging.getLogger("embexp.eval")


def load_slice_file(path: str | Path) -> dict[str, list[str]]:
    path = Path(path)
    if not path.exists():
        raise DataError(Problem(str(path), None, "eval.slices.file", "file not found"))
    if path.suffix == ".json":
        try:
            obj = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise DataError(Problem(str(path), e.lineno, None, f"invalid JSON ({e.msg})")) from None
        if not isinstance(obj, dict) or not all(isinstance(v, list) for v in obj.values()):
            raise DataError(Problem(str(path), None, None, "expected an object {query_id: [slice, ...]}"))
        return {str(k): [str(x) for x in v] for k, v in obj.items()}
    out: dict[str, list[str]] = {}
    with open_text(path) as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip() or (lineno == 1 and line.lower().startswith("query")):
                continue
            cols = line.rstrip("\n").split("\t")
            if len(cols) != 2 or not cols[1].strip():
                raise DataError(
                    Problem(str(path), lineno, "slice", "expected 'query-id<TAB>slice[,slice...]'")
                )
            out.setdefault(cols[0].strip(), []).extend(s.strip() for s in cols[1].split(",") if s.strip())
    return out


def is_jargon(text: str, rare_terms: set[str] | None = None) -> bool:
    if _ACRONYM.search(text) or _CODE.search(text):
        return True
    if rare_terms:
        return any(w in rare_terms for w in _WORD.findall(text.lower()))
    return False


def rare_corpus_terms(corpus: Corpus, max_df: int) -> set[str]:
    if max_df <= 0:
        return set()
    df: Counter = Counter()
    for i in range(len(corpus)):
        df.update(set(_WORD.findall(corpus.passage(i).lower())))
    return {w for w, c in df.items() if c <= max_df}


def build_slices(
    eval_qids: list[str],
    queries: dict[str, str],
    query_meta: dict[str, dict],
    *,
    corpus: Corpus | None = None,
    eval_qrels: Qrels | None = None,
    train_qrels: Qrels | None = None,
    jargon: bool = True,
    rare_max_df: int = 0,
    head_tail: bool = True,
    head_quantile: float = SlicesConfig.head_quantile,
    tail_quantile: float = SlicesConfig.tail_quantile,
    seen_share: float = SlicesConfig.seen_share,
    file: str | None = None,
    rules: list[str] | tuple[str, ...] = (),
    notes: list[str] | None = None,
) -> dict[str, set[str]]:
    """Slice name -> eval query ids. Empty slices are dropped; for the built-in ones (jargon,
    head, tail) the reason is appended to ``notes`` and logged.

    ``rules`` (``eval.slices.rules``) name your own slices as ``package.module:function``; each
    is called as ``function(query_ids, queries, query_meta, corpus)`` and returns the ids of the
    slice, which is named after the function (one file of yours, no change to embexp)."""
    eval_set = list(eval_qids)
    members = set(eval_set)
    slices: dict[str, set[str]] = {}
    for q in eval_set:
        for s in query_meta.get(q, {}).get("slices", []):
            slices.setdefault(s, set()).add(q)
    if file:
        for q, names in load_slice_file(file).items():
            if q in members:
                for s in names:
                    slices.setdefault(s, set()).add(q)
    if jargon:
        rare = rare_corpus_terms(corpus, rare_max_df) if corpus is not None else set()
        slices.setdefault("jargon", set()).update(q for q in eval_set if is_jargon(queries[q], rare))
    if head_tail:
        freq = {q: query_meta[q]["frequency"] for q in eval_set if "frequency" in query_meta.get(q, {})}
        if freq and len(freq) == len(eval_set):
            vals = np.array(list(freq.values()), dtype=float)
            hi, lo = np.quantile(vals, head_quantile), np.quantile(vals, tail_quantile)
            slices["head"] = {q for q, f in freq.items() if f >= hi}
            slices["tail"] = {q for q, f in freq.items() if f <= lo}
            _note_empty(slices, ("head", "tail"), "by the queries' frequency field", notes)
        elif train_qrels is not None and eval_qrels is not None:
            shares = seen_shares(eval_set, eval_qrels, train_qrels)
            slices["head"] = {q for q, x in shares.items() if x >= seen_share}
            slices["tail"] = set(eval_set) - slices["head"]
            why = f"by seen share (relevant documents among training positives) vs {seen_share}"
            _note_empty(slices, ("head", "tail"), f"{why}, mean seen share {_mean(shares):.2f}", notes)
    for spec in rules:
        rule = import_hook(spec, "eval.slices.rules")
        slices.setdefault(rule.__name__, set()).update(
            members & set(rule(eval_set, queries, query_meta, corpus))
        )
    if jargon:
        _note_empty(slices, ("jargon",), "no query has an acronym, a code or a rare term", notes)
    return {k: v for k, v in sorted(slices.items()) if v}


def seen_shares(eval_qids: list[str], eval_qrels: Qrels, train_qrels: Qrels) -> dict[str, float]:
    """Per eval query: the share of its relevant documents (grade > 0) that are positives of
    some training query (0.0 for a query without a relevant document)."""
    seen = set().union(*positives_by_query(train_qrels).values())
    out = {}
    for q in eval_qids:
        rel = positives(eval_qrels.get(q, {}))
        out[q] = len(rel & seen) / len(rel) if rel else 0.0
    return out


def _mean(values: dict[str, float]) -> float:
    return float(np.mean(list(values.values()))) if values else 0.0


def _note_empty(slices: dict[str, set[str]], names, why: str, notes: list[str] | None) -> None:
    for name in names:
        if name in slices and not slices[name]:
            msg = f"slice '{name}' is empty on this split ({why}): not reported"
            log.warning(msg)
            if notes is not None:
                notes.append(msg)
