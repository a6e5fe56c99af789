"""Typed configuration: schemas (one dataclass per kind of config node), their registration in
Hydra's ConfigStore, and the cheap checks every run does before it loads anything.

Layering: :mod:`embexp.config.schema` and :mod:`embexp.config.store` import only the standard
library, omegaconf, hydra and :mod:`embexp.errors` (every layer may import them);
:mod:`embexp.config.checks` imports the data, model, eval and mining layers and sits between
``train`` and ``mining``. This package exposes ``check_config`` lazily so that importing a
schema never imports the checks.
"""

from embexp.config.schema import (
    ADAPTER_SCHEMAS,
    DATA_SCHEMAS,
    LOSS_SCHEMAS,
    MINED,
    NEGATIVES_SCHEMAS,
    SCHEMAS,
    BeirData,
    EvalConfig,
    FullAdapter,
    InBatchNegatives,
    InfoNCELossConfig,
    LastLayerAdapter,
    LoraAdapter,
    MinedNegatives,
    ModelConfig,
    PairsData,
    QuickstartData,
    TrainSettings,
    TripletLossConfig,
)
from embexp.config.store import config_error, register, to_schema

register()

__all__ = [
    "ADAPTER_SCHEMAS",
    "DATA_SCHEMAS",
    "LOSS_SCHEMAS",
    "MINED",
    "NEGATIVES_SCHEMAS",
    "SCHEMAS",
    "BeirData",
    "EvalConfig",
    "FullAdapter",
    "InBatchNegatives",
    "InfoNCELossConfig",
    "LastLayerAdapter",
    "LoraAdapter",
    "MinedNegatives",
    "ModelConfig",
    "PairsData",
    "QuickstartData",
    "TrainSettings",
    "TripletLossConfig",
    "check_config",
    "config_error",
    "register",
    "to_schema",
]


def __getattr__(name: str):
    if name == "check_config":  # the checks import higher layers: loaded on first use only
        from embexp.config.checks import check_config

        return check_config
    raise AttributeError(f"module 'embexp.config' has no attribute {name!r}")
