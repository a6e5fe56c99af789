"""Helpers for the thin Hydra entry points: config location, clean errors, run files."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
from pathlib import Path

from omegaconf import OmegaConf

from embexp.errors import ConfigError, DataError

# `${embexp_cwd:}` in conf/paths: the launch directory, resolvable before Hydra sets its
# runtime config (a multirun resolves hydra.sweep.dir first).
if not OmegaConf.has_resolver("embexp_cwd"):
    OmegaConf.register_new_resolver("embexp_cwd", os.getcwd)

CONF_DIR = str(Path(os.environ.get("EMBEXP_CONF", Path(__file__).resolve().parents[2] / "conf")))


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
            user_error = _user_error(e)
            if user_error is None:
                raise
            print(f"error: {user_error}", file=sys.stderr)
            sys.exit(2)

    return wrapper


def _user_error(e: BaseException | None) -> BaseException | None:
    """The DataError/ConfigError behind ``e`` (Hydra wraps errors raised in ``instantiate``)."""
    seen = 0
    while e is not None and seen < 10:
        if isinstance(e, (DataError, ConfigError)):
            return e
        e = e.__cause__ or e.__context__
        seen += 1
    return None


def code_version() -> dict:
    root = Path(__file__).resolve().parents[2]
    out = {"embexp": __import__("embexp").__version__, "python": platform.python_version()}
    try:
        out["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5).stdout.strip() or None
        out["git_dirty"] = bool(subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, timeout=5).stdout.strip())
    except (OSError, subprocess.SubprocessError):
        pass
    import torch
    import transformers

    out["torch"] = torch.__version__
    out["transformers"] = transformers.__version__
    return out


def run_dir() -> Path:
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)
