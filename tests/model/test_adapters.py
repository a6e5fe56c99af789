"""apply_adapter: LoRA merges without changing embeddings, each kind trains what it says,
bad adapter configs fail with a ConfigError that names the key (the schema's checks, then
check_against_model's), and nothing is changed on the model."""

import numpy as np
import pytest
import torch

from embexp.config.schema import LastLayerAdapter, LoraAdapter
from embexp.errors import ConfigError
from embexp.model.adapters import (
    adapter_config,
    apply_adapter,
    check_adapter,
    check_against_model,
    count_params,
    merged_backbone,
)
from embexp.model.encoder import BiEncoder

from conftest import encoder_spec

TEXTS = ["a", "how do i get my money back", "R01 means insufficient funds; R02 means the account is closed."]
LORA = {"kind": "lora", "r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["query", "value"]}


def trainable_names(encoder) -> list[str]:
    return [n for n, p in encoder.backbone.named_parameters() if p.requires_grad]


def perturb_lora(encoder, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in encoder.backbone.named_parameters():
            if "lora_" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)


def test_lora_merged_equals_unmerged(tiny_encoder):
    base = tiny_encoder.encode(TEXTS, "passage", dtype="fp32")
    apply_adapter(tiny_encoder, LORA)
    perturb_lora(tiny_encoder)
    unmerged = tiny_encoder.encode(TEXTS, "passage", dtype="fp32")
    assert np.abs(unmerged - base).max() > 1e-3, "perturbed LoRA weights should change the embeddings"

    merged_bb = merged_backbone(tiny_encoder)
    assert not any("lora_" in n for n, _ in merged_bb.named_parameters())
    merged = BiEncoder(merged_bb, tiny_encoder.tokenizer, tiny_encoder.spec)
    for kind in ("passage", "query"):
        a = tiny_encoder.encode(TEXTS, kind, dtype="fp32")
        b = merged.encode(TEXTS, kind, dtype="fp32")
        assert np.abs(a - b).max() < 1e-5, kind
    # merging works on a copy: the encoder still has its (unmerged) adapter
    assert any("lora_" in n for n, _ in tiny_encoder.backbone.named_parameters())
    assert np.abs(tiny_encoder.encode(TEXTS, "passage", dtype="fp32") - unmerged).max() < 1e-6


def test_merged_backbone_of_a_plain_model_is_the_model(tiny_encoder):
    assert merged_backbone(tiny_encoder) is tiny_encoder.backbone


def test_full_trains_everything(tiny_encoder):
    for p in tiny_encoder.backbone.parameters():
        p.requires_grad_(False)
    info = apply_adapter(tiny_encoder, {"kind": "full"})
    total = sum(p.numel() for p in tiny_encoder.backbone.parameters())
    assert info.kind == "full" and info.trainable_params == info.total_params == total
    assert info.as_dict()["trainable_fraction"] == 1.0


def test_lora_trains_only_lora_weights(tiny_encoder):
    total_before = sum(p.numel() for p in tiny_encoder.backbone.parameters())
    info = apply_adapter(tiny_encoder, LORA)
    names = trainable_names(tiny_encoder)
    assert names and all("lora_" in n for n in names), names
    # r=4 on query and value of both layers: A (r x hidden) + B (hidden x r) each
    hidden, layers = tiny_encoder.dim, tiny_encoder.backbone.config.num_hidden_layers
    assert info.trainable_params == layers * 2 * (2 * 4 * hidden)
    assert info.total_params == total_before + info.trainable_params
    assert info.trainable_params / info.total_params < 0.10
    assert {n.split(".")[-4] for n in names} == {"query", "value"}  # ...query.lora_A.default.weight
    assert (info.trainable_params, info.total_params) == count_params(tiny_encoder.backbone)


@pytest.mark.parametrize("n_layers", [1, 2])
def test_last_layer_trains_only_the_top_layers(tiny_encoder, n_layers):
    info = apply_adapter(tiny_encoder, {"kind": "last_layer", "n_layers": n_layers})
    n_total = tiny_encoder.backbone.config.num_hidden_layers
    want = {str(i) for i in range(n_total - n_layers, n_total)}
    names = trainable_names(tiny_encoder)
    assert names and all(n.startswith("encoder.layer.") for n in names), names
    assert {n.split(".")[2] for n in names} == want
    blocks = tiny_encoder.backbone.encoder.layer
    layer_params = sum(p.numel() for i in want for p in blocks[int(i)].parameters())
    assert info.trainable_params == layer_params < info.total_params


def test_last_layer_trains_the_pooler_only_for_cls(tiny_model_dir):
    enc = BiEncoder.from_spec(encoder_spec(str(tiny_model_dir), pooling="cls"))
    apply_adapter(enc, {"kind": "last_layer", "n_layers": 1})
    names = trainable_names(enc)
    assert any(n.startswith("pooler.") for n in names)
    assert {n.split(".")[2] for n in names if n.startswith("encoder.")} == {"1"}
    enc2 = BiEncoder.from_spec(encoder_spec(str(tiny_model_dir), pooling="cls"))
    apply_adapter(enc2, {"kind": "last_layer", "n_layers": 1, "train_pooler": False})
    assert not any(n.startswith("pooler.") for n in trainable_names(enc2))


@pytest.mark.parametrize(
    "cfg, key, words",
    [
        ({**LORA, "r": 0}, "adapter.r", ["positive integer", "0"]),
        ({**LORA, "r": 2.5}, "adapter.r", ["2.5", "Integer"]),
        ({**LORA, "rank": 4}, "adapter.rank", ["unknown key", "LoraAdapter"]),
        ({**LORA, "alpha": 0}, "adapter.alpha", []),
        ({**LORA, "dropout": 1.0}, "adapter.dropout", []),
        ({**LORA, "target_modules": "query"}, "adapter.target_modules", ["list"]),
        (
            {**LORA, "target_modules": ["query", "q_proj"]},
            "adapter.target_modules",
            ["q_proj", "BertModel", "'query'", "'value'", "'key'", "'dense'"],
        ),
        ({"kind": "last_layer", "n_layers": 3}, "adapter.n_layers", ["2 layers", "3"]),
        ({"kind": "last_layer", "n_layers": 0}, "adapter.n_layers", []),
        ({"kind": "prefix"}, "adapter.kind", ["'prefix'", "lora", "full", "last_layer"]),
        ({}, "adapter.kind", ["None"]),
    ],
)
def test_bad_adapter_config_names_the_key(tiny_encoder, cfg, key, words):
    state = {n: p.detach().clone() for n, p in tiny_encoder.backbone.named_parameters()}
    with pytest.raises(ConfigError) as e:
        apply_adapter(tiny_encoder, cfg)
    assert e.value.key == key and f"'{key}'" in str(e.value)
    for w in words:
        assert w in str(e.value), (w, str(e.value))
    # nothing was changed on the model
    assert not hasattr(tiny_encoder.backbone, "peft_config")
    assert all(torch.equal(state[n], p) for n, p in tiny_encoder.backbone.named_parameters())
    with pytest.raises(ConfigError):
        check_against_model(tiny_encoder, cfg)
    with pytest.raises(ConfigError):
        check_adapter(tiny_encoder, cfg)  # the backwards-compatible name


def test_target_modules_error_lists_linear_modules_only(tiny_encoder):
    with pytest.raises(ConfigError) as e:
        apply_adapter(tiny_encoder, {**LORA, "target_modules": ["q_proj"]})
    listed = str(e.value).split("linear modules are", 1)[1]
    assert "'query'" in listed and "'LayerNorm'" not in listed and "'embeddings'" not in listed


def test_check_against_model_returns_the_schema_object_and_changes_nothing(tiny_encoder):
    before = [n for n, _ in tiny_encoder.backbone.named_parameters()]
    lora = check_against_model(tiny_encoder, LORA)
    assert isinstance(lora, LoraAdapter) and lora.r == 4 and lora.target_modules == ["query", "value"]
    last = check_against_model(tiny_encoder, {"kind": "last_layer", "n_layers": 2})
    assert isinstance(last, LastLayerAdapter) and last.n_layers == 2
    assert [n for n, _ in tiny_encoder.backbone.named_parameters()] == before


def test_apply_adapter_takes_the_schema_object(tiny_encoder):
    """The object from adapter_config (what check_config validated) is applied as is."""
    info = apply_adapter(tiny_encoder, adapter_config(LORA))
    assert info.kind == "lora"
    peft_cfg = tiny_encoder.backbone.peft_config["default"]
    assert (peft_cfg.r, peft_cfg.lora_alpha, peft_cfg.lora_dropout) == (4, 8.0, 0.0)
    assert set(peft_cfg.target_modules) == {"query", "value"}
