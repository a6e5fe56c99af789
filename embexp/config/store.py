"""The schemas in Hydra's ConfigStore, nodes to schema objects, and errors that name the key.

* :func:`register` stores every schema of :data:`embexp.config.schema.SCHEMAS` as
  ``schema/<group>/<name>``; ``conf/<group>/*.yaml`` list it first in their defaults. It runs
  on import of :mod:`embexp.config`, and Hydra imports ``hydra_plugins/embexp_schemas`` (which
  imports this) whenever it starts, so ``hydra.main`` and ``compose()`` both see the schemas.
* :func:`to_schema` turns a config node (DictConfig or dict) into its dataclass, running the
  schema's ``__post_init__`` checks; every failure is a ConfigError naming ``group.key``.
* :func:`config_error` finds the key behind an exception raised by Hydra's composition (a
  type error, an unknown key, a group option that does not exist) and says it as a ConfigError.
* :func:`allowed_top_level_keys`: what the primary configs compose to, read from the files.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import (
    ConfigAttributeError,
    ConfigKeyError,
    MissingMandatoryValue,
    OmegaConfBaseException,
)

from embexp.config.schema import _MISSING_MESSAGE, SCHEMAS
from embexp.errors import ConfigError

CONF_DIR = Path(os.environ.get("EMBEXP_CONF", Path(__file__).resolve().parents[2] / "conf"))
PRIMARY_CONFIGS = ("train", "eval", "mine", "data_inspect")
EXTRA_TOP_LEVEL = ("hydra", "optuna")  # Hydra's own node; a sweep trial gets ++optuna.*
HYDRA_KEYS = frozenset({"_target_", "_partial_", "_recursive_", "_convert_", "_args_"})

# `${embexp_cwd:}` in conf/paths: the launch directory, resolvable before Hydra sets its
# runtime config (a multirun resolves hydra.sweep.dir first).
if not OmegaConf.has_resolver("embexp_cwd"):
    OmegaConf.register_new_resolver("embexp_cwd", os.getcwd)


def _dataset_name(path) -> str:
    """``${embexp_dataset_name:${data.path}}``: the folder or file name without its extensions
    (``.../datasets/scifact`` -> ``scifact``, ``logs/pairs.jsonl.gz`` -> ``pairs``); a hub id
    keeps its last part (``BeIR/nfcorpus`` -> ``nfcorpus``)."""
    name = str(path or "").rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
    for ext in (".gz", ".jsonl", ".json", ".parquet", ".csv", ".tsv"):
        name = name[: -len(ext)] if name.endswith(ext) else name
    return name or "data"


if not OmegaConf.has_resolver("embexp_dataset_name"):
    OmegaConf.register_new_resolver("embexp_dataset_name", _dataset_name)


def _wandb_group() -> str | None:
    """``${embexp_wandb_group:}`` (conf/logger/wandb.yaml): the runs of one Hydra multirun or
    sweep share a W&B group, the name of its sweep folder (``multirun-20250101-120000``, an
    Optuna study's name); None in a single run or outside Hydra."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None
    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN:
        return None
    name = Path(str(hc.sweep.dir)).name
    return name or None


if not OmegaConf.has_resolver("embexp_wandb_group"):
    OmegaConf.register_new_resolver("embexp_wandb_group", _wandb_group)


def run_folder_name(run_id) -> str:
    """``${embexp_run_id:${run_id}}`` in ``hydra.run.dir``: ``run_id`` checked as a folder name
    before Hydra creates the folder: non-empty, no path separator, not ``.``/``..`` (an id like
    ``../../x`` would write outside ``runs/``, an empty one would make ``runs/train`` itself the
    run folder)."""
    rid = "" if run_id is None else str(run_id)
    bad = None
    if not rid.strip():
        bad = "is empty"
    elif "/" in rid or "\\" in rid or os.sep in rid:
        bad = "holds a path separator"
    elif rid in (".", ".."):
        bad = "names the runs folder itself or its parent"
    elif "\0" in rid or rid != rid.strip():
        bad = "holds a NUL or leading/trailing spaces"
    if bad:
        raise ConfigError(
            "run_id",
            f"{rid!r} {bad}: a run id names one folder under runs/<task>/ (letters, digits, - _ . =); "
            "to write a run elsewhere, set hydra.run.dir=PATH",
        )
    return rid


if not OmegaConf.has_resolver("embexp_run_id"):
    OmegaConf.register_new_resolver("embexp_run_id", run_folder_name)


def did_you_mean(word: str, options) -> str:
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


# ---- ConfigStore ----------------------------------------------------------------------------
def _schema_node(cls) -> DictConfig:
    """The schema with its defaults: the one home of every default. A YAML under ``conf/`` lists
    it first and sets only what differs (a YAML derived from a sibling of the same schema,
    ``iterative`` on ``static``, lists the sibling instead: its values come over the defaults)."""
    return OmegaConf.structured(cls)


def register() -> None:
    """Store every schema as ``schema/<group>/<name>`` (idempotent)."""
    cs = ConfigStore.instance()
    for group, schemas in SCHEMAS.items():
        for name, cls in schemas.items():
            cs.store(group=f"schema/{group}", name=name, node=_schema_node(cls), provider="embexp")


# ---- node -> schema object --------------------------------------------------------------------
def _plain(node, key: str) -> dict:
    """``node`` as a plain dict with interpolations resolved against its root config."""
    if isinstance(node, DictConfig):
        try:
            return OmegaConf.to_container(node, resolve=True)
        except OmegaConfBaseException as e:
            raise _as_config_error(e, key, None) from None
    if isinstance(node, Mapping):
        return dict(node)
    raise ConfigError(key, f"must be a mapping of keys to values, got {node!r}")


def _pick(schema, data: dict, key: str) -> type:
    if isinstance(schema, type):
        return schema
    by_target = all(any(f.name == "_target_" for f in dataclasses.fields(c)) for c in schema.values())
    field = "_target_" if by_target else "kind"
    choice = data.get(field)
    if choice not in schema:
        raise ConfigError(f"{key}.{field}", f"must be one of {tuple(schema)}, got {choice!r}")
    return schema[choice]


def to_schema(node, schema, key: str | None = None):
    """``node`` (DictConfig, dict, or already a schema object) as an instance of ``schema``: a
    dataclass, or a dict of them chosen by the node's ``kind`` (or ``_target_``). Keys not in the
    schema, values of the wrong type, missing values and the schema's own checks raise a
    ConfigError naming ``key.<field>``."""
    classes = (schema,) if isinstance(schema, type) else tuple(schema.values())
    if isinstance(node, classes):
        return node
    key = key or classes[0].KEY
    data = _plain(node, key)
    cls = _pick(schema, data, key)
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(cls), data))
    except OmegaConfBaseException as e:
        raise _as_config_error(e, key, cls) from None


def _field_metadata(cls, dotted: str) -> dict:
    for name in dotted.split("."):
        fields = {f.name: f for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else {}
        if name not in fields:
            return {}
        f, cls = fields[name], fields[name].type
    return dict(f.metadata)


def _as_config_error(e: OmegaConfBaseException, prefix: str | None, cls) -> ConfigError:
    full_key = str(getattr(e, "full_key", "") or "")
    if prefix and (full_key == prefix or full_key.startswith(prefix + ".")):
        prefix = None  # raised while resolving the node in its root config: the key is already full
    key = ".".join(k for k in (prefix, full_key) if k) or "config"
    msg = str(getattr(e, "msg", "") or e).strip().splitlines()[0]
    if isinstance(e, MissingMandatoryValue):
        msg = _field_metadata(cls, full_key).get(_MISSING_MESSAGE) if cls is not None else None
        return ConfigError(key, msg or "must be set (it is '???')")
    if "is not a ListConfig" in msg:
        msg = "must be a list, e.g. [a, b]"
    owner = getattr(e, "object_type", None) or cls
    if isinstance(e, (ConfigKeyError, ConfigAttributeError)) and dataclasses.is_dataclass(owner):
        fields = [f.name for f in dataclasses.fields(owner)]
        hint = did_you_mean(key.rsplit(".", 1)[-1], fields)
        msg = f"unknown key for {owner.__name__}{hint} (its keys: {', '.join(fields)})"
    elif isinstance(e, (ConfigKeyError, ConfigAttributeError)) and isinstance(e.parent_node, DictConfig):
        hint = did_you_mean(key.rsplit(".", 1)[-1], list(e.parent_node))
        msg = f"not a key of this node{hint} (a new key needs +{key}=...)"
    return ConfigError(key, msg)


# ---- errors raised while composing -----------------------------------------------------------
def config_error(exc: BaseException) -> ConfigError | None:
    """The ConfigError behind an exception from Hydra's composition (``hydra.compose``, a
    sweeper composing a trial): a value of the wrong type or an unknown key (omegaconf errors
    carry the full key), or a config group option that does not exist. None when no key can be
    named (e.g. override syntax). Under ``hydra.main`` Hydra reports these itself, before the
    task function runs."""
    from hydra.errors import MissingConfigException

    seen, e = 0, exc
    while e is not None and seen < 10:
        if isinstance(e, ConfigError):
            return e
        if isinstance(e, OmegaConfBaseException) and getattr(e, "full_key", None):
            return _as_config_error(e, None, None)
        missing = str(getattr(e, "missing_cfg_file", None) or "")
        if isinstance(e, MissingConfigException) and "/" in missing:
            group, option = missing.rsplit("/", 1)
            options = list(e.options or [])
            hint = did_you_mean(option, options)
            return ConfigError(group, f"no option '{option}'{hint} (options: {', '.join(options)})")
        e = e.__cause__ or e.__context__
        seen += 1
    return None


# ---- top-level keys ----------------------------------------------------------------------------
def _default_keys(entry) -> set[str]:
    """The top-level key(s) one defaults-list entry of a primary config adds."""
    names = [entry] if isinstance(entry, str) else list(entry)
    keys = set()
    for name in names:
        if name == "_self_":
            continue
        name = name.replace("optional ", "").replace("override ", "").strip().lstrip("/")
        group, _, package = name.partition("@")
        keys.add((package if package and not package.startswith("_") else group).split("/")[0].split(".")[0])
    return keys


@lru_cache(maxsize=4)
def allowed_top_level_keys(conf_dir: str | Path = CONF_DIR) -> frozenset[str]:
    """Every top-level key ``conf/{train,eval,mine}.yaml`` compose to (their own keys and one
    per config group in their defaults lists, optional groups included), plus ``hydra`` and
    ``optuna``."""
    keys = set(EXTRA_TOP_LEVEL)
    for name in PRIMARY_CONFIGS:
        path = Path(conf_dir) / f"{name}.yaml"
        if not path.exists():
            continue
        raw = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
        for entry in raw.pop("defaults", []) or []:
            keys |= _default_keys(entry)
        keys |= set(raw)
    return frozenset(keys)


def check_top_level_keys(cfg, conf_dir: str | Path = CONF_DIR) -> None:
    """A top-level key no primary config has (``+los.temperature=0.1``) is a typo."""
    allowed = allowed_top_level_keys(str(conf_dir))
    for key in cfg:
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            raise ConfigError(str(key), f"unknown top-level key{did_you_mean(key, allowed)} (known: {known})")
