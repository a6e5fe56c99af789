"""Typed configuration: schemas (one dataclass per kind of config node, the one home of every
default), their registration in Hydra's ConfigStore, and node -> schema conversion.

Layering: the lowest layer above :mod:`embexp.utils` and :mod:`embexp.errors`; it imports only
the standard library, omegaconf, hydra and :mod:`embexp.errors`. Each layer checks its own node
beside its code (``data_config``, ``model_config``, ``eval_config``, ``validate_negatives``,
``adapter_config``) and the run's pre-flight, :func:`embexp.train.preflight.check_config`, calls
them.
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
    RunConfig,
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
    "RunConfig",
    "TrainSettings",
    "TripletLossConfig",
    "config_error",
    "register",
    "to_schema",
]
