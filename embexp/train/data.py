"""Training examples, seeded batches and the tokenising collate (a LightningDataModule).

Randomness is derived, not ambient: the batch order comes from (seed, epoch) and the
hard negatives of example ``i`` from (seed, i, epoch), so a resumed run sees the same
batches it would have seen.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from embexp.config.schema import TrainSettings
from embexp.config.store import to_schema
from embexp.data.prepare import PreparedData
from embexp.data.trainability import check_training_signal, too_few_negatives, training_pairs
from embexp.data.types import TrainExample, positives_by_query
from embexp.errors import ConfigError, DataError, Problem
from embexp.losses.masking import false_negative_mask, key_tensor, text_key
from embexp.model.tokens import TokenCache
from embexp.train.sampler import (
    NoDuplicateBatchSampler,
    RankShardedBatches,
    group_by_length,
    shuffle_full_batches,
)

log = logging.getLogger("embexp.train")


def build_examples(data: PreparedData, negatives: dict[str, list[str]] | None = None) -> list[TrainExample]:
    """One example per training pair (``data.train_positives``: grade and cap applied), in a
    stable order (:func:`~embexp.data.trainability.training_pairs`)."""
    ds = data.dataset
    negatives = negatives if negatives is not None else ds.negatives
    out = [TrainExample(q, ds.queries[q], [d], list(negatives.get(q, []))) for q, d in training_pairs(data)]
    if not out:
        raise DataError(
            Problem(ds.source, None, "qrels", "no training pairs (no train query has a relevant document)")
        )
    return out


class _Indexed(Dataset):
    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, item):
        return item  # (index, epoch) tuples from the batch sampler


class EpochTaggedBatchSampler(Sampler[list[tuple[int, int]]]):
    """Wraps a batch sampler so every index travels with its epoch (for negative sampling)."""

    def __init__(self, inner):
        self.inner = inner
        self.epoch = 0
        # Lightning calls ``set_epoch`` on ``dataloader.sampler`` and ``dataloader.batch_sampler.sampler``,
        # never on the batch sampler itself: without this every epoch would be tagged 0.
        self.sampler = self

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if hasattr(self.inner, "set_epoch"):
            self.inner.set_epoch(epoch)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for batch in self.inner:
            yield [(int(i), self.epoch) for i in batch]

    def __len__(self) -> int:
        return len(self.inner)


class _ShuffledBatches:
    def __init__(self, n: int, batch_size: int, seed: int, drop_last: bool, lengths=None, group=None):
        self.n, self.batch_size, self.seed, self.drop_last, self.epoch = n, batch_size, seed, drop_last, 0
        self.lengths, self.group = lengths, group

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.n, generator=g).tolist()
        if self.group:
            order = group_by_length(order, self.lengths, self.group * self.batch_size)
        batches = [order[s : s + self.batch_size] for s in range(0, self.n, self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        yield from shuffle_full_batches(batches, self.batch_size, g) if self.group else batches

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)


def _padding_share(batches: list[list[int]], lengths: list[int]) -> float:
    """The share of padded positions when each batch is padded to its longest text."""
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return 1 - sum(lengths[i] for b in batches for i in b) / max(1, padded)


class Collator:
    """Tokenises queries and passages (positives then hard negatives; each distinct text once, in
    a :class:`~embexp.model.tokens.TokenCache`, then only padded) and builds the
    false-negative mask over the candidate columns; ships the keys behind it as int64 hashes
    (``keys``), from which the loss rebuilds the mask on the batch gathered from every DDP rank."""

    def __init__(
        self,
        encoder,
        data: PreparedData,
        examples: list[TrainExample],
        *,
        n_negatives: int = 0,
        seed: int = 0,
        tokens: TokenCache | None = None,
    ):
        self.encoder = encoder
        self.corpus = data.dataset.corpus
        self.examples = examples
        self.n_negatives = n_negatives
        self.seed = seed
        self.positives: dict[str, set[str]] = positives_by_query(data.train)
        self._doc_keys: dict[str, frozenset] = {}
        self.tokens = tokens if tokens is not None else TokenCache(encoder)  # each text tokenised once

    def doc_keys(self, doc_id: str) -> frozenset:
        k = self._doc_keys.get(doc_id)
        if k is None:
            k = self._doc_keys[doc_id] = frozenset((doc_id, text_key(self.corpus.text_of(doc_id))))
        return k

    def sample_negatives(self, i: int, epoch: int) -> list[str]:
        ex = self.examples[i]
        rng = random.Random(hash((self.seed, i, epoch)) & 0xFFFFFFFF)
        pool = [d for d in ex.negative_ids if d not in self.positives.get(ex.query_id, ())]
        if len(pool) >= self.n_negatives:
            return rng.sample(pool, self.n_negatives)
        # too few mined negatives: top up with random non-positive documents
        picked = list(pool)
        taken = set(picked) | self.positives.get(ex.query_id, set())
        if len(self.corpus) - len(taken) < self.n_negatives - len(picked):  # would draw forever
            have = len(self.corpus) - len(self.positives.get(ex.query_id, ()))  # the pre-flight said it
            raise too_few_negatives(self.n_negatives, ex.query_id, have, len(self.corpus), "the corpus")
        while len(picked) < self.n_negatives:
            d = self.corpus.ids[rng.randrange(len(self.corpus))]
            if d not in taken:
                picked.append(d)
                taken.add(d)
        return picked

    def __call__(self, items: list[tuple[int, int]]) -> dict:
        exs = [self.examples[i] for i, _ in items]
        pos_ids = [ex.positive_ids[0] for ex in exs]
        neg_ids = [self.sample_negatives(i, e) for i, e in items] if self.n_negatives else []
        cand = [self.doc_keys(d) for d in pos_ids] + [self.doc_keys(d) for row in neg_ids for d in row]
        pos_sets = [
            frozenset().union(
                *(self.doc_keys(d) for d in self.positives.get(ex.query_id, {ex.positive_ids[0]}))
            )
            for ex in exs
        ]
        texts = [self.corpus.text_of(d) for d in pos_ids] + [
            self.corpus.text_of(d) for row in neg_ids for d in row
        ]
        return {
            "query": self.tokens.batch([ex.query for ex in exs], "query"),
            "passage": self.tokens.batch(texts, "passage"),
            "mask": false_negative_mask(pos_sets, cand),  # (batch, batch * (1 + n_neg))
            # the same keys as int64 hashes, for the loss to rebuild the mask across DDP ranks
            "keys": {
                "candidates": key_tensor(cand),  # (batch * (1 + n_neg), 2): doc id, text hash
                "positives": key_tensor(pos_sets),  # (batch, most positive keys of a query)
            },
            "n_neg": self.n_negatives,
        }


def batch_keys(examples: list[TrainExample], doc_keys) -> list[frozenset]:
    """What the no-duplicate sampler keeps out of one batch, per example: its positive's keys
    (``doc_keys(doc_id)``: the id and the text) and its query's text."""
    return [doc_keys(ex.positive_ids[0]) | {text_key(ex.query)} for ex in examples]


def plan_batches(
    keys: list[frozenset],
    size: int,
    seed: int,
    *,
    no_duplicates: bool,
    drop_last: bool = False,
    lengths: list | None = None,
    group_by_length: int | None = None,
):
    """An epoch's batches of example indices (seeded per epoch): no two sharing a key, or shuffled."""
    if no_duplicates:
        return NoDuplicateBatchSampler(
            keys, size, seed=seed, drop_last=drop_last, lengths=lengths, group_by_length=group_by_length
        )
    return _ShuffledBatches(len(keys), size, seed, drop_last, lengths, group_by_length)


class PairDataModule(pl.LightningDataModule):
    @staticmethod
    def preflight(data: PreparedData, cfg) -> dict:
        """Before any model is loaded: refuse training data that cannot teach anything, and put
        what can only partly in the data card (:func:`~embexp.data.trainability.check_training_signal`,
        with the first epoch's batches as :func:`plan_batches` draws them on one process, without
        length grouping, which needs the tokenizer)."""
        train, seed = to_schema(cfg.train, TrainSettings, "train"), int(cfg.seed)
        batch_size = train.batch_size
        corpus, examples = data.dataset.corpus, build_examples(data, {}) if data.train_positives else []
        keys = batch_keys(examples, lambda d: frozenset((d, text_key(corpus.text_of(d)))))
        plan = plan_batches(keys, batch_size, seed, no_duplicates=train.no_duplicates)
        return check_training_signal(
            data, cfg.get("negatives"), batch_size=batch_size, batches=list(plan) if examples else []
        )

    def __init__(
        self,
        encoder,
        data: PreparedData,
        *,
        batch_size: int = TrainSettings.batch_size,
        n_negatives: int = 0,
        no_duplicates: bool = True,
        num_workers: int = 0,
        seed: int = 0,
        drop_last: bool = False,
        negatives: dict[str, list[str]] | None = None,
        group_by_length: int | None = None,
    ):
        super().__init__()
        if not isinstance(batch_size, int) or batch_size < 2:
            raise ConfigError(
                "train.batch_size", f"in-batch negatives need a batch size >= 2, got {batch_size!r}"
            )
        if not isinstance(n_negatives, int) or n_negatives < 0:
            raise ConfigError("negatives.n_negatives", f"must be a non-negative integer, got {n_negatives!r}")
        self.encoder, self.data = encoder, data
        self.batch_size, self.n_negatives, self.no_duplicates = batch_size, n_negatives, no_duplicates
        self.num_workers, self.seed, self.drop_last = num_workers, seed, drop_last
        if group_by_length is not None and (not isinstance(group_by_length, int) or group_by_length < 1):
            raise ConfigError(
                "train.group_by_length", f"must be null or >= 1 batches, got {group_by_length!r}"
            )
        self.group_by_length = group_by_length
        self.set_negatives(negatives)

    def set_negatives(self, negatives: dict[str, list[str]] | None) -> None:
        """Swap in a new negative pool (a mining round); batches from now on use it."""
        self.examples = build_examples(self.data, negatives)
        old = getattr(self, "collator", None)
        self.collator = Collator(
            self.encoder,
            self.data,
            self.examples,
            n_negatives=self.n_negatives,
            seed=self.seed,
            tokens=getattr(old, "tokens", None),  # a new pool keeps the texts tokenised so far
        )

    def lengths(self) -> list[tuple[int, int]]:
        """Per example: (positive passage tokens, query tokens), the order ``train.group_by_length``
        sorts by (tokenised once, into the cache the batches are padded from)."""
        corpus, tokens = self.collator.corpus, self.collator.tokens
        passages = tokens.lengths([corpus.text_of(ex.positive_ids[0]) for ex in self.examples], "passage")
        queries = tokens.lengths([ex.query for ex in self.examples], "query")
        return list(zip(passages, queries))

    def world(self) -> tuple[int, int]:
        """``(rank, world_size)`` of the attached trainer; ``(0, 1)`` before one is attached."""
        trainer = self.trainer
        return (int(trainer.global_rank), int(trainer.world_size)) if trainer is not None else (0, 1)

    def train_dataloader(self) -> DataLoader:
        """Seeded batches; under DDP each rank takes its part of every global batch of
        ``world_size * batch_size`` (:class:`~embexp.train.sampler.RankShardedBatches`)."""
        rank, world = self.world()
        size = self.batch_size * world
        group, lengths = self.group_by_length, self.lengths() if self.group_by_length else None
        inner = plan_batches(
            batch_keys(self.examples, self.collator.doc_keys),
            size,
            self.seed,
            no_duplicates=self.no_duplicates,
            drop_last=self.drop_last,
            lengths=lengths,
            group_by_length=group,
        )
        # once, inside fit (the world size is known there: build_trainer asks for a loader before it)
        if group and self.trainer is not None and rank == 0 and not getattr(self, "_grouping_logged", False):
            self._grouping_logged = True
            passages = [p for p, _ in lengths]
            grouped = _padding_share(list(inner), passages)  # epoch 0's batches, as the loader draws them
            shuffled = _padding_share(list(_ShuffledBatches(len(passages), size, self.seed, False)), passages)
            log.info(
                "train.group_by_length=%d: batches from length-sorted windows of %d examples; positive "
                "passages' padding %.0f%% of their padded tokens (%.0f%% in shuffled batches)",
                group,
                group * size,
                100 * grouped,
                100 * shuffled,
            )
        if world > 1:
            inner = RankShardedBatches(inner, len(self.examples), world, rank)
        return DataLoader(
            _Indexed(len(self.examples)),
            batch_sampler=EpochTaggedBatchSampler(inner),
            collate_fn=lambda items: self.collator(items),
            num_workers=self.num_workers,
            persistent_workers=False,
            pin_memory=self._on_cuda(),  # page-locked batches: Lightning's copy to the GPU is asynchronous
        )

    def _on_cuda(self) -> bool:
        trainer = self.trainer
        device = (
            getattr(getattr(trainer, "strategy", None), "root_device", None) if trainer is not None else None
        )
        return getattr(device, "type", None) == "cuda"

    def val_dataloader(self) -> DataLoader:
        # Validation re-embeds the dev corpus in the module's on_validation_epoch_end; this
        # one-item loader only makes Lightning run the validation loop.
        return DataLoader([0], batch_size=1)

    def test_dataloader(self) -> DataLoader:  # the final evaluation, in the module's on_test_epoch_end
        return DataLoader([0], batch_size=1)
