"""The unpadded forward (model.unpad) is the padded forward on the real tokens: same embeddings and
same gradients for every pooling, both attention kernels, LoRA and a compiled backbone; it applies
attention dropout; an architecture it cannot run fails with a ConfigError naming model.unpad."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from embexp.errors import ConfigError
from embexp.model import unpadded
from embexp.model.adapters import apply_adapter
from embexp.model.encoder import BiEncoder, build_encoder

from conftest import encoder_spec

# lengths from 3 to 60 tokens: most of a padded batch is padding
TEXTS = [
    "refund",
    "ACH reversal window for a returned payment " * 6,
    "pair the TX-4410-B headset",
    "R01 means insufficient funds; R02 means the account is closed.",
    "x",
]
LORA = {"kind": "lora", "r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["query", "value"]}


def no_dropout(encoder: BiEncoder) -> BiEncoder:
    for m in encoder.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    return encoder


def batch(encoder: BiEncoder, texts=TEXTS, kind="passage") -> dict:
    b = encoder.tokenize(texts, kind)
    assert "token_type_ids" in b and (b["attention_mask"] == 0).float().mean() > 0.3
    return dict(b)


@pytest.mark.parametrize("kernel", ["split", "padded", "varlen"])
@pytest.mark.parametrize("pooling", ["mean", "cls", "last"])
def test_unpadded_embeddings_equal_the_padded_forward(tiny_model_dir, kernel, pooling):
    spec = encoder_spec(str(tiny_model_dir), pooling=pooling, passage_max_length=64)
    enc = BiEncoder.from_spec(spec).eval()
    with torch.no_grad():
        want = enc(**batch(enc)).embeddings
        hidden = enc.backbone(**batch(enc)).last_hidden_state
        enc.set_unpad(True, kernel)
        got = enc(**batch(enc)).embeddings
        packed_hidden, packed = unpadded.forward(enc.backbone, **batch(enc), kernel=kernel)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    mask = batch(enc)["attention_mask"].bool()
    assert packed_hidden.shape[0] == int(mask.sum()) < mask.numel()
    torch.testing.assert_close(packed_hidden, hidden[mask], atol=1e-5, rtol=1e-5)  # every real token
    torch.testing.assert_close(packed.pad(packed_hidden)[mask], hidden[mask], atol=1e-5, rtol=1e-5)


def test_encode_runs_its_length_sorted_batches_padded(tiny_encoder, monkeypatch):
    want = tiny_encoder.encode(TEXTS, "passage", batch_size=3, dtype="fp32")
    tiny_encoder.set_unpad(True)
    calls = []
    real = unpadded.forward
    monkeypatch.setattr(unpadded, "forward", lambda *a, **k: calls.append(1) or real(*a, **k))
    got = tiny_encoder.encode(TEXTS, "passage", batch_size=3, dtype="fp32")
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert not calls and tiny_encoder.unpad  # padded inside encode, unpadded again after it
    tiny_encoder(**batch(tiny_encoder))
    assert calls


def _loss_and_grads(encoder: BiEncoder) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    q = encoder(**batch(encoder, TEXTS[::-1], "query")).embeddings
    p = encoder(**batch(encoder)).embeddings
    loss = nn.functional.cross_entropy(q @ p.T / 0.05, torch.arange(len(TEXTS)))
    loss.backward()
    grads = {n: t.grad for n, t in encoder.named_parameters() if t.requires_grad and t.grad is not None}
    return loss.detach(), grads


@pytest.mark.parametrize("kernel", ["split", "padded", "varlen"])
@pytest.mark.parametrize("adapter", ["full", "lora"])
def test_unpadded_training_step_has_the_padded_loss_and_gradients(tiny_encoder, kernel, adapter):
    enc = no_dropout(tiny_encoder).train()
    if adapter == "lora":
        apply_adapter(enc, LORA)
        with torch.no_grad():  # LoRA's B starts at zero: make the adapter change the output
            for n, t in enc.backbone.named_parameters():
                if "lora_B" in n:
                    t.normal_(0, 0.5)
    else:
        apply_adapter(enc, {"kind": "full"})
    ref = copy.deepcopy(enc)
    want_loss, want = _loss_and_grads(ref)
    got_loss, got = _loss_and_grads(enc.set_unpad(True, kernel))
    torch.testing.assert_close(got_loss, want_loss, atol=1e-5, rtol=1e-5)
    assert set(got) == set(want) and len(want) > (4 if adapter == "lora" else 20)
    assert all(n.count("lora_") for n in want) if adapter == "lora" else True
    for name in want:
        torch.testing.assert_close(got[name], want[name], atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("kernel", ["split", "padded"])
def test_under_cpu_bf16_autocast_unpadded_training_matches_the_padded_step(tiny_encoder, kernel):
    """trainer.precision=bf16-mixed on a CPU (the default where it has AMX): the packed matmuls run
    in bf16 like the padded ones, so loss and gradients agree to bf16's precision, not bit for bit."""
    enc = no_dropout(tiny_encoder).train()
    apply_adapter(enc, {"kind": "full"})
    ref = copy.deepcopy(enc)
    seen = []  # the dtype the query projections compute in: bf16 under autocast, on both paths
    for model in (ref, enc):
        model._hf_model().encoder.layer[0].attention.self.query.register_forward_hook(
            lambda m, i, out: seen.append(out.dtype)
        )
    with torch.autocast("cpu", dtype=torch.bfloat16):
        want_loss, want = _loss_and_grads(ref)
        got_loss, got = _loss_and_grads(enc.set_unpad(True, kernel))
    assert seen == [torch.bfloat16] * 4  # query and passage batches, padded then unpadded
    torch.testing.assert_close(got_loss, want_loss, atol=0.01, rtol=0.005)
    assert set(got) == set(want)
    flat = [torch.cat([d[n].flatten() for n in sorted(want)]) for d in (got, want)]
    assert torch.isfinite(flat[0]).all()
    assert nn.functional.cosine_similarity(flat[0], flat[1], dim=0) > 0.999


@pytest.mark.parametrize("kernel", ["split", "padded"])
def test_attention_dropout_is_applied_when_training(tiny_encoder, kernel):
    enc = no_dropout(tiny_encoder).set_unpad(True, kernel)
    for layer in enc.backbone.encoder.layer:
        layer.attention.self.dropout.p = 0.5
    with torch.no_grad():
        clean = enc.eval()(**batch(enc)).embeddings
        torch.manual_seed(0)
        a = enc.train()(**batch(enc)).embeddings
        torch.manual_seed(0)
        b = enc(**batch(enc)).embeddings
    torch.testing.assert_close(a, b)  # seeded: reproducible
    assert (a - clean).abs().max() > 1e-3  # and dropped out


def test_gradient_checkpointing_recomputes_the_layers_with_the_same_gradients(tiny_encoder, monkeypatch):
    import torch.utils.checkpoint as ckpt

    enc = tiny_encoder.train().set_unpad(True)  # dropout on: the recompute must replay its masks
    ref = copy.deepcopy(enc)
    enable = getattr(enc.backbone, "activation_checkpointing_enable", None)
    (enable or enc.backbone.gradient_checkpointing_enable)()
    calls = []
    real = ckpt.checkpoint
    monkeypatch.setattr(ckpt, "checkpoint", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    torch.manual_seed(0)
    want_loss, want = _loss_and_grads(ref)
    assert not calls
    torch.manual_seed(0)
    got_loss, got = _loss_and_grads(enc)
    assert len(calls) == 2 * len(enc.backbone.encoder.layer)  # queries and passages, every layer
    torch.testing.assert_close(got_loss, want_loss)
    for name in want:
        torch.testing.assert_close(got[name], want[name], atol=1e-5, rtol=1e-4, msg=name)


def test_a_compiled_unpadded_backbone_embeds_the_same(tiny_encoder):
    enc = tiny_encoder.eval()
    with torch.no_grad():
        want = enc(**batch(enc)).embeddings
    names = [n for n, _ in enc.named_parameters()]
    enc.set_unpad(True).compile_backbone(backend="eager")
    layer = enc.backbone.encoder.layer[0]
    assert layer.intermediate._compiled_call_impl is not None
    with torch.no_grad():
        got = enc(**batch(enc)).embeddings
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert [n for n, _ in enc.named_parameters()] == names


def test_build_encoder_reads_the_config(tiny_model_dir):
    cfg = {"name_or_path": str(tiny_model_dir), "unpad": True, "unpad_kernel": "varlen"}
    enc = build_encoder(cfg)
    assert enc.unpad and enc.unpad_kernel == "varlen"
    assert not build_encoder({"name_or_path": str(tiny_model_dir)}).unpad
    with pytest.raises(ConfigError, match="model.unpad_kernel"):
        enc.set_unpad(True, "flash")


def test_an_architecture_without_the_bert_layout_names_model_unpad(tiny_encoder):
    from transformers import DistilBertConfig, DistilBertModel

    cfg = DistilBertConfig(vocab_size=100, dim=16, n_layers=1, n_heads=2, hidden_dim=32)
    enc = BiEncoder(DistilBertModel(cfg), tiny_encoder.tokenizer, encoder_spec("distil"))
    assert "embeddings/encoder.layer" in unpadded.unsupported_reason(enc.backbone)
    with pytest.raises(ConfigError, match=r"model\.unpad.*cannot run unpadded"):
        enc.set_unpad(True)
    assert not enc.unpad and enc.set_unpad(False).unpad is False


def _tiny(kind: str):
    import transformers as tf

    common = dict(vocab_size=120, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32)
    common.update(max_position_embeddings=80, type_vocab_size=2)
    if kind == "roberta":
        return tf.RobertaModel(tf.RobertaConfig(hidden_size=16, **common))
    if kind == "electra":  # embedding size != hidden size: embeddings_project
        return tf.ElectraModel(tf.ElectraConfig(embedding_size=8, hidden_size=16, **common))
    if kind == "prenorm":
        return tf.RobertaPreLayerNormModel(tf.RobertaPreLayerNormConfig(hidden_size=16, **common))
    return tf.BertModel(tf.BertConfig(hidden_size=16, **common))


def _inputs(model, left: bool):
    g = torch.Generator().manual_seed(0)
    lengths = [9, 3, 14, 6]
    pad = model.config.pad_token_id or 0
    ids = torch.full((4, 14), pad)
    mask = torch.zeros(4, 14, dtype=torch.long)
    types = torch.zeros(4, 14, dtype=torch.long)
    for i, n in enumerate(lengths):
        cols = slice(14 - n, 14) if left else slice(0, n)
        ids[i, cols] = torch.randint(5, 120, (n,), generator=g)
        mask[i, cols] = 1
        types[i, cols] = (torch.arange(n) >= n // 2).long()  # a sentence pair: segment ids 0, then 1
    return ids, mask, types


@pytest.mark.parametrize("kind", ["bert", "roberta", "electra"])
@pytest.mark.parametrize("left", [False, True])
@pytest.mark.parametrize("kernel", ["split", "padded", "varlen"])
def test_bert_families_segments_and_left_padding(kind, left, kernel):
    model = _tiny(kind).eval()
    ids, mask, types = _inputs(model, left)
    with torch.no_grad():
        want = model(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
        got, packed = unpadded.forward(model, ids, mask, types, kernel=kernel)
    assert unpadded.unsupported_reason(model) is None
    torch.testing.assert_close(got, want[mask.bool()], atol=1e-5, rtol=1e-5)
    first = want[torch.arange(4), mask.argmax(1)]  # cls pooling: the first real token, either side
    torch.testing.assert_close(unpadded.pool(got, packed, "cls"), first, atol=1e-5, rtol=1e-5)
    enc = BiEncoder(model, None, encoder_spec(kind, pooling="cls"))
    torch.testing.assert_close(enc.pool(want, mask), first)


def test_a_pre_layernorm_look_alike_is_refused():
    model = _tiny("prenorm")  # same module names as RoBERTa, other math: it must not run unpadded
    assert "not one of the BERT-layer families" in unpadded.unsupported_reason(model)
    with pytest.raises(ConfigError, match=r"model\.unpad"):
        BiEncoder(model, None, encoder_spec("prenorm")).set_unpad(True)


def test_an_unknown_kernel_is_an_error_naming_the_choices(tiny_encoder):
    with pytest.raises(ValueError, match=r"unknown unpadded attention kernel 'flash'.*'split'"):
        unpadded.forward(tiny_encoder.backbone, **batch(tiny_encoder), kernel="flash")


def test_an_all_padding_row_is_an_error_not_another_texts_token():
    with pytest.raises(ValueError, match="text 1 of the batch has no tokens"):
        unpadded.Packed.of(torch.tensor([[1, 1, 0], [0, 0, 0]]))


def test_relative_positions_and_decoders_are_not_run_unpadded(tiny_encoder):
    model = tiny_encoder.backbone
    assert unpadded.unsupported_reason(model) is None
    model.config.position_embedding_type = "relative_key"
    assert "relative positions" in unpadded.unsupported_reason(model)
    model.config.position_embedding_type = "absolute"
    model.config.is_decoder = True
    assert "decoder" in unpadded.unsupported_reason(model)
