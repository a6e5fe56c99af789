"""``check_config``: the run's pre-flight, every check that needs no model, run before anything
is loaded or written; it returns the run's typed nodes (:class:`RunConfig`), which the run hands
to its components.

Each layer checks its own node beside its code and this module calls them:

* ``data``: :func:`embexp.data.prepare.data_config` (schema, leakage policy);
* ``model``: :func:`embexp.model.encoder.model_config` (schema, pooling, attention, kernel,
  lengths) and :func:`embexp.model.registry.unavailable` (the model can be loaded);
* ``eval``: :func:`embexp.eval.build.eval_config` (schema, retriever, dtype);
* ``negatives``: :func:`embexp.mining.config.validate_negatives` (schema, mining values, files);
* ``adapter``: :func:`embexp.model.adapters.adapter_config`;
* ``loss``, ``train``, ``optimizer``, ``scheduler``, ``trainer``, ``callbacks.*``: here (the
  training job's own nodes; ``_target_`` nodes against their target's signature);
* top-level keys against what the primary configs compose to.

What needs the loaded model is :func:`embexp.model.adapters.check_against_model`.
"""

from __future__ import annotations

from embexp.config.schema import LOSS_SCHEMAS, RunConfig, TrainSettings
from embexp.config.signature import check_target_node, resolved_value
from embexp.config.store import check_top_level_keys, to_schema
from embexp.data.prepare import data_config
from embexp.errors import ConfigError
from embexp.eval.build import eval_config
from embexp.mining.config import negatives_config, validate_negatives
from embexp.model import registry
from embexp.model.adapters import adapter_config
from embexp.model.encoder import model_config

TASKS = ("train", "eval", "mine", "data_inspect")  # data_inspect: data and model only (no eval node)
# values the training job resolves before Lightning sees them (embexp.model.encoder.resolve_precision)
TRAINER_ALSO = {"precision": ("auto",)}


def check_config(cfg, task: str = "train") -> RunConfig:
    """All cheap checks of a composed config for ``task`` (``train``, ``eval``, ``mine``,
    ``data_inspect``): raises :class:`~embexp.errors.ConfigError` naming the first bad key, or
    returns the typed nodes the task uses. Loads no model, reads no data, writes nothing."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    check_top_level_keys(cfg)
    data = data_config(_node(cfg, "data", task))
    model = model_config(_node(cfg, "model", task))
    ev = eval_config(_node(cfg, "eval", task)) if task != "data_inspect" else None
    negatives = adapter = loss = train = None
    if task in ("train", "mine"):
        params = validate_negatives(_node(cfg, "negatives", task))
        negatives = negatives_config(cfg.negatives)
        if task == "mine" and params is None:
            need = "embexp-mine needs a mining config (negatives=static or negatives=iterative)"
            raise ConfigError("negatives.kind", f"{need}, got {negatives.kind!r}")
    if task == "train":
        adapter, loss, train = _check_training(cfg)
    if task != "eval" or ev.retriever != "bm25":
        _check_model_source(model.name_or_path)
    return RunConfig(
        data=data, model=model, eval=ev, negatives=negatives, adapter=adapter, loss=loss, train=train
    )


def _node(cfg, key: str, task: str):
    node = cfg.get(key)
    if node is None:
        raise ConfigError(key, f"missing: embexp-{task} needs a '{key}' config node")
    return node


def _check_training(cfg):
    adapter = adapter_config(_node(cfg, "adapter", "train"))
    train = to_schema(_node(cfg, "train", "train"), TrainSettings, "train")
    loss_node = _node(cfg, "loss", "train")
    check_target_node(loss_node, "loss")
    schema = LOSS_SCHEMAS.get(str(loss_node.get("_target_")))
    # the loss's hyper-parameters, from the config: nothing is built (a loss of yours: None)
    loss = to_schema(loss_node, schema, "loss") if schema is not None else None
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
    return adapter, loss, train


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
