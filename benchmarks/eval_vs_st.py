"""SciFact test: embexp's evaluator vs sentence-transformers' InformationRetrievalEvaluator, same
model (all-MiniLM-L6-v2, 256 tokens), same data, one process, at equal precision.

    python benchmarks/eval_vs_st.py [--data ../shared/datasets/scifact] [--repeats 2] [--skip-fp32]

The peer runs at its best setting on this machine (bf16 autocast where the CPU has AMX or on a
GPU, as embexp's ``eval.dtype=auto`` picks; fp32 elsewhere) and at its default (fp32) where that
differs; embexp runs ``eval.dtype=auto`` and fp32, with the model config's defaults
(``build_encoder``: ``model.cpu_batch_tokens`` included). Each pair at one precision runs
``--repeats`` times in alternating order (peer first, then embexp first), and the table gives
the median wall time and the ratio embexp / peer at the same precision. Both sides start from a
loaded model and parsed data; embexp's embedding cache is off.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from common import ROOT, SCIFACT, git_rev, machine, print_table  # noqa: E402


def model_config():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="eval", overrides=["model=minilm-l6", "model.query_max_length=256"])
    return cfg.model


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(SCIFACT))
    ap.add_argument("--repeats", type=int, default=2, help="runs of each pair, alternating the order")
    ap.add_argument("--skip-fp32", action="store_true", help="only the best (auto) precision")
    args = ap.parse_args()

    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.evaluation import InformationRetrievalEvaluator

    from embexp.data.beir import load_beir
    from embexp.data.types import positives_by_query
    from embexp.eval.evaluator import RetrievalEvaluator
    from embexp.model.encoder import build_encoder, resolve_dtype
    from embexp.model.registry import resolve

    ds = load_beir(args.data, splits=["test"])
    qrels = ds.qrels["test"]
    st = SentenceTransformer(resolve("minilm-l6"), device="cpu")
    st_eval = InformationRetrievalEvaluator(
        {q: ds.queries[q] for q in qrels},
        {ds.corpus.ids[i]: ds.corpus.passage(i) for i in range(len(ds.corpus))},
        positives_by_query(qrels),
        show_progress_bar=False,
        ndcg_at_k=[10],
        precision_recall_at_k=[10, 100],
        mrr_at_k=[10],
        map_at_k=[100],
        accuracy_at_k=[1],
    )
    enc = build_encoder(model_config())
    best = resolve_dtype("auto", enc.device)  # bf16 on AMX CPUs and GPUs, fp32 elsewhere
    precisions = [best] + ([] if args.skip_fp32 or best == "fp32" else ["fp32"])

    def peer(dtype: str) -> tuple[float, float, float]:
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if dtype == "bf16" else contextlib.nullcontext()
        t = time.perf_counter()
        with ctx:
            r = st_eval(st)
        return time.perf_counter() - t, r["cosine_ndcg@10"], r["cosine_recall@100"]

    def ours(dtype: str) -> tuple[float, float, float]:
        ev = RetrievalEvaluator(ds.corpus, ds.queries, qrels, retriever="dense", dtype=dtype)
        t = time.perf_counter()
        r = ev(enc)
        return time.perf_counter() - t, r.metrics["test/ndcg@10"], r.metrics["test/recall@100"]

    rows = []
    for dtype in precisions:
        runs = {"peer": [], "embexp": []}
        for rep in range(args.repeats):
            order = [("peer", peer), ("embexp", ours)]
            for name, fn in order if rep % 2 == 0 else order[::-1]:
                runs[name].append(fn(dtype))
                print(f"{dtype} {name} run {rep + 1}: {runs[name][-1][0]:.1f} s", flush=True)
        med = {k: statistics.median(r[0] for r in v) for k, v in runs.items()}
        setting = "best" if dtype == best else "default"
        for name, label in (
            (
                "peer",
                f"sentence-transformers IR evaluator ({dtype}{', autocast' if dtype == 'bf16' else ''})",
            ),
            ("embexp", f"embexp RetrievalEvaluator (eval.dtype={dtype})"),
        ):
            _, ndcg, r100 = runs[name][-1]
            times = " / ".join(f"{r[0]:.1f}" for r in runs[name])
            ratio = f"{med[name] / med['peer']:.2f}"
            rows.append([label, setting, f"{ndcg:.4f}", f"{r100:.4f}", times, f"{med[name]:.1f}", ratio])

    print(
        f"\nSciFact test ({len(qrels)} queries, {len(ds.corpus)} docs), all-MiniLM-L6-v2, 256 tokens, "
        f"torch threads {torch.get_num_threads()}, {args.repeats} runs a side (alternating order)"
    )
    print(f"machine: {machine()}; embexp {git_rev()}; peer's best precision here: {best}\n")
    print_table(
        ["evaluator", "peer setting", "nDCG@10", "recall@100", "wall s (runs)", "median s", "time / peer"],
        rows,
    )


if __name__ == "__main__":
    main()
