"""``check_config``: every check that needs no model, run before anything is loaded or written.

What is checked where:

* types and unknown keys of ``data``, ``model``, ``adapter``, ``negatives``, ``loss``, ``eval``,
  ``train``: their schemas (``embexp.config.schema``), at compose time for the groups whose
  YAML names a schema, and here for every node (a node built in Python, ``train``);
* ranges that belong to the config (``data.dev_fraction``, ``train.batch_size``,
  ``adapter.r``, ``loss.temperature``, ...): the schemas' ``__post_init__``;
* choices a library layer owns: the data layer (leakage policy), the encoder
  (``EncoderSpec.validate``: pooling, lengths), the evaluator (retriever, dtype), the miner
  (``MiningParams``: window, sampling, ...), and the files and hook ``negatives`` names;
* ``_target_`` nodes (``loss``, ``optimizer``, ``scheduler``, ``trainer``, ``callbacks.*``): keys
  against the target's signature, and for ``trainer`` values against its annotations;
* top-level keys against what the primary configs compose to;
* ``model.name_or_path`` can be loaded (a short name, a folder, the hub or its cache).

What needs the loaded model is :func:`embexp.model.adapters.check_against_model`.

Layering: imports the data, model, eval and mining layers; sits between ``train`` and
``mining`` (``train`` and the CLIs call it).
"""

from __future__ import annotations

import dataclasses

from embexp.config.schema import LOSS_SCHEMAS, EvalConfig, ModelConfig, TrainSettings
from embexp.config.signature import check_target_node, resolved_value
from embexp.config.store import check_top_level_keys, to_schema
from embexp.data.prepare import data_config
from embexp.errors import ConfigError
from embexp.eval.evaluator import RETRIEVERS
from embexp.mining.config import validate_negatives
from embexp.model import registry
from embexp.model.adapters import adapter_config
from embexp.model.encoder import DTYPES, EncoderSpec

TASKS = ("train", "eval", "mine", "data_inspect")  # data_inspect: data and model only (no eval node)
# values the training job resolves before Lightning sees them (embexp.model.encoder.resolve_precision)
TRAINER_ALSO = {"precision": ("auto",)}


def check_config(cfg, task: str = "train") -> None:
    """All cheap checks of a composed config for ``task`` (``train``, ``eval``, ``mine``, ``data_inspect``):
    raises :class:`~embexp.errors.ConfigError` naming the first bad key. Loads no model, reads
    no data, writes nothing."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    check_top_level_keys(cfg)
    data_config(_node(cfg, "data", task))
    model = _check_model(_node(cfg, "model", task))
    ev = _check_eval(_node(cfg, "eval", task)) if task != "data_inspect" else None
    if task in ("train", "mine"):
        params = validate_negatives(_node(cfg, "negatives", task))
        if task == "mine" and params is None:
            kind = _node(cfg, "negatives", task).get("kind")
            need = "embexp-mine needs a mining config (negatives=static or negatives=iterative)"
            raise ConfigError("negatives.kind", f"{need}, got {kind!r}")
    if task == "train":
        _check_training(cfg)
    if task != "eval" or ev.retriever != "bm25":
        _check_model_source(model.name_or_path)


def _node(cfg, key: str, task: str):
    node = cfg.get(key)
    if node is None:
        raise ConfigError(key, f"missing: embexp-{task} needs a '{key}' config node")
    return node


def _check_model(node) -> ModelConfig:
    model = to_schema(node, ModelConfig, "model")
    EncoderSpec.from_dict(dataclasses.asdict(model)).validate()  # pooling, lengths, prefixes
    return model


def _check_eval(node) -> EvalConfig:
    ev = to_schema(node, EvalConfig, "eval")
    if ev.retriever not in RETRIEVERS:
        raise ConfigError("eval.retriever", f"must be one of {RETRIEVERS}, got {ev.retriever!r}")
    dtypes = ("auto", *DTYPES)
    if ev.dtype not in dtypes:
        raise ConfigError("eval.dtype", f"must be one of {dtypes}, got {ev.dtype!r}")
    return ev


def _check_training(cfg) -> None:
    adapter_config(_node(cfg, "adapter", "train"))
    to_schema(_node(cfg, "train", "train"), TrainSettings, "train")
    loss = _node(cfg, "loss", "train")
    check_target_node(loss, "loss")
    schema = LOSS_SCHEMAS.get(str(loss.get("_target_")))
    if schema is not None:  # the loss's hyper-parameters, from the config: nothing is built
        to_schema(loss, schema, "loss")
    optimizer = _node(cfg, "optimizer", "train")
    check_target_node(optimizer, "optimizer", values=True)
    lr = resolved_value(optimizer, "lr") if "lr" in optimizer else None
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or lr <= 0:
        raise ConfigError("optimizer.lr", f"must be a positive number, got {lr!r}")
    if cfg.get("scheduler") is not None:
        check_target_node(cfg.scheduler, "scheduler", values=True)
    _check_trainer(_node(cfg, "trainer", "train"))
    for name, node in (cfg.get("callbacks") or {}).items():
        if node is not None and "_target_" in node:
            check_target_node(node, f"callbacks.{name}")


def _check_trainer(trainer) -> None:
    check_target_node(trainer, "trainer", values=True, also=TRAINER_ALSO)
    max_epochs = resolved_value(trainer, "max_epochs") if "max_epochs" in trainer else None
    max_steps = resolved_value(trainer, "max_steps") if "max_steps" in trainer else None
    if isinstance(max_steps, int) and max_steps not in (-1, None):
        raise ConfigError(
            "trainer.max_steps",
            f"use train.max_steps={max_steps} instead: Lightning's own step limit stops mid-epoch "
            "without validating the last steps, and a run killed under it resumes short",
        )
    if isinstance(max_epochs, int) and max_epochs <= 0:
        raise ConfigError("trainer.max_epochs", f"must be > 0, got {max_epochs}")


def _check_model_source(name: str) -> None:
    why = registry.unavailable(name)
    if why:
        online = "HF_HUB_OFFLINE=0 with internet access" if registry.hub_offline() else "a hub id that exists"
        raise ConfigError(
            "model.name_or_path",
            f"cannot load {name!r}: {why}. Use a local model folder (model.name_or_path=/path/to/model), "
            f"a registered short name like model=minilm-l6, or {online}",
        )
