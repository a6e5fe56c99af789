"""The run machinery's callbacks on their own: what RunState counts and restores, and the step
budget that ends the last (partial) epoch."""

from types import SimpleNamespace as NS

import torch

from embexp.train.callbacks import RunState, StepBudget, planned_steps
from embexp.train.run import learned_nothing


def _batch(n=4):
    return {"query": {"input_ids": torch.zeros(n, 3, dtype=torch.long)}}


def test_a_loss_of_zero_at_every_step_is_said_and_survives_a_resume():
    trainer = NS(world_size=1, state=NS(fn="fit"), checkpoint_callbacks=[], is_global_zero=True)
    s = RunState()
    for _ in range(3):
        s.on_train_batch_end(trainer, None, {"loss": torch.tensor(0.0)}, _batch(), 0)
    assert s.steps == 3 and s.pairs == 12 and s.nonzero_loss_steps() == 0
    (warning,) = learned_nothing(s)
    assert "0 at every one of 3 steps" in warning
    ckpt = {}
    s.on_save_checkpoint(trainer, NS(val_time_s=0.0), ckpt)
    resumed = RunState()
    resumed.on_load_checkpoint(trainer, NS(val_time_s=0.0), {**ckpt, "global_step": 3})
    resumed.on_train_batch_end(trainer, None, {"loss": torch.tensor(0.5)}, _batch(), 0)
    assert resumed.steps == 4 and resumed.nonzero_loss_steps() == 1 and learned_nothing(resumed) == []


def test_the_step_budget_stops_at_the_budget_and_sizes_the_schedule():
    budget = StepBudget(10)
    trainer = NS(global_step=9, should_stop=False, callbacks=[budget], estimated_stepping_batches=12)
    budget.on_train_batch_end(trainer, None, None, None, 0)
    assert not trainer.should_stop
    trainer.global_step = 10
    budget.on_train_batch_end(trainer, None, None, None, 0)
    assert trainer.should_stop and planned_steps(trainer) == 10  # not Lightning's whole-epoch estimate
    resumed = NS(global_step=10, should_stop=False)  # resumed after the budget was spent
    budget.on_train_start(resumed, None)
    assert resumed.should_stop
    assert planned_steps(NS(callbacks=[StepBudget()], estimated_stepping_batches=12)) == 12


def test_a_run_stopped_after_early_stopping_ended_training_takes_no_further_step():
    """Lightning does not keep ``should_stop`` in a checkpoint: a run killed during its final
    evaluation after early stopping had ended training used to train one more epoch on resume."""
    trainer = NS(world_size=1, state=NS(fn="fit"), checkpoint_callbacks=[], is_global_zero=True)
    s, ckpt = RunState(), {}
    trainer.should_stop = True  # early stopping decided at the last validation
    s.on_save_checkpoint(trainer, NS(val_time_s=0.0), ckpt)
    resumed, fresh = RunState(), NS(should_stop=False, global_step=9)
    resumed.on_load_checkpoint(trainer, NS(val_time_s=0.0), {**ckpt, "global_step": 9})
    resumed.on_train_start(fresh, None)
    assert fresh.should_stop
    trainer.should_stop, ckpt = False, {}
    s.on_save_checkpoint(trainer, NS(val_time_s=0.0), ckpt)
    again, fresh = RunState(), NS(should_stop=False, global_step=9)
    again.on_load_checkpoint(trainer, NS(val_time_s=0.0), {**ckpt, "global_step": 9})
    again.on_train_start(fresh, None)
    assert not fresh.should_stop
