"""The negative curriculum: which hard negatives training sees, and when they change.

``negatives.kind`` (config group ``negatives``):

``in_batch``
    No mined negatives: every other row of the batch is a negative.
``static``
    Mined once from the **base** model before any update (or read from
    ``negatives.file``), used for the whole run.
``iterative``
    Round 0 as ``static``; then, after the validation of epoch ``e``, re-mined from the
    current weights when ``(e + 1) % refresh_every == 0`` and another epoch follows. The
    corpus embeddings the validation has just computed are re-used (the hook runs
    right after the evaluator, before any further optimizer step, so they are the
    current weights' embeddings); only the training queries are encoded afresh. When
    no validation ran that epoch (no dev split, ``check_val_every_n_epoch > 1``) the
    corpus is encoded in ``on_train_epoch_end`` instead.

``warmup_epochs = E`` (static and iterative): epochs ``0..E-1`` train with in-batch
negatives only (the collate draws 0 hard negatives); from epoch ``E`` on each example
gets ``n_negatives`` from the pool. An iterative run with ``E > 0`` mines its first
pool after the validation of epoch ``E - 1``, from the warmed-up weights.

Batches pick the new pool up through the data module: :meth:`PairDataModule.set_negatives`
swaps ``dm.collator`` and the DataLoader's ``collate_fn`` looks it up on every batch;
Lightning creates the next epoch's iterator (and prefetches its first batch) after
``on_train_epoch_start``, so a pool set during validation or at an epoch boundary is
used from the next epoch's first batch on. Each collated batch records which round's
pool it came from (``pool_round_by_epoch`` in the summary; in-process, i.e. with
``train.num_workers=0``).

Every round writes ``negatives.jsonl`` + ``negatives.provenance.json`` (the current
pool) and appends to ``mining_rounds.jsonl`` in the run directory, logs a line, and
logs ``mining/*`` metrics to the trainer's loggers (W&B).
"""

from __future__ import annotations

import logging
from pathlib import Path

import lightning.pytorch as pl
import numpy as np

from embexp.config.schema import EvalConfig, MinedNegatives
from embexp.config.store import to_schema
from embexp.data.prepare import PreparedData
from embexp.mining.config import MINED, _get, load_veto, negatives_config, validate_negatives
from embexp.mining.files import (
    NEGATIVES_FILE,
    read_provenance,
    read_rounds,
    write_negatives,
    write_rounds,
)
from embexp.mining.miner import MiningResult
from embexp.mining.rounds import (  # noqa: F401 - re-exported: the round's functions lived here
    MiningInputs,
    describe_round,
    encode_corpus,
    example_coverage,
    file_coverage_cause,
    mine_with_encoder,
    pool_from_file,
    provenance_record,
)
from embexp.mining.sources import MinerSource, MiningRequest, NegativeSource, load_source, plugin_round
from embexp.utils.dist import broadcast_object, is_main_process

log = logging.getLogger("embexp.mining")


# ---- the curriculum ------------------------------------------------------------------------
class _TaggedCollator:
    """Wraps the data module's collator to record which pool each epoch's batches used."""

    def __init__(self, inner, tag, sink: dict):
        self.inner, self.tag, self.sink = inner, tag, sink

    def __call__(self, items):
        if items:
            self.sink.setdefault(int(items[0][1]), set()).add(self.tag)
        return self.inner(items)

    def __getattr__(self, name):  # doc_keys, examples, ... (only called for missing attributes)
        if name in ("inner", "tag", "sink") or name.startswith("__"):
            raise AttributeError(name)
        return getattr(self.inner, name)


class Curriculum(pl.Callback):
    """Owns the mined pool for one training run. ``prepare`` (before the adapter is
    applied: the base model) mines or loads round 0; ``attach`` wires the pool into the
    data module and registers the re-mining hook; it is also the Lightning callback."""

    def __init__(self, cfg, data: PreparedData, out_dir: str | Path):
        self.params = validate_negatives(cfg.negatives)
        self.node = negatives_config(cfg.negatives)  # typed: InBatchNegatives or MinedNegatives
        self.kind = self.node.kind
        self.n_negatives = self.node.n_negatives
        mined = isinstance(self.node, MinedNegatives)
        self.warmup = self.node.warmup_epochs if mined and self.enabled else 0
        self.refresh_every = self.node.refresh_every if mined else 1
        self.data, self.out = data, Path(out_dir)
        ev = cfg.get("eval") or {}
        ev = to_schema(ev, EvalConfig, "eval")
        self.batch_size, self.dtype = ev.batch_size, ev.dtype
        paths = cfg.get("paths") or {}
        self.cache_dir = _get(paths, "cache_dir") if ev.cache else None
        self.inputs: MiningInputs | None = None
        self.veto_pairs = self.veto = None
        self.pool: dict[str, list[str]] | None = None
        self.pool_round: int | None = None
        self.rounds: list[dict] = []
        self.used: dict[int, set] = {}  # epoch -> pool rounds its batches came from (None: in-batch only)
        self.active = False
        self.dm = self.module = self.trainer = None
        self._mined_after: set[int] = set()
        self._unlogged: list[dict] = []
        self._code: dict | None = None
        self.min_coverage = self.node.min_coverage if mined else 0.0
        self.plugin = load_source(self.node) if mined else None  # negatives.source, if any
        self.source: NegativeSource | None = None  # built in prepare (the miner needs the veto)

    @property
    def enabled(self) -> bool:
        return self.kind in MINED

    # ---- before training ----------------------------------------------------------------
    def prepare(self, encoder, corpus_embeddings: np.ndarray | None = None) -> Curriculum:
        """Round 0 from ``encoder`` (the base model), unless a pool is reused: the run's
        own pool when resuming or when its provenance matches, or ``negatives.file``."""
        if not self.enabled:
            return self
        self.inputs = MiningInputs.from_data(self.data)
        self.veto_pairs, self.veto = load_veto(self.node)
        self.source = self.plugin or MinerSource(
            self.params,
            batch_size=self.batch_size,
            dtype=self.dtype,
            veto_pairs=self.veto_pairs,
            veto=self.veto,
        )
        if self._resume(encoder):
            return self
        file = self.node.file
        if file not in (None, ""):
            self._from_file(Path(str(file)).expanduser(), encoder)
        elif self.kind == "static" or self.warmup == 0:
            self._mine(
                encoder,
                corpus_embeddings=corpus_embeddings,
                corpus_source="baseline",
                epoch=None,
                cache_dir=self.cache_dir,
            )
        return self

    def _resume(self, encoder) -> bool:
        path = self.out / NEGATIVES_FILE
        prov = read_provenance(path)
        if not path.exists() or prov is None:
            return False
        same = (
            prov.get("kind") == self.kind
            and prov.get("negatives_source") == self.node.source
            and prov.get("dataset_fingerprint") == self.data.dataset.fingerprint
            and prov.get("params") == self.params.as_dict()
        )
        if not same:
            return False
        resuming = (self.out / "checkpoints" / "last.ckpt").exists()
        if not resuming and (
            prov.get("round") != 0 or prov.get("encoder_fingerprint") != encoder.fingerprint()
        ):
            return False
        self.pool, _ = pool_from_file(path, self.inputs)
        self.pool_round = int(prov.get("round") or 0)
        self.rounds = read_rounds(self.out)
        self._mined_after = {int(r["epoch"]) for r in self.rounds if r.get("epoch") is not None}
        log.info("negatives: re-using this run's pool of round %s (%s)", self.pool_round, path)
        return True

    def _from_file(self, path: Path, encoder) -> None:
        self.pool, info = pool_from_file(path, self.inputs)
        self.pool_round = 0
        src = read_provenance(path) or {}
        if src.get("dataset_fingerprint") not in (None, self.data.dataset.fingerprint):
            log.warning(
                "negatives file %s was mined on another dataset version (fingerprint %s, this data %s)",
                path,
                src.get("dataset_fingerprint"),
                self.data.dataset.fingerprint,
            )
        rec = {
            "round": 0,
            "epoch": None,
            "source": "file",
            **info,
            "source_encoder_fingerprint": src.get("encoder_fingerprint"),
        }
        rows = [
            {"query_id": q, "negatives": [{"doc_id": d, "score": None, "rank": None} for d in negs]}
            for q, negs in sorted(self.pool.items())
        ]
        self._write(
            rows,
            provenance_record(
                self.kind,
                0,
                None,
                None,
                src.get("encoder_fingerprint"),
                self.data,
                self.params,
                self._veto_cfg(),
                rec,
                self._code_version(),
                {"source_file": str(path), "source_provenance": src},
            ),
        )
        self._record(rec)

    # ---- wiring ---------------------------------------------------------------------------
    def attach(self, module, dm) -> Curriculum:
        self.module, self.dm = module, dm
        if self.enabled:
            self._apply(self.pool is not None and self.warmup == 0)
        return self

    def _apply(self, active: bool) -> None:
        """Point the data module at the pool (active) or at in-batch only."""
        self.active = active
        if self.dm is None:
            return
        self.dm.n_negatives = self.n_negatives if active else 0
        self.dm.set_negatives(self.pool if active else None)
        self.dm.collator = _TaggedCollator(self.dm.collator, self.pool_round if active else None, self.used)

    # ---- Lightning hooks ----------------------------------------------------------------------
    def on_train_start(self, trainer, pl_module) -> None:
        self.trainer = trainer
        if self.enabled:
            self._sync(trainer.current_epoch)
        self._flush_logs()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.trainer = trainer
        if self.enabled:
            self._sync(trainer.current_epoch)

    def _sync(self, epoch: int) -> None:
        want = self.pool is not None and epoch >= self.warmup
        if want != self.active:
            self._apply(want)
            if want:
                log.info(
                    "negatives: epoch %d trains with the mined pool of round %s (%d negatives per example)",
                    epoch,
                    self.pool_round,
                    self.n_negatives,
                )

    def _due(self, epoch: int) -> bool:
        if self.kind != "iterative" or epoch in self._mined_after:
            return False
        nxt = epoch + 1
        max_epochs = self.trainer.max_epochs if self.trainer is not None else None
        if max_epochs not in (None, -1) and nxt >= max_epochs:
            return False  # no epoch left to use a new pool
        if nxt < self.warmup:
            return False
        return self.pool is None or nxt % self.refresh_every == 0

    def on_validation_end(self, trainer, pl_module) -> None:
        """Right after each validation (before the checkpoints are written): re-mine when due."""
        self.trainer = trainer
        result = getattr(pl_module, "last_eval", None)
        if not self.enabled or trainer.sanity_checking or result is None:
            return
        if getattr(pl_module, "last_eval_epoch", None) != trainer.current_epoch:
            return
        self.on_eval(result, trainer.current_epoch)

    def on_eval(self, result, epoch: int) -> None:
        """Called right after the validation of ``epoch``, with its result."""
        if self.module is not None:
            self.trainer = getattr(self.module, "_trainer", None) or self.trainer
        if not self._due(epoch):
            return
        emb = result.corpus_embeddings
        fresh = (
            emb is not None
            and (self.module is None or self.module.last_eval is result)
            and emb.shape[0] == len(self.data.dataset.corpus)
        )
        self._remine(epoch, emb if fresh else None, "validation" if fresh else "encoded")

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.trainer = trainer
        if self.enabled and self._due(trainer.current_epoch):  # no validation ran this epoch
            self._remine(trainer.current_epoch, None, "encoded")

    def _remine(self, epoch: int, corpus_embeddings, source: str) -> None:
        self._mine(
            self.module.encoder if self.module is not None else None,
            corpus_embeddings=corpus_embeddings,
            corpus_source=source,
            epoch=epoch,
            cache_dir=None,
        )
        self._mined_after.add(epoch)
        if epoch + 1 >= self.warmup:
            self._apply(True)
        self._flush_logs()

    # ---- one round ----------------------------------------------------------------------------
    def _mine(
        self, encoder, *, corpus_embeddings, corpus_source: str, epoch: int | None, cache_dir
    ) -> MiningResult:
        round_ = 0 if self.pool_round is None else self.pool_round + 1
        request = MiningRequest(
            self.data,
            self.inputs,
            encoder,
            corpus_embeddings,
            round_,
            epoch,
            self.pool,
            corpus_source,
            cache_dir,
        )
        plugin = self.plugin is not None
        result = plugin_round(self.plugin, self.node.source, request) if plugin else self.source(request)
        fp = encoder.fingerprint() if encoder is not None else None
        # DDP: every rank mined from the same gathered embeddings; rank 0's result is the one used
        # everywhere (no rank can drift on a floating-point tie), and only rank 0 writes the files
        result = broadcast_object(result)
        self.pool, self.pool_round = result.doc_ids(), round_
        source = "mined" if self.plugin is None else str(self.node.source)
        rec = {"round": round_, "epoch": epoch, "source": source, "encoder_fingerprint": fp, **result.stats}
        self._write(
            result.rows(),
            provenance_record(
                self.kind,
                round_,
                epoch,
                encoder,
                fp,
                self.data,
                self.params,
                self._veto_cfg(),
                result.stats,
                self._code_version(),
                {"negatives_source": self.node.source} if self.plugin is not None else None,
            ),
        )
        self._record(rec)
        return result

    def _write(self, rows: list[dict], provenance: dict) -> None:
        if is_main_process():  # DDP: every rank holds the same pool; rank 0 writes it
            write_negatives(self.out / NEGATIVES_FILE, rows, provenance)

    def _record(self, rec: dict) -> None:
        rec.update(self.coverage(self.pool or {}))
        self._check_coverage(rec)
        self.rounds.append(rec)
        if is_main_process():  # DDP: rank 0 writes
            write_rounds(self.out, self.rounds)
        log.info(describe_round(rec))
        self._unlogged.append(rec)

    def coverage(self, pool: dict[str, list[str]]) -> dict:
        return example_coverage(pool, self.data.train_positives, self.n_negatives)

    def _check_coverage(self, rec: dict) -> None:
        cov = rec.get("example_coverage")
        if cov is None or cov >= self.min_coverage:
            return
        shares = {k[len("removed_") : -len("_share")]: v for k, v in rec.items() if k.startswith("removed_")}
        shares = {k: v for k, v in shares.items() if v}
        if rec.get("source") == "file":
            cause = file_coverage_cause(rec, self.pool or {}, self.data.train_positives, self.n_negatives)
        elif shares:
            top = max(shares, key=shares.get)
            cause = f"the filter that removed most window candidates: {top} ({shares[top]:.0%} of them)"
        else:
            cause = "the window held too few candidates (negatives.window / depth, or a small corpus)"
        msg = (
            f"mining round {rec.get('round')}: only {cov:.0%} of {rec['n_examples']} training examples "
            f"got {max(1, self.n_negatives)} mined negative(s) (negatives.min_coverage="
            f"{self.min_coverage}); {rec['n_examples_topped_up']} are topped up with "
            f"{rec['n_random_negatives']} random documents per epoch, i.e. easy negatives; {cause}"
        )
        if self.params is not None and self.params.margin_reference == "lowest" and "margin" in cause:
            msg += "; negatives.margin_reference=best keeps hard negatives on multi-positive data"
        log.warning(msg)
        rec["warning"] = msg  # summary()["warnings"] collects them (they travel in the checkpoint)

    def _flush_logs(self) -> None:
        loggers = getattr(self.trainer, "loggers", None) if self.trainer is not None else None
        if not loggers:
            return
        for rec in self._unlogged:
            metrics = {
                f"mining/{k}": float(v)
                for k, v in rec.items()
                if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "epoch"
            }
            for lg in loggers:
                lg.log_metrics(metrics, step=self.trainer.global_step)
        self._unlogged = []

    def _veto_cfg(self) -> dict:
        return {"file": self.node.veto_file, "hook": self.node.veto_hook}

    def _code_version(self) -> dict:
        if self._code is None:
            from embexp.utils.provenance import code_version

            self._code = code_version()
        return self._code

    # ---- exact resume: the pool, its round and history travel in the checkpoint ---------------
    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        if self.enabled:
            checkpoint["embexp_curriculum"] = {
                "pool": self.pool,
                "pool_round": self.pool_round,
                "rounds": self.rounds,
                "mined_after": sorted(self._mined_after),
                "used": {
                    int(e): sorted(v, key=lambda x: -1 if x is None else x) for e, v in self.used.items()
                },
            }

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        from lightning.pytorch.trainer.states import TrainerFn

        state = checkpoint.get("embexp_curriculum")
        if not self.enabled or state is None or trainer.state.fn != TrainerFn.FITTING:
            return
        self.pool, self.pool_round = state["pool"], state["pool_round"]
        self.rounds, self._mined_after = list(state["rounds"]), set(state["mined_after"])
        self.used = {int(e): set(v) for e, v in state["used"].items()}
        self.active = None  # re-applied to the data module in on_train_start

    def summary(self) -> dict:
        out = {"kind": self.kind, "n_negatives": self.n_negatives}
        if not self.enabled:
            return out
        keys = (
            "round",
            "epoch",
            "source",
            "n_queries",
            "n_negatives",
            "wall_s",
            "mine_s",
            "mean_positive_rank",
            "false_negative_rate",
            "overlap_previous",
            "corpus_source",
            "example_coverage",
            "n_examples_topped_up",
            "n_random_negatives",
        )
        out.update(
            {
                "warmup_epochs": self.warmup,
                "refresh_every": self.refresh_every if self.kind == "iterative" else None,
                "params": self.params.as_dict(),
                "n_rounds": len(self.rounds),
                "min_coverage": self.min_coverage,
                "warnings": [r["warning"] for r in self.rounds if r.get("warning")],
                "rounds": [{k: r.get(k) for k in keys} for r in self.rounds],
                "pool_round_by_epoch": {
                    str(e): sorted(v, key=lambda x: -1 if x is None else x)
                    for e, v in sorted(self.used.items())
                },
            }
        )
        return out
