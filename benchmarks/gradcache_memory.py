"""Peak memory and time of one training step, plain InfoNCE vs GradCache (loss=cached_infonce).

    OMP_NUM_THREADS=1 python benchmarks/gradcache_memory.py                 # batch 256, 128 tokens, chunk 32
    python benchmarks/gradcache_memory.py --batch 128 --chunks 16 32 64     # more chunk sizes
    python benchmarks/gradcache_memory.py --random                          # MiniLM's shape, random weights
    python benchmarks/gradcache_memory.py --batch 64 --chunks 8 --no-plain  # a batch plain cannot fit

Each measurement runs in a fresh subprocess: all-MiniLM-L6-v2 (``model=minilm-l6``, offline),
every parameter trainable, train mode (dropout on, as in training), ``--batch`` (query,
passage) pairs of ``--tokens`` random word-piece tokens each, in-batch negatives; one forward +
backward (no optimiser step: its state is the same for both). Memory: on CUDA the peak of
``torch.cuda.max_memory_allocated`` over what was allocated before the step; on CPU the peak
RSS (``getrusage``) over the RSS before the step (model and batch loaded).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from common import ROOT, git_rev, machine, print_table  # noqa: E402


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _encoder(random_init: bool, tokens: int, device: str):
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from embexp.model.encoder import BiEncoder
    from embexp.model.registry import resolve

    from common import spec_of

    spec = spec_of("minilm-l6", query_max_length=tokens, passage_max_length=tokens)
    if random_init:
        path = resolve("minilm-l6")
        backbone = AutoModel.from_config(AutoConfig.from_pretrained(path))
        encoder = BiEncoder(backbone, AutoTokenizer.from_pretrained(path), spec)
    else:
        encoder = BiEncoder.from_spec(spec)
    return encoder.to(device).train()


def _random_inputs(encoder, n: int, tokens: int, seed: int, device: str) -> dict:
    tok = encoder.tokenizer
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, tok.vocab_size, (n, tokens), generator=g)  # (n, tokens): word pieces
    ids[:, 0], ids[:, -1] = tok.cls_token_id, tok.sep_token_id
    return {
        "input_ids": ids.to(device),
        "attention_mask": torch.ones_like(ids).to(device),
        "token_type_ids": torch.zeros_like(ids).to(device),
    }


def child(args) -> dict:
    from embexp.losses import InfoNCELoss
    from embexp.losses.cached import CachedInfoNCELoss, cached_loss

    device = "cuda" if torch.cuda.is_available() and not args.cpu else "cpu"
    torch.manual_seed(0)
    encoder = _encoder(args.random, args.tokens, device)
    batch = {
        "query": _random_inputs(encoder, args.batch, args.tokens, 1, device),
        "passage": _random_inputs(encoder, args.batch, args.tokens, 2, device),
        "n_neg": 0,
        "mask": None,
    }
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated() / 2**20
    before_rss = _rss_mb()
    t0 = time.perf_counter()
    if args.child == "plain":
        q = encoder(**batch["query"]).embeddings  # (batch, dim)
        p = encoder(**batch["passage"]).embeddings  # (batch, dim)
        loss = InfoNCELoss()(q, p)
    else:
        loss = cached_loss(encoder, batch, CachedInfoNCELoss(chunk_size=args.chunk))
    loss.backward()
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    grad_norm = torch.norm(torch.stack([p.grad.norm() for p in encoder.parameters() if p.grad is not None]))
    out = {
        "device": device,
        "step_s": round(seconds, 2),
        "loss": float(loss),
        "grad_norm": float(grad_norm),
        "peak_rss_delta_mb": round(peak_rss - before_rss),
    }
    if device == "cuda":
        out["peak_cuda_delta_mb"] = round(torch.cuda.max_memory_allocated() / 2**20 - before)
    return out


def run_one(args, mode: str, chunk: int) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--chunk", str(chunk)]
    cmd += ["--batch", str(args.batch), "--tokens", str(args.tokens)]
    cmd += ["--random"] * args.random + ["--cpu"] * args.cpu
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--chunks", type=int, nargs="+", default=[32])
    ap.add_argument("--random", action="store_true", help="MiniLM's shape, randomly initialised")
    ap.add_argument("--cpu", action="store_true", help="stay on the CPU even with CUDA")
    ap.add_argument("--no-plain", action="store_true", help="only the cached runs (a batch plain cannot fit)")
    ap.add_argument("--child", choices=["plain", "cached"], help=argparse.SUPPRESS)
    ap.add_argument("--chunk", type=int, default=32, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    runs = [] if args.no_plain else [("plain", "-", run_one(args, "plain", 0))]
    runs += [("cached", c, run_one(args, "cached", c)) for c in args.chunks]
    cuda = runs[0][2]["device"] == "cuda"
    mem = "peak_cuda_delta_mb" if cuda else "peak_rss_delta_mb"
    headers = ["loss", "chunk", "batch x tokens", "peak memory (MB)", "vs plain", "step (s)", "vs plain"]
    base = None if args.no_plain else runs[0][2]

    def ratio(r: dict, key: str) -> str:
        return "-" if base is None else f"{r[key] / base[key]:.2f}x"

    rows = [
        [
            "infonce" if mode == "plain" else "cached_infonce",
            chunk,
            f"{args.batch} x {args.tokens}",
            r[mem],
            ratio(r, mem),
            r["step_s"],
            ratio(r, "step_s"),
        ]
        for mode, chunk, r in runs
    ]
    what = "CUDA max_memory_allocated" if cuda else "peak RSS"
    weights = "random init" if args.random else "all-MiniLM-L6-v2"
    print(f"# GradCache memory ({weights}, full fine-tune, train mode; {what} over the pre-step level)")
    print(f"# {machine()}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}; git {git_rev()}")
    print_table(headers, rows)


if __name__ == "__main__":
    main()
