"""Fine-tune all-MiniLM-L6-v2 on the same SciFact pairs with sentence-transformers (MNRL)
and with embexp (InfoNCE, same batch size, lr, epochs, max length, warm-up), one after
the other in one run; print test nDCG@10 and training wall time for both.

    python benchmarks/train_vs_st.py [--data ../shared/datasets/scifact] [--epochs 3] [--lr 2e-5]

Both train on exactly the pairs embexp builds (train split minus the carved dev queries
minus leaked queries), full fine-tune, batch 32, scale 20 = 1 / temperature 0.05, linear
warm-up 10%, no per-epoch validation, and are scored by the same evaluator. Each side
uses its default precision on this machine (ST: fp32; embexp: `trainer.precision=auto`,
i.e. bf16-mixed on AMX CPUs / CUDA); `--st-bf16` also runs ST with bf16=True.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_MODE", "disabled")

from common import ROOT, SCIFACT, git_rev, machine, print_table  # noqa: E402


def compose(overrides):
    from hydra import compose as hcompose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return hcompose(config_name="train", overrides=overrides)


def run_st(cfg, data, examples, test_eval, *, bf16: bool, out: Path) -> dict:
    import torch
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
        losses,
    )
    from sentence_transformers.training_args import BatchSamplers

    from embexp.model.encoder import BiEncoder
    from embexp.model.registry import resolve

    from common import spec_of

    torch.manual_seed(int(cfg.seed))
    model = SentenceTransformer(resolve("minilm-l6"), device="cpu")
    model.max_seq_length = int(cfg.model.passage_max_length)
    corpus = data.dataset.corpus
    train = Dataset.from_dict(
        {
            "anchor": [ex.query for ex in examples],
            "positive": [corpus.text_of(ex.positive_ids[0]) for ex in examples],
        }
    )
    args = SentenceTransformerTrainingArguments(
        output_dir=str(out),
        num_train_epochs=int(cfg.trainer.max_epochs),
        per_device_train_batch_size=int(cfg.train.batch_size),
        learning_rate=float(cfg.optimizer.lr),
        weight_decay=float(cfg.optimizer.weight_decay),
        warmup_ratio=float(cfg.scheduler.warmup_ratio),
        max_grad_norm=float(cfg.trainer.gradient_clip_val),
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        seed=int(cfg.seed),
        bf16=bf16,
        save_strategy="no",
        report_to="none",
        logging_steps=50,
        use_cpu=not torch.cuda.is_available(),
    )
    trainer = SentenceTransformerTrainer(
        model=model,
        args=args,
        train_dataset=train,
        loss=losses.MultipleNegativesRankingLoss(model, scale=1.0 / float(cfg.loss.temperature)),
    )
    t = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - t
    model.save(str(out / "model"))
    # score with the same evaluator embexp uses (mean pooling + normalise, same lengths)
    enc = BiEncoder.from_spec(
        spec_of(
            str(out / "model"),
            query_max_length=int(cfg.model.query_max_length),
            passage_max_length=int(cfg.model.passage_max_length),
        )
    )
    r = test_eval(enc)
    return {
        "ndcg": r.metrics["test/ndcg@10"],
        "recall10": r.metrics["test/recall@10"],
        "train_s": train_s,
        "pairs": len(examples),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(SCIFACT))
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=2e-5)
    ap.add_argument("--st-bf16", action="store_true", help="also run sentence-transformers with bf16=True")
    ap.add_argument("--skip-st", action="store_true")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    overrides = [
        "experiment=scifact_full",
        f"data.path={args.data}",
        f"trainer.max_epochs={args.epochs}",
        f"optimizer.lr={args.lr}",
        "logger=none",
        "train.baseline=false",
        "+trainer.limit_val_batches=0",
        "callbacks.model_checkpoint=null",
        "callbacks.early_stopping=null",
        "callbacks.progress_bar=null",
        "eval.show_progress=false",
    ]
    out = Path(args.out or tempfile.mkdtemp(prefix="embexp-bench-"))
    rows = []

    # embexp: the real CLI, in a subprocess, exactly as a user runs it
    edir = out / "embexp"
    p = subprocess.run(
        [sys.executable, "-m", "embexp.cli.train", *overrides, f"hydra.run.dir={edir}", "force=true"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if p.returncode != 0:
        print(p.stderr[-5000:])
        raise SystemExit("embexp run failed")
    rec = json.loads((edir / "metrics.json").read_text())
    c = rec["cost"]
    rows.append(
        [
            f"embexp ({c['precision']})",
            f"{rec['metrics']['final/test/ndcg@10']:.4f}",
            f"{rec['metrics']['final/test/recall@10']:.4f}",
            f"{c['train_wall_s']:.1f}",
            f"{c['pairs_per_s']:.1f}",
            rec["n_train_pairs"] // max(1, c["epochs"]),
        ]
    )

    if not args.skip_st:
        from embexp.data.prepare import prepare_data
        from embexp.eval.build import build_evaluator
        from embexp.train.data import build_examples

        cfg = compose([o for o in overrides])
        data = prepare_data(cfg.data)
        examples = build_examples(data)
        test_eval = build_evaluator(cfg.eval, data, split="test", cache_dir=None, show_progress=False)
        for bf16 in [False] + ([True] if args.st_bf16 else []):
            r = run_st(
                cfg, data, examples, test_eval, bf16=bf16, out=out / f"st-{'bf16' if bf16 else 'fp32'}"
            )
            rows.append(
                [
                    f"sentence-transformers MNRL ({'bf16' if bf16 else 'fp32'})",
                    f"{r['ndcg']:.4f}",
                    f"{r['recall10']:.4f}",
                    f"{r['train_s']:.1f}",
                    f"{r['pairs'] * args.epochs / r['train_s']:.1f}",
                    r["pairs"],
                ]
            )

    print(
        f"\nSciFact, all-MiniLM-L6-v2 full fine-tune, {args.epochs} epochs, batch 32, lr {args.lr}, "
        "max length 256, scale 20"
    )
    print(f"machine: {machine()}; embexp {git_rev()}; outputs in {out}\n")
    print_table(["trainer", "test nDCG@10", "test recall@10", "train wall s", "pairs/s", "pairs/epoch"], rows)


if __name__ == "__main__":
    main()
