"""User code named in a config: ``package.module:function`` -> the callable."""

from __future__ import annotations

import importlib

from embexp.errors import ConfigError


def import_hook(spec: str, key: str):
    """``package.module:function`` (or ``package.module.function``) -> the callable; a bad spec
    raises :class:`ConfigError` naming the config ``key`` that holds it."""
    mod, sep, name = str(spec).partition(":")
    if not sep:
        mod, _, name = str(spec).rpartition(".")
    try:
        fn = getattr(importlib.import_module(mod), name)
    except (ImportError, AttributeError, ValueError) as e:
        raise ConfigError(key, f"cannot import {spec!r} ({e}); expected 'package.module:function'") from e
    if not callable(fn):
        raise ConfigError(key, f"{spec!r} is not callable")
    return fn
