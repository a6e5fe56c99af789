"""One home per default: the schema (``embexp/config/schema.py``). A YAML under ``conf/`` that
names a schema only overrides it, and no function or class in ``embexp/`` writes a schema
default again as a literal: a component that needs the value takes it from its typed node or
names the schema field (``temperature: float = InfoNCELossConfig.temperature``)."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
import yaml

from embexp.config import schema as S

ROOT = Path(__file__).resolve().parents[2]
# values too plain to be a recipe's choice (and empty lists): a signature may default to them
# whatever the schema says
NEUTRAL = (None, True, False, 0, 1, "", "auto")


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _schemas() -> dict[str, type]:
    return {n: c for n, c in vars(S).items() if dataclasses.is_dataclass(c) and isinstance(c, type)}


def _owned() -> dict[str, list[tuple[str, object]]]:
    """field name -> [(schema class, default)] for every non-neutral default of the schemas."""
    out: dict[str, list] = {}
    for name, cls in _schemas().items():
        for f in dataclasses.fields(cls):
            d = _default(f)
            if d is dataclasses.MISSING or dataclasses.is_dataclass(d) or _neutral(d):
                continue
            out.setdefault(f.name, []).append((name, d))
    return out


def _neutral(v) -> bool:
    if isinstance(v, list | tuple) and not v:  # an empty list: nothing chosen
        return True
    return any(type(v) is type(n) and v == n for n in NEUTRAL)


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return type(a) is type(b) and a == b or (isinstance(a, float) and isinstance(b, int) and a == b)


# ---- YAML ---------------------------------------------------------------------------------
def _schema_of(doc: dict) -> type | None:
    for entry in doc.get("defaults") or []:
        if isinstance(entry, str) and entry.startswith("/schema/"):
            group, name = entry.split("@")[0].split("/")[2:4]
            return S.SCHEMAS[group][name]
    return None


def _parent_keys(path: Path, doc: dict) -> set[str]:
    """Keys set by the same group's YAMLs this one builds on (``defaults: [beir, ...]``): setting
    one of them again is an override, not a restatement."""
    keys: set[str] = set()
    for entry in doc.get("defaults") or []:
        parent = path.parent / f"{entry}.yaml" if isinstance(entry, str) and "/" not in entry else None
        if parent is not None and parent.exists():
            pdoc = yaml.safe_load(parent.read_text()) or {}
            keys |= set(pdoc) | _parent_keys(parent, pdoc)
    return keys


def _yaml_restatements(path: Path, root: Path = ROOT) -> list[str]:
    doc = yaml.safe_load(path.read_text()) or {}
    schema = _schema_of(doc)
    if schema is None:
        return []
    if "train" in doc and path.name == "train.yaml":  # the train: node of the primary config
        schema, doc = S.TrainSettings, doc["train"] or {}
    parents = _parent_keys(path, doc)
    own = {k: v for k, v in doc.items() if k not in parents and k != "defaults"}
    return list(_restated(schema, own, path.relative_to(root).as_posix()))


def _restated(schema: type, node: dict, where: str, prefix: str = ""):
    fields = {f.name: f for f in dataclasses.fields(schema)}
    for key, value in node.items():
        f = fields.get(key)
        if f is None or key in ("kind", "_target_"):  # kind/_target_ say which schema: not defaults
            continue
        d = _default(f)
        if dataclasses.is_dataclass(d) and isinstance(value, dict):
            yield from _restated(type(d), value, where, f"{prefix}{key}.")
        elif d is not dataclasses.MISSING and not isinstance(value, str | type(None)) and _same(value, d):
            yield f"{where}: {prefix}{key}: {value!r} restates {schema.__name__}.{key}"
        elif isinstance(value, str) and not value.startswith("${") and _same(value, d):
            yield f"{where}: {prefix}{key}: {value!r} restates {schema.__name__}.{key}"


def test_no_yaml_restates_a_schema_default():
    found = [r for p in sorted((ROOT / "conf").rglob("*.yaml")) for r in _yaml_restatements(p)]
    assert not found, "a YAML restates a schema default (delete the line):\n" + "\n".join(found)


def test_the_yaml_check_finds_a_restatement(tmp_path):
    f = tmp_path / "conf" / "loss" / "probe.yaml"
    f.parent.mkdir(parents=True)
    f.write_text("defaults:\n  - /schema/loss/infonce@_here_\n  - _self_\ntemperature: 0.05\n")
    assert _yaml_restatements(f, tmp_path) == [
        "conf/loss/probe.yaml: temperature: 0.05 restates InfoNCELossConfig.temperature"
    ]
    f.write_text("defaults:\n  - /schema/loss/infonce@_here_\n  - _self_\ntemperature: 0.07\n")
    assert _yaml_restatements(f, tmp_path) == []


# ---- Python signatures ----------------------------------------------------------------------
def _literal(node: ast.expr):
    try:
        return ast.literal_eval(node)
    except ValueError:
        return dataclasses.MISSING  # a name, an attribute (InfoNCELossConfig.temperature), a call


def _signature_restatements(source: str, where: str) -> list[str]:
    owned, out = _owned(), []
    for fn in ast.walk(ast.parse(source)):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            a = fn.args
            pos = [*a.posonlyargs, *a.args]
            pairs = list(zip(pos[len(pos) - len(a.defaults) :], a.defaults))
            pairs += [(k, d) for k, d in zip(a.kwonlyargs, a.kw_defaults) if d is not None]
            items = [(arg.arg, d, fn.name, fn.lineno) for arg, d in pairs]
        elif (  # node.get("batch_size", 64): a default read past the schema
            isinstance(fn, ast.Call)
            and isinstance(fn.func, ast.Attribute)
            and fn.func.attr == "get"
            and len(fn.args) == 2
            and isinstance(fn.args[0], ast.Constant)
            and isinstance(fn.args[0].value, str)
        ):
            items = [(fn.args[0].value, fn.args[1], "get", fn.lineno)]
        elif isinstance(fn, ast.ClassDef):  # dataclass fields: `name: type = value`
            items = [
                (s.target.id, s.value, fn.name, s.lineno)
                for s in fn.body
                if isinstance(s, ast.AnnAssign) and isinstance(s.target, ast.Name) and s.value is not None
            ]
        else:
            continue
        for name, node, owner, line in items:
            value = _literal(node)
            if value is dataclasses.MISSING or _neutral(value):
                continue
            schemas = [schema for schema, d in owned.get(name, ()) if _same(value, d)]
            if schemas:
                out.append(f"{where}:{line} {owner}({name}={value!r}) restates {', '.join(schemas)}.{name}")
    return out


def test_no_signature_restates_a_schema_default():
    found = []
    for path in sorted((ROOT / "embexp").rglob("*.py")):
        if path.parent.name == "config":
            continue
        found += _signature_restatements(path.read_text(), path.relative_to(ROOT).as_posix())
    assert not found, (
        "a signature restates a schema default: take the value from the typed node or name the "
        "schema field (x: float = EvalConfig.x):\n" + "\n".join(found)
    )


@pytest.mark.parametrize(
    "source, n",
    [
        ("def f(temperature=0.05): pass", 1),
        ("def f(*, batch_size: int = 64): pass", 1),
        ("class A:\n    depth: int = 100\n", 1),
        ("from embexp.config.schema import X\ndef f(temperature=X.temperature): pass", 0),
        ("def f(temperature=0.07, seed=0): pass", 0),
        ("x = cfg.train.get('selection_alpha', 0.05)", 1),
        ("x = cfg.train.get('selection_alpha')", 0),
    ],
)
def test_the_signature_check_finds_literals_only(source, n):
    assert len(_signature_restatements(source, "probe.py")) == n
