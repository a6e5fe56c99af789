"""Pre-tokenised batches: the token cache pads to exactly what the tokenizer returns."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from embexp.data.prepare import prepare_data
from embexp.errors import ConfigError
from embexp.model.encoder import BiEncoder
from embexp.model.registry import resolve
from embexp.model.tokens import TokenCache
from embexp.train.data import PairDataModule

from conftest import encoder_spec

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
    spec = encoder_spec(str(path), query_max_length=8, passage_max_length=12, query_prefix="query: ")
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


@pytest.mark.parametrize("multiple", [8, 32])
def test_bucketed_lengths_match_the_tokenizer_pad_to_multiple_of(encoder, multiple):
    encoder.pad_to_multiple_of = multiple
    cache = TokenCache(encoder)
    for texts in (TEXTS, ["x"]):
        got = cache.batch(texts, "passage")
        raw = encoder.tokenize(texts, "passage", padding=False)
        want = encoder.tokenizer.pad(dict(raw), return_tensors="pt", pad_to_multiple_of=multiple)
        assert got["input_ids"].shape[1] % multiple == 0
        assert all(torch.equal(got[k], want[k]) for k in want)


def test_the_cache_stores_ids_compactly_and_constant_keys_once(encoder):
    cache = TokenCache(encoder)
    cache.batch(TEXTS, "passage")
    for feats in cache._ids.values():
        assert feats["input_ids"].dtype == np.uint16  # both vocabularies are under 65,536
        assert feats["attention_mask"] == 1 and feats.get("token_type_ids", 0) == 0


def test_without_a_pad_token_the_tokenizer_decides(encoder):
    encoder.tokenizer.pad_token = None
    with pytest.raises(ValueError, match="pad"):  # as tokenize(padding=True) does
        TokenCache(encoder).batch(TEXTS, "passage")


def test_lengths_are_the_token_counts_of_the_padded_batches(encoder):
    cache = TokenCache(encoder)
    got = cache.lengths(TEXTS, "passage")
    assert got == cache.batch(TEXTS, "passage")["attention_mask"].sum(1).tolist()
    assert max(got) == 12 and len(cache) == 4  # truncated to passage_max_length; the repeat once


@pytest.mark.parametrize("no_duplicates", [True, False])
def test_group_by_length_forms_batches_of_similar_length(multi_beir, tiny_encoder, no_duplicates):
    data = prepare_data({"kind": "beir", "path": str(multi_beir), "dev_fraction": 0.2})
    kw = dict(batch_size=2, seed=0, no_duplicates=no_duplicates)
    grouped = PairDataModule(tiny_encoder, data, group_by_length=100, **kw)  # one window: sorted
    lengths = grouped.lengths()
    assert [p for p, _ in lengths] == [
        len(x)
        for x in tiny_encoder.tokenize(
            [data.dataset.corpus.text_of(e.positive_ids[0]) for e in grouped.examples],
            "passage",
            padding=False,
        )["input_ids"]
    ]
    plans = [
        list(dm.train_dataloader().batch_sampler)
        for dm in (grouped, PairDataModule(tiny_encoder, data, **kw))
    ]
    spread = [
        sum(max(lengths[i][0] for i, _ in b) - min(lengths[i][0] for i, _ in b) for b in p) for p in plans
    ]
    assert sorted(i for b in plans[0] for i, _ in b) == sorted(i for b in plans[1] for i, _ in b)
    assert spread[0] < spread[1]
    with pytest.raises(ConfigError, match="train.group_by_length"):
        PairDataModule(tiny_encoder, data, group_by_length=0, **kw)
