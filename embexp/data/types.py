"""Plain containers shared by every room: corpus, queries, qrels, training pairs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

Qrels = dict[str, dict[str, int]]  # query id -> {doc id: graded relevance}; <= 0 is not relevant


def positives(judged: Mapping[str, int], min_grade: int = 1) -> set[str]:
    """The relevant doc ids of one query's judgments (``qrels[q]``): grade >= ``min_grade``."""
    return {d for d, grade in judged.items() if grade >= min_grade}


def positives_by_query(qrels: Qrels, min_grade: int = 1) -> dict[str, set[str]]:
    """:func:`positives` of every query in ``qrels`` (a query without one maps to an empty set)."""
    return {q: positives(judged, min_grade) for q, judged in qrels.items()}


@dataclass
class Corpus:
    """Documents in file order. ``passages()`` is what encoders and BM25 see."""

    ids: list[str]
    titles: list[str]
    texts: list[str]
    index: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.index:
            self.index = {d: i for i, d in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def passage(self, i: int) -> str:
        # BEIR / MTEB convention: title and text joined by one space.
        title, text = self.titles[i], self.texts[i]
        return f"{title} {text}".strip() if title else text.strip()

    def passages(self) -> list[str]:
        return [self.passage(i) for i in range(len(self.ids))]

    def text_of(self, doc_id: str) -> str:
        return self.passage(self.index[doc_id])


@dataclass
class RetrievalDataset:
    """A corpus, its queries and per-split qrels, plus optional per-query metadata.

    ``query_meta[qid]`` may hold ``frequency`` (head/tail slices), ``slices`` (list of
    slice names) and ``timestamp`` (temporal splits). ``fingerprint`` is a content hash
    recorded with every result; ``corpus_fingerprint`` keys the embedding cache.
    """

    name: str
    corpus: Corpus
    queries: dict[str, str]
    qrels: dict[str, Qrels]
    query_meta: dict[str, dict] = field(default_factory=dict)
    negatives: dict[str, list[str]] = field(default_factory=dict)  # query id -> given hard-negative doc ids
    source: str = ""
    fingerprint: str = ""
    corpus_fingerprint: str = ""


@dataclass
class TrainExample:
    """One training query with its positive doc ids and optional hard-negative doc ids."""

    query_id: str
    query: str
    positive_ids: list[str]
    negative_ids: list[str] = field(default_factory=list)
