import numpy as np
import pytest
import torch

from embexp.errors import ConfigError
from embexp.model.encoder import BiEncoder

from conftest import encoder_spec


def test_mean_and_cls_pooling_by_hand(tiny_encoder):
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    tiny_encoder.spec.pooling = "mean"
    assert torch.allclose(tiny_encoder.pool(hidden, mask), torch.tensor([[2.0, 3.0]]))
    tiny_encoder.spec.pooling = "cls"
    assert torch.allclose(tiny_encoder.pool(hidden, mask), torch.tensor([[1.0, 2.0]]))
    tiny_encoder.spec.pooling = "last"
    assert torch.allclose(tiny_encoder.pool(hidden, mask), torch.tensor([[3.0, 4.0]]))
    tiny_encoder.spec.pooling = "max"
    with pytest.raises(ValueError, match="unknown pooling"):
        tiny_encoder.pool(hidden, mask)


def test_unknown_pooling_and_bad_lengths_name_the_key():
    with pytest.raises(ConfigError, match="model.pooling"):
        encoder_spec("x", pooling="max").validate()
    with pytest.raises(ConfigError, match="model.query_max_length"):
        encoder_spec("x", query_max_length=0).validate()


def test_encode_is_normalised_and_order_preserving(tiny_encoder):
    texts = ["a", "a much longer text with many more tokens in it than the others", "mid length text"]
    emb = tiny_encoder.encode(texts, "passage", batch_size=2, dtype="fp32")
    assert emb.shape == (3, tiny_encoder.dim) and emb.dtype == np.float32
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    one_by_one = np.stack([tiny_encoder.encode([t], "passage", dtype="fp32")[0] for t in texts])
    assert np.allclose(emb, one_by_one, atol=1e-5)


def test_prefixes_are_applied(tiny_encoder):
    tiny_encoder.spec.query_prefix = "query: "
    tok = tiny_encoder.tokenize(["hello"], "query")
    decoded = tiny_encoder.tokenizer.decode(tok["input_ids"][0], skip_special_tokens=True)
    assert decoded.startswith("query")
    a = tiny_encoder.encode(["hello"], "query", dtype="fp32")
    b = tiny_encoder.encode(["hello"], "passage", dtype="fp32")
    assert not np.allclose(a, b)


def test_save_load_keeps_prefixes_and_rejects_mismatch(tiny_encoder, tmp_path):
    tiny_encoder.spec.query_prefix = "query: "
    tiny_encoder.spec.passage_prefix = "passage: "
    tiny_encoder.save(tmp_path / "m", base_model="tiny-random-bert")
    loaded = BiEncoder.load(tmp_path / "m")
    assert loaded.spec.query_prefix == "query: " and loaded.spec.passage_prefix == "passage: "
    x = tiny_encoder.encode(["some text"], "query", dtype="fp32")
    y = loaded.encode(["some text"], "query", dtype="fp32")
    assert np.allclose(x, y, atol=1e-6)
    # inherit (None) is fine; a different explicit prefix fails before anything runs
    BiEncoder.from_spec(
        encoder_spec(str(tmp_path / "m"), pooling=None, query_prefix=None, passage_prefix=None)
    )
    with pytest.raises(ConfigError, match="model.query_prefix") as e:
        BiEncoder.from_spec(encoder_spec(str(tmp_path / "m"), query_prefix="", passage_prefix="passage: "))
    assert "query: " in str(e.value)


def test_fingerprint_tracks_weights(tiny_encoder):
    fp = tiny_encoder.fingerprint()
    assert fp == tiny_encoder.fingerprint()
    with torch.no_grad():
        next(tiny_encoder.backbone.parameters()).add_(1e-3)
    assert tiny_encoder.fingerprint() != fp


def test_bf16_close_to_fp32(tiny_encoder):
    texts = ["alpha beta", "gamma delta epsilon"]
    a = tiny_encoder.encode(texts, "passage", dtype="fp32")
    b = tiny_encoder.encode(texts, "passage", dtype="bf16")
    assert np.allclose(a, b, atol=5e-2)
    with pytest.raises(ConfigError, match="eval.dtype"):
        tiny_encoder.encode(texts, "passage", dtype="int3")


def test_bucketed_lengths_and_a_compiled_backbone_embed_the_same(tiny_encoder):
    texts = ["ACH reversal window", "refund", "pair the TX-4410-B headset with a phone", "x"]
    want = tiny_encoder.encode(texts, "passage", batch_size=3, dtype="fp32")
    tiny_encoder.pad_to_multiple_of = 16
    padded = tiny_encoder.encode(texts, "passage", batch_size=3, dtype="fp32")
    np.testing.assert_allclose(padded, want, atol=1e-5)  # padding is masked out
    names = [n for n, _ in tiny_encoder.named_parameters()]
    tiny_encoder.compile_backbone(backend="eager")  # dynamo capture; inductor only changes kernels
    assert tiny_encoder.backbone._compiled_call_impl is not None
    np.testing.assert_allclose(
        tiny_encoder.encode(texts, "passage", batch_size=3, dtype="fp32"), want, atol=1e-5
    )
    assert [n for n, _ in tiny_encoder.named_parameters()] == names  # state dict keys unchanged


def test_training_uses_one_attention_kernel_however_the_mode_was_set(tiny_encoder):
    """On CPU ``auto`` trains with eager attention and evaluates with SDPA. Lightning restores the
    training mode after a validation by setting each module's ``training`` flag, not through
    ``train()``: the kernel must follow the mode at every forward, or the epochs after the first
    validation train on SDPA and a run resumed from a checkpoint on eager (under bf16 the two
    round differently: the resumed run was not bit-exact)."""
    hf = tiny_encoder._hf_model()
    batch = tiny_encoder.tokenize(["refund to card", "pair the terminal"], "query")
    tiny_encoder.train()
    assert hf.config._attn_implementation == "eager"
    tiny_encoder.eval()
    tiny_encoder(**batch)
    assert hf.config._attn_implementation == "sdpa"
    for m in tiny_encoder.modules():  # what Lightning's validation loop does on its way out
        m.training = True
    tiny_encoder(**batch)
    assert hf.config._attn_implementation == "eager"


def test_encode_batches_are_capped_in_padded_tokens_on_a_cpu(tiny_encoder):
    """model.cpu_batch_tokens: long texts go in smaller batches (cache-sized on a CPU), short ones
    fill eval.batch_size rows; the embeddings are those of uncapped batches."""
    from embexp.model.encoder import length_batches

    assert length_batches([256] * 5 + [100] * 3 + [10] * 200, 64, 4096) == [
        (0, 16),  # 16 rows of the longest text's 256 tokens
        (16, 80),
        (80, 144),
        (144, 208),
    ]
    assert length_batches([300, 10], 64, 256) == [(0, 1), (1, 2)]  # too long for the cap: alone
    assert length_batches([5, 4, 3], 2) == [(0, 2), (2, 3)]
    texts = [("refund policy " * (i % 7 + 1)).strip() for i in range(40)]
    seen = []
    hook = tiny_encoder.backbone.register_forward_hook(
        lambda m, a, kw, out: seen.append(kw["input_ids"].shape), with_kwargs=True
    )
    try:
        uncapped = tiny_encoder.encode(texts, "passage", batch_size=64, dtype="fp32")
        seen.clear()
        tiny_encoder.cpu_batch_tokens = 64
        capped = tiny_encoder.encode(texts, "passage", batch_size=64, dtype="fp32")
    finally:
        hook.remove()
        tiny_encoder.cpu_batch_tokens = None
    assert len(seen) > 1 and all(rows * length <= 64 or rows == 1 for rows, length in seen)
    assert np.allclose(capped, uncapped, atol=1e-6)
