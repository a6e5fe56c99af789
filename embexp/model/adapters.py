"""One factory for what is trained: ``full``, ``lora`` (PEFT) or ``last_layer``.

Every call returns the trainable and total parameter counts, which every run records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from torch import nn

from embexp.errors import ConfigError
from embexp.model.encoder import BiEncoder

KINDS = ("full", "lora", "last_layer")


@dataclass
class AdapterInfo:
    kind: str
    trainable_params: int
    total_params: int

    def as_dict(self) -> dict:
        return {"adapter": self.kind, "trainable_params": self.trainable_params, "total_params": self.total_params, "trainable_fraction": self.trainable_params / max(1, self.total_params)}


def count_params(module: nn.Module) -> tuple[int, int]:
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    total = sum(p.numel() for p in module.parameters())
    return trainable, total


def _get(cfg, key, default=None):
    return cfg.get(key, default) if hasattr(cfg, "get") else getattr(cfg, key, default)


def _layer_list(model: nn.Module) -> nn.ModuleList:
    """The transformer's block list (``encoder.layer`` in BERT, ``layers`` elsewhere): the
    longest ModuleList whose name ends in layer/layers/h/block(s)."""
    best = None
    for name, mod in model.named_modules():
        if isinstance(mod, nn.ModuleList) and re.search(r"(^|\.)(layer|layers|h|blocks?)$", name):
            if best is None or len(mod) > len(best):
                best = mod
    if best is None:
        raise ConfigError("adapter.kind", f"last_layer: cannot find the transformer layers of {type(model).__name__}")
    return best


def validate_adapter(cfg) -> None:
    kind = _get(cfg, "kind")
    if kind not in KINDS:
        raise ConfigError("adapter.kind", f"must be one of {KINDS}, got {kind!r}")
    if kind == "lora":
        r = _get(cfg, "r")
        if isinstance(r, bool) or not isinstance(r, int) or r <= 0:
            raise ConfigError("adapter.r", f"LoRA rank must be a positive integer, got {r!r}")
        alpha = _get(cfg, "alpha")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha <= 0:
            raise ConfigError("adapter.alpha", f"must be a positive number, got {alpha!r}")
        d = _get(cfg, "dropout", 0.0)
        if not isinstance(d, (int, float)) or not 0 <= d < 1:
            raise ConfigError("adapter.dropout", f"must be in [0, 1), got {d!r}")
        tm = _get(cfg, "target_modules")
        if not tm or isinstance(tm, str):
            raise ConfigError("adapter.target_modules", f"must be a non-empty list of module names, got {tm!r}")
    if kind == "last_layer":
        n = _get(cfg, "n_layers", 1)
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise ConfigError("adapter.n_layers", f"must be a positive integer, got {n!r}")


def check_adapter(encoder: BiEncoder, cfg) -> None:
    """Validate ``cfg`` against the loaded model without changing it (before any work)."""
    validate_adapter(cfg)
    backbone = encoder.backbone
    if _get(cfg, "kind") == "lora":
        targets = list(_get(cfg, "target_modules"))
        names = {name.rsplit(".", 1)[-1] for name, _ in backbone.named_modules()}
        missing = [t for t in targets if t not in names]
        if missing:
            linear = sorted({name.rsplit(".", 1)[-1] for name, m in backbone.named_modules() if isinstance(m, nn.Linear)})
            raise ConfigError("adapter.target_modules", f"{missing} not found in {type(backbone).__name__}; its linear modules are {linear}")
    if _get(cfg, "kind") == "last_layer":
        n, layers = int(_get(cfg, "n_layers", 1)), _layer_list(backbone)
        if n > len(layers):
            raise ConfigError("adapter.n_layers", f"the model has {len(layers)} layers, asked to train {n}")


def apply_adapter(encoder: BiEncoder, cfg) -> AdapterInfo:
    """Set up ``encoder`` for training according to ``cfg`` (in place) and count params."""
    check_adapter(encoder, cfg)
    kind = _get(cfg, "kind")
    backbone = encoder.backbone
    if kind == "full":
        for p in backbone.parameters():
            p.requires_grad_(True)
    elif kind == "last_layer":
        n = int(_get(cfg, "n_layers", 1))
        for p in backbone.parameters():
            p.requires_grad_(False)
        layers = _layer_list(backbone)
        for layer in list(layers)[-n:]:
            for p in layer.parameters():
                p.requires_grad_(True)
        if _get(cfg, "train_pooler", True) and getattr(backbone, "pooler", None) is not None and encoder.spec.pooling == "cls":
            for p in backbone.pooler.parameters():
                p.requires_grad_(True)
    else:
        from peft import LoraConfig, TaskType, get_peft_model

        targets = list(_get(cfg, "target_modules"))
        lcfg = LoraConfig(
            task_type=TaskType.FEATURE_EXTRACTION,
            r=int(_get(cfg, "r")),
            lora_alpha=float(_get(cfg, "alpha")),
            lora_dropout=float(_get(cfg, "dropout", 0.0)),
            target_modules=targets,
            bias="none",
        )
        encoder.backbone = get_peft_model(backbone, lcfg)
    trainable, total = count_params(encoder.backbone)
    return AdapterInfo(kind, trainable, total)


def merged_backbone(encoder: BiEncoder) -> nn.Module:
    """A plain HF model with LoRA weights folded in (a copy; the encoder is unchanged)."""
    import copy

    bb = encoder.backbone
    if hasattr(bb, "merge_and_unload"):
        return copy.deepcopy(bb).merge_and_unload()
    return bb
