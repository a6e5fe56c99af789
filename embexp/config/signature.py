"""``_target_`` nodes against the signature of what they name: every key a parameter, and
(for simple annotations) every value of the parameter's type.

A value is checked when the annotation is built from ``int``, ``float``, ``bool``, ``str``,
``None``, ``Literal``, ``Optional``/``Union`` and ``list``/``tuple``/``dict``; a union that
also admits a class a config value cannot be checked against (``Accelerator``,
``timedelta``) is skipped unless the value fits one of its simple members.
"""

from __future__ import annotations

import collections.abc
import inspect
import types
import typing
from typing import Any, Literal, Union

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from embexp.config.store import HYDRA_KEYS, did_you_mean
from embexp.errors import ConfigError

_SEQUENCES = (list, tuple, collections.abc.Sequence, collections.abc.Iterable)
_MAPPINGS = (dict, collections.abc.Mapping)


def locate(target: str, key: str):
    """The callable a ``_target_`` names (Hydra's own lookup); ConfigError when it cannot import."""
    from hydra._internal.utils import _locate

    try:
        return _locate(str(target))
    except Exception as e:  # noqa: BLE001 - any import failure is the user's _target_
        raise ConfigError(f"{key}._target_", f"cannot import {target!r}: {e}") from None


def _signature(fn) -> tuple[dict[str, inspect.Parameter], bool, dict[str, Any]]:
    """The named parameters, whether ``**kwargs`` is taken, and the resolved type hints."""
    sig = inspect.signature(fn)
    P = inspect.Parameter
    skip = (P.VAR_POSITIONAL, P.VAR_KEYWORD, P.POSITIONAL_ONLY)
    params = {n: p for n, p in sig.parameters.items() if p.kind not in skip}
    var_kw = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    try:
        hints = typing.get_type_hints(fn.__init__ if inspect.isclass(fn) else fn)
    except Exception:  # noqa: BLE001 - unresolvable annotations: check names only
        hints = {}
    return params, var_kw, hints


def fits(value, hint) -> bool | None:
    """True: ``value`` fits ``hint``; False: it does not; None: cannot tell."""
    if hint is Any or hint is inspect.Parameter.empty or isinstance(hint, (str, typing.TypeVar)):
        return None
    if hint is None or hint is type(None):
        return value is None
    origin = typing.get_origin(hint)
    if origin is Union or origin is types.UnionType:
        results = [fits(value, a) for a in typing.get_args(hint)]
        return True if True in results else (None if None in results else False)
    if origin is Literal:
        return any(type(value) is type(a) and value == a for a in typing.get_args(hint))
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint in _SEQUENCES or origin in _SEQUENCES:
        return isinstance(value, (list, tuple)) or (None if not _is_primitive(value) else False)
    if hint in _MAPPINGS or origin in _MAPPINGS:
        return isinstance(value, dict) or (None if not _is_primitive(value) else False)
    return None


def _is_primitive(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def describe(hint) -> str:
    """``hint`` in words, for error messages."""
    origin = typing.get_origin(hint)
    if origin is Union or origin is types.UnionType:
        return " or ".join(dict.fromkeys(describe(a) for a in typing.get_args(hint)))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if hint is None or hint is type(None):
        return "null"
    return getattr(hint, "__name__", None) or str(hint)


def resolved_value(node, name: str):
    """The resolved value of ``node[name]`` as plain Python; ``...`` when it cannot be resolved
    here (e.g. ``${hydra:...}`` outside a Hydra run)."""
    try:
        v = node[name]
        return OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
    except OmegaConfBaseException:
        return ...


def check_target_node(node, key: str, *, values: bool = False, also: dict[str, tuple] | None = None) -> None:
    """Every key of the ``_target_`` node at ``key`` must be a parameter of its target (unless
    the target takes ``**kwargs``); with ``values``, every value must fit its parameter's
    annotation, where it can be checked. ``also``: extra values a key accepts because the
    harness resolves them first (``trainer.precision: auto``)."""
    target = node.get("_target_") if isinstance(node, (DictConfig, dict)) else None
    if not target:
        return
    fn = locate(target, key)
    params, var_kw, hints = _signature(fn)
    for name in node:
        name = str(name)
        if name in HYDRA_KEYS:
            continue
        if name not in params:
            if var_kw:
                continue
            raise ConfigError(f"{key}.{name}", f"not a parameter of {target}{did_you_mean(name, params)}")
        if not values or name not in hints:
            continue
        v = resolved_value(node, name)
        if v is ... or v in (also or {}).get(name, ()):
            continue
        if fits(v, hints[name]) is False:
            extra = "".join(f" or {a!r}" for a in (also or {}).get(name, ()))
            raise ConfigError(f"{key}.{name}", f"must be {describe(hints[name])}{extra}, got {v!r}")
