"""The training job: prepare -> baseline -> fit -> final, read top to bottom in :func:`train`.

What a run writes and when is owned by :mod:`embexp.train.record` (``run.json``,
``baseline.json``, ``metrics.json``, ``per_query.jsonl``, ``provenance.json``); Lightning
writes ``checkpoints/`` (``last.ckpt`` after every epoch with the RNG states, the curriculum
and the cost timers for a bit-exact resume; the best epoch by ``monitor``); ``model/`` holds
the adapter (PEFT ``save_pretrained``) or the full weights, the tokenizer and the prefixes.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from embexp.config.checks import check_config
from embexp.data.prepare import PreparedData, prepare_data
from embexp.eval.build import build_evaluator
from embexp.eval.evaluator import RetrievalEvaluator
from embexp.mining.curriculum import Curriculum
from embexp.model.adapters import AdapterInfo, apply_adapter, check_against_model
from embexp.model.encoder import BiEncoder, build_encoder, resolve_precision
from embexp.tracking import wandb as tracking
from embexp.train import cost
from embexp.train.callbacks import RunState
from embexp.train.data import PairDataModule
from embexp.train.module import BiEncoderModule
from embexp.train.record import RunRecord
from embexp.utils.provenance import code_version

log = logging.getLogger("embexp.train")


@dataclass
class Parts:
    """What every phase reads: the data, the encoder and the evaluators."""

    data: PreparedData
    encoder: BiEncoder
    test_eval: RetrievalEvaluator
    dev_eval: RetrievalEvaluator | None


@dataclass
class Baseline:
    metrics: dict  # baseline/<split>/... (empty with train.baseline=false)
    rows: list[dict]  # per-query rows of the eval split, model=baseline
    corpus_embeddings: np.ndarray | None  # only when computed in this process (mining round 0 re-uses them)
    wall_s: float | None


def train(cfg: DictConfig, out: Path) -> dict:
    """Run (or resume, or return) the job in ``out``; the run record (``metrics.json``)."""
    check_config(cfg, task="train")  # cheap checks: nothing loaded, nothing written yet
    record = RunRecord(out)
    if cfg.get("force", False):
        record.start_over()
    done = record.bind(cfg)  # refuses a folder made with another config
    if done is not None:
        return done
    pl.seed_everything(int(cfg.seed), workers=True)
    parts = prepare(cfg)
    base = baseline(cfg, parts, record)
    curriculum = Curriculum(cfg, parts.data, out).prepare(
        parts.encoder, corpus_embeddings=base.corpus_embeddings
    )
    info = apply_adapter(parts.encoder, cfg.adapter)
    module, dm = build_module(cfg, parts)
    state = RunState()
    config = OmegaConf.to_container(cfg, resolve=True)
    logger = tracking.make_logger(cfg.get("logger"), save_dir=out, run_id=str(cfg.run_id), config=config)
    machinery = [state, curriculum.attach(module, dm)]
    trainer = build_trainer(cfg, out, machinery, logger, has_dev=parts.dev_eval is not None)
    ok = False
    try:
        fitted = fit_and_test(trainer, module, dm, out)
        parts.encoder.save(out / "model", base_model=str(cfg.model.name_or_path))
        result = finish(cfg, record, parts, base, module, dm, info, state, curriculum, fitted)
        if logger is not None:
            log_model = bool(cfg.logger.wandb.get("log_model", False))
            tracking.log_run_summary(logger.experiment, result, model_dir=out / "model", log_model=log_model)
        ok = True
        return result
    except Exception as e:
        record.fail(f"{type(e).__name__}: {e}".splitlines()[0])
        raise
    finally:
        tracking.finish(logger, ok)


def prepare(cfg) -> Parts:
    """Data (validated, split, leak-free), the base encoder, the dev and test evaluators."""
    data = prepare_data(cfg.data)
    for note in data.notes:
        log.info(note)
    encoder = build_encoder(cfg.model)
    check_against_model(encoder, cfg.adapter)
    test_eval = build_evaluator(cfg.eval, data, split=data.eval_split, cache_dir=cfg.paths.cache_dir)
    dev_eval = None
    if data.dev:
        dev_eval = build_evaluator(
            cfg.eval, data, split="dev", qrels=data.dev, cache_dir=None, show_progress=False
        )
    return Parts(data, encoder, test_eval, dev_eval)


def baseline(cfg, parts: Parts, record: RunRecord) -> Baseline:
    """The untouched base model on test and dev; saved with its per-query rows, so a resumed
    run keeps both (``baseline.json``)."""
    if not cfg.train.baseline:
        return Baseline({}, [], None, None)
    saved = record.load_baseline()
    if saved is not None:
        return Baseline(saved["metrics"], saved.get("per_query") or [], None, saved.get("wall_s"))
    t0 = time.perf_counter()
    test = parts.test_eval(parts.encoder, keep_embeddings=True)
    metrics = _prefixed("baseline", test.metrics)
    if parts.dev_eval is not None:
        dev = parts.dev_eval(parts.encoder, corpus_embeddings=test.corpus_embeddings)
        metrics.update(_prefixed("baseline", dev.metrics))
    rows = [{**r, "model": "baseline"} for r in test.per_query_rows(top=int(cfg.eval.per_query_top))]
    wall = time.perf_counter() - t0
    record.save_baseline(metrics, rows, wall)
    return Baseline(metrics, rows, test.corpus_embeddings, wall)


def build_module(cfg, parts: Parts) -> tuple[BiEncoderModule, PairDataModule]:
    """The LightningModule (encoder, loss, optimizer, evaluators injected) and the data module."""
    module = BiEncoderModule(
        parts.encoder,
        instantiate(cfg.loss),
        instantiate(cfg.optimizer),
        instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        parts.dev_eval,
        parts.test_eval,
    )
    dm = PairDataModule(
        parts.encoder,
        parts.data,
        batch_size=int(cfg.train.batch_size),
        n_negatives=int(cfg.negatives.get("n_negatives", 0)),
        no_duplicates=bool(cfg.train.no_duplicates),
        num_workers=int(cfg.train.num_workers),
        seed=int(cfg.seed),
    )
    return module, dm


def fit_and_test(trainer: pl.Trainer, module: BiEncoderModule, dm: PairDataModule, out: Path) -> dict:
    """Fit (continuing from ``last.ckpt`` when a killed run left one), then evaluate the best
    epoch, which Lightning restores."""
    last = out / "checkpoints" / "last.ckpt"
    if last.exists():
        log.info("resuming from %s", last)
    trainer.fit(module, datamodule=dm, ckpt_path=str(last) if last.exists() else None)
    if trainer.interrupted:
        raise KeyboardInterrupt("training interrupted")
    fitted = {
        "train_steps": trainer.global_step,
        "epochs": trainer.current_epoch,
        "precision": trainer.precision,
    }
    t0 = time.perf_counter()
    trainer.test(module, datamodule=dm, ckpt_path=best_checkpoint(trainer), verbose=False)
    fitted["final_eval_s"] = time.perf_counter() - t0
    return fitted


def build_trainer(cfg, out: Path, machinery: list, logger, *, has_dev: bool) -> pl.Trainer:
    """Lightning's Trainer from ``cfg.trainer`` and ``cfg.callbacks`` (each entry instantiated;
    null entries dropped) plus the run machinery (exact-resume state, curriculum)."""
    callbacks = [
        instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None and "_target_" in c
    ]
    kwargs = OmegaConf.to_container(cfg.trainer, resolve=True)
    kwargs["precision"] = resolve_precision(kwargs.get("precision"))
    if not has_dev:  # nothing to validate on: no best epoch, the last one is evaluated
        kwargs["limit_val_batches"] = 0
    return instantiate(
        kwargs, callbacks=[*callbacks, *machinery], logger=logger or False, default_root_dir=str(out)
    )


def best_checkpoint(trainer: pl.Trainer) -> str | None:
    """The monitored callback's best epoch (None: evaluate the weights as they are)."""
    for cb in trainer.checkpoint_callbacks:
        if getattr(cb, "monitor", None) and cb.best_model_path and Path(cb.best_model_path).exists():
            return cb.best_model_path
    return None


def finish(
    cfg,
    record: RunRecord,
    parts: Parts,
    base: Baseline,
    module,
    dm,
    info: AdapterInfo,
    state: RunState,
    curriculum,
    fitted: dict,
) -> dict:
    """Write the finished run: metrics (baseline and final), cost, per-query rows, provenance."""
    final, final_dev = module.test_results["test"], module.test_results.get("dev")
    fast = bool(cfg.trainer.get("fast_dev_run"))
    n_pairs = int(cfg.train.batch_size) if fast else len(dm.examples) * fitted["epochs"]
    train_s = state.elapsed()
    run_cost = {
        **info.as_dict(),
        "train_wall_s": train_s,
        "reembed_corpus_s": final.timings.get("encode_corpus_s")
        or (module.last_eval.timings.get("encode_corpus_s") if module.last_eval else None),
        "baseline_eval_s": base.wall_s,
        "final_eval_s": fitted["final_eval_s"],
        "peak_rss_mb": cost.peak_rss_mb(),
        "peak_cuda_mb": cost.peak_cuda_mb(),
        "validation_s": module.val_time_s,
        "pairs_per_s": n_pairs / max(1e-9, train_s - module.val_time_s),
        "train_steps": fitted["train_steps"],
        "epochs": fitted["epochs"],
        "best_epoch": module.restored_epoch,
        "model_size_mb": cost.dir_size_mb(record.out / "model"),
        "precision": str(fitted["precision"]),
        "device": str(parts.encoder.device),
    }
    metrics = {
        **base.metrics,
        **_prefixed("final", final.metrics),
        **_prefixed("final", final_dev.metrics if final_dev else {}),
    }
    result = {
        "run_id": str(cfg.run_id),
        "seed": int(cfg.seed),
        "metrics": metrics,
        "primary_metric": f"final/{final.primary_metric}",
        "cost": run_cost,
        "data": parts.data.summary(),
        "n_train_pairs": n_pairs,
        "negatives": curriculum.summary(),
    }
    rows = [
        {**r, "model": "final"} for r in final.per_query_rows(top=int(cfg.eval.per_query_top))
    ] + base.rows
    provenance = {
        "base_model": str(cfg.model.name_or_path),
        "encoder_spec": vars(parts.encoder.spec),
        "final_encoder_fingerprint": parts.encoder.fingerprint(),
        "data": parts.data.summary(),
        "config": OmegaConf.to_container(cfg, resolve=True),
        "code": code_version(),
    }
    return record.finish(result, rows, provenance)


def _prefixed(prefix: str, metrics: dict) -> dict:
    return {f"{prefix}/{k}": v for k, v in metrics.items()}
