"""The training job: prepare -> baseline -> fit -> final, read top to bottom in :func:`train`.

What a run writes and when is owned by :mod:`embexp.train.record` (``run.json``,
``baseline.json``, ``metrics.json``, ``per_query.jsonl``, ``provenance.json``); Lightning
writes ``checkpoints/`` (``last.ckpt`` after every epoch with the RNG states, the curriculum
and the cost timers for a bit-exact resume; the best epoch by ``monitor``); ``model/`` holds
the adapter (PEFT ``save_pretrained``) or the full weights, the tokenizer and the prefixes.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ProgressBar
from omegaconf import DictConfig, OmegaConf

from embexp.config.schema import RunConfig
from embexp.data.card import data_card, format_card
from embexp.data.prepare import PreparedData, prepare_data
from embexp.eval.build import build_evaluator
from embexp.eval.evaluator import RetrievalEvaluator
from embexp.eval.keys import BASELINE, FINAL, staged
from embexp.mining.curriculum import Curriculum
from embexp.model.adapters import AdapterInfo, apply_adapter, check_against_model
from embexp.model.encoder import BiEncoder, build_encoder, encoder_token_counter, resolve_precision
from embexp.tracking import wandb as tracking
from embexp.train import cost
from embexp.train.callbacks import RunState, StepBudget
from embexp.train.checkpoint_io import AtomicCheckpointIO
from embexp.train.data import PairDataModule
from embexp.train.module import BiEncoderModule
from embexp.train.preflight import check_config
from embexp.train.record import RunRecord
from embexp.train.selection import Selection
from embexp.train.slurm import requeue_if_slurm
from embexp.utils.io import atomic_folder
from embexp.utils.logs import interactive, quiet_libraries
from embexp.utils.provenance import code_version
from embexp.utils.signals import Interrupted, interruptible

log = logging.getLogger("embexp.train")


@dataclass
class Parts:
    """What every phase reads: the data, the encoder and the evaluators."""

    data: PreparedData
    encoder: BiEncoder
    test_eval: RetrievalEvaluator
    dev_eval: RetrievalEvaluator | None
    card: dict  # the data card (embexp.data.card), also logged before training


@dataclass
class Baseline:
    metrics: dict  # baseline/<split>/... (empty with train.baseline=false)
    rows: list[dict]  # per-query rows of the eval split, model=baseline
    corpus_embeddings: np.ndarray | None  # only when computed in this process (mining round 0 re-uses them)
    wall_s: float | None


def train(cfg: DictConfig, out: Path) -> dict:
    """Run (or resume, or return) the job in ``out``; the run record (``metrics.json``).

    Before any work the folder is held for this process's life (one writer per run folder), must be
    a run's own or new, and is bound to the config. From then on a signal ends the run as
    ``interrupted`` (resumable; exit status 128 + n) and an error as ``failed``."""
    rc = check_config(cfg, task="train")  # cheap checks, typed nodes: nothing loaded or written yet
    quiet_libraries()  # Lightning, imported by now, logs through the run's log only
    record = RunRecord(out)
    record.check_ours()  # never start in, or move aside, a folder of someone else's files
    with interruptible(), record.lock():
        if cfg.get("force", False):
            record.start_over()
        done = record.bind(cfg)  # refuses a folder made with another config
        if done is not None:
            return done
        try:
            return run(cfg, rc, out, record)
        except Interrupted as e:
            record.interrupt(e.signal_name)
            requeue_if_slurm(e.signum)
            raise
        except Exception as e:
            record.fail(f"{type(e).__name__}: {e}".splitlines()[0])
            raise


def run(cfg: DictConfig, rc: RunConfig, out: Path, record: RunRecord) -> dict:
    """prepare -> baseline -> fit -> final, in a bound and held run folder; ``rc``: the typed
    nodes the pre-flight checked (``cfg`` still holds the ``_target_`` nodes and the run keys)."""
    pl.seed_everything(int(cfg.seed), workers=True)
    parts = prepare(cfg, rc)
    curriculum = Curriculum(cfg, parts.data, out)  # builds a negatives source of yours before the baseline
    base = baseline(rc, parts, record)
    curriculum.prepare(parts.encoder, corpus_embeddings=base.corpus_embeddings)
    info = apply_adapter(parts.encoder, rc.adapter)
    if rc.model.compile:  # after the adapter: the compiled forward includes it
        parts.encoder.compile_backbone(rc.model.compile_backend)
    selection = Selection.of(cfg, parts.encoder, base.metrics)
    module, dm = build_module(cfg, rc, parts)
    state = RunState()
    config = {**tracking.comparison_keys(cfg), **OmegaConf.to_container(cfg, resolve=True)}  # + flat keys
    logger = tracking.make_logger(cfg.get("logger"), save_dir=out, run_id=str(cfg.run_id), config=config)
    machinery = [state, curriculum.attach(module, dm)]
    trainer = build_trainer(cfg, out, machinery, logger, has_dev=parts.dev_eval is not None, dm=dm)
    ok = False
    try:
        fitted = fit_and_test(trainer, module, dm, out, selection)
        if trainer.is_global_zero:  # DDP: rank 0 writes model/ (RunRecord guards the run files)
            with atomic_folder(out / "model") as tmp:  # whole or absent, never half a model
                parts.encoder.save(tmp, base_model=str(cfg.model.name_or_path), name_or_path=out / "model")
        result = finish(cfg, record, parts, base, module, dm, info, state, curriculum, fitted)
        if logger is not None:
            log_model = bool(cfg.logger.wandb.get("log_model", False))
            tracking.log_run_summary(logger.experiment, result, model_dir=out / "model", log_model=log_model)
        ok = True
        return result
    except Interrupted as e:  # the other ranks Lightning started get the signal too (it passes on
        stop_launched_ranks(trainer, e.signum)  # SIGTERM only), never left in a collective
        raise
    finally:
        tracking.finish(logger, ok)


def stop_launched_ranks(trainer: pl.Trainer, signum: int) -> None:
    """Send ``signum`` to the processes Lightning's launcher started for the other DDP ranks."""
    launcher = getattr(trainer.strategy, "launcher", None)
    if launcher is not None and hasattr(launcher, "kill") and trainer.is_global_zero:
        launcher.kill(signum)


def prepare(cfg, rc: RunConfig) -> Parts:
    """Data (validated, split, leak-free), the base encoder, the dev and test evaluators."""
    data = prepare_data(rc.data)
    PairDataModule.preflight(data, cfg)  # no negative possible: DataError; partly: data card warnings
    for note in data.notes:
        log.info(note)
    encoder = build_encoder(rc.model)
    check_against_model(encoder, rc.adapter)
    card = data_card(
        data,
        min_positive_grade=rc.data.min_positive_grade,
        count_tokens=encoder_token_counter(encoder),
        max_lengths={k: encoder.spec.max_length(k) for k in ("query", "passage")},
        seed=int(cfg.seed),
    )
    log.info("data card\n%s", format_card(card))
    test_eval = build_evaluator(rc.eval, data, split=data.eval_split, cache_dir=cfg.paths.cache_dir)
    dev_eval = None
    if data.dev:
        dev = {"split": "dev", "qrels": data.dev, "cache_dir": None, "show_progress": False}
        dev_eval = build_evaluator(rc.eval, data, **dev)
    return Parts(data, encoder, test_eval, dev_eval, card)


def baseline(rc: RunConfig, parts: Parts, record: RunRecord) -> Baseline:
    """The untouched base model on test and dev; saved with its per-query rows, so a resumed
    run keeps both (``baseline.json``)."""
    if not rc.train.baseline:
        return Baseline({}, [], None, None)
    saved = record.load_baseline()
    if saved is not None:
        return Baseline(saved["metrics"], saved.get("per_query") or [], None, saved.get("wall_s"))
    t0 = time.perf_counter()
    test = parts.test_eval(parts.encoder, keep_embeddings=True)
    metrics = staged(BASELINE, test.metrics)
    if parts.dev_eval is not None:
        dev = parts.dev_eval(parts.encoder, corpus_embeddings=test.corpus_embeddings)
        metrics.update(staged(BASELINE, dev.metrics))
    rows = [{**r, "model": BASELINE} for r in test.per_query_rows(top=rc.eval.per_query_top)]
    wall = time.perf_counter() - t0
    record.save_baseline(metrics, rows, wall)
    return Baseline(metrics, rows, test.corpus_embeddings, wall)


def build_module(cfg, rc: RunConfig, parts: Parts) -> tuple[BiEncoderModule, PairDataModule]:
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
        batch_size=rc.train.batch_size,
        n_negatives=rc.negatives.n_negatives,
        no_duplicates=rc.train.no_duplicates,
        num_workers=rc.train.num_workers,
        seed=int(cfg.seed),
        group_by_length=rc.train.group_by_length,
    )
    return module, dm


def fit_and_test(
    trainer: pl.Trainer, module: BiEncoderModule, dm: PairDataModule, out: Path, selection: Selection
) -> dict:
    """Fit (continuing from ``last.ckpt`` when a killed run left one), then evaluate what model
    selection hands over (:mod:`embexp.train.selection`): the best epoch, which Lightning restores,
    the final weights as they are, or the base model when it beats every epoch on dev."""
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
        "model_selection": selection.decide(trainer, module),
    }
    ckpt, chosen = best_checkpoint(trainer), fitted["model_selection"] or {}
    if chosen.get("selected") == "base":
        selection.restore(module.encoder)
        ckpt, module.restored_epoch = None, None
    elif (chosen.get("final_vs_best") or {}).get("kept"):  # the weights as training left them
        ckpt, module.restored_epoch = None, chosen["final_vs_best"]["epoch"]
    t0 = time.perf_counter()
    trainer.test(module, datamodule=dm, ckpt_path=ckpt, verbose=False)
    fitted["final_eval_s"] = time.perf_counter() - t0
    return fitted


def apply_step_budget(trainer: pl.Trainer, cfg, n_batches: int) -> dict:
    """``train.max_steps`` / ``train.val_every_steps`` on a built Trainer (which knows its world
    size and gradient accumulation): an epoch (validation, re-mining, checkpoint) is
    ``val_every_steps`` optimizer steps, by default ``ceil(max_steps / trainer.max_epochs)``, never
    more than a full pass (``n_batches`` single-process batches, shared by the ranks); without
    ``max_steps`` the run keeps ``trainer.max_epochs`` passes' worth of steps. Returns what it set."""
    max_steps, every = cfg.train.get("max_steps"), cfg.train.get("val_every_steps")
    if (max_steps is None and every is None) or getattr(trainer, "fast_dev_run", False):
        return {}  # fast_dev_run sets its own limits
    acc = int(trainer.accumulate_grad_batches)
    per_rank = math.ceil(n_batches / trainer.world_size)  # batches of one pass on each rank
    pass_steps = max(1, math.ceil(per_rank / acc))  # optimizer steps of one pass
    epochs = max(1, int(cfg.trainer.get("max_epochs") or 1))
    max_steps = int(max_steps) if max_steps is not None else epochs * pass_steps
    epoch = max(1, min(int(every) if every is not None else -(-max_steps // epochs), pass_steps))
    budget = {"max_steps": max_steps, "max_epochs": -(-max_steps // epoch), "epoch_steps": epoch}
    if epoch < pass_steps:
        trainer.limit_train_batches = budget["limit_train_batches"] = epoch * acc
    # Lightning's own max_steps stays unset: with it, Lightning takes a resume from an end-of-epoch
    # checkpoint for a restart inside that epoch, replays its end and counts it twice (a killed
    # budgeted run resumed one epoch short). StepBudget ends the last, possibly partial, epoch.
    trainer.fit_loop.max_epochs = budget["max_epochs"]
    log.info("step budget: %s", budget)
    return budget


def build_trainer(
    cfg, out: Path, machinery: list, logger, *, has_dev: bool, dm: PairDataModule | None = None
) -> pl.Trainer:
    """Lightning's Trainer from ``cfg.trainer`` and ``cfg.callbacks`` (each entry instantiated;
    null entries dropped) plus the run machinery (exact-resume state, curriculum)."""
    callbacks = [
        instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None and "_target_" in c
    ]
    kwargs = OmegaConf.to_container(cfg.trainer, resolve=True)
    kwargs["precision"] = resolve_precision(kwargs.get("precision"))
    if not interactive() and kwargs.get("enable_progress_bar") is not True:
        # a log file gets ProgressLog's lines, not a bar's stale last frame
        bars = [c for c in callbacks if isinstance(c, ProgressBar)]
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
        kwargs["enable_progress_bar"] = False
        if bars:
            log.info(
                "stderr is not a terminal: progress lines instead of %s (+trainer.enable_progress_bar=true "
                "keeps the bar)",
                type(bars[0]).__name__,
            )
    if not has_dev:  # nothing to validate on: no best epoch, the last one is evaluated
        kwargs["limit_val_batches"] = 0
    # checkpoints written next to their target and renamed into place (never a truncated last.ckpt)
    plugins = [instantiate(p) if isinstance(p, dict) else p for p in kwargs.pop("plugins", None) or []]
    budget = StepBudget()  # validates the last steps of a budget (inert without one)
    trainer = instantiate(
        kwargs,
        callbacks=[*callbacks, *machinery, budget],
        plugins=[*plugins, AtomicCheckpointIO()],
        logger=logger or False,
        default_root_dir=str(out),
    )
    if dm is not None:
        budget.max_steps = apply_step_budget(trainer, cfg, len(dm.train_dataloader())).get("max_steps")
    return trainer


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
    run_cost = run_costs(record, parts, base, module, info, state, fitted)
    selection = fitted.get("model_selection")
    negatives = curriculum.summary()
    warnings = [
        *parts.card.get("warnings", []),
        *negatives.get("warnings", []),
        *([selection["warning"]] if selection and selection.get("warning") else []),
        *learned_nothing(state),
        *parts.test_eval.notes,
        *(parts.dev_eval.notes if parts.dev_eval is not None else []),
    ]
    metrics = {
        **base.metrics,
        **staged(FINAL, final.metrics),
        **staged(FINAL, final_dev.metrics if final_dev else {}),
    }
    result = {
        "run_id": str(cfg.run_id),
        "seed": int(cfg.seed),
        "metrics": metrics,
        "primary_metric": f"{FINAL}/{final.primary_metric}",
        "cost": run_cost,
        "data": parts.data.summary(),
        "data_card": parts.card,
        "n_train_pairs": run_cost["n_train_pairs"],
        "negatives": negatives,
        "model_selection": selection,
        "dev_history": module.dev_history,
        "warnings": warnings,
    }
    rows = [{**r, "model": FINAL} for r in final.per_query_rows(top=int(cfg.eval.per_query_top))] + base.rows
    provenance = {
        "base_model": str(cfg.model.name_or_path),
        "encoder_spec": vars(parts.encoder.spec),
        "final_encoder_fingerprint": parts.encoder.fingerprint(),
        "data": parts.data.summary(),
        "config": OmegaConf.to_container(cfg, resolve=True),
        "code": code_version(),
    }
    return record.finish(result, rows, provenance)


def learned_nothing(state: RunState) -> list[str]:
    """A warning when the training loss was exactly 0 at every step: no gradient ever reached the
    model (every in-batch and mined negative masked away), whatever epoch model selection names."""
    if state.steps and state.nonzero_loss_steps() == 0:
        return [
            f"the training loss was 0 at every one of {state.steps} steps: no negative was ever left "
            "unmasked, so the model learned nothing and its numbers are the base model's (see the data "
            "card's training_signal)"
        ]
    return []


def run_costs(
    record: RunRecord, parts: Parts, base: Baseline, module, info: AdapterInfo, state: RunState, fitted: dict
) -> dict:
    """What the run cost. ``n_train_pairs`` counts the pairs actually stepped on (every segment of
    a resumed run, any budget), so ``pairs_per_s`` is right under ``train.max_steps`` too."""
    final = module.test_results["test"]
    train_s = state.elapsed()
    return {
        **info.as_dict(),
        "train_wall_s": train_s,
        "reembed_corpus_s": final.timings.get("encode_corpus_s")
        or (module.last_eval.timings.get("encode_corpus_s") if module.last_eval else None),
        "baseline_eval_s": base.wall_s,
        "final_eval_s": fitted["final_eval_s"],
        "peak_rss_mb": cost.peak_rss_mb(),
        "peak_cuda_mb": cost.peak_cuda_mb(),
        "validation_s": module.val_time_s,
        "n_train_pairs": state.pairs,
        "n_train_examples": parts.data.n_train_pairs,
        "passes": state.pairs / max(1, parts.data.n_train_pairs),
        "pairs_per_s": state.pairs / max(1e-9, train_s - module.val_time_s),
        "train_steps": fitted["train_steps"],
        "epochs": fitted["epochs"],
        "best_epoch": module.restored_epoch,
        "selected": (fitted.get("model_selection") or {}).get("selected"),
        "model_size_mb": cost.dir_size_mb(record.out / "model"),
        "precision": str(fitted["precision"]),
        "device": str(parts.encoder.device),
    }
