"""Model selection: which weights a finished fit hands over (tests, saves, exports).

Candidates: the base model (its dev score comes from the baseline) and every validated epoch.

1. **Base.** If no epoch beats the base model on ``monitor``, the run says so (log, ``metrics.json``,
   W&B) and, with ``train.select_base`` (default), keeps the base weights.
2. **Best epoch or final weights** (``train.selection``):

   - ``best``: the epoch with the best dev score, as Lightning's ModelCheckpoint records it.
   - ``final_unless_beaten`` (default): the weights training ended with (the last validated epoch),
     unless the best epoch beats them *significantly* on the dev queries. The test is the decision
     report's: a paired sign-flip randomization test of the per-query monitored metric,
     two-sided, ``p < train.selection_alpha`` (0.05). The final weights must also beat the base
     model on dev; otherwise the best epoch is kept.

Why the default: picking the maximum of a few noisy dev scores selects noise when the dev split is
small. On SciFact's carved 81-query dev split, epoch 1 led epoch 2 by 0.023 MRR@10 (p = 0.37).
Epoch 2 was 0.026 nDCG@10 better on test (BENCHMARKS.md §10). The learning-rate schedule is built
to end at the final step, so a move away from its end needs evidence, not a lead within noise.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import lightning.pytorch as pl
import numpy as np
import torch

from embexp.config.schema import TrainSettings
from embexp.config.store import to_schema
from embexp.eval.keys import BASELINE, FINAL
from embexp.eval.stats import paired_comparison
from embexp.model.encoder import BiEncoder

log = logging.getLogger("embexp.train")


@dataclass
class Selection:
    """The base model's dev score and the trainable weights it starts from (LoRA's B = 0, the
    loaded weights otherwise), to put back when no epoch beats it; the rule between the best and
    the final epoch."""

    monitor: str
    score: float | None
    keep: bool  # train.select_base
    weights: dict
    rule: str = "final_unless_beaten"
    alpha: float = 0.05
    seed: int = 0

    @classmethod
    def of(cls, cfg, encoder: BiEncoder, base_metrics: dict) -> Selection:
        monitor = str(cfg.get("monitor") or "")
        train = to_schema(cfg.train, TrainSettings, "train")
        keep = train.select_base
        score = base_metrics.get(f"{BASELINE}/{monitor}")
        weights = (  # on the CPU: a full fine-tune's copy must not double the accelerator's memory
            {n: p.detach().to("cpu", copy=True) for n, p in encoder.named_parameters() if p.requires_grad}
            if keep and score is not None
            else {}
        )
        return cls(monitor, score, keep, weights, train.selection, train.selection_alpha, int(cfg.seed))

    def restore(self, encoder: BiEncoder) -> None:
        params = dict(encoder.named_parameters())
        with torch.no_grad():
            for n, w in self.weights.items():
                params[n].copy_(w.to(params[n].device))

    def decide(self, trainer: pl.Trainer, module) -> dict | None:
        """What the run hands over: ``selected`` is ``base``, ``epoch N`` (the monitoring
        checkpoint's best, or the last validated epoch without one) or ``final (epoch N)`` (the
        weights as training left them). None without a dev score for both the base and an epoch."""
        scored = [(h["epoch"], h[self.monitor]) for h in module.dev_history if self.monitor in h]
        cb = next((c for c in trainer.checkpoint_callbacks if c.monitor == self.monitor), None)
        if self.score is None or not scored and (cb is None or cb.best_model_score is None):
            return None
        mode = cb.mode if cb is not None else "max"
        if cb is not None and cb.best_model_score is not None:
            best = float(cb.best_model_score)
            epoch = next((e for e, v in scored if math.isclose(v, best, rel_tol=1e-6)), None)
        else:
            epoch, best = scored[-1]  # no best checkpoint: the last weights are tested
        sign = 1.0 if mode == "max" else -1.0
        base_wins = sign * self.score >= sign * best
        selected = (
            "base" if base_wins and self.keep else (f"epoch {epoch}" if epoch is not None else "best epoch")
        )
        out = {"monitor": self.monitor, "mode": mode, "base": self.score, "best_epoch": epoch}
        out.update(best_epoch_score=best, base_wins=base_wins, select_base=self.keep, rule=self.rule)
        last = scored[-1] if scored else None
        if not base_wins and self.rule == "final_unless_beaten" and last and epoch not in (None, last[0]):
            final = self.final_vs_best(module, epoch, last, sign)
            out["final_vs_best"] = final
            if final["kept"]:
                selected = f"{FINAL} (epoch {last[0]})"
        out["selected"] = selected
        if base_wins:
            kept = (
                "keeps the base weights (train.select_base=true): final metrics and model/ are the base's"
                if self.keep
                else f"keeps epoch {epoch} anyway (train.select_base=false), worse than the base on dev"
            )
            out["warning"] = (
                f"NO EPOCH BEATS THE BASE MODEL on {self.monitor} ({mode}): base {self.score:.4f}, "
                f"best epoch {epoch} {best:.4f}; the run {kept}. Try another recipe (lr, adapter, negatives)."
            )
            log.warning(out["warning"])
        return out

    def final_vs_best(self, module, best_epoch: int, last: tuple[int, float], sign: float) -> dict:
        """The paired test of the best epoch against the final weights on the dev queries;
        ``kept``: the final weights are handed over (and why, in ``reason``)."""
        last_epoch, last_score = last
        out = {"epoch": last_epoch, "score": last_score, "alpha": self.alpha}
        if module.last_eval_fingerprint != module.encoder.fingerprint():
            return {**out, "kept": False, "reason": "the weights changed after the last validation"}
        if sign * last_score <= sign * self.score:
            return {**out, "kept": False, "reason": "the final epoch does not beat the base model on dev"}
        metric = self.monitor.split("/", 1)[-1]
        per_query = module.dev_per_query
        a, b = per_query.get(best_epoch), per_query.get(last_epoch)
        if not a or not b or sorted(a) != sorted(b) or any(metric not in v for v in a.values()):
            return {**out, "kept": False, "reason": f"no per-query dev values of {metric} for both epochs"}
        qs = sorted(a)
        cmp = paired_comparison(
            sign * np.array([a[q][metric] for q in qs]),
            sign * np.array([b[q][metric] for q in qs]),
            seed=self.seed,
        )
        beaten = cmp.diff > 0 and cmp.p < self.alpha
        low, high = sorted((sign * cmp.low, sign * cmp.high))  # of mean(best - final), in the metric's units
        out.update(diff=sign * cmp.diff, low=low, high=high, p=cmp.p, n=cmp.n)
        reason = (
            f"epoch {best_epoch} beats the final epoch {last_epoch} on {self.monitor} by {cmp.diff:+.4f} "
            f"over {cmp.n} dev queries, p = {cmp.p:.3g} {'<' if beaten else '>='} {self.alpha}"
        )
        log.info(
            "model selection: %s: keeping %s",
            reason,
            f"epoch {best_epoch}" if beaten else "the final weights",
        )
        return {**out, "kept": not beaten, "reason": reason}
