"""Content hashes: of data (recorded with results) and of encoder weights (cache keys)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def hash_strings(parts: Iterable[str], digest_size: int = 16) -> str:
    h = hashlib.blake2b(digest_size=digest_size)
    for p in parts:
        b = p.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


def corpus_fingerprint(corpus) -> str:
    return hash_strings(
        x for i in range(len(corpus)) for x in (corpus.ids[i], corpus.titles[i], corpus.texts[i])
    )


def dataset_fingerprint(
    corpus_fp: str, queries: dict[str, str], qrels: dict[str, dict[str, dict[str, int]]]
) -> str:
    def parts():
        yield corpus_fp
        for q in sorted(queries):
            yield q
            yield queries[q]
        for split in sorted(qrels):
            yield split
            for q in sorted(qrels[split]):
                for d, s in sorted(qrels[split][q].items()):
                    yield f"{q}\t{d}\t{s}"

    return hash_strings(parts())
