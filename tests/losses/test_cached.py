"""GradCache (embexp/losses/cached.py): the cached step gives the plain InfoNCE loss and every
parameter gradient within 1e-5 on a tiny random BERT in fp32: dropout off against the one-pass
plain step, dropout on (and LoRA dropout) against a plain step whose forward runs over the same
chunks (the same dropout masks), chunk sizes that do and do not divide the batch, hard
negatives and a false-negative mask; under bf16 autocast the replay runs in bf16 too."""

import pytest
import torch

from embexp.errors import ConfigError
from embexp.losses import InfoNCELoss
from embexp.losses.cached import CachedInfoNCELoss, cached_loss, split_inputs
from embexp.model.adapters import apply_adapter

QUERIES = [
    "how do i get my money back",
    "label",
    "ACH reversal deadline for a business account",
    "R01?",
    "pin",
]
PASSAGES = [
    "Refunds are issued to the original card within 5 business days.",
    "Print a prepaid return label from your orders page.",
    "An ACH reversal can be requested within 5 banking days.",
    "R01 means insufficient funds.",
    "A card can be declined for a wrong PIN.",
]
NEGATIVES = [  # one hard negative per query (n_neg = 1)
    "Hold the pair button for 5 seconds until the light blinks.",
    "Shipping",
    "R02 means the account is closed; R03 means no account could be located.",
    "Fonts changed in release 3.",
    "Two-factor codes expire after 30 seconds.",
]
B = len(QUERIES)
TOL = {"atol": 1e-5, "rtol": 1e-5}


def make_batch(encoder) -> dict:
    mask = torch.zeros(B, 2 * B, dtype=torch.bool)  # (batch, batch * (1 + n_neg))
    mask[0, 3] = mask[2, B + 4] = mask[4, 0] = True  # false negatives: in-batch and hard
    return {
        "query": dict(encoder.tokenize(QUERIES, "query")),
        "passage": dict(encoder.tokenize(PASSAGES + NEGATIVES, "passage")),
        "n_neg": 1,
        "mask": mask,
    }


def plain_step(encoder, batch, loss, chunk_size=None):
    """The plain loss; with ``chunk_size`` its forward runs over the cached step's chunks."""

    def embed(inputs):
        parts = split_inputs(inputs, chunk_size) if chunk_size else [inputs]
        return torch.cat([encoder(**c).embeddings for c in parts])

    q, p = embed(batch["query"]), embed(batch["passage"])
    value = InfoNCELoss.forward(loss, q, p[:B], p[B:].view(B, 1, -1), mask=batch["mask"])
    value.backward()
    return value.detach()


def cached_step(encoder, batch, loss):
    value = cached_loss(encoder, batch, loss)
    value.backward()
    return value.detach()


def grads(encoder) -> dict[str, torch.Tensor]:
    out = {n: p.grad.clone() for n, p in encoder.named_parameters() if p.grad is not None}
    encoder.zero_grad(set_to_none=True)
    return out


def assert_same(encoder, batch, loss, *, reference_chunks, seed=0):
    torch.manual_seed(seed)
    want = plain_step(encoder, batch, loss, reference_chunks)
    want_grads, want_rng = grads(encoder), torch.get_rng_state()
    torch.manual_seed(seed)
    got = cached_step(encoder, batch, loss)
    got_grads = grads(encoder)
    torch.testing.assert_close(got, want, **TOL)
    assert got_grads.keys() == want_grads.keys() and want_grads
    for name in want_grads:
        torch.testing.assert_close(got_grads[name], want_grads[name], **TOL, msg=name)
    assert torch.equal(torch.get_rng_state(), want_rng)  # the replay leaves the RNG where it was
    return want


@pytest.mark.parametrize("chunk_size", [1, 2, 5, 64])  # 2: not a divisor of 5 or 10; 64 > batch
@pytest.mark.parametrize("symmetric", [False, True])
def test_equal_to_the_one_pass_plain_step_without_dropout(tiny_encoder, chunk_size, symmetric):
    tiny_encoder.eval()
    loss = CachedInfoNCELoss(temperature=0.05, symmetric=symmetric, chunk_size=chunk_size)
    assert_same(tiny_encoder, make_batch(tiny_encoder), loss, reference_chunks=None)


@pytest.mark.parametrize(
    "chunk_size, unpad", [(1, False), (3, False), (5, False), (3, True)]
)  # 3: not a divisor of 5 or 10; unpad: the packed forward's dropout masks are replayed too
def test_equal_to_the_plain_step_with_dropout_on(tiny_encoder, chunk_size, unpad):
    tiny_encoder.set_unpad(unpad).train()
    batch, loss = make_batch(tiny_encoder), CachedInfoNCELoss(chunk_size=chunk_size)
    value = assert_same(tiny_encoder, batch, loss, reference_chunks=chunk_size)
    torch.manual_seed(1)  # not vacuous: other dropout masks give another loss
    assert not torch.allclose(plain_step(tiny_encoder, batch, loss, chunk_size), value, **TOL)


def test_equal_with_a_lora_adapter_and_lora_dropout(tiny_encoder):
    apply_adapter(tiny_encoder, {"kind": "lora", "r": 4, "dropout": 0.1})
    with torch.no_grad():  # B starts at zero (so would A's gradient): make both non-trivial
        for name, p in tiny_encoder.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5, generator=torch.Generator().manual_seed(0))
    tiny_encoder.train()
    batch = make_batch(tiny_encoder)
    assert_same(tiny_encoder, batch, CachedInfoNCELoss(chunk_size=2), reference_chunks=2)
    assert all("lora_" in n for n, p in tiny_encoder.named_parameters() if p.requires_grad)


def test_backward_scales_with_the_incoming_gradient(tiny_encoder):
    """AMP's loss scale and Lightning's 1 / accumulate_grad_batches reach every chunk."""
    tiny_encoder.eval()
    batch, loss = make_batch(tiny_encoder), CachedInfoNCELoss(chunk_size=2)
    cached_step(tiny_encoder, batch, loss)
    once = grads(tiny_encoder)
    (cached_loss(tiny_encoder, batch, loss) * 8.0 / 2).backward()
    for name, g in grads(tiny_encoder).items():
        torch.testing.assert_close(g, once[name] * 4.0, **TOL, msg=name)


def test_bf16_autocast_is_replayed_in_backward(tiny_encoder):
    """Lightning's bf16-mixed autocast covers the training step but not ``backward``: the
    re-embedding must run in bf16 as step 1 did, or its gradients belong to other embeddings.
    (The reference keeps no autocast weight cache: with it, one bf16 copy of each weight serves
    every chunk and their weight gradients are summed in bf16, ~2% off the fp32 sum.)"""
    tiny_encoder.eval()
    batch, loss = make_batch(tiny_encoder), CachedInfoNCELoss(chunk_size=2)
    want_fp32 = plain_step(tiny_encoder, batch, loss, chunk_size=2), grads(tiny_encoder)
    with torch.autocast("cpu", dtype=torch.bfloat16, cache_enabled=False):
        want = plain_step(tiny_encoder, batch, loss, chunk_size=2)
    want_grads = grads(tiny_encoder)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = cached_loss(tiny_encoder, batch, loss)
    got.backward()  # outside autocast, as Lightning does
    torch.testing.assert_close(got.detach(), want, **TOL)
    got_grads = grads(tiny_encoder)
    for name, g in got_grads.items():
        torch.testing.assert_close(g, want_grads[name], **TOL, msg=name)
    flat = torch.cat([g.flatten() for g in got_grads.values()])
    flat_fp32 = torch.cat([want_fp32[1][n].flatten() for n in got_grads])
    assert (flat - flat_fp32).norm() > 1e-3 * flat_fp32.norm()  # not vacuous: fp32 differs


def test_without_grad_it_is_the_loss_alone(tiny_encoder):
    tiny_encoder.eval()
    batch, loss = make_batch(tiny_encoder), CachedInfoNCELoss(chunk_size=3)
    with torch.no_grad():
        got = cached_loss(tiny_encoder, batch, loss)
        q = tiny_encoder(**batch["query"]).embeddings
        p = tiny_encoder(**batch["passage"]).embeddings
        want = InfoNCELoss()(q, p[:B], p[B:].view(B, 1, -1), mask=batch["mask"])
    assert not got.requires_grad
    torch.testing.assert_close(got, want, **TOL)


def test_split_inputs_keeps_rows_in_order_and_drops_unused_padding(tiny_encoder):
    inputs = dict(tiny_encoder.tokenize(QUERIES, "query"))
    chunks = split_inputs(inputs, 2)
    assert [len(c["input_ids"]) for c in chunks] == [2, 2, 1]
    for key, value in inputs.items():
        for c, rows in zip(chunks, value.split(2)):
            width = c[key].shape[1]
            assert torch.equal(c[key], rows[:, :width])  # the same rows, a prefix of the columns
    for c, mask in zip(chunks, inputs["attention_mask"].split(2)):
        assert mask[:, c["attention_mask"].shape[1] :].sum() == 0  # only padding was dropped
        assert c["attention_mask"][:, -1].any()  # and all of it
    assert chunks[2]["input_ids"].shape[1] < inputs["input_ids"].shape[1]  # "pin" is short


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "8"])
def test_chunk_size_must_be_a_positive_integer(bad):
    with pytest.raises(ConfigError, match="loss.chunk_size"):
        CachedInfoNCELoss(chunk_size=bad)


def test_it_is_infonce_on_embeddings():
    loss = CachedInfoNCELoss(temperature=0.1, chunk_size=4)
    q, p = torch.nn.functional.normalize(
        torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(0)), dim=-1
    )
    torch.testing.assert_close(loss(q, p), InfoNCELoss(temperature=0.1)(q, p))
    assert "chunk_size=4" in repr(loss)
