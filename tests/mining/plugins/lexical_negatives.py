"""A toy negatives source, the whole of a new negatives kind in one file (with
``conf/negatives/lexical.yaml``): per training query, the documents sharing the most words with
it, best first. No encoder: it shows the plug-in contract (``embexp.mining.sources``), not a
good miner."""

from __future__ import annotations

import re

from embexp.mining.miner import MiningResult, Negative


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


class LexicalNegatives:
    def __init__(self, negatives):  # the negatives node (MinedNegatives)
        self.n = negatives.pool_size or negatives.n_negatives

    def __call__(self, request) -> MiningResult:
        corpus = request.data.dataset.corpus
        docs = [(corpus.ids[i], _words(corpus.passage(i))) for i in range(len(corpus))]
        queries = request.data.dataset.queries
        out = {}
        for q in request.inputs.query_ids:
            words = _words(queries[q])
            scored = sorted(
                ((len(words & w), d) for d, w in docs if d not in request.inputs.exclude[q]),
                key=lambda t: (-t[0], t[1]),
            )
            out[q] = [Negative(d, float(s), r + 1) for r, (s, d) in enumerate(scored[: self.n])]
        return MiningResult(out, {"round_asked": request.round})
