"""One factory for what is trained: ``full``, ``lora`` (PEFT) or ``last_layer``.

The ``adapter`` node is a typed schema per kind (``embexp.config.schema``: ``FullAdapter``,
``LoraAdapter`` with ``to_peft()``, ``LastLayerAdapter``), checked when it becomes its
object; :func:`check_against_model` adds what only the loaded model can tell, and
:func:`apply_adapter` sets the model up. Every call returns the trainable and total parameter
counts, which every run records.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from torch import nn

from embexp.config.schema import ADAPTER_SCHEMAS, FullAdapter, LastLayerAdapter, LoraAdapter
from embexp.config.store import to_schema
from embexp.errors import ConfigError
from embexp.model.encoder import BiEncoder

log = logging.getLogger("embexp.model")

KINDS = tuple(ADAPTER_SCHEMAS)
AdapterConfig = FullAdapter | LoraAdapter | LastLayerAdapter


@dataclass
class AdapterInfo:
    kind: str
    trainable_params: int
    total_params: int

    def as_dict(self) -> dict:
        return {
            "adapter": self.kind,
            "trainable_params": self.trainable_params,
            "total_params": self.total_params,
            "trainable_fraction": self.trainable_params / max(1, self.total_params),
        }


def count_params(module: nn.Module) -> tuple[int, int]:
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    total = sum(p.numel() for p in module.parameters())
    return trainable, total


def _layer_list(model: nn.Module) -> nn.ModuleList:
    """The transformer's block list (``encoder.layer`` in BERT, ``layers`` elsewhere): the
    longest ModuleList whose name ends in layer/layers/h/block(s)."""
    best = None
    for name, mod in model.named_modules():
        is_blocks = isinstance(mod, nn.ModuleList) and re.search(r"(^|\.)(layer|layers|h|blocks?)$", name)
        if is_blocks and (best is None or len(mod) > len(best)):
            best = mod
    if best is None:
        raise ConfigError("adapter.kind", f"last_layer: no transformer layer list in {type(model).__name__}")
    return best


def adapter_config(cfg) -> AdapterConfig:
    """``cfg`` (the ``adapter`` node, a dict, or already a schema object) as its schema object:
    types, unknown keys and values are checked there (errors name ``adapter.<key>``)."""
    return to_schema(cfg, ADAPTER_SCHEMAS, "adapter")


def check_against_model(encoder: BiEncoder, cfg) -> AdapterConfig:
    """What only the loaded model can tell: the LoRA target modules exist in it, it has the
    ``n_layers`` to train. Changes nothing; returns the adapter's schema object."""
    adapter = adapter_config(cfg)
    backbone = encoder.backbone
    if isinstance(adapter, LoraAdapter):
        names = {name.rsplit(".", 1)[-1] for name, _ in backbone.named_modules()}
        missing = [t for t in adapter.target_modules if t not in names]
        if missing:
            linear = sorted(
                {n.rsplit(".", 1)[-1] for n, m in backbone.named_modules() if isinstance(m, nn.Linear)}
            )
            msg = f"{missing} not found in {type(backbone).__name__}; its linear modules are {linear}"
            raise ConfigError("adapter.target_modules", msg)
    if isinstance(adapter, LastLayerAdapter):
        layers = _layer_list(backbone)
        if adapter.n_layers > len(layers):
            n = adapter.n_layers
            raise ConfigError("adapter.n_layers", f"the model has {len(layers)} layers, asked to train {n}")
    return adapter


def apply_adapter(encoder: BiEncoder, cfg) -> AdapterInfo:
    """Set up ``encoder`` for training according to ``cfg`` (in place) and count params."""
    adapter = check_against_model(encoder, cfg)
    backbone = encoder.backbone
    if isinstance(adapter, FullAdapter):
        for p in backbone.parameters():
            p.requires_grad_(True)
    elif isinstance(adapter, LastLayerAdapter):
        for p in backbone.parameters():
            p.requires_grad_(False)
        for layer in list(_layer_list(backbone))[-adapter.n_layers :]:
            for p in layer.parameters():
                p.requires_grad_(True)
        pooler = getattr(backbone, "pooler", None)
        if adapter.train_pooler and pooler is not None and encoder.spec.pooling == "cls":
            for p in pooler.parameters():
                p.requires_grad_(True)
    else:
        from peft import get_peft_model

        encoder.backbone = get_peft_model(backbone, adapter.to_peft())
    trainable, total = count_params(encoder.backbone)
    log.info("adapter %s: %s trainable of %s parameters", adapter.kind, f"{trainable:,}", f"{total:,}")
    return AdapterInfo(adapter.kind, trainable, total)


# ---- backwards-compatible names (callers move to adapter_config / check_against_model) -----
def validate_adapter(cfg) -> None:
    """Deprecated: :func:`adapter_config` (``embexp.train.preflight.check_config`` runs it)."""
    adapter_config(cfg)


def check_adapter(encoder: BiEncoder, cfg) -> None:
    """Deprecated: :func:`check_against_model`."""
    check_against_model(encoder, cfg)


def merged_backbone(encoder: BiEncoder) -> nn.Module:
    """A plain HF model with LoRA weights folded in (a copy; the encoder is unchanged)."""
    import copy

    bb = encoder.backbone
    if hasattr(bb, "merge_and_unload"):
        return copy.deepcopy(bb).merge_and_unload()
    return bb
