"""The typed schemas: every group option composes to its schema type, sets every key, agrees
with the dataclass defaults, and passes check_config; conversions, the peft mapping, the
top-level key set and the signature checks as small case tables."""

import dataclasses
from typing import Literal, Optional, Union

import pytest
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from embexp.config import to_schema
from embexp.config.schema import (
    ADAPTER_SCHEMAS,
    SCHEMAS,
    BeirData,
    CachedInfoNCELossConfig,
    EvalConfig,
    HfData,
    InBatchNegatives,
    InfoNCELossConfig,
    LoraAdapter,
    MinedNegatives,
    ModelConfig,
    PairsData,
    QuickstartData,
    TrainSettings,
    TripletLossConfig,
)
from embexp.config.signature import describe, fits
from embexp.config.store import allowed_top_level_keys
from embexp.errors import ConfigError
from embexp.train.preflight import check_config

from conftest import ROOT, compose_config

CONF = ROOT / "conf"
TYPED = {  # group option -> the schema its YAML names
    "data/beir": BeirData,
    "data/pairs": PairsData,
    "data/quickstart": QuickstartData,
    "data/hf": HfData,
    "adapter/full": ADAPTER_SCHEMAS["full"],
    "adapter/lora": LoraAdapter,
    "adapter/last_layer": ADAPTER_SCHEMAS["last_layer"],
    "negatives/in_batch": InBatchNegatives,
    "negatives/static": MinedNegatives,
    "negatives/iterative": MinedNegatives,
    "loss/infonce": InfoNCELossConfig,
    "loss/cached_infonce": CachedInfoNCELossConfig,
    "loss/triplet": TripletLossConfig,
    "eval/default": EvalConfig,
    **{f"model/{p.stem}": ModelConfig for p in (CONF / "model").glob("*.yaml")},
}
REQUIRED = {"data.path", "model.name_or_path"}  # '???' in some options on purpose


_compose = compose_config


def _missing_keys(node, prefix: str) -> set[str]:
    out = set()
    for k in node:
        if OmegaConf.is_interpolation(node, k):  # e.g. data.name from data.path: set by its source
            continue
        if OmegaConf.is_missing(node, k):
            out.add(f"{prefix}.{k}")
        elif OmegaConf.is_dict(node[k]):
            out |= _missing_keys(node[k], f"{prefix}.{k}")
    return out


def test_every_typed_option_is_listed():
    for group in ("data", "adapter", "negatives", "loss", "eval", "model"):
        for p in (CONF / group).glob("*.yaml"):
            assert f"{group}/{p.stem}" in TYPED, (
                f"{group}/{p.stem}.yaml: add it to TYPED (and name its schema)"
            )


def test_schemas_are_in_the_config_store():
    repo = ConfigStore.instance().repo["schema"]
    for group, schemas in SCHEMAS.items():
        for name in schemas:
            assert f"{name}.yaml" in repo[group], (group, name)


@pytest.mark.parametrize("option", sorted(TYPED))
def test_option_composes_to_its_schema_and_sets_every_key(option):
    group, name = option.split("/")
    cfg = _compose([f"{group}={name}"])
    assert OmegaConf.get_type(cfg[group]) is TYPED[option]
    assert _missing_keys(cfg[group], group) <= REQUIRED, "a schema key the YAML does not set"


@pytest.mark.parametrize(
    "option, ignore",
    [
        ("data/beir", {"path", "name", "sample_seed"}),  # name: from the path; sample_seed: ${seed}
        ("data/pairs", {"path", "sample_seed"}),
        ("data/quickstart", {"path", "sample_seed"}),
        ("data/hf", {"path", "name", "sample_seed"}),
        ("model/minilm-l6", {"name_or_path"}),
        ("adapter/full", set()),
        ("adapter/lora", set()),
        ("adapter/last_layer", set()),
        ("negatives/in_batch", set()),
        ("negatives/static", {"seed"}),  # ${seed}
        ("loss/infonce", set()),
        ("loss/cached_infonce", set()),
        ("loss/triplet", set()),
        ("eval/default", set()),
    ],
)
def test_yaml_values_are_the_schema_defaults(option, ignore):
    """One set of defaults: a node built in Python gets what the YAML gives."""
    group, name = option.split("/")
    node = OmegaConf.to_container(_compose([f"{group}={name}"])[group], resolve=False)
    defaults = OmegaConf.to_container(OmegaConf.structured(TYPED[option]), resolve=False)
    for key in ignore:
        node.pop(key, None), defaults.pop(key, None)
    assert node == defaults


def test_train_node_matches_its_schema():
    node = OmegaConf.to_container(_compose(["data=beir", "data.path=x"])["train"], resolve=True)
    assert node == dataclasses.asdict(TrainSettings())
    # the quickstart data brings its step budget (conf/data/quickstart.yaml)
    assert _compose()["train"]["max_steps"] == 50


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (CONF / "experiment").glob("*.yaml")))
def test_every_experiment_passes_check_config(experiment, tmp_path):
    cfg = _compose([f"experiment={experiment}", f"data.path={tmp_path}"])
    check_config(cfg, task="train")


@pytest.mark.parametrize("group", ["adapter", "loss", "negatives", "model", "data"])
def test_every_group_option_passes_check_config(group, tmp_path):
    for option in sorted(p.stem for p in (CONF / group).glob("*.yaml")):
        extra = [f"data.path={tmp_path}"] if group == "data" else []
        if group == "model":
            extra = ["model.name_or_path=tiny-random-bert"]  # bge/e5 are hub ids, offline here
        check_config(_compose([f"{group}={option}", *extra]), task="train")


@pytest.mark.parametrize("task", ["train", "eval", "mine"])
def test_default_config_of_each_entry_point_passes(task):
    check_config(_compose(["model=tiny"], config_name=task), task=task)


def test_top_level_keys_are_what_the_primary_configs_compose_to():
    allowed = allowed_top_level_keys()
    for name in ("train", "eval", "mine"):
        assert set(_compose(config_name=name)) <= allowed, name
    assert {"experiment", "hparams_search", "debug", "local", "hydra", "optuna"} <= allowed
    assert "los" not in allowed


def test_to_schema_fills_defaults_and_keeps_objects():
    lora = to_schema({"kind": "lora", "r": "8"}, ADAPTER_SCHEMAS)
    assert lora == LoraAdapter(r=8) and isinstance(lora.r, int)
    assert to_schema(lora, ADAPTER_SCHEMAS) is lora
    data = to_schema({"kind": "pairs", "path": ROOT / "x.jsonl"}, {"pairs": PairsData})
    assert data.path == str(ROOT / "x.jsonl") and data.test_fraction == 0.2 and data.name == "pairs"


def test_to_schema_resolves_interpolations_against_the_root():
    cfg = OmegaConf.create({"seed": 7, "negatives": {"kind": "static", "seed": "${seed}"}})
    assert to_schema(cfg.negatives, {"static": MinedNegatives}).seed == 7


def test_lora_to_peft_maps_our_names_to_peft():
    peft_cfg = LoraAdapter(r=4, alpha=8, dropout=0.05, target_modules=["query", "key"]).to_peft()
    assert (peft_cfg.r, peft_cfg.lora_alpha, peft_cfg.lora_dropout) == (4, 8.0, 0.05)
    assert set(peft_cfg.target_modules) == {"query", "key"} and peft_cfg.bias == "none"
    assert str(peft_cfg.task_type).endswith("FEATURE_EXTRACTION")


# Lightning annotates with typing.Union / Optional (not X | Y): test both spellings.
PRECISION = Union[Literal[16, 32], Literal["16-mixed", "32-true"], None]  # noqa: UP007, PYI030


@pytest.mark.parametrize(
    "value, hint, expected",
    [
        (3, Optional[int], True),  # noqa: UP045
        (None, Optional[int], True),  # noqa: UP045
        ("abc", Optional[int], False),  # noqa: UP045
        ("abc", int | None, False),
        (True, int, False),
        (2.5, int, False),
        (1, float, True),
        (False, int | bool, True),
        ("16-mixed", PRECISION, True),
        ("half", PRECISION, False),
        (16, Literal["16"], False),
        ([0, 1], Union[list[int], str, int], True),  # noqa: UP007
        ("auto", str | ConfigError, True),
        (5, str | ConfigError, None),  # a class config values cannot be checked against
        ({"a": 1}, dict[str, int], True),
        (3, int | float | None, True),
    ],
)
def test_fits(value, hint, expected):
    assert fits(value, hint) is expected


def test_describe():
    assert describe(Optional[int]) == "int or null"  # noqa: UP045
    assert describe(Literal["a", "b"]) == "one of 'a', 'b'"
