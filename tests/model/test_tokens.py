"""Pre-tokenised batches: the token cache pads to exactly what the tokenizer returns."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoTokenizer

from embexp.data.prepare import prepare_data
from embexp.model.encoder import BiEncoder, EncoderSpec
from embexp.model.registry import resolve
from embexp.model.tokens import TokenCache
from embexp.train.data import PairDataModule

TEXTS = [
    "ACH reversal window",
    "How do I pair the TX-4410-B headset with my phone after a factory reset?",
    "refund",
    "ACH reversal window",  # a repeat: tokenised once
    "Ünïcödé and emoji 🙂 in a query about SKU-9931",
]


class _TokOnly(BiEncoder):
    """The tokenizer side of a BiEncoder (no weights needed for these tests)."""

    def __init__(self, tokenizer, spec):
        torch.nn.Module.__init__(self)
        self.tokenizer, self.spec = tokenizer, spec


@pytest.fixture(params=["tiny", "minilm-l6"])
def encoder(request, tiny_model_dir):
    path = tiny_model_dir if request.param == "tiny" else resolve("minilm-l6")
    spec = EncoderSpec(str(path), query_max_length=8, passage_max_length=12, query_prefix="query: ")
    return _TokOnly(AutoTokenizer.from_pretrained(path), spec)


@pytest.mark.parametrize("kind", ["query", "passage"])
@pytest.mark.parametrize("side", ["right", "left"])
def test_cached_batches_equal_the_tokenizer_padding(encoder, kind, side):
    encoder.tokenizer.padding_side = side
    cache = TokenCache(encoder)
    for texts in (TEXTS, TEXTS[1:3], TEXTS[::-1], ["x"]):
        want = dict(encoder.tokenize(texts, kind))
        got = cache.batch(texts, kind)
        assert got.keys() == want.keys()
        for k in want:
            assert got[k].dtype == want[k].dtype and torch.equal(got[k], want[k]), (k, texts)
    assert len(cache) == len(set(TEXTS)) + 1  # each distinct text tokenised once (TEXTS and 'x')


def test_kinds_are_cached_apart(encoder):
    cache = TokenCache(encoder)
    q, p = cache.batch(["refund"], "query"), cache.batch(["refund"], "passage")
    assert q["input_ids"].shape[1] > p["input_ids"].shape[1]  # the query prefix
    assert len(cache) == 2


def test_the_collate_pads_cached_ids_and_a_new_pool_keeps_them(multi_beir, tiny_encoder):
    data = prepare_data({"kind": "beir", "path": str(multi_beir), "dev_fraction": 0.2})
    dm = PairDataModule(tiny_encoder, data, batch_size=4, n_negatives=1, seed=0)
    batch = next(iter(dm.train_dataloader()))
    n = batch["query"]["input_ids"].shape[0]
    assert batch["passage"]["input_ids"].shape[0] == 2 * n  # positive + one hard negative each
    texts = [ex.query for ex in dm.examples[:3]]
    cached = dm.collator.tokens.batch(texts, "query")
    assert all(torch.equal(cached[k], v) for k, v in tiny_encoder.tokenize(texts, "query").items())
    cache = dm.collator.tokens
    dm.set_negatives({})
    assert dm.collator.tokens is cache and len(cache) > 0
