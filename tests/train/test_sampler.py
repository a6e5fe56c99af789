import random
from collections import Counter

import pytest
import torch
from torch.utils.data import DataLoader

from embexp.train.data import _ShuffledBatches
from embexp.train.sampler import NoDuplicateBatchSampler, RankShardedBatches, group_by_length


def collisions(batches, keys):
    """Number of batches holding two examples that share a key."""
    bad = 0
    for batch in batches:
        counts = Counter(k for i in batch for k in set(keys[i]))
        bad += any(v > 1 for v in counts.values())
    return bad


def assert_each_index_once(batches, n):
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(n))


@pytest.mark.parametrize("seed", range(10))
def test_no_shared_keys_within_batches_when_possible(seed):
    keys = [{f"doc{i // 2}"} for i in range(40)]  # pairs share their positive
    sampler = NoDuplicateBatchSampler(keys, batch_size=4, seed=seed)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 10
    assert all(len(b) == 4 for b in batches)
    assert_each_index_once(batches, 40)
    assert collisions(batches, keys) == 0
    assert sampler.conflicting_batches == 0


@pytest.mark.parametrize("seed", range(5))
def test_hot_key_is_spread_over_batches(seed):
    # 8 examples share one positive, 10 batches: each batch can take one of them
    keys = [{"hot", f"q{i}"} if i < 8 else {f"d{i}", f"q{i}"} for i in range(40)]
    batches = list(NoDuplicateBatchSampler(keys, batch_size=4, seed=seed))
    assert_each_index_once(batches, 40)
    assert collisions(batches, keys) == 0


@pytest.mark.parametrize("seed", range(5))
def test_multi_key_examples_random_pool(seed):
    rng = random.Random(seed)
    keys = [{f"d{rng.randrange(150)}" for _ in range(rng.randint(1, 3))} for _ in range(200)]
    sampler = NoDuplicateBatchSampler(keys, batch_size=8, seed=seed)
    batches = list(sampler)
    assert_each_index_once(batches, 200)
    assert len(batches) == len(sampler) == 25
    assert all(len(b) == 8 for b in batches)
    assert sampler.conflicting_batches == collisions(batches, keys)
    assert collisions(batches, keys) == 0  # this pool is sparse enough for a clean split


@pytest.mark.parametrize("drop_last, expected_len", [(False, 5), (True, 4)])
def test_each_index_exactly_once_and_len(drop_last, expected_len):
    keys = [{i % 7} for i in range(23)]
    sampler = NoDuplicateBatchSampler(keys, batch_size=5, seed=3, drop_last=drop_last)
    batches = list(sampler)
    assert len(batches) == len(sampler) == expected_len
    flat = [i for b in batches for i in b]
    assert len(flat) == len(set(flat))
    if drop_last:
        assert all(len(b) == 5 for b in batches) and len(flat) == 20
    else:
        assert_each_index_once(batches, 23)
        assert [len(b) for b in batches] == [5, 5, 5, 5, 3]


def test_deterministic_per_seed_and_epoch():
    keys = [{f"d{i // 3}"} for i in range(60)]
    a = NoDuplicateBatchSampler(keys, batch_size=6, seed=11)
    b = NoDuplicateBatchSampler(keys, batch_size=6, seed=11)
    first = list(a)
    assert first == list(b) == list(a)
    a.set_epoch(1)
    second = list(a)
    assert second != first
    assert_each_index_once(second, 60)
    b.set_epoch(1)
    assert list(b) == second
    a.set_epoch(0)
    assert list(a) == first
    assert list(NoDuplicateBatchSampler(keys, batch_size=6, seed=12)) != first
    assert a.plan(epoch=1) == second


def test_unavoidable_conflicts_terminate_and_are_counted():
    keys = [{"same"} for _ in range(10)]
    sampler = NoDuplicateBatchSampler(keys, batch_size=4, seed=0)
    batches = list(sampler)
    assert [len(b) for b in batches] == [4, 4, 2]
    assert_each_index_once(batches, 10)
    assert sampler.conflicting_batches == 3

    # more examples share a key than there are batches: some collisions must remain,
    # everything else still gets placed exactly once
    keys = [{"hot"} if i < 12 else {f"d{i}"} for i in range(20)]
    sampler = NoDuplicateBatchSampler(keys, batch_size=4, seed=1)
    batches = list(sampler)
    assert len(batches) == 5
    assert_each_index_once(batches, 20)
    assert sampler.conflicting_batches == collisions(batches, keys) > 0


def test_key_conventions():
    # strings are single ids (not sets of characters); empty key sets never collide
    keys = ["ab", "ba", set(), set(), ("c", 1), ("c", 2)]
    batches = list(NoDuplicateBatchSampler(keys, batch_size=6, seed=0))
    assert len(batches) == 1 and sorted(batches[0]) == list(range(6))


def test_small_and_empty_inputs():
    assert list(NoDuplicateBatchSampler([], batch_size=4)) == []
    assert len(NoDuplicateBatchSampler([], batch_size=4)) == 0
    assert list(NoDuplicateBatchSampler([{"a"}], batch_size=4)) == [[0]]
    assert list(NoDuplicateBatchSampler([{"a"}], batch_size=4, drop_last=True)) == []
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            NoDuplicateBatchSampler([{"a"}], batch_size=bad)


def test_works_as_dataloader_batch_sampler():
    data = list(range(12))
    sampler = NoDuplicateBatchSampler([{i % 6} for i in data], batch_size=4, seed=5)
    loader = DataLoader(data, batch_sampler=sampler)
    batches = [b.tolist() for b in loader]
    assert len(batches) == 3
    assert sorted(x for b in batches for x in b) == data
    assert all(len({x % 6 for x in b}) == len(b) for b in batches)
    assert isinstance(next(iter(sampler))[0], int)
    assert torch.is_tensor(next(iter(loader)))


# ---- train.group_by_length ------------------------------------------------------------------
def padding(batches, lengths):
    """Passage pad positions a batch plan costs: sum over batches of len * longest - real."""
    return sum(len(b) * max(lengths[i][0] for i in b) - sum(lengths[i][0] for i in b) for b in batches)


def grouped_plans(group, drop_last=False, seed=0, n=203, bs=8, epoch=0):
    rng = random.Random(seed)
    doc_lengths = [rng.randint(3, 250) for _ in range(n // 3 + 1)]
    keys = [{f"doc{i // 3}", f"q{i}"} for i in range(n)]  # triples share a positive (and its length)
    lengths = [(doc_lengths[i // 3], rng.randint(2, 20)) for i in range(n)]  # (passage, query)
    sampler = NoDuplicateBatchSampler(
        keys, bs, seed=seed, drop_last=drop_last, lengths=lengths, group_by_length=group
    )
    sampler.set_epoch(epoch)
    shuffled = _ShuffledBatches(n, bs, seed, drop_last, lengths, group)
    shuffled.set_epoch(epoch)
    return [list(sampler), list(shuffled)], keys, lengths, sampler


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("seed", range(3))
def test_grouped_batches_carry_little_padding_and_keep_every_guarantee(drop_last, seed):
    (grouped, shuffled_grouped), keys, lengths, sampler = grouped_plans(8, drop_last, seed, n=2003)
    (plain, shuffled_plain), *_ = grouped_plans(None, drop_last, seed, n=2003)
    for got, ref in ((grouped, plain), (shuffled_grouped, shuffled_plain)):
        assert padding(got, lengths) < 0.35 * padding(ref, lengths)  # 0.14-0.22 measured
        assert len(got) == len(ref) and [len(b) for b in got[:-1]] == [8] * (len(got) - 1)
        if drop_last:
            assert len(got[-1]) == 8 and len({i for b in got for i in b}) == 2000
        else:
            assert_each_index_once(got, 2003)
            assert len(got[-1]) == 3  # the short batch stays last
    assert collisions(grouped, keys) == sampler.conflicting_batches == 0
    assert len(grouped) == len(sampler)
    # the batch order is shuffled, not sorted: long and short batches alternate
    longest = [max(lengths[i][0] for i in b) for b in grouped[:-1]]
    assert longest != sorted(longest, reverse=True) and longest != sorted(longest)


def test_grouped_plans_are_seeded_per_epoch():
    a, *_ = grouped_plans(4, epoch=1)
    b, *_ = grouped_plans(4, epoch=1)
    c, *_ = grouped_plans(4, epoch=2)
    assert a == b and a[0] != c[0] and a[1] != c[1]


def test_grouping_is_windowed_and_stable():
    order = [5, 0, 3, 1, 4, 2]
    lengths = [10, 30, 20, 30, 5, 40]
    assert group_by_length(order, lengths, 3) == [5, 3, 0, 1, 2, 4]  # each window longest first
    assert group_by_length([1, 3], lengths, 2) == [1, 3]  # equal lengths keep the shuffled order
    assert group_by_length([3, 1], lengths, 2) == [3, 1]


def test_rank_shards_of_grouped_batches_cover_each_global_batch():
    (grouped, _), keys, lengths, _ = grouped_plans(4, bs=8)
    inner = NoDuplicateBatchSampler(keys, 8, seed=0, lengths=lengths, group_by_length=4)
    shards = [list(RankShardedBatches(inner, len(keys), 2, r)) for r in (0, 1)]
    assert [a + b for a, b in zip(*shards)] == grouped
    assert all(len(s) == len(RankShardedBatches(inner, len(keys), 2, 0)) for s in shards)


@pytest.mark.parametrize("bad", [0, -1, True, 2.5])
def test_bad_grouping_values_are_refused(bad):
    with pytest.raises(ValueError, match="group_by_length"):
        NoDuplicateBatchSampler([{"a"}, {"b"}], 2, lengths=[1, 2], group_by_length=bad)
    with pytest.raises(ValueError, match="one length per example"):
        NoDuplicateBatchSampler([{"a"}, {"b"}], 2, lengths=[1], group_by_length=2)
