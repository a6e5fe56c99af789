"""Helpers for the thin Hydra entry points: config location, clean errors, run files."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

from embexp.config.store import CONF_DIR
from embexp.errors import user_error

CONF_DIR = str(CONF_DIR)  # Hydra wants a str; also registers the ${embexp_cwd:} resolver


def setup_env() -> None:
    """Offline-friendly defaults: no hub calls for local models, quiet tokenizers."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("WANDB_SILENT", "true")


def clean_errors(fn):
    """Print DataError / ConfigError as one line (no traceback) and exit with status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            found = user_error(e)
            if found is None:
                raise
            print(f"error: {found}", file=sys.stderr)
            sys.exit(2)

    return wrapper


def run_dir() -> Path:
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)
