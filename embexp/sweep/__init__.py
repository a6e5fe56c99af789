"""Optuna sweeps inside Hydra multirun (``hydra/sweeper=embexp_optuna``; see sweeps/README.md).

space.py     Hydra sweep syntax -> Optuna distributions, conditional params, override text,
             the list of a finite space's param sets
study.py     storage / study (safe for workers starting together) / sampler / pruner from config
             values, the trial budget rules, the duplicate check
sweeper.py   the ask -> launch -> tell loop: heartbeats, stale-trial retries, failures,
             duplicates closed unlaunched
trial.py     the job side: failures become a picklable reason, metrics.json says "failed"
pruning.py   the job side: report the dev metric per epoch, prune
report.py    trials.csv, best_params.yaml, plots, the W&B summary run
"""
