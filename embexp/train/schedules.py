"""Learning-rate schedules as ``_partial_`` targets: the module supplies optimizer and steps."""

from __future__ import annotations

import math

from torch.optim.lr_scheduler import LambdaLR

from embexp.errors import ConfigError


def linear_warmup(
    optimizer,
    num_training_steps: int,
    warmup_ratio: float = 0.1,
    warmup_steps: int | None = None,
    decay: str = "linear",
) -> LambdaLR:
    """Linear warm-up to the base lr, then linear (or cosine, or constant) decay to 0."""
    if not 0 <= warmup_ratio < 1:
        raise ConfigError("scheduler.warmup_ratio", f"must be in [0, 1), got {warmup_ratio}")
    if decay not in ("linear", "cosine", "constant"):
        raise ConfigError("scheduler.decay", f"must be linear, cosine or constant, got {decay!r}")
    total = max(1, int(num_training_steps))
    warm = int(warmup_steps) if warmup_steps is not None else int(round(warmup_ratio * total))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / (warm + 1)
        if decay == "constant":
            return 1.0
        progress = min(1.0, (step - warm) / max(1, total - warm))
        return max(0.0, 1.0 - progress) if decay == "linear" else 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
