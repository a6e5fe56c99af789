"""Multi-positive, graded data: build such a set from any BEIR folder, measure how much of the
training set hard-negative mining covers with each margin reference, and train under a budget.

    # 1. dense graded labels: every positive keeps grade 2, its k nearest documents by BM25 on the
    #    positive's own text become grade-1 positives of the same query (every split)
    python benchmarks/multipositive.py make --src ../shared/datasets/scifact --out /tmp/scifact-dense --k 20

    # 2. round 0 of mining from the base model, margin_reference best vs lowest (default window,
    #    margin_rel 0.05, text filter): share of training examples that get a mined negative
    python benchmarks/multipositive.py mining --data ../shared/datasets/scifact /tmp/scifact-dense

    # 3. the default recipe (data=beir, LoRA, in-batch) and the mined curricula under a step
    #    budget, one seed: test nDCG@10 of the base model and of the model the run kept
    python benchmarks/multipositive.py train --data /tmp/scifact-dense --out /tmp/mp-runs \\
        --grid in_batch static:best static:lowest iterative:best -- train.max_steps=100

The derived set is a stand-in for public dense-label sets (many positives per query, most of
them ranked deep by the base model, graded); it is not a published benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from common import ROOT, git_rev, machine, print_table  # noqa: E402


# ---- make -----------------------------------------------------------------------------------
def make(src: Path, out: Path, k: int) -> None:
    from embexp.data.beir import load_beir
    from embexp.eval.bm25 import BM25Retriever

    ds = load_beir(src)
    corpus = ds.corpus
    bm25 = BM25Retriever(corpus.passages())
    judged = {d for qrels in ds.qrels.values() for r in qrels.values() for d, g in r.items() if g > 0}
    docs = sorted(judged)
    _, idx = bm25.search([corpus.text_of(d) for d in docs], k + 1)
    near = {d: [corpus.ids[i] for i in row if i >= 0 and corpus.ids[i] != d][:k] for d, row in zip(docs, idx)}
    out.mkdir(parents=True, exist_ok=True)
    for name in ("corpus", "queries"):
        f = next(src.glob(f"{name}.jsonl*"))
        shutil.copy(f, out / f.name)
    (out / "qrels").mkdir(exist_ok=True)
    sizes = {}
    for split, qrels in ds.qrels.items():
        rows = []
        for q, r in sorted(qrels.items()):
            graded = {d: (2 if g > 0 else g) for d, g in r.items()}
            for d in [d for d, g in r.items() if g > 0]:
                for n in near[d]:
                    graded.setdefault(n, 1)
            rows += [f"{q}\t{d}\t{g}\n" for d, g in sorted(graded.items())]
            sizes.setdefault(split, []).append(sum(1 for g in graded.values() if g > 0))
        (out / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(rows))
    (out / "README.md").write_text(
        f"Derived from {src} by benchmarks/multipositive.py make --k {k}: original positives grade 2, "
        f"their {k} BM25 neighbours grade 1.\n"
    )
    for split, n in sizes.items():
        print(
            f"{split}: {len(n)} queries, positives per query "
            f"median {statistics.median(n)}, mean {statistics.mean(n):.1f}"
        )


# ---- mining ---------------------------------------------------------------------------------
def _cfg(data: Path, overrides: list[str]):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(
            "train",
            overrides=["data=beir", f"data.path={data}", "negatives=static", "logger=none", *overrides],
        )


def mining(datas: list[Path], overrides: list[str]) -> None:
    from embexp.data.prepare import prepare_data
    from embexp.mining.config import negatives_config
    from embexp.mining.curriculum import MiningInputs, encode_corpus, example_coverage, mine_with_encoder
    from embexp.mining.miner import MiningParams
    from embexp.model.encoder import build_encoder

    rows = []
    for data_dir in datas:
        cfg = _cfg(data_dir, overrides)
        data = prepare_data(cfg.data)
        enc = build_encoder(cfg.model)
        t = time.perf_counter()
        emb, cached = encode_corpus(enc, data, cache_dir=cfg.paths.cache_dir, dtype=str(cfg.eval.dtype))
        enc_s = time.perf_counter() - t
        inputs = MiningInputs.from_data(data)
        per_q = [len(v) for v in data.train_positives.values()]
        for ref, fill in (("best", True), ("best", False), ("lowest", True), ("lowest", False)):
            node = {**cfg.negatives, "margin_reference": ref, "fill_below_window": fill}
            params = MiningParams.of(negatives_config(node))
            res = mine_with_encoder(enc, data, params, inputs=inputs, corpus_embeddings=emb)
            cov = example_coverage(res.doc_ids(), data.train_positives, params.n_negatives)
            st = res.stats
            rows.append(
                [
                    data.dataset.name,
                    f"{statistics.median(per_q):g} / {statistics.mean(per_q):.1f}",
                    ref,
                    "yes" if fill else "no",
                    f"{cov['example_coverage']:.1%}",
                    f"{st['n_queries'] - st['n_queries_empty']}/{st['n_queries']}",
                    f"{st['removed_margin_rel_share']:.1%}",
                    f"{st['mean_positive_rank']:.0f}",
                    f"{st['mean_negative_rank']:.1f}" if st["mean_negative_rank"] is not None else "-",
                    f"{st['mine_s']:.2f}",
                    f"{enc_s:.0f}{' (cache)' if cached else ''}",
                ]
            )
    print_table(
        [
            "data",
            "pos/query median/mean",
            "margin_reference",
            "fill below window",
            "examples with a mined negative",
            "queries with >=1",
            "removed by margin_rel",
            "mean positive rank",
            "mean negative rank",
            "mine s",
            "corpus encode s",
        ],
        rows,
    )


# ---- train ----------------------------------------------------------------------------------
def _finished(d: Path) -> dict | None:
    f = d / "metrics.json"
    rec = json.loads(f.read_text()) if f.exists() else None
    return rec if rec and rec.get("status") == "finished" else None


def train(data: Path, out: Path, grid: list[str], seed: int, overrides: list[str]) -> None:
    rows = []
    for cell in grid:
        kind, _, ref = cell.partition(":")
        d = out / f"{kind}{'_' + ref if ref else ''}_s{seed}"
        rec = _finished(d)
        if rec is None:
            cmd = [sys.executable, "-m", "embexp.cli.train", "data=beir", f"data.path={data.resolve()}"]
            cmd += [f"negatives={kind}", f"seed={seed}", "logger=none", "eval.show_progress=false"]
            cmd += [f"negatives.margin_reference={ref}"] if ref else []
            cmd += ["callbacks.progress_bar=null", f"hydra.run.dir={d}", *overrides]
            print(f"-- {d.name}: {' '.join(cmd[3:])}", flush=True)
            d.parent.mkdir(parents=True, exist_ok=True)
            with open(out / f"{d.name}.log", "a") as log:
                subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=True)
            rec = _finished(d)
        m, c, sel = rec["metrics"], rec["cost"], rec.get("model_selection") or {}
        r0 = (rec.get("negatives") or {}).get("rounds") or [{}]
        covs = [f"{r.get('example_coverage', 0):.0%}" for r in r0 if r.get("example_coverage") is not None]
        rows.append(
            [
                cell,
                f"{m['baseline/test/ndcg@10']:.4f}",
                f"{m['final/test/ndcg@10']:.4f}",
                f"{m['final/test/ndcg@10'] - m['baseline/test/ndcg@10']:+.4f}",
                f"{sel.get('base', float('nan')):.4f} / {sel.get('best_epoch_score', float('nan')):.4f}",
                sel.get("selected", "-"),
                ", ".join(covs) or "-",
                f"{c['train_steps']} / {c['n_train_pairs']}",
                f"{c['train_wall_s'] / 60:.1f}",
            ]
        )
    print_table(
        [
            "negatives",
            "base nDCG@10",
            "kept nDCG@10",
            "delta",
            "dev base / best epoch",
            "kept",
            "coverage per round",
            "steps / pairs",
            "train min",
        ],
        rows,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("--src", type=Path, required=True)
    m.add_argument("--out", type=Path, required=True)
    m.add_argument("--k", type=int, default=20)
    g = sub.add_parser("mining")
    g.add_argument("--data", type=Path, nargs="+", required=True)
    g.add_argument("overrides", nargs="*")
    t = sub.add_parser("train")
    t.add_argument("--data", type=Path, required=True)
    t.add_argument("--out", type=Path, required=True)
    t.add_argument(
        "--grid", nargs="+", default=["in_batch", "static:best", "static:lowest", "iterative:best"]
    )
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    print(f"# multipositive {args.cmd}: {machine()}, embexp {git_rev()}")
    if args.cmd == "make":
        make(args.src, args.out, args.k)
    elif args.cmd == "mining":
        mining(args.data, args.overrides)
    else:
        train(args.data, args.out, args.grid, args.seed, args.overrides)


if __name__ == "__main__":
    main()
