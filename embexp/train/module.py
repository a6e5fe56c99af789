"""A thin LightningModule: embeds with the injected encoder, scores with the injected
loss, validates and tests with the injected evaluators. No pooling, LoRA wiring or FAISS here."""

from __future__ import annotations

from collections.abc import Callable

import lightning.pytorch as pl
import torch

from embexp.eval.evaluator import EvalResult, RetrievalEvaluator
from embexp.losses.cached import cached_loss
from embexp.model.encoder import BiEncoder
from embexp.train.callbacks import planned_steps


class BiEncoderModule(pl.LightningModule):
    """``validation``: the dev evaluator re-embeds the corpus once per epoch (callbacks read
    ``last_eval`` in ``on_validation_end``). ``test``: the test evaluator (and the dev evaluator,
    on the same corpus embeddings) scores the weights Lightning restored, into ``test_results``."""

    def __init__(
        self,
        encoder: BiEncoder,
        loss: torch.nn.Module,
        optimizer: Callable,
        scheduler: Callable | None = None,
        evaluator: RetrievalEvaluator | None = None,
        test_evaluator: RetrievalEvaluator | None = None,
    ):
        super().__init__()
        self.encoder = encoder
        self.loss = loss
        self._loss_takes_keys = takes_keys(loss)  # once, not per step
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.evaluator = evaluator
        self.test_evaluator = test_evaluator
        self.last_eval: EvalResult | None = None
        self.last_eval_epoch: int | None = None
        self.last_eval_fingerprint: str | None = None
        self.val_time_s = 0.0  # wall time spent re-embedding and scoring dev (excluded from pairs/s)
        self.test_results: dict[str, EvalResult] = {}
        self.restored_epoch: int | None = None
        self.dev_history: list[dict] = []  # per validation: epoch, step and the dev metrics (no slices)
        self.dev_per_query: dict[int, dict] = {}  # epoch -> query id -> metric -> value (model selection)

    def on_train_start(self) -> None:
        # dropout on from the first step, whatever ran before (a loaded model is in eval mode;
        # a resumed run skips the baseline evaluation that used to leave it in train mode)
        self.encoder.train()

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        if getattr(self.loss, "runs_encoder", False):  # GradCache: the encoder runs inside the loss's step
            loss, b = cached_loss(self.encoder, batch, self.loss), batch["query"]["input_ids"].size(0)
        else:
            q = self.encoder(**batch["query"]).embeddings  # (batch, dim)
            p = self.encoder(**batch["passage"]).embeddings  # (batch * (1 + n_neg), dim)
            b, n = q.size(0), batch["n_neg"]
            negatives = p[b:].view(b, n, -1) if n else None  # (batch, n_neg, dim)
            # keys: the mask's keys as hashes, for a loss that gathers across DDP ranks (it says so)
            keys = {"keys": batch["keys"]} if self._loss_takes_keys and "keys" in batch else {}
            loss = self.loss(q, p[:b], negatives, mask=batch["mask"].to(q.device), **keys)
        self.log("train/loss", loss, prog_bar=True, batch_size=b)
        return loss

    def validation_step(self, batch, batch_idx):  # the work happens once per epoch, below
        return None

    def test_step(self, batch, batch_idx):
        return None

    def on_validation_epoch_end(self) -> None:
        if self.evaluator is None or self.trainer.sanity_checking:
            return
        result = self.evaluator(self.encoder, keep_embeddings=True)
        self.val_time_s += result.timings.get("total_s", 0.0)
        self.last_eval, self.last_eval_epoch = result, self.current_epoch
        self.last_eval_fingerprint = self.encoder.fingerprint()
        overall = {k: v for k, v in result.metrics.items() if "/slice/" not in k}
        self.dev_history.append({"epoch": self.current_epoch, "step": self.global_step, **overall})
        self.dev_per_query[self.current_epoch] = result.per_query
        self.log_dict({k: v for k, v in overall.items() if k != result.primary_metric})
        self.log(result.primary_metric, result.primary, prog_bar=True)

    def on_test_epoch_end(self) -> None:
        """Final evaluation of the restored weights; re-uses the corpus embeddings of the last
        validation when it ran on these exact weights."""
        reuse = None
        if self.last_eval is not None and self.last_eval_fingerprint == self.encoder.fingerprint():
            reuse = self.last_eval.corpus_embeddings
        final = self.test_evaluator(
            self.encoder, corpus_embeddings=reuse, keep_embeddings=self.evaluator is not None
        )
        self.test_results = {"test": final}
        if self.evaluator is not None:  # same corpus: only the dev queries are encoded
            self.test_results["dev"] = self.evaluator(self.encoder, corpus_embeddings=final.corpus_embeddings)
        final.corpus_embeddings = None

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["embexp_dev_history"] = self.dev_history
        checkpoint["embexp_dev_per_query"] = self.dev_per_query
        checkpoint["embexp_last_eval_fingerprint"] = self.last_eval_fingerprint  # the weights validated last

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.restored_epoch = checkpoint.get("epoch")
        fitting = self._trainer is not None and self.trainer.state.fn == "fit"
        if fitting and "embexp_dev_history" in checkpoint:  # a resumed run keeps its history
            self.dev_history = list(checkpoint["embexp_dev_history"])
            self.dev_per_query = dict(checkpoint.get("embexp_dev_per_query") or {})
            self.last_eval_fingerprint = checkpoint.get("embexp_last_eval_fingerprint")

    def configure_optimizers(self):
        params = [p for p in self.encoder.parameters() if p.requires_grad]
        precision = str(getattr(self._trainer, "precision", None) or "32-true")
        opt = self.optimizer_factory(
            params=params, **fused_default(self.optimizer_factory, params, precision)
        )
        if self.scheduler_factory is None:
            return opt
        sched = self.scheduler_factory(opt, num_training_steps=planned_steps(self.trainer))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def fused_default(factory: Callable, params: list, precision: str = "32-true") -> dict:
    """``{"fused": True}`` for torch's Adam/AdamW (a ``functools.partial``, as Hydra builds
    ``optimizer``) when every parameter is on CUDA, the precision is not fp16 and the config sets
    neither ``fused`` nor ``foreach``: one kernel for the whole update instead of a launch per
    tensor. Not on the CPU (the default, foreach, stays, so CPU runs keep their numbers) and not
    with fp16 (a fused optimizer unscales its own gradients, and Lightning's fp16 scaler then
    refuses gradient clipping)."""
    func, given = getattr(factory, "func", None), getattr(factory, "keywords", None) or {}
    if func not in (torch.optim.AdamW, torch.optim.Adam) or "fused" in given or "foreach" in given:
        return {}
    if precision.startswith("16") or "fp16" in precision:
        return {}
    return {"fused": True} if params and all(p.is_cuda for p in params) else {}


def takes_keys(loss: torch.nn.Module) -> bool:
    """Whether the training step passes ``keys=`` to ``loss``: it declares ``takes_keys = True``
    (``embexp.losses``) and its ``forward`` has a ``keys`` argument (a subclass of
    ``InfoNCELoss`` with its own ``forward(q, p, negatives, mask)`` inherits the declaration
    but cannot take them)."""
    import inspect

    if not getattr(loss, "takes_keys", False):
        return False
    params = inspect.signature(loss.forward).parameters
    return "keys" in params or any(p.kind is p.VAR_KEYWORD for p in params.values())
