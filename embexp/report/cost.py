"""Cost per configuration: what the runs recorded (``metrics.json`` ``cost``, mean over seeds) and
query-encoding latency at batch 1, measured here on each configuration's saved model.

Latency is measured on this machine (:func:`machine_label`), with the model as deployed (a LoRA
adapter merged into the backbone, as ``embexp-export`` writes it), over the first ``n`` eval
queries after ``warmup`` unrecorded ones, one query per call, fp32, single process.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from pathlib import Path
from statistics import mean

import numpy as np

from embexp.report.systems import BASELINE, FINETUNED, System

log = logging.getLogger("embexp.report")

RECORDED = (
    "trainable_params",
    "model_size_mb",
    "train_wall_s",
    "pairs_per_s",
    "train_steps",
    "reembed_corpus_s",
)


def machine_label() -> str:
    """CPU model, cores and accelerator, e.g. ``AMD EPYC 7B13, 2 cores, cpu``."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    device = "cpu"
    try:
        import torch

        if torch.cuda.is_available():
            device = torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001 - a label only
        pass
    return f"{cpu}, {os.cpu_count()} cores, {device}"


def _avg(values: list) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return mean(vals) if vals else None


def recorded_cost(system: System) -> dict:
    """Mean over seeds of what the runs recorded; peak memory is CUDA when measured, else RSS."""
    costs = [r.cost for r in system.runs]
    row: dict = {"system": system.name}
    for k in RECORDED:
        row[k] = _avg([c.get(k) for c in costs])
    if row["trainable_params"] is not None:
        row["trainable_params"] = int(round(row["trainable_params"]))
    if row["train_steps"] is not None:
        row["train_steps"] = int(round(row["train_steps"]))
    cuda = _avg([c.get("peak_cuda_mb") for c in costs])
    rss = _avg([c.get("peak_rss_mb") for c in costs])
    row["peak_memory_mb"] = cuda if cuda is not None else rss
    row["memory_kind"] = "cuda" if cuda is not None else ("rss" if rss is not None else None)
    return row


def query_latency(encoder, queries: list[str], *, n: int = 100, warmup: int = 5) -> tuple[float, float]:
    """p50 and p95 milliseconds of encoding one query (batch 1)."""
    import torch

    texts = (queries * ((n + warmup) // max(len(queries), 1) + 1))[: n + warmup]
    times = []
    with torch.inference_mode():
        for i, t in enumerate(texts):
            start = time.perf_counter()
            encoder.encode([t], "query", batch_size=1, dtype="fp32")
            if i >= warmup:
                times.append((time.perf_counter() - start) * 1000.0)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def _encoder_for(system: System, base_model_cfg: dict | None):
    from embexp.model.encoder import BiEncoder, build_encoder

    if system.kind == BASELINE:
        return build_encoder(base_model_cfg) if base_model_cfg else None
    from embexp.model.adapters import merged_backbone

    model_dir = system.runs[0].path / "model"
    if not model_dir.exists():
        return None
    enc = BiEncoder.load(model_dir)
    enc.backbone = merged_backbone(enc)  # as deployed: embexp-export folds a LoRA adapter in
    return enc


def cost_rows(
    systems: list[System], *, queries: list[str] | None, base_model_cfg: dict | None, latency: bool
) -> tuple[list[dict], list[str]]:
    """One row per baseline / fine-tuned system; latency when ``latency`` and queries are known."""
    rows, notes = [], []
    for s in systems:
        if s.kind not in (BASELINE, FINETUNED):
            continue
        row = recorded_cost(s) if s.kind == FINETUNED else {"system": s.name}
        row.update(latency_p50_ms=None, latency_p95_ms=None)
        if latency and queries:
            try:
                enc = _encoder_for(s, base_model_cfg)
                if enc is not None:
                    row["latency_p50_ms"], row["latency_p95_ms"] = query_latency(enc, queries)
                    del enc
            except Exception as e:  # noqa: BLE001 - a missing model must not lose the report
                notes.append(f"latency of {s.name} not measured: {type(e).__name__}: {e}")
        rows.append(row)
    return rows, notes
