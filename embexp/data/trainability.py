"""Can the training data teach anything? A pre-flight check, before any model is loaded.

A contrastive loss learns from negatives only. What a training pair (query ``q``, positive ``p``)
can meet:

- **in-batch negatives**: the other rows' positives, minus those the false-negative mask
  (:mod:`embexp.losses.masking`) removes, i.e. every candidate that shares a doc id or the exact
  passage text with one of ``q``'s positives (grade >= 1). So a pair can meet one only if some
  training positive's text is not among ``q``'s positive texts;
- **mined negatives** (``negatives=static|iterative``): corpus documents that are never a positive
  of ``q`` (topped up at random when mining finds too few). So a pair can meet one only if the
  corpus holds a document whose text is not among ``q``'s positive texts.

A pair that can meet neither has a loss of exactly 0 at every step (InfoNCE over its own logit
alone, the triplet loss with nothing to compare), and a batch whose rows all mask one another is
a step that teaches nothing. A one-document corpus, or every training query sharing one positive,
makes every pair such a pair: the run would report a best epoch while its test metrics equal the
base model's. :func:`check_training_signal` therefore

- raises a :class:`~embexp.errors.DataError` when no pair can meet a negative of the configured
  kind (the message names the cause and the way out), and a
  :class:`~embexp.errors.ConfigError` on ``negatives.n_negatives`` when a query has fewer
  non-positive documents than that (the collate could never fill its row);
- otherwise returns a summary with ``warnings`` naming the share of pairs that can never meet a
  negative and, given the epoch's batches, the share of batches whose rows all mask one another
  (the data card shows them; they reach ``metrics.json`` and W&B).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from embexp.data.prepare import PreparedData
from embexp.data.types import positives_by_query
from embexp.errors import ConfigError, DataError, Problem

MINED = ("static", "iterative")
EXAMPLES = 3  # query ids named in a warning
DOMINANT = 0.5  # a positive shared by this share of the training pairs is named as the cause


def _get(node, key: str, default=None):
    if node is None:
        return default
    return node.get(key, default) if hasattr(node, "get") else getattr(node, key, default)


def training_pairs(data: PreparedData) -> list[tuple[str, str]]:
    """The (query id, positive doc id) pairs that train, in the order training builds its examples
    (queries sorted, each query's chosen positives in order)."""
    return [(q, d) for q in sorted(data.train_positives) for d in data.train_positives[q]]


class _Texts:
    """Positive passages as small integers, equal iff the exact texts are equal (the mask's
    identity: a doc id always has one text, so sharing an id implies sharing a text)."""

    def __init__(self, data: PreparedData):
        self.corpus = data.dataset.corpus
        self.ids: dict[str, int] = {}  # passage text -> text id
        self.of_doc: dict[str, int] = {}  # doc id -> text id
        # query -> text ids of what the mask removes from its candidates: its positives (grade >= 1)
        # and the positive it trains on (which may sit below grade 1 with data.min_positive_grade)
        self.blocked: dict[str, frozenset[int]] = {}
        judged = positives_by_query(data.train)
        for q, chosen in data.train_positives.items():
            docs = judged.get(q, set()) | set(chosen)
            self.blocked[q] = frozenset(self.doc(d) for d in docs if d in self.corpus.index)

    def doc(self, doc_id: str) -> int:
        t = self.of_doc.get(doc_id)
        if t is None:
            t = self.of_doc[doc_id] = self.ids.setdefault(self.corpus.text_of(doc_id), len(self.ids))
        return t

    def corpus_counts(self) -> Counter:
        """How many corpus documents carry each positive text (one pass over the corpus)."""
        counts: Counter = Counter()
        for i in range(len(self.corpus)):
            t = self.ids.get(self.corpus.passage(i))
            if t is not None:
                counts[t] += 1
        return counts


def _degenerate_batches(
    batches: Sequence[Sequence[int]], pairs: list[tuple[str, str]], texts: _Texts
) -> tuple[int, int]:
    """(batches of two or more rows, those in which every row's in-batch candidates are all
    masked: each positive in the batch is a positive of every query in it)."""
    n = bad = 0
    for batch in batches:
        if len(batch) < 2:
            continue  # a one-row batch (the last of an epoch) has no in-batch negative anyway
        n += 1
        present = {texts.doc(pairs[i][1]) for i in batch}
        if all(present <= texts.blocked[pairs[i][0]] for i in batch):
            bad += 1
    return n, bad


def _share(n: int, total: int) -> str:
    return f"{n} of {total} ({n / total:.0%})"


def _cause(data: PreparedData, pairs: list[tuple[str, str]], texts: _Texts) -> str:
    """Why no pair can meet an in-batch negative, in words."""
    corpus = data.dataset.corpus
    if len(corpus) == 1:
        return f"the corpus holds a single document ('{corpus.ids[0]}'), the positive of every training pair"
    docs = sorted({d for _, d in pairs})
    n_texts = len({texts.doc(d) for d in docs})
    if n_texts == 1:
        same = f"'{docs[0]}'" if len(docs) == 1 else f"{', '.join(map(repr, docs[:3]))}: identical text"
        return f"all {len(pairs)} training pairs have the same positive passage ({same})"
    return (
        f"every training query has all {n_texts} distinct training positives among its own positives "
        "(e.g. one topic whose documents are relevant to every query)"
    )


def _no_negative_error(data, pairs, texts, kind: str, n_mined_ok: int, n_other_docs: int) -> DataError:
    """Nothing to learn from: the cause, why the loss is 0, the way out."""
    cause = _cause(data, pairs, texts)
    why = (
        "in-batch negatives are the other pairs' positives, and a positive of the query (same doc id "
        "or text) is masked as a false negative"
    )
    if kind in MINED:
        why += "; nor does the corpus hold a document that is not a positive of the query to mine"
    if kind not in MINED and n_mined_ok:
        way = (
            f"mine hard negatives from the corpus instead (negatives=static: the corpus holds {n_other_docs} "
            "documents that are not a query's positives), or add training queries with other positives"
        )
    else:
        way = (
            "add corpus documents that are not positives of every query and training queries with "
            "other positives (is data.path the dataset you meant?)"
        )
    msg = (
        f"no training pair can meet a negative: {cause}. With negatives={kind}, {why}, so the loss would "
        f"be 0 at every step and the run would end with the base model; {way}"
    )
    return DataError(Problem(data.dataset.source, None, None, msg))


def _check_fill(data: PreparedData, n_negatives: int) -> None:
    """The collate fills each row with ``n_negatives`` non-positive documents; refuse a query
    with fewer in the corpus (its row could never be filled)."""
    corpus = data.dataset.corpus
    pos = positives_by_query(data.train)
    room = {
        q: len(corpus) - len({d for d in pos.get(q, ()) if d in corpus.index}) for q in data.train_positives
    }
    q, have = min(room.items(), key=lambda kv: (kv[1], kv[0]))
    if have < n_negatives:
        raise too_few_negatives(n_negatives, q, have, len(corpus), data.dataset.source)


def too_few_negatives(n_negatives: int, query_id: str, have: int, n_docs: int, source) -> ConfigError:
    """``negatives.n_negatives`` exceeds what a query's row can be filled with: its corpus
    documents that are not its positives."""
    way = (
        f"set negatives.n_negatives <= {have}, or add documents to the corpus"
        if have
        else "use negatives=in_batch, or add documents to the corpus"
    )
    return ConfigError(
        "negatives.n_negatives",
        f"{n_negatives} hard negatives per training example, but training query '{query_id}' has only "
        f"{have} corpus document(s) that are not its positives ({n_docs} in {source}); {way}",
    )


def check_training_signal(
    data: PreparedData,
    negatives=None,
    *,
    batch_size: int | None = None,
    batches: Sequence[Sequence[int]] | None = None,
) -> dict:
    """Refuse training data that cannot teach anything; summarise what can only partly.

    Args:
        data: the prepared data (its ``train_positives`` are the training pairs).
        negatives: the ``negatives`` config node (``kind``, ``n_negatives``, ``warmup_epochs``);
            None: in-batch negatives only.
        batch_size: ``train.batch_size`` (named in the warnings).
        batches: optional; one epoch's batches as indices into :func:`training_pairs` (as the
            training sampler draws them), to count the batches whose rows all mask one another.

    Returns:
        The summary (JSON-serialisable), also set as ``data.training_signal`` so the data card
        shows it; ``warnings`` lists what deserves a look.

    Raises:
        DataError: no training pair can meet a negative of the configured kind.
        ConfigError: ``negatives.n_negatives`` exceeds the non-positive documents of a query.
    """
    kind = str(_get(negatives, "kind", "in_batch") or "in_batch")
    mined = kind in MINED
    warmup = int(_get(negatives, "warmup_epochs", 0) or 0) if mined else 0
    n_neg = int(_get(negatives, "n_negatives", 0) or 0) if mined else 0
    pairs = training_pairs(data)
    if not pairs:  # prepare_data and build_examples say so themselves
        return {}
    texts = _Texts(data)
    n_docs = len(data.dataset.corpus)
    train_texts = Counter(texts.doc(d) for _, d in pairs)
    counts = texts.corpus_counts()
    blocked_docs = {q: sum(counts[t] for t in b) for q, b in texts.blocked.items()}
    in_batch_ok = [len(train_texts) > len(texts.blocked[q] & train_texts.keys()) for q, _ in pairs]
    mined_ok = [n_docs > blocked_docs[q] for q, _ in pairs]
    any_ok = [a or (mined and m) for a, m in zip(in_batch_ok, mined_ok)]
    if not any(any_ok):
        n_other = n_docs - min(blocked_docs[q] for q, _ in pairs)
        raise _no_negative_error(data, pairs, texts, kind, sum(mined_ok), n_other)
    if mined:
        _check_fill(data, n_neg)
    top_text, top_n = train_texts.most_common(1)[0]
    top_doc = next(d for _, d in pairs if texts.doc(d) == top_text)
    report = {
        "negatives": kind,
        "n_negatives": n_neg,
        "warmup_epochs": warmup,
        "batch_size": batch_size,
        "n_pairs": len(pairs),
        "n_distinct_positives": len(train_texts),
        "top_positive": {"doc_id": top_doc, "n_pairs": top_n, "share": top_n / len(pairs)},
        "n_pairs_without_in_batch_negative": in_batch_ok.count(False),
        "n_pairs_without_mined_negative": mined_ok.count(False) if mined else None,
        "n_pairs_without_negative": any_ok.count(False),
        "batches": None,
    }
    if batches is not None:
        n, bad = _degenerate_batches(batches, pairs, texts)
        report["batches"] = {"n_batches": n, "n_all_masked": bad}
    report["warnings"] = _warnings(report, pairs, in_batch_ok, any_ok, texts, data)
    data.training_signal = report
    return report


def _examples(pairs: list[tuple[str, str]], ok: list[bool]) -> str:
    qs = sorted({q for (q, _), good in zip(pairs, ok) if not good})
    return ", ".join(repr(q) for q in qs[:EXAMPLES]) + (", ..." if len(qs) > EXAMPLES else "")


def _warnings(report: dict, pairs, in_batch_ok, any_ok, texts: _Texts, data: PreparedData) -> list[str]:
    """The partial cases: pairs that never meet a negative, in-batch phases without any, batches
    whose rows all mask one another."""
    out = []
    m, kind, warmup = report["n_pairs"], report["negatives"], report["warmup_epochs"]
    mined = kind in MINED
    dead = report["n_pairs_without_negative"]
    if dead:
        out.append(
            f"{_share(dead, m)} training pairs can never meet a negative (negatives={kind}): every other "
            "training positive is also a positive of their query (masked as a false negative)"
            + (", and so is every corpus document" if mined else "")
            + f"; their loss is 0 at every step (queries {_examples(pairs, any_ok)})"
            + ("; negatives=static mines them negatives from the corpus" if not mined else "")
        )
    if mined and warmup:
        n = report["n_pairs_without_in_batch_negative"]
        if n == m:
            out.append(
                f"negatives.warmup_epochs={warmup}: the warm-up trains on in-batch negatives only, and no "
                f"training pair can meet one ({_cause(data, pairs, texts)}): those epochs learn nothing; "
                "set negatives.warmup_epochs=0"
            )
        elif n:
            out.append(
                f"negatives.warmup_epochs={warmup}: during the warm-up (in-batch negatives only) "
                f"{_share(n, m)} training pairs can meet no negative; their loss is 0 until mining starts "
                f"(queries {_examples(pairs, in_batch_ok)})"
            )
    b = report["batches"]
    if b and b["n_all_masked"] and (not mined or warmup):
        top = report["top_positive"]
        out.append(
            f"{_share(b['n_all_masked'], b['n_batches'])} batches of the first epoch"
            + (f" (train.batch_size={report['batch_size']})" if report["batch_size"] else "")
            + " hold only pairs whose positives are positives of every query in the batch (queries "
            "sharing positives, or relevant to the same documents): in-batch, each row's negatives are "
            f"masked as false negatives, so these steps have a loss of 0 and teach nothing"
            f"{' during the warm-up' if mined else ''}"
            + (
                f"; {top['share']:.0%} of the training pairs share the positive '{top['doc_id']}'"
                if top["share"] >= DOMINANT
                else ""
            )
            + "; mined negatives (negatives=static) give every pair a negative of its own"
        )
    return out
