"""Hydra sweeper plugin: Optuna on current releases (the published hydra-optuna-sweeper pins
optuna<3). Select it with ``hydra/sweeper=embexp_optuna`` or an ``hparams_search`` config.

The modules here stay light (no optuna import) because Hydra imports every module under
``hydra_plugins`` at start-up; the work lives in :mod:`embexp.sweep`.
"""
