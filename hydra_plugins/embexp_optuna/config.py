"""The sweeper's config node, registered as ``hydra/sweeper=embexp_optuna``.

Every field is documented in ``sweeps/README.md``.
"""

# No "from __future__ import annotations": Hydra executes plugin modules before registering them
# in sys.modules, and dataclasses then cannot resolve string annotations.

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class EmbexpOptunaSweeperConf:
    _target_: str = "hydra_plugins.embexp_optuna.sweeper.EmbexpOptunaSweeper"

    # study identity and persistence
    study_name: Optional[str] = None  # null: the hparams_search name, else "embexp"
    storage: Optional[str] = (
        None  # null: sqlite:///<hydra.sweep.dir>/optuna.db; postgresql://... for several workers
    )
    # objectives: one direction, or a list (one per key of optimized_metric)
    direction: Any = "maximize"
    # budget: n_trials counts COMPLETE + PRUNED + FAIL trials of the whole study (all workers,
    # all runs of the command); trials killed with their worker are retried and count once; a
    # duplicate param set is never launched nor counted; a finite space caps it at its size
    n_trials: int = 20
    n_jobs: int = 1  # trials per launcher batch (parallel with a parallel launcher)
    # search
    sampler: str = "tpe"  # tpe (constant_liar on) | random | grid | cmaes | nsga2
    seed: Optional[int] = None
    sampler_kwargs: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)  # key: Hydra sweep syntax
    conditional: dict[str, Any] = field(
        default_factory=dict
    )  # key: "other==value" | "other!=value" | "other in [a, b]"
    custom_search_space: Optional[str] = None  # "module.fn(trial, params) -> dict of extra overrides"
    # pruning (single objective): reports after every validation epoch
    pruner: str = "none"  # none | median | percentile | hyperband | successive_halving | threshold
    pruner_kwargs: dict[str, Any] = field(default_factory=dict)
    pruning_metric: Optional[str] = None  # null: optimized_metric with final/<split>/ -> dev/
    # failure tolerance
    max_failure_rate: float = 0.5  # abort once FAILs > max_failure_rate * n_trials
    heartbeat_interval: Optional[int] = 60  # seconds; RDB storages only; null disables stale-trial detection
    grace_period: Optional[int] = (
        None  # seconds without heartbeat before a RUNNING trial is stale (null: 2 x interval)
    )
    max_retry: int = 2  # retries of a stale (killed) trial
    # outputs
    plots: bool = True
    trial_dir: str = (
        "trial_{number}"  # run folder of a trial under hydra.sweep.dir (a retry reuses its original's)
    )


ConfigStore.instance().store(
    group="hydra/sweeper", name="embexp_optuna", node=EmbexpOptunaSweeperConf, provider="embexp"
)
