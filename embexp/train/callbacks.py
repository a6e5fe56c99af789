"""Run machinery as Lightning callbacks: exact-resume state and progress lines for log files."""

from __future__ import annotations

import logging
import os
import random
import time

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.trainer.states import TrainerFn

from embexp.train.cost import process_age_s
from embexp.train.record import rebase_paths
from embexp.utils.logs import interactive

log = logging.getLogger("embexp.train")
STATE_KEY = "embexp_run_state"


def rng_states() -> dict:
    """Every generator a training step may draw from (dropout, sampling, shuffles)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    numpy_state = [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)]
    states = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": numpy_state,
    }  # plain types:
    # Lightning loads checkpoints with torch.load(weights_only=True)
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    random.setstate(states["python"])
    kind, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


class RunState(pl.Callback):
    """What a bit-exact continuation needs beyond weights, optimizer and loop counters: the
    RNG states at the moment of the checkpoint and the run's cost timers (train wall time and
    validation time add up over every segment of a resumed run).

    The states are stored in the checkpoint under ``embexp_run_state`` and restored only when
    fitting resumes (not when ``trainer.test`` loads the best epoch)."""

    def __init__(self):
        self.pairs = 0  # training pairs (query rows) stepped on, over every segment
        self.steps = 0  # training batches, over every segment
        self._nonzero: torch.Tensor | int = 0  # of them with a loss other than 0 (on the device: no sync)
        self.train_s = 0.0  # fit wall time of earlier segments (restored from the checkpoint)
        self._t0: float | None = None
        self.resumed_at_step: int | None = None
        self._first_step_logged = False
        self._stopped_before = False  # the checkpoint was written after training had decided to stop

    def elapsed(self) -> float:
        return self.train_s + (time.perf_counter() - self._t0 if self._t0 is not None else 0.0)

    def on_train_start(self, trainer, pl_module) -> None:
        self._t0 = time.perf_counter()
        if self._stopped_before:  # early stopping (or the budget) had ended training: take no step
            log.info(
                "training had ended when the run was stopped (early stopping or budget): no further step"
            )
            trainer.should_stop = True

    def on_train_end(self, trainer, pl_module) -> None:
        self.train_s, self._t0 = self.elapsed(), None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if not self._first_step_logged:
            self._first_step_logged = True
            age = process_age_s()
            log.info(
                "%s step %d: %s after the process started",
                "resumed at" if self.resumed_at_step is not None else "first training",
                trainer.global_step,
                f"{age:.1f} s" if age is not None else "(unknown time)",
            )

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if isinstance(batch, dict) and "query" in batch:  # every DDP rank steps on a batch this size
            self.pairs += int(batch["query"]["input_ids"].shape[0]) * int(trainer.world_size)
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor):
            self.steps += 1
            self._nonzero = self._nonzero + (loss.detach() != 0).to(torch.int64)

    def nonzero_loss_steps(self) -> int:
        return int(self._nonzero)

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint[STATE_KEY] = {
            "rng": rng_states(),
            "pairs": self.pairs,
            "steps": self.steps,
            "nonzero_loss_steps": self.nonzero_loss_steps(),
            "train_s": self.elapsed(),
            "val_s": float(getattr(pl_module, "val_time_s", 0.0)),
            # Lightning does not keep should_stop: a run killed after early stopping ended its
            # training would otherwise train one more epoch on resume
            "stopping": bool(getattr(trainer, "should_stop", False)),
        }

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        follow_moved_folder(trainer, checkpoint)  # also when trainer.test loads the best epoch
        if trainer.state.fn != TrainerFn.FITTING:
            return
        state = checkpoint.get(STATE_KEY)
        if state is None:
            log.warning("checkpoint has no RNG state (older embexp): the continuation is not bit-exact")
            return
        set_rng_states(state["rng"])
        self.train_s = float(state["train_s"])
        self.pairs = int(state.get("pairs", 0))
        self.steps = int(state.get("steps", 0))
        self._nonzero = int(state.get("nonzero_loss_steps", self.steps))  # older checkpoints: unknown
        pl_module.val_time_s = float(state["val_s"])
        self.resumed_at_step = int(checkpoint.get("global_step", 0))
        self._stopped_before = bool(state.get("stopping", False))


def follow_moved_folder(trainer, checkpoint: dict) -> None:
    """Point the checkpoint callbacks' restored state at the folder the run is in now.

    A run folder moved or copied after a kill binds to its config (the checkpoint folder is hashed
    relative to the run folder: :mod:`embexp.train.record`), but ``last.ckpt`` still names the old
    folder: Lightning would then drop the best score (any later epoch would become "best") and keep
    the old ``best_model_path`` (a missing file, or another copy's). Every path under the recorded
    ``dirpath`` is rewritten to the same place under the callback's ``dirpath``. Called from
    :meth:`RunState.on_load_checkpoint`: Lightning calls every callback's ``on_load_checkpoint``
    before any callback's ``load_state_dict``."""
    states, moves = checkpoint.get("callbacks") or {}, set()
    for cb in trainer.checkpoint_callbacks:
        state = states.get(cb.state_key)
        old, new = (state or {}).get("dirpath"), getattr(cb, "dirpath", None)
        if not old or not new:
            continue
        old, new = os.path.normpath(old), os.path.normpath(new)
        if old == new:
            continue
        states[cb.state_key] = rebase_paths(state, old, new)
        moves.add((old, new))
    for old, new in sorted(moves) if trainer.is_global_zero else ():
        log.info("run folder moved: checkpoint paths under %s now point to %s", old, new)


class ProgressLog(pl.Callback):
    """A line every ``every_s`` seconds (step, epoch, loss, pairs/s, ETA) when stderr is not a
    terminal, so a log file shows progress that a progress bar only draws on a terminal."""

    def __init__(self, every_s: float = 30.0, force: bool = False):
        self.every_s, self.force = float(every_s), force
        self._last = self._t0 = None
        self._step0 = 0

    def on_train_start(self, trainer, pl_module) -> None:
        self._t0 = self._last = time.perf_counter()
        self._step0 = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.every_s <= 0 or (interactive() and not self.force):
            return
        now = time.perf_counter()
        if now - self._last < self.every_s:
            return
        self._last = now
        done = trainer.global_step - self._step0
        rate = done / max(1e-9, now - self._t0)
        total = planned_steps(trainer)
        eta = (total - trainer.global_step) / rate if rate > 0 and total not in (None, float("inf")) else None
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        pairs = rate * int(batch["query"]["input_ids"].shape[0]) if isinstance(batch, dict) else None
        log.info(
            "step %d/%s epoch %d loss %s %s ETA %s",
            trainer.global_step,
            total,
            trainer.current_epoch,
            f"{float(loss):.4f}" if loss is not None else "-",
            f"{pairs:.1f} pairs/s" if pairs else "",
            f"{eta:.0f} s" if eta is not None else "-",
        )


class StepBudget(pl.Callback):
    """``train.max_steps`` ends the run *after validating* the last steps: Lightning's own
    ``max_steps`` stops mid-epoch without a validation, so the last weights would never be a
    model-selection candidate. Requesting a stop at the budget makes Lightning validate first.

    The budget is enforced here only (Lightning's ``max_steps`` stays unset, see
    :func:`embexp.train.run.apply_step_budget`); a run resumed after its budget was spent (killed
    during the final evaluation) takes no further step."""

    def __init__(self, max_steps: int | None = None):
        self.max_steps = max_steps  # None: no budget

    def spent(self, trainer) -> bool:
        return self.max_steps is not None and trainer.global_step >= self.max_steps

    def on_train_start(self, trainer, pl_module) -> None:
        if self.spent(trainer):
            trainer.should_stop = True

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.spent(trainer):
            trainer.should_stop = True


def planned_steps(trainer) -> int:
    """The optimizer steps the run will take: the step budget when there is one (Lightning's
    estimate counts whole epochs), else Lightning's ``estimated_stepping_batches``."""
    for cb in trainer.callbacks:
        if isinstance(cb, StepBudget) and cb.max_steps is not None:
            return int(cb.max_steps)
    return trainer.estimated_stepping_batches
