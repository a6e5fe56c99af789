"""SciFact train queries: how long does one mining round take once the corpus is embedded?

    python benchmarks/mining_speed.py [--data ../shared/datasets/scifact] [--repeat 5]

Encodes the corpus (through embexp's embedding cache) and the training queries once with
all-MiniLM-L6-v2 (dtype auto: bf16 where native), then times :func:`embexp.mining.mine`
alone, for several parameter sets, and prints a table (median and best of ``--repeat``).
Mining re-uses the corpus embeddings of validation during training, so this is the
per-round cost of the iterative curriculum beyond re-encoding the training queries.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from common import SCIFACT, git_rev, machine, print_table  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(SCIFACT))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dtype", default="auto")
    args = ap.parse_args()

    from embexp.config.schema import MinedNegatives
    from embexp.data.beir import load_beir
    from embexp.data.leakage import guard
    from embexp.data.prepare import PreparedData
    from embexp.mining.curriculum import MiningInputs, encode_corpus
    from embexp.mining.miner import MiningParams, mine

    def _params(**kw):  # margin_rel off unless given, as these rows were measured
        return MiningParams.of(MinedNegatives(**{"margin_rel": None, **kw, "window": list(kw["window"])}))

    from embexp.model.encoder import BiEncoder, resolve_dtype
    from embexp.model.registry import cache_dir

    from common import spec_of

    ds = load_beir(args.data)
    train, _ = guard(ds.qrels["train"], {"test": ds.qrels["test"]}, ds.queries)
    data = PreparedData(dataset=ds, train=train, dev={}, eval_split="test")
    enc = BiEncoder.from_spec(spec_of("minilm-l6"))
    dtype = resolve_dtype(args.dtype, enc.device)

    t = time.perf_counter()
    corpus, cached = encode_corpus(enc, data, dtype=args.dtype, cache_dir=cache_dir(), show_progress=True)
    t_corpus = time.perf_counter() - t
    t = time.perf_counter()
    inputs = MiningInputs.from_data(data)
    text_ids = inputs.text_ids()
    t_inputs = time.perf_counter() - t
    t = time.perf_counter()
    q = enc.encode(inputs.queries, "query", dtype=args.dtype)
    t_queries = time.perf_counter() - t
    print(
        f"{len(inputs.query_ids)} train queries, {len(ds.corpus)} documents, dim {corpus.shape[1]}, {dtype}"
    )
    print(
        f"corpus embeddings {t_corpus:.1f} s ({'cache' if cached else 'encoded'}); "
        f"train queries encoded in {t_queries:.1f} s; "
        f"one-time inputs (exclusions, text ids) {t_inputs:.2f} s"
    )

    veto_pairs = {(qid, d) for qid in inputs.query_ids[::3] for d in ds.corpus.ids[:50]}
    cases = [
        (
            "window [2,20], top, n=1, no filters",
            _params(window=(2, 20), n_negatives=1, margin_rel=None, text_filter=False),
            {},
        ),
        (
            "window [2,20], top, n=1, margin_rel 0.05 + text",
            _params(window=(2, 20), n_negatives=1, margin_rel=0.05),
            {"doc_text_ids": text_ids},
        ),
        (
            "window [2,50], random, pool 8, abs+rel+text+veto file",
            _params(
                window=(2, 50),
                sampling="random",
                n_negatives=1,
                pool_size=8,
                margin_abs=0.02,
                margin_rel=0.05,
            ),
            {"doc_text_ids": text_ids, "veto_pairs": veto_pairs},
        ),
        (
            "window [1,200], depth 200, random, pool 16, all filters",
            _params(
                window=(1, 200),
                depth=200,
                sampling="random",
                n_negatives=4,
                pool_size=16,
                margin_abs=0.02,
                margin_rel=0.05,
            ),
            {"doc_text_ids": text_ids, "veto_pairs": veto_pairs},
        ),
    ]
    rows = []
    for name, params, kw in cases:
        times, search = [], []
        for r in range(args.repeat):
            t = time.perf_counter()
            res = mine(
                corpus,
                q,
                inputs.query_ids,
                inputs.qrels,
                ds.corpus.ids,
                params,
                exclude=inputs.exclude,
                round=r,
                **kw,
            )
            times.append(time.perf_counter() - t)
            search.append(res.stats["search_s"])
        s = res.stats
        rows.append(
            [
                name,
                f"{statistics.median(times):.3f}",
                f"{min(times):.3f}",
                f"{statistics.median(search):.3f}",
                f"{s['negatives_per_query']:.2f}",
                f"{s['mean_positive_rank']:.1f}",
                f"{s['false_negative_rate']:.3f}" if s["false_negative_rate"] is not None else "-",
            ]
        )
    print(f"\nmine() alone, {args.repeat} runs each; {machine()}; git {git_rev()}\n")
    print_table(
        [
            "parameters",
            "median s",
            "best s",
            "FAISS search s",
            "negatives/query",
            "mean pos. rank",
            "false-neg. est.",
        ],
        rows,
    )


if __name__ == "__main__":
    main()
