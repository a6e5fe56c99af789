"""A thin LightningModule: embeds with the injected encoder, scores with the injected
loss, validates with the injected evaluator. No pooling, LoRA wiring or FAISS here."""

from __future__ import annotations

from typing import Callable

import lightning.pytorch as pl
import torch

from embexp.eval.evaluator import EvalResult, RetrievalEvaluator
from embexp.model.encoder import BiEncoder


class BiEncoderModule(pl.LightningModule):
    def __init__(
        self,
        encoder: BiEncoder,
        loss: torch.nn.Module,
        optimizer: Callable,
        scheduler: Callable | None = None,
        evaluator: RetrievalEvaluator | None = None,
    ):
        super().__init__()
        self.encoder = encoder
        self.loss = loss
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.evaluator = evaluator
        self.last_eval: EvalResult | None = None
        self.last_eval_fingerprint: str | None = None
        self.val_time_s = 0.0  # wall time spent re-embedding and scoring dev (excluded from pairs/s)
        self.eval_hooks: list[Callable[[EvalResult, int], None]] = []  # mining, pruning

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        q = self.encoder(**batch["query"]).embeddings  # (batch, dim)
        p = self.encoder(**batch["passage"]).embeddings  # (batch * (1 + n_neg), dim)
        b, n = q.size(0), batch["n_neg"]
        negatives = p[b:].view(b, n, -1) if n else None  # (batch, n_neg, dim)
        loss = self.loss(q, p[:b], negatives, mask=batch["mask"].to(q.device))
        self.log("train/loss", loss, prog_bar=True, batch_size=b)
        return loss

    def validation_step(self, batch, batch_idx):  # the work happens once per epoch, below
        return None

    def on_validation_epoch_end(self) -> None:
        if self.evaluator is None or self.trainer.sanity_checking:
            return
        result = self.evaluator(self.encoder, keep_embeddings=True)
        self.val_time_s += result.timings.get("total_s", 0.0)
        self.last_eval = result
        self.last_eval_fingerprint = self.encoder.fingerprint()
        self.log_dict({k: v for k, v in result.metrics.items() if "/slice/" not in k and k != result.primary_metric})
        self.log(result.primary_metric, result.primary, prog_bar=True)
        for hook in self.eval_hooks:
            hook(result, self.current_epoch)

    def configure_optimizers(self):
        params = [p for p in self.encoder.parameters() if p.requires_grad]
        opt = self.optimizer_factory(params=params)
        if self.scheduler_factory is None:
            return opt
        sched = self.scheduler_factory(opt, num_training_steps=self.trainer.estimated_stepping_batches)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
