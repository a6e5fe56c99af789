"""SciFact test: embexp's evaluator vs sentence-transformers' InformationRetrievalEvaluator,
same model (all-MiniLM-L6-v2), same data, one process, one after the other.

    python benchmarks/eval_vs_st.py [--data ../shared/datasets/scifact] [--skip-fp32]

Prints nDCG@10, recall@100 and wall time for each, and embexp / ST time ratios. Both
sides start from a loaded model and parsed data; embexp's embedding cache is off.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from common import SCIFACT, git_rev, machine, print_table  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(SCIFACT))
    ap.add_argument("--skip-fp32", action="store_true")
    args = ap.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.evaluation import InformationRetrievalEvaluator

    from embexp.data.beir import load_beir
    from embexp.data.types import positives_by_query
    from embexp.eval.evaluator import RetrievalEvaluator
    from embexp.model.encoder import BiEncoder, EncoderSpec, resolve_dtype
    from embexp.model.registry import resolve

    ds = load_beir(args.data, splits=["test"])
    qrels = ds.qrels["test"]
    rows = []

    # sentence-transformers
    st = SentenceTransformer(resolve("minilm-l6"), device="cpu")
    corpus = {ds.corpus.ids[i]: ds.corpus.passage(i) for i in range(len(ds.corpus))}
    queries = {q: ds.queries[q] for q in qrels}
    rel = positives_by_query(qrels)
    ev = InformationRetrievalEvaluator(
        queries,
        corpus,
        rel,
        show_progress_bar=False,
        ndcg_at_k=[10],
        precision_recall_at_k=[10, 100],
        mrr_at_k=[10],
        map_at_k=[100],
        accuracy_at_k=[1],
    )
    t = time.perf_counter()
    res = ev(st)
    st_time = time.perf_counter() - t
    rows.append(
        [
            "sentence-transformers IR evaluator (fp32)",
            f"{res['cosine_ndcg@10']:.4f}",
            f"{res['cosine_recall@100']:.4f}",
            f"{st_time:.1f}",
            "1.00",
        ]
    )
    del st

    enc = BiEncoder.from_spec(EncoderSpec("minilm-l6", query_max_length=256, passage_max_length=256))
    for dtype in ["auto"] + ([] if args.skip_fp32 else ["fp32"]):
        evaluator = RetrievalEvaluator(ds.corpus, ds.queries, qrels, retriever="dense", dtype=dtype)
        t = time.perf_counter()
        r = evaluator(enc)
        dt = time.perf_counter() - t
        label = f"embexp RetrievalEvaluator ({dtype} -> {resolve_dtype(dtype, enc.device)})"
        rows.append(
            [
                label,
                f"{r.metrics['test/ndcg@10']:.4f}",
                f"{r.metrics['test/recall@100']:.4f}",
                f"{dt:.1f}",
                f"{dt / st_time:.2f}",
            ]
        )

    print(
        f"\nSciFact test ({len(qrels)} queries, {len(ds.corpus)} docs), all-MiniLM-L6-v2, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(f"machine: {machine()}; embexp {git_rev()}\n")
    print_table(["evaluator", "nDCG@10", "recall@100", "wall s", "time / ST"], rows)


if __name__ == "__main__":
    main()
