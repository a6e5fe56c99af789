"""Every experiment composes and every group instantiates (lightning-hydra-template style)."""

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from embexp.config.signature import check_target_node

from conftest import ROOT, compose_config

CONF = ROOT / "conf"
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


def _compose(overrides):
    return compose_config(overrides, hydra=True)


def test_experiments_exist():
    assert {"quickstart", "scifact_lora", "scifact_full", "scifact_last_layer"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_instantiates(name):
    cfg = _compose([f"experiment={name}"])
    assert cfg.adapter.kind in ("full", "lora", "last_layer")
    instantiate(cfg.loss)
    opt = instantiate(cfg.optimizer)
    assert opt.func.__name__ == "AdamW" and opt.keywords["lr"] > 0
    assert callable(instantiate(cfg.scheduler))
    assert cfg.monitor.startswith("dev/")


def test_experiment_values():
    assert _compose(["experiment=scifact_full"]).adapter.kind == "full"
    assert _compose(["experiment=scifact_last_layer"]).adapter.kind == "last_layer"
    lora = _compose(["experiment=scifact_lora"])
    assert lora.adapter.kind == "lora" and list(lora.adapter.target_modules) == [
        "query",
        "key",
        "value",
        "dense",
    ]
    assert "r" not in _compose(["experiment=scifact_full"]).adapter  # deltas do not leak LoRA keys
    assert lora.data.kind == "beir"


@pytest.mark.parametrize(
    "group",
    [
        "adapter",
        "loss",
        "negatives",
        "optimizer",
        "scheduler",
        "trainer",
        "model",
        "data",
        "logger",
        "callbacks",
    ],
)
def test_every_group_option_composes(group):
    """Each option is the one composed, and every ``_target_`` it names imports and takes its keys."""
    for option in sorted(p.stem for p in (CONF / group).glob("*.yaml")):
        cfg = _compose([f"{group}={option}"])
        assert cfg.hydra.runtime.choices[group] == option
        node = cfg[group]
        if node is None:  # logger=none: no tracking
            assert (group, option) == ("logger", "none")
            continue
        plain = OmegaConf.to_container(node, resolve=False, throw_on_missing=False)
        subs = [v for v in plain.values() if isinstance(v, dict) and "_target_" in v]
        for t in [plain] if "_target_" in plain else subs:
            check_target_node(OmegaConf.create(t), group)
        kind = plain.get("kind")
        assert kind in (None, option) or group in ("negatives", "data") and kind, (group, option, kind)
