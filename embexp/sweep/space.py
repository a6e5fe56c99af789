"""Search spaces from Hydra's sweep syntax, sampled define-by-run (conditional params allowed).

``params`` values use Hydra's override grammar, parsed by Hydra's own parser::

    loss.temperature: tag(log, interval(0.01, 0.2))   # float, log scale
    optimizer.lr: interval(1e-5, 1e-3)                  # float, uniform
    adapter.r: int(interval(4, 64))                     # int, inclusive bounds
    adapter.alpha: tag(log, int(interval(8, 128)))      # int, log scale
    train.batch_size: range(16, 65, 16)                 # int steps, stop exclusive (16..64)
    loss: choice(infonce, triplet)                      # categorical (also `infonce,triplet`)
    seed: 7                                             # not a sweep: fixed for every trial

``conditional`` maps a param to the condition under which it is sampled at all::

    adapter.r: adapter==lora            # also  !=  and  "adapter in [lora, last_layer]"

The condition's left side is another param of the space (sampled first), else a fixed
override, else the composed config (config-group choices included).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from embexp.errors import ConfigError

SAFE = re.compile(r"[A-Za-z0-9_\-./@]+")


def override_value(v: Any) -> str:
    """A value as Hydra override text (quoted only when the grammar needs it)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(override_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ",".join(f"{k}:{override_value(x)}" for k, x in v.items()) + "}"
    s = str(v)
    if SAFE.fullmatch(s) and s not in ("null", "true", "false") and not _looks_numeric(s):
        return s
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _looks_numeric(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


@dataclass
class Param:
    """One dimension: ``kind`` is float | int | categorical."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: list = field(default_factory=list)

    def suggest(self, trial) -> Any:
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, self.choices)
        if self.kind == "int":
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log
            )
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)

    def values(self) -> Sequence | None:
        """Every value it can take (choices, ints of a range or interval); None for a float."""
        if self.kind == "categorical":
            return list(self.choices)
        if self.kind == "int":
            return range(int(self.low), int(self.high) + 1, int(self.step or 1))
        return None

    def grid_values(self) -> list:
        values = self.values()
        if values is not None and not self.log:
            return list(values)
        raise ConfigError(
            f"hydra.sweeper.params.{self.name}",
            "the grid sampler needs choice(...) or range(...) values, not an interval",
        )


@dataclass
class Condition:
    key: str
    op: str  # == | != | in
    values: list

    def holds(self, actual: Any) -> bool:
        a = _norm(actual)
        hit = a in [_norm(v) for v in self.values]
        return hit if self.op in ("==", "in") else not hit

    def __str__(self) -> str:
        return f"{self.key}{self.op}{self.values[0]}" if self.op != "in" else f"{self.key} in {self.values}"


def _norm(v: Any) -> str:
    return str(v).strip().strip("'\"")


COND = re.compile(r"^\s*([\w.+~/@-]+)\s*(==|!=|\s+in\s+)\s*(.+?)\s*$")


def parse_condition(param: str, text: str) -> Condition:
    m = COND.match(str(text))
    if not m:
        raise ConfigError(
            f"hydra.sweeper.conditional.{param}",
            f"expected 'key==value', 'key!=value' or 'key in [a, b]', got {text!r}",
        )
    key, op, rhs = m.group(1), m.group(2).strip(), m.group(3)
    if op == "in":
        rhs = rhs.strip()
        if not (rhs.startswith("[") and rhs.endswith("]")) and not (
            rhs.startswith("(") and rhs.endswith(")")
        ):
            raise ConfigError(
                f"hydra.sweeper.conditional.{param}", f"'in' needs a list like [a, b], got {rhs!r}"
            )
        values = [v for v in (x.strip() for x in rhs[1:-1].split(",")) if v]
    else:
        values = [rhs]
    return Condition(key, op, values)


def param_from_override(override) -> Param | None:
    """A :class:`Param` from a parsed Hydra override, or None when it is not a sweep."""
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep

    if not override.is_sweep_override():
        return None
    name = override.key_or_group
    value = override.value()
    where = f"hydra.sweeper.params.{name}"
    if isinstance(value, ChoiceSweep):
        choices = list(override.sweep_iterator())
        for c in choices:
            if not isinstance(c, (str, int, float, bool)) or c is None:
                raise ConfigError(where, f"choices must be strings, numbers or booleans, got {c!r}")
        return Param(name, "categorical", choices=choices)
    if isinstance(value, RangeSweep):
        start, stop, step = value.start, value.stop, value.step
        if all(isinstance(x, int) for x in (start, stop, step)) and not value.shuffle:
            n = math.ceil((stop - start) / step)
            if n <= 0:
                raise ConfigError(where, f"range({start}, {stop}, {step}) is empty")
            return Param(name, "int", low=start, high=start + (n - 1) * step, step=step)
        return Param(
            name,
            "categorical",
            choices=[round(x, 10) if isinstance(x, float) else x for x in override.sweep_iterator()],
        )
    if isinstance(value, IntervalSweep):
        log = "log" in value.tags
        lo, hi = value.start, value.end
        if lo is None or hi is None or not lo < hi:
            raise ConfigError(where, f"interval needs low < high, got ({lo}, {hi})")
        if log and lo <= 0:
            raise ConfigError(where, "a log interval needs a positive lower bound")
        if isinstance(lo, int) and isinstance(hi, int):
            return Param(name, "int", low=lo, high=hi, log=log)
        return Param(name, "float", low=float(lo), high=float(hi), log=log)
    raise ConfigError(where, f"unsupported sweep {value!r}")


@dataclass
class SearchSpace:
    params: dict[str, Param]
    fixed: dict[str, str]  # key -> the full override text, e.g. "data=beir", "+x=1"
    conditions: dict[str, Condition]
    custom: Callable | None = None
    base_lookup: Callable[[str], Any] | None = None  # value of a key in the composed config

    @classmethod
    def build(
        cls,
        params: Mapping[str, Any],
        arguments: list[str],
        conditional: Mapping[str, Any] | None = None,
        custom: str | None = None,
        base_lookup=None,
        parser=None,
    ) -> SearchSpace:
        """Config ``params`` first, then the command line (a command-line value wins)."""
        from hydra.core.override_parser.overrides_parser import OverridesParser

        parser = parser or OverridesParser.create()
        lines = [f"{k}={v}" for k, v in (params or {}).items()] + list(arguments)
        space: dict[str, Param] = {}
        fixed: dict[str, str] = {}
        for ov in parser.parse_overrides(lines):
            key = ov.key_or_group
            p = param_from_override(ov)
            space.pop(key, None)
            fixed.pop(key, None)
            if p is not None:
                space[key] = p
            else:
                fixed[key] = ov.input_line
        conds = {k: parse_condition(k, v) for k, v in (conditional or {}).items()}
        for k in conds:
            if k not in space:
                raise ConfigError(
                    f"hydra.sweeper.conditional.{k}", "not a swept param (add it to hydra.sweeper.params)"
                )
        _check_acyclic(conds)
        fn = None
        if custom:
            from hydra.utils import get_method

            fn = get_method(custom)
        return cls(space, fixed, conds, fn, base_lookup)

    def order(self) -> list[str]:
        """Params whose condition depends on another param come after it."""
        done: list[str] = []
        pending = list(self.params)
        while pending:
            for name in list(pending):
                c = self.conditions.get(name)
                if c is None or c.key not in self.params or c.key in done:
                    done.append(name)
                    pending.remove(name)
        return done

    def lookup(self, key: str, sampled: Mapping[str, Any]) -> Any:
        if key in sampled:
            return sampled[key]
        if key in self.params:
            return None  # swept but not sampled in this trial (its own condition failed)
        for k, line in self.fixed.items():
            if k == key:
                return line.split("=", 1)[1] if "=" in line else None
        return self.base_lookup(key) if self.base_lookup else None

    def active(self, name: str, sampled: Mapping[str, Any]) -> bool:
        """Whether param ``name`` is sampled, given the params sampled before it."""
        cond = self.conditions.get(name)
        return cond is None or cond.holds(self.lookup(cond.key, sampled))

    def sample(self, trial) -> dict[str, Any]:
        """Suggest every active param on ``trial``; returns {key: value} (custom additions included)."""
        sampled: dict[str, Any] = {}
        for name in self.order():
            if self.active(name, sampled):
                sampled[name] = self.params[name].suggest(trial)
        if self.custom is not None:
            extra = self.custom(trial, dict(sampled)) or {}
            for k, v in extra.items():
                sampled[k] = v
        return sampled

    def configs(self, limit: int = 100_000) -> list[dict[str, Any]] | None:
        """Every distinct param set :meth:`sample` can return (conditions applied), or None when
        there is no such list: a float interval, a ``custom_search_space``, more than ``limit``."""
        if self.custom is not None:
            return None
        out: list[dict[str, Any]] = [{}]
        for name in self.order():
            values = self.params[name].values()
            grown: list[dict[str, Any]] = []
            for sampled in out:
                if not self.active(name, sampled):
                    grown.append(sampled)
                elif values is None or len(grown) + len(values) > limit:
                    return None
                else:
                    grown += [{**sampled, name: v} for v in values]
            out = grown
        return out

    def overrides(self, sampled: Mapping[str, Any]) -> list[str]:
        out = [line for k, line in self.fixed.items() if k not in sampled]
        out += [f"{k}={override_value(v)}" for k, v in sampled.items()]
        return out

    def grid(self) -> dict[str, list]:
        if self.conditions or self.custom:
            raise ConfigError(
                "hydra.sweeper.sampler",
                "the grid sampler enumerates a fixed product: no conditional params or custom_search_space",
            )
        return {k: p.grid_values() for k, p in self.params.items()}


def _check_acyclic(conds: Mapping[str, Condition]) -> None:
    for start in conds:
        seen, k = {start}, conds[start].key
        while k in conds:
            if k in seen:
                raise ConfigError(f"hydra.sweeper.conditional.{start}", "conditions form a cycle")
            seen.add(k)
            k = conds[k].key
