"""Helpers for the thin Hydra entry points: config location, clean errors, run files."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

from embexp.config.store import CONF_DIR
from embexp.errors import user_error
from embexp.utils.logs import quiet_libraries

CONF_DIR = str(CONF_DIR)  # Hydra wants a str; also registers the ${embexp_cwd:} resolver


def setup_env() -> None:
    """Offline-friendly defaults (no hub telemetry, quiet tokenizers) and a log that shows what a
    researcher acts on (library chatter turned down: :mod:`embexp.utils.logs`)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("WANDB_SILENT", "true")
    quiet_libraries()


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


def run_id_problem(argv: list[str]) -> str | None:
    """The first command-line ``run_id`` value that cannot name a run folder (``../x``, empty, a
    path), said before Hydra creates the folder it names; None when all are fine or none is
    given (Hydra reports overrides it cannot parse)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from embexp.config.store import run_folder_name
    from embexp.errors import ConfigError

    parser = OverridesParser.create()
    overrides = []
    for arg in argv:  # one at a time: a flag's value (--config-name train) is not an override
        if arg.startswith("-") or "run_id" not in arg:
            continue
        try:
            overrides += parser.parse_overrides([arg])
        except Exception:  # Hydra says what is wrong with its own syntax
            continue
    for o in overrides:
        if o.key_or_group != "run_id" or o.is_delete():
            continue
        values = list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.value()]
        for value in values:
            try:
                run_folder_name(value)
            except ConfigError as e:
                return str(e)
    return None


def entry_point(hydra_main):
    """A console entry point around a ``@hydra.main`` function: the command line's ``run_id`` is
    checked first (one line, exit status 2), since Hydra creates the run folder before any of
    embexp's code runs. (The same check in ``hydra.run.dir``'s resolver still blocks a bad id
    that comes from a config file, less tidily.)"""

    @functools.wraps(hydra_main)
    def main():
        problem = run_id_problem(sys.argv[1:])
        if problem is not None:
            print(f"error: {problem}", file=sys.stderr)
            sys.exit(2)
        return hydra_main()

    return main


def run_dir() -> Path:
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)
