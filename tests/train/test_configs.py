"""Every experiment composes and every group instantiates (lightning-hydra-template style)."""

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate

from conftest import ROOT

CONF = ROOT / "conf"
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


def _compose(overrides):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name="train", overrides=overrides, return_hydra_config=True)


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
    for option in sorted(p.stem for p in (CONF / group).glob("*.yaml")):
        cfg = _compose([f"{group}={option}"])
        assert cfg is not None
