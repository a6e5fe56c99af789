"""Training and corpus-encoding throughput, side by side in one process: embexp's training path
(``BiEncoderModule`` + ``PairDataModule`` under a Lightning ``Trainer``) vs sentence-transformers'
``SentenceTransformerTrainer`` (MultipleNegativesRankingLoss) vs a plain PyTorch loop (pre-tokenised
batches, SDPA attention, autocast, fused AdamW) — same model shape (randomly initialised: speed does
not depend on the weights), same pairs, batch, sequence limits and precision; full fine-tuning,
in-batch negatives only.

    # once, where the data is: SciFact training pairs and corpus texts + the MiniLM tokenizer
    python benchmarks/throughput.py prepare --scifact ../shared/datasets/scifact --out .bench
    # then (GPU: bf16, both shapes; CPU: fp32, MiniLM, few steps)
    python benchmarks/throughput.py run --data .bench --shapes minilm bert-base --batch 128 --steps 30
    python benchmarks/throughput.py run --data .bench --shapes minilm --batch 32 --steps 4 --precision fp32

Reported per contender: pairs/s, real (non-padding) tokens/s, model FLOP utilisation on real tokens
(MFU: 6 x non-embedding params x tokens + attention 12 x layers x hidden x sum(len^2), against the
card's dense peak — 989 TFLOP/s bf16 for H100/H200 SXM; not computed on CPU), peak memory; and
corpus encoding docs/s (embexp ``BiEncoder.encode`` vs ``SentenceTransformer.encode``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}
TOKENIZER_FILES = (
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "special_tokens_map.json",
)
SHAPES = {  # BertConfig overrides on the MiniLM config
    "minilm": {},
    "bert-base": {
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
    },
}


# ---- prepare (where the data and the packaged model are) -----------------------------------
def prepare(scifact: Path, out: Path) -> None:
    from embexp.data.beir import load_beir
    from embexp.model import registry

    ds = load_beir(scifact)
    pairs = [
        {"query": ds.queries[q], "positive": ds.corpus.text_of(d)}
        for split in ("train", "test")
        for q, r in sorted(ds.qrels.get(split, {}).items())
        for d, g in sorted(r.items())
        if g > 0
    ]
    out.mkdir(parents=True, exist_ok=True)
    with gzip.open(out / "pairs.jsonl.gz", "wt") as f:
        f.writelines(json.dumps(p) + "\n" for p in pairs)
    with gzip.open(out / "corpus.jsonl.gz", "wt") as f:
        f.writelines(json.dumps({"text": t}) + "\n" for t in ds.corpus.passages())
    src = Path(registry.resolve("minilm-l6"))
    (out / "minilm").mkdir(exist_ok=True)
    for name in TOKENIZER_FILES:
        if (src / name).exists():
            shutil.copy(src / name, out / "minilm" / name)
    print(f"{len(pairs)} pairs, {len(ds.corpus)} passages -> {out}")


# ---- helpers ----------------------------------------------------------------------------------
def _read(path: Path) -> list[dict]:
    with gzip.open(path, "rt") as f:
        return [json.loads(x) for x in f]


def make_model(data: Path, shape: str, root: Path) -> Path:
    """A randomly initialised model of that shape with the MiniLM tokenizer, saved as a HF folder."""
    from transformers import AutoModel, AutoTokenizer, BertConfig

    cfg = BertConfig.from_pretrained(data / "minilm")
    for k, v in SHAPES[shape].items():
        setattr(cfg, k, v)
    out = root / shape
    AutoModel.from_config(cfg).save_pretrained(out)
    AutoTokenizer.from_pretrained(data / "minilm").save_pretrained(out)
    return out


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def _reset_memory(device) -> None:
    import gc

    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_mb(device) -> float | None:
    import torch

    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    from embexp.train.cost import peak_rss_mb

    return peak_rss_mb()


def train_flops(cfg, lengths: list[int]) -> float:
    """Training FLOPs of a batch of sequences with these real lengths (forward + backward = 3x)."""
    h, n_layers, inter = cfg.hidden_size, cfg.num_hidden_layers, cfg.intermediate_size
    per_token = n_layers * (4 * h * h + 2 * h * inter)  # params of attention projections + FFN
    attention = n_layers * 2 * h * sum(n * n for n in lengths)  # QK^T and AV: 2 * n^2 * h MACs
    return 3 * (2 * per_token * sum(lengths) + 2 * attention)


class Meter:
    """Wall time and tokens of the measured steps (after ``warmup`` steps)."""

    def __init__(self, device, warmup: int, cfg):
        self.device, self.warmup, self.cfg = device, warmup, cfg
        self.step = 0
        self.t0 = self.t1 = None
        self.pairs = self.real = self.padded = 0
        self.flops = 0.0

    def start(self) -> None:
        if self.step == self.warmup:
            _sync(self.device)
            self.t0 = time.perf_counter()

    def end(self, masks: list) -> None:
        if self.step >= self.warmup:
            self.pairs += int(masks[0].shape[0])
            lengths = [int(x) for m in masks for x in m.sum(1).tolist()]
            self.real += sum(lengths)
            self.padded += sum(int(m.numel()) for m in masks)
            self.flops += train_flops(self.cfg, lengths)
        self.step += 1
        _sync(self.device)
        self.t1 = time.perf_counter()

    def result(self, name: str, peak_flops: float | None, peak_mb) -> dict:
        s = max(1e-9, self.t1 - self.t0)
        return {
            "contender": name,
            "steps": self.step - self.warmup,
            "pairs_per_s": self.pairs / s,
            "real_tokens_per_s": self.real / s,
            "padding_share": 1 - self.real / max(1, self.padded),
            "mfu_real": self.flops / s / peak_flops if peak_flops else None,
            "peak_mem_mb": peak_mb,
        }


# ---- contenders -------------------------------------------------------------------------------
def contender_name(kind: str, workers: int = 0, variant: str = "padded") -> str:
    """The row name of a training contender (``--skip`` names the kinds: plain, st, embexp)."""
    if kind == "embexp":
        return f"embexp ({variant}, {workers} loader workers)"
    return {"plain": "plain PyTorch loop", "st": "sentence-transformers trainer"}[kind]


VARIANTS = [f"{b}{e}" for b in ("padded", "unpadded") for e in ("", "+compile", "+group")]
GROUP_WINDOW = 16  # train.group_by_length of the +group variants: batches per length-sorted window


def _variant(enc, variant: str):
    """``padded`` | ``unpadded`` (model.unpad), each optionally ``+compile`` (model.compile) or
    ``+group`` (train.group_by_length, applied by :func:`run_embexp`'s data module)."""
    base, _, extra = variant.partition("+")
    enc.set_unpad(base == "unpadded")
    if extra == "compile":
        enc.compile_backbone()
    return enc


def run_embexp(
    model_dir: Path, pairs: list[dict], args, device, cfg, peak, workers: int = 0, variant: str = "padded"
) -> dict:
    import lightning.pytorch as pl
    import torch

    from embexp.data.prepare import PreparedData
    from embexp.data.types import Corpus, RetrievalDataset
    from embexp.losses.infonce import InfoNCELoss
    from embexp.model.encoder import BiEncoder
    from embexp.train.data import PairDataModule
    from embexp.train.module import BiEncoderModule

    from common import spec_of

    docs = sorted({p["positive"] for p in pairs})
    did = {t: f"d{i}" for i, t in enumerate(docs)}
    queries = {f"q{i}": p["query"] for i, p in enumerate(pairs)}
    qrels = {f"q{i}": {did[p["positive"]]: 1} for i, p in enumerate(pairs)}
    corpus = Corpus([did[t] for t in docs], [""] * len(docs), docs)
    ds = RetrievalDataset("bench", corpus, queries, {"train": qrels})
    data = PreparedData(ds, train=qrels, dev={}, eval_split="train")
    enc = BiEncoder.from_spec(spec_of(str(model_dir), query_max_length=64, passage_max_length=args.max_len))
    _variant(enc, variant)
    module = BiEncoderModule(enc, InfoNCELoss(0.05), lambda params: torch.optim.AdamW(params, lr=2e-5))
    group = GROUP_WINDOW if variant.endswith("+group") else None
    dm = PairDataModule(enc, data, batch_size=args.batch, seed=0, num_workers=workers, group_by_length=group)
    meter = Meter(device, args.warmup, cfg)

    class Timing(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            meter.start()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            meter.end([batch["query"]["attention_mask"], batch["passage"]["attention_mask"]])

    _reset_memory(device)
    trainer = pl.Trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        precision="bf16-mixed" if args.precision == "bf16" else "32-true",
        max_steps=args.warmup + args.steps,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[Timing()],
    )
    trainer.fit(module, datamodule=dm)
    return meter.result(contender_name("embexp", workers=workers, variant=variant), peak, _peak_mb(device))


def run_st(model_dir: Path, pairs: list[dict], args, device, cfg, peak) -> dict:
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
        losses,
        models,
    )
    from sentence_transformers.training_args import BatchSamplers
    from transformers import TrainerCallback

    tr = models.Transformer(str(model_dir), max_seq_length=args.max_len)
    st = SentenceTransformer(
        modules=[tr, models.Pooling(tr.get_word_embedding_dimension(), "mean"), models.Normalize()],
        device=str(device),
    )
    meter = Meter(device, args.warmup, cfg)
    tok = st.tokenizer
    masks = []  # token counts of equal-size batches, computed before the clock runs
    for s in range(args.warmup + args.steps):
        rows = [pairs[(s * args.batch + i) % len(pairs)] for i in range(args.batch)]
        masks.append(
            [
                tok(
                    [r[k] for r in rows],
                    truncation=True,
                    max_length=args.max_len,
                    padding=True,
                    return_tensors="pt",
                )["attention_mask"]
                for k in ("query", "positive")
            ]
        )

    class Timing(TrainerCallback):
        def on_step_begin(self, *a, **k):
            meter.start()

        def on_step_end(self, *a, **k):
            meter.end(masks[min(meter.step, len(masks) - 1)])

    out = tempfile.mkdtemp()
    targs = SentenceTransformerTrainingArguments(
        output_dir=out,
        per_device_train_batch_size=args.batch,
        max_steps=args.warmup + args.steps,
        learning_rate=2e-5,
        bf16=args.precision == "bf16",
        batch_sampler=BatchSamplers.NO_DUPLICATES,
        save_strategy="no",
        logging_steps=10_000,
        report_to=[],
        dataloader_num_workers=0,
        use_cpu=device.type != "cuda",
    )
    train = Dataset.from_list([{"anchor": p["query"], "positive": p["positive"]} for p in pairs])
    _reset_memory(device)
    SentenceTransformerTrainer(
        model=st,
        args=targs,
        train_dataset=train,
        loss=losses.MultipleNegativesRankingLoss(st),
        callbacks=[Timing()],
    ).train()
    shutil.rmtree(out, ignore_errors=True)
    return meter.result(contender_name("st"), peak, _peak_mb(device))


def run_plain(model_dir: Path, pairs: list[dict], args, device, cfg, peak) -> dict:
    import torch
    import torch.nn.functional as F
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir, attn_implementation="sdpa").to(device).train()
    fused = {"fused": True} if device.type == "cuda" else {}
    opt = torch.optim.AdamW(model.parameters(), lr=2e-5, **fused)
    n = args.warmup + args.steps
    batches = []
    for s in range(n):  # pre-tokenised, like the plain loop of the reference numbers
        rows = [pairs[(s * args.batch + i) % len(pairs)] for i in range(args.batch)]
        q = tok([r["query"] for r in rows], truncation=True, max_length=64, padding=True, return_tensors="pt")
        p = tok(
            [r["positive"] for r in rows],
            truncation=True,
            max_length=args.max_len,
            padding=True,
            return_tensors="pt",
        )
        batches.append((q, p))
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float32

    def embed(x):
        x = {k: v.to(device, non_blocking=True) for k, v in x.items()}
        h = model(**x).last_hidden_state
        m = x["attention_mask"].unsqueeze(-1).to(h.dtype)
        return F.normalize((h * m).sum(1) / m.sum(1).clamp(min=1), dim=-1)

    meter = Meter(device, args.warmup, cfg)
    _reset_memory(device)
    labels = torch.arange(args.batch, device=device)
    for q, p in batches:
        meter.start()
        with torch.autocast(device.type, dtype=dtype, enabled=args.precision == "bf16"):
            loss = F.cross_entropy(embed(q) @ embed(p).T / 0.05, labels)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        meter.end([q["attention_mask"], p["attention_mask"]])
    return meter.result(contender_name("plain"), peak, _peak_mb(device))


def encode_embexp(model_dir: Path, corpus: list[str], args, device) -> list[dict]:
    from embexp.model.encoder import BiEncoder

    from common import spec_of

    rows = []
    dtype = "bf16" if args.precision == "bf16" else "fp32"
    reference = None
    # encode runs its length-sorted batches padded whatever model.unpad says: compile is what varies
    variants = dict.fromkeys(
        "padded+compile" if v.endswith("+compile") else "padded" for v in args.embexp_variants
    )
    for variant in variants:
        enc = BiEncoder.from_spec(spec_of(str(model_dir), passage_max_length=args.max_len)).to(device)
        _variant(enc, variant)
        first = enc.encode(corpus[: args.batch], "passage", batch_size=args.batch, dtype=dtype)  # warm-up
        if reference is None:
            reference = first
        agree = float((first * reference).sum(1).min())  # the same embeddings, whatever the variant
        _sync(device)
        t = time.perf_counter()
        enc.encode(corpus, "passage", batch_size=args.encode_batch, dtype=dtype)
        _sync(device)
        docs_per_s = len(corpus) / (time.perf_counter() - t)
        rows.append({"contender": f"embexp encode ({variant})", "docs_per_s": docs_per_s, "min_cos": agree})
        del enc
    return rows


def encode_st(model_dir: Path, corpus: list[str], args, device) -> dict:
    import torch
    from sentence_transformers import SentenceTransformer, models

    tr = models.Transformer(str(model_dir), max_seq_length=args.max_len)
    st = SentenceTransformer(
        modules=[tr, models.Pooling(tr.get_word_embedding_dimension(), "mean")], device=str(device)
    )
    if args.precision == "bf16":
        st = st.to(torch.bfloat16)
    st.encode(corpus[: args.batch], batch_size=args.batch)
    _sync(device)
    t = time.perf_counter()
    st.encode(corpus, batch_size=args.encode_batch, convert_to_numpy=True)
    _sync(device)
    return {
        "contender": "sentence-transformers encode",
        "docs_per_s": len(corpus) / (time.perf_counter() - t),
    }


def check_unpadded(model_dir: Path, pairs: list[dict], args, device) -> dict:
    """The unpadded forward on this device (its kernel: varlen on CUDA) against the padded one on
    one training batch without dropout: largest embedding difference and relative gradient
    difference, in fp32 (both ~1e-6 when they compute the same function) and, on CUDA, under bf16
    autocast too (~1e-2: the flash kernel that the timed bf16 steps run)."""
    import contextlib
    import copy

    import torch
    import torch.nn.functional as F

    from embexp.model.encoder import BiEncoder

    from common import spec_of

    enc = BiEncoder.from_spec(spec_of(str(model_dir), passage_max_length=args.max_len)).to(device)
    for m in enc.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    rows = pairs[: min(args.batch, 32)]
    result = {"check": "unpadded vs padded"}
    for precision in ("fp32", "bf16") if device.type == "cuda" else ("fp32",):
        out = {}
        for name, model in (
            ("padded", copy.deepcopy(enc).train()),
            ("unpadded", copy.deepcopy(enc).set_unpad(True)),
        ):
            q = {k: v.to(device) for k, v in model.tokenize([r["query"] for r in rows], "query").items()}
            p = {k: v.to(device) for k, v in model.tokenize([r["positive"] for r in rows], "passage").items()}
            ctx = (
                torch.autocast("cuda", dtype=torch.bfloat16)
                if precision == "bf16"
                else contextlib.nullcontext()
            )
            with ctx:
                eq, ep = model(**q).embeddings, model(**p).embeddings
                loss = F.cross_entropy(
                    eq.float() @ ep.float().T / 0.05, torch.arange(len(rows), device=device)
                )
            loss.backward()
            grads = {n: t.grad.float() for n, t in model.named_parameters() if t.grad is not None}
            out[name] = (torch.cat([eq, ep]).detach().float(), grads)
        (e0, g0), (e1, g1) = out["padded"], out["unpadded"]
        # over all weights together: some gradients are exactly zero in theory (attention key biases:
        # softmax ignores a shift shared by a row), so per-weight ratios would compare rounding noise
        diff = sum(float((g1[n] - g0[n]).square().sum()) for n in g0) ** 0.5
        rel = diff / sum(float(g.square().sum()) for g in g0.values()) ** 0.5
        result[f"max_abs_emb_{precision}"] = float((e1 - e0).abs().max())
        result[f"rel_grad_{precision}"] = rel
    return result


def run(args) -> None:
    import torch
    from transformers import BertConfig

    from common import machine

    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"
    peak = next((v for k, v in PEAK_BF16.items() if k in name), None) if args.precision == "bf16" else None
    pairs = _read(args.data / "pairs.jsonl.gz")
    corpus = [r["text"] for r in _read(args.data / "corpus.jsonl.gz")][: args.corpus_limit or None]
    print(
        f"# throughput: {machine()}; batch {args.batch}, {args.steps} steps after {args.warmup} "
        f"warm-up steps, {args.precision}"
    )
    results = []
    root = Path(tempfile.mkdtemp())
    for shape in args.shapes:
        model_dir = make_model(args.data, shape, root)
        cfg = BertConfig.from_pretrained(model_dir)
        if any(v.startswith("unpadded") for v in args.embexp_variants):
            check = {
                "shape": shape,
                **_guarded("unpadded check", check_unpadded, model_dir, pairs, args, device),
            }
            print(json.dumps(check), flush=True)
            results.append(check)
        contenders = [("plain", run_plain, {}), ("st", run_st, {})] + [
            ("embexp", run_embexp, {"workers": w, "variant": v})
            for v in args.embexp_variants
            for w in args.embexp_workers
        ]
        for kind, fn, kw in contenders:
            if kind in args.skip:
                continue
            torch.manual_seed(0)
            name = contender_name(kind, **kw)
            r = {"shape": shape, **_guarded(name, fn, model_dir, pairs, args, device, cfg, peak, **kw)}
            print(json.dumps(r), flush=True)
            results.append(r)
            _save(args, results)
        if "encode" not in args.skip:
            rows = _guarded("embexp encode", encode_embexp, model_dir, corpus, args, device, many=True)
            rows.append(_guarded("sentence-transformers encode", encode_st, model_dir, corpus, args, device))
            for r in rows:
                r = {"shape": shape, **r}
                print(json.dumps(r), flush=True)
                results.append(r)
                _save(args, results)
    _table(results)
    _save(args, results)


def _save(args, results: list[dict]) -> None:
    """Write the rows so far (atomically): a run stopped at its time limit keeps what it measured."""
    if args.out:
        from common import machine

        tmp = Path(f"{args.out}.tmp")
        record = {"machine": machine(), "args": vars(args), "results": results}
        tmp.write_text(json.dumps(record, default=str))
        tmp.replace(args.out)


def _guarded(name: str, fn, *args, many: bool = False, **kw):
    """``fn(*args, **kw)``; a contender that fails (a kernel the card's stack lacks, a missing
    package) becomes an error row with its traceback on stderr, and the others still run: a
    device run is one short lease, not to be lost to one failure."""
    import traceback

    try:
        return fn(*args, **kw)
    except Exception as e:  # noqa: BLE001 -- reported, and the row says so
        traceback.print_exc()
        row = {"contender": name, "error": f"{type(e).__name__}: {e}"[:300]}
        return [row] if many else row


def _table(results: list[dict]) -> None:
    from common import print_table

    def f(x, fmt):
        return "-" if x is None else fmt.format(x)

    train = [r for r in results if "pairs_per_s" in r]
    print_table(
        ["shape", "contender", "pairs/s", "real tokens/s", "padding", "MFU (real tokens)", "peak MB"],
        [
            [
                r["shape"],
                r["contender"],
                f(r["pairs_per_s"], "{:.1f}"),
                f(r["real_tokens_per_s"], "{:.0f}"),
                f(r["padding_share"], "{:.0%}"),
                f(r["mfu_real"], "{:.1%}"),
                f(r["peak_mem_mb"], "{:.0f}"),
            ]
            for r in train
        ],
    )
    failed = [r for r in results if "error" in r]
    if failed:
        print_table(["shape", "failed", "error"], [[r["shape"], r["contender"], r["error"]] for r in failed])
    enc = [r for r in results if "docs_per_s" in r]
    if enc:
        print_table(
            ["shape", "contender", "docs/s", "min cosine to the first variant"],
            [
                [r["shape"], r["contender"], f"{r['docs_per_s']:.1f}", f(r.get("min_cos"), "{:.5f}")]
                for r in enc
            ],
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--scifact", type=Path, required=True)
    p.add_argument("--out", type=Path, default=Path(".bench"))
    r = sub.add_parser("run")
    r.add_argument("--data", type=Path, default=Path(".bench"))
    r.add_argument("--shapes", nargs="+", default=["minilm", "bert-base"], choices=list(SHAPES))
    r.add_argument("--batch", type=int, default=128)
    r.add_argument("--steps", type=int, default=30)
    r.add_argument("--warmup", type=int, default=5)
    r.add_argument("--max-len", type=int, default=256)
    r.add_argument("--encode-batch", type=int, default=256)
    r.add_argument("--corpus-limit", type=int, default=0)
    r.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    r.add_argument("--skip", nargs="*", default=[], choices=["plain", "st", "embexp", "encode"])
    r.add_argument("--cpu", action="store_true")
    r.add_argument("--embexp-workers", nargs="+", type=int, default=[0], help="train.num_workers values")
    r.add_argument(
        "--embexp-variants",
        nargs="+",
        default=["padded", "unpadded"],
        choices=VARIANTS,
        help="the embexp contender: model.unpad, model.compile, train.group_by_length (+group: 16)",
    )
    r.add_argument("--out", default=None, help="write the results as JSON")
    args = ap.parse_args()
    if args.cmd == "prepare":
        prepare(args.scifact, args.out)
    else:
        run(args)


if __name__ == "__main__":
    main()
