"""The training job: baseline -> fine-tune -> final evaluation, with its cost and provenance.

Everything a run produces lives in its run directory::

    metrics.json        baseline/<split>/..., final/<split>/... (final/dev/...: the restored
                        best epoch on dev, what sweeps optimise), cost/..., status
    baseline.json       baseline metrics (reused when a killed run resumes)
    per_query.jsonl     per-query metrics of baseline and final on the eval split
    checkpoints/        last.ckpt (resume) and the best epoch by the monitored metric
    model/              adapter (PEFT save_pretrained) or full weights, tokenizer, prefixes
    provenance.json     base model, data fingerprint, resolved config, code version
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import lightning.pytorch as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from embexp.cli.common import code_version
from embexp.data.prepare import prepare_data
from embexp.errors import ConfigError
from embexp.eval.build import build_encoder, build_evaluator
from embexp.mining.curriculum import Curriculum, validate_negatives
from embexp.model.adapters import apply_adapter, check_adapter
from embexp.model.encoder import _cpu_has_amx_bf16
from embexp.report.table import metrics_table, print_table
from embexp.train import cost
from embexp.train.data import PairDataModule
from embexp.train.module import BiEncoderModule
from embexp.utils.io import atomic_write_json, atomic_write_jsonl, read_json

log = logging.getLogger("embexp.train")


def resolve_precision(precision) -> str:
    """``auto``: bf16-mixed on CUDA with bf16 or on CPUs with AMX, else 32-true."""
    if precision not in (None, "auto"):
        return str(precision)
    if torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    return "bf16-mixed" if _cpu_has_amx_bf16() else "32-true"


def _prefixed(prefix: str, metrics: dict) -> dict:
    return {f"{prefix}/{k}": v for k, v in metrics.items()}


def _make_logger(cfg, out: Path, run_id: str):
    from embexp.tracking.wandb import wandb_settings

    settings = wandb_settings(cfg.get("logger"))
    if settings is None:
        return None
    from lightning.pytorch.loggers import WandbLogger

    mode = settings.pop("mode")
    os.environ["WANDB_MODE"] = mode
    return WandbLogger(
        name=run_id,
        id=run_id.replace("/", "-"),
        save_dir=str(out),
        offline=mode == "offline",
        resume="allow",
        config=OmegaConf.to_container(cfg, resolve=True),
        **{k: v for k, v in settings.items() if v is not None},
    )


def validate_config(cfg) -> None:
    """Cheap checks that must fail before any model is loaded."""
    from embexp.model.adapters import validate_adapter

    validate_adapter(cfg.adapter)
    instantiate(cfg.loss)  # losses validate their own hyper-parameters (loss.temperature, loss.margin)
    validate_negatives(cfg.negatives)  # negatives.window, .sampling, .n_negatives, ...
    lr = cfg.optimizer.get("lr")
    if lr is None or not isinstance(lr, (int, float)) or lr <= 0:
        raise ConfigError("optimizer.lr", f"must be a positive number, got {lr!r}")
    if int(cfg.trainer.get("max_epochs", 1)) <= 0 and not cfg.trainer.get("max_steps"):
        raise ConfigError("trainer.max_epochs", "must be positive")


def train(cfg: DictConfig, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    mpath = out / "metrics.json"
    if mpath.exists() and not cfg.get("force", False):
        done = read_json(mpath)
        if done.get("status") == "finished":
            log.info("run %s already finished; returning its results (force=true reruns it)", out)
            return done
    validate_config(cfg)
    pl.seed_everything(int(cfg.seed), workers=True)
    run_id = str(cfg.run_id)
    data = prepare_data(cfg.data)
    for note in data.notes:
        log.info(note)
    encoder = build_encoder(cfg.model)
    check_adapter(encoder, cfg.adapter)
    split = data.eval_split
    test_eval = build_evaluator(cfg.eval, data, split=split, cache_dir=cfg.paths.cache_dir)
    dev_eval = build_evaluator(cfg.eval, data, split="dev", qrels=data.dev, cache_dir=None, show_progress=False) if data.dev else None
    timings: dict[str, float] = {}

    # ---- baseline: the untouched base model on dev and test ------------------------------
    bpath = out / "baseline.json"
    base_test = None
    if cfg.train.baseline:
        if bpath.exists():
            baseline = read_json(bpath)["metrics"]
        else:
            with cost.timed(timings, "baseline_eval_s"):
                base_test = test_eval(encoder, keep_embeddings=True)
                baseline = _prefixed("baseline", base_test.metrics)
                if dev_eval is not None:
                    baseline.update(_prefixed("baseline", dev_eval(encoder, corpus_embeddings=base_test.corpus_embeddings).metrics))
            atomic_write_json(bpath, {"metrics": baseline})
    else:
        baseline = {}

    # ---- hard negatives (embexp.mining): round 0 from the base model, before the adapter -----
    curriculum = Curriculum(cfg, data, out).prepare(encoder, corpus_embeddings=base_test.corpus_embeddings if base_test is not None else None)

    # ---- fine-tune -------------------------------------------------------------------------
    info = apply_adapter(encoder, cfg.adapter)
    log.info("adapter %s: %s trainable of %s parameters (%.2f%%)", info.kind, f"{info.trainable_params:,}", f"{info.total_params:,}", 100 * info.trainable_params / info.total_params)
    module = BiEncoderModule(encoder, instantiate(cfg.loss), instantiate(cfg.optimizer), instantiate(cfg.scheduler) if cfg.get("scheduler") else None, dev_eval)
    if "optuna" in cfg:  # a sweep trial: report the dev metric after every validation, maybe prune
        from embexp.sweep.pruning import attach_pruning

        attach_pruning(module, cfg.optuna, out, run_id, max_epochs=cfg.trainer.get("max_epochs"))
    dm = PairDataModule(
        encoder,
        data,
        batch_size=int(cfg.train.batch_size),
        n_negatives=int(cfg.negatives.get("n_negatives", 0)),
        no_duplicates=bool(cfg.train.no_duplicates),
        num_workers=int(cfg.train.num_workers),
        seed=int(cfg.seed),
    )
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None and "_target_" in c]
    if dev_eval is None:
        callbacks = [c for c in callbacks if not hasattr(c, "monitor") or c.__class__.__name__ not in ("EarlyStopping",)]
    callbacks.append(curriculum.attach(module, dm))  # mined pool, warm-up, re-mining after validation
    logger = _make_logger(cfg, out, run_id)
    precision = resolve_precision(cfg.trainer.get("precision"))
    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    trainer_cfg["precision"] = precision
    trainer = instantiate(trainer_cfg, callbacks=callbacks, logger=logger if logger is not None else False, default_root_dir=str(out))
    last = out / "checkpoints" / "last.ckpt"
    ckpt_path = str(last) if last.exists() else None
    if ckpt_path:
        log.info("resuming from %s", ckpt_path)
    succeeded = False
    try:
        t0 = time.perf_counter()
        trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path)
        timings["train_s"] = time.perf_counter() - t0
        if trainer.interrupted:
            raise KeyboardInterrupt("training interrupted")

        # ---- restore the best epoch, save the model, evaluate on test --------------------------
        ckpt_cb = trainer.checkpoint_callback
        best = getattr(ckpt_cb, "best_model_path", "") if ckpt_cb is not None else ""
        best_epoch = None
        if best and Path(best).exists() and not trainer.fast_dev_run:
            state = torch.load(best, map_location="cpu", weights_only=False)
            module.load_state_dict(state["state_dict"])
            best_epoch = state.get("epoch")
            log.info("restored best checkpoint %s (epoch %s)", best, best_epoch)
        encoder.save(out / "model", base_model=str(cfg.model.name_or_path))
        reuse = None
        if module.last_eval is not None and module.last_eval.corpus_embeddings is not None and module.last_eval_fingerprint == encoder.fingerprint():
            reuse = module.last_eval.corpus_embeddings  # the last validation already embedded the corpus with these weights
        t1 = time.perf_counter()
        final = test_eval(encoder, corpus_embeddings=reuse, keep_embeddings=dev_eval is not None)
        final_dev = dev_eval(encoder, corpus_embeddings=final.corpus_embeddings).metrics if dev_eval is not None else {}  # same corpus: queries only
        final.corpus_embeddings = None
        timings["final_eval_s"] = time.perf_counter() - t1
        reembed = final.timings.get("encode_corpus_s") or (module.last_eval.timings.get("encode_corpus_s") if module.last_eval else None)
        n_pairs = len(dm.examples) * trainer.current_epoch if not trainer.fast_dev_run else int(cfg.train.batch_size)
        run_cost = {
            **info.as_dict(),
            "train_wall_s": timings["train_s"],
            "reembed_corpus_s": reembed,
            "baseline_eval_s": timings.get("baseline_eval_s"),
            "final_eval_s": timings["final_eval_s"],
            "peak_rss_mb": cost.peak_rss_mb(),
            "peak_cuda_mb": cost.peak_cuda_mb(),
            "validation_s": module.val_time_s,
            "pairs_per_s": n_pairs / max(1e-9, timings["train_s"] - module.val_time_s),
            "train_steps": trainer.global_step,
            "epochs": trainer.current_epoch,
            "best_epoch": best_epoch,
            "model_size_mb": cost.dir_size_mb(out / "model"),
            "precision": precision,
            "device": str(encoder.device),
        }
        metrics = {**baseline, **_prefixed("final", final.metrics), **_prefixed("final", final_dev)}
        record = {
            "status": "finished",
            "run_id": run_id,
            "seed": int(cfg.seed),
            "metrics": metrics,
            "primary_metric": f"final/{final.primary_metric}",
            "cost": run_cost,
            "data": data.summary(),
            "n_train_pairs": n_pairs,
            "negatives": curriculum.summary(),
        }
        rows = [{**r, "model": "final"} for r in final.per_query_rows(top=int(cfg.eval.per_query_top))]
        if base_test is not None:
            rows += [{**r, "model": "baseline"} for r in base_test.per_query_rows(top=int(cfg.eval.per_query_top))]
        atomic_write_jsonl(out / "per_query.jsonl", rows)
        atomic_write_json(out / "provenance.json", {
            "base_model": str(cfg.model.name_or_path),
            "encoder_spec": vars(encoder.spec),
            "final_encoder_fingerprint": encoder.fingerprint(),
            "data": data.summary(),
            "config": OmegaConf.to_container(cfg, resolve=True),
            "code": code_version(),
        })
        atomic_write_json(mpath, record)
        print_table(metrics_table({"baseline": {k[len("baseline/"):]: v for k, v in baseline.items()}, "fine-tuned": final.metrics}, split, title=f"{data.dataset.name}: baseline vs fine-tuned ({info.kind}, {split})"))
        log.info("wrote %s", mpath)
        if logger is not None:
            from embexp.tracking.wandb import log_run_summary

            log_run_summary(logger.experiment, record, model_dir=out / "model", log_model=bool(cfg.logger.wandb.get("log_model", False)))
        succeeded = True
        return record
    finally:
        if logger is not None:
            import wandb

            wandb.finish(exit_code=0 if succeeded else 1)  # a crashed or interrupted run is marked failed
