"""Multi-process training (Lightning DDP): each rank's part of the global batches, the key hashes the
loss rebuilds the false-negative mask from, and a 2-process CPU (gloo) ``fast_dev_run`` that trains,
evaluates and writes one run record."""

from __future__ import annotations

import json
import socket
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from embexp.data.prepare import prepare_data
from embexp.data.types import Corpus
from embexp.eval.embed import embed_corpus
from embexp.losses.masking import false_negative_mask, key_sets
from embexp.train.data import PairDataModule
from embexp.train.sampler import NoDuplicateBatchSampler, RankShardedBatches

from conftest import TINY, run_cli


def _rank_batches(keys, per_rank, world, seed=0, epoch=0):
    out = []
    for rank in range(world):
        sampler = RankShardedBatches(
            NoDuplicateBatchSampler(keys, per_rank * world, seed=seed), len(keys), world, rank
        )
        sampler.set_epoch(epoch)
        out.append((list(sampler), len(sampler)))
    return out


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("epoch", [0, 1])
def test_ranks_step_on_the_parts_of_one_duplicate_free_global_batch(world, epoch):
    keys = [{f"doc{i // 2}"} for i in range(48)]  # pairs share their positive
    per_rank = 4
    plan = NoDuplicateBatchSampler(keys, per_rank * world, seed=0).plan(epoch)
    ranks = _rank_batches(keys, per_rank, world, epoch=epoch)
    assert {n for _, n in ranks} == {len(ranks[0][0])} and all(len(b) == n for b, n in ranks)
    for step, global_batch in enumerate(plan):
        parts = [batches[step] for batches, _ in ranks]
        assert all(len(p) == per_rank for p in parts)
        assert [i for p in parts for i in p] == global_batch  # rank order = the global batch
        counts = Counter(k for i in global_batch for k in keys[i])
        assert max(counts.values()) == 1  # no shared positive in the gathered batch
    flat = [i for batches, _ in ranks for b in batches for i in b]
    assert sorted(flat) == list(range(len(keys)))


@pytest.mark.parametrize("n, expected_len, last_sizes", [(41, 5, None), (43, 6, [1, 2]), (40, 5, [4, 4])])
def test_last_global_batch_is_split_or_dropped_on_every_rank(n, expected_len, last_sizes):
    keys = [{f"d{i}"} for i in range(n)]
    ranks = _rank_batches(keys, 4, 2)
    for batches, length in ranks:
        assert length == expected_len == len(batches)
    if last_sizes is not None:
        assert [len(batches[-1]) for batches, _ in ranks] == last_sizes


def test_data_module_shards_by_the_attached_trainer(multi_beir, tiny_encoder):
    data = prepare_data({"kind": "beir", "path": str(multi_beir), "dev_fraction": 0.2})
    single = PairDataModule(tiny_encoder, data, batch_size=4, seed=3)
    whole = [[i for i, _ in batch] for batch in single.train_dataloader().batch_sampler]
    parts = []
    for rank in range(2):
        dm = PairDataModule(tiny_encoder, data, batch_size=2, seed=3)
        dm.trainer = SimpleNamespace(global_rank=rank, world_size=2)
        parts.append([[i for i, _ in batch] for batch in dm.train_dataloader().batch_sampler])
    # two ranks of batch 2 step on the batches of one process of batch 4
    assert [a + b for a, b in zip(*parts)] == whole


def test_collate_ships_the_keys_the_mask_is_built_from(multi_beir, tiny_encoder):
    data = prepare_data({"kind": "beir", "path": str(multi_beir), "dev_fraction": 0.2})
    dm = PairDataModule(tiny_encoder, data, batch_size=8, n_negatives=2, no_duplicates=False, seed=0)
    for batch in dm.train_dataloader():
        keys = batch["keys"]
        assert keys["candidates"].shape == (8 * 3, 2)
        rebuilt = false_negative_mask(key_sets(keys["positives"]), key_sets(keys["candidates"]))
        assert batch["mask"].any()  # multi-positive topics: some in-batch false negatives
        assert (rebuilt == batch["mask"]).all()


class _FakeEncoder:
    """A deterministic encoder: each text's vector depends on the text only; counts what it encodes."""

    device = torch.device("cpu")

    def __init__(self):
        self.seen: list[str] = []

    def encode(self, texts, kind, **kwargs) -> np.ndarray:
        self.seen += list(texts)
        return np.array([[len(t), sum(map(ord, t)) % 97, t.count("a")] for t in texts], dtype=np.float32)


CORPUS = Corpus([f"d{i}" for i in range(11)], [""] * 11, [f"passage {'a' * i} number {i}" for i in range(11)])


def _embed_worker(rank: int, port: int, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        enc = _FakeEncoder()
        emb, cached = embed_corpus(enc, CORPUS)
        np.save(f"{out}-{rank}.npy", emb)
        with open(f"{out}-{rank}.json", "w") as f:
            json.dump({"seen": enc.seen, "cached": cached}, f)
    finally:
        dist.destroy_process_group()


def test_corpus_is_encoded_in_shards_and_gathered_on_every_rank(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_embed_worker, args=(port, str(tmp_path / "r")), nprocs=2, join=True)
    whole, _ = embed_corpus(_FakeEncoder(), CORPUS)  # one process
    seen = []
    for rank in range(2):
        assert np.array_equal(np.load(tmp_path / f"r-{rank}.npy"), whole)
        seen.append(json.loads((tmp_path / f"r-{rank}.json").read_text())["seen"])
    assert seen[0] + seen[1] == CORPUS.passages() and len(seen[0]) == 5  # each rank its half


def test_two_process_fast_dev_run_trains_evaluates_and_writes_one_record(tmp_path):
    args = [*TINY, "trainer=ddp", "trainer.devices=2", "trainer.accelerator=cpu", "debug=fast_dev_run"]
    p = run_cli("embexp.cli.train", *args, env={"EMBEXP_ROOT": str(tmp_path), "OMP_NUM_THREADS": "1"})
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-4000:]
    assert "MEMBER: 2/2" in out  # Lightning started the second process and joined it
    records = list((tmp_path / "runs").rglob("metrics.json"))
    assert len(records) == 1, records
    run = records[0].parent
    rec = json.loads(records[0].read_text())
    assert rec["status"] == "finished" and rec["cost"]["train_steps"] == 1
    assert "final/test/ndcg@10" in rec["metrics"]
    assert out.count(f"wrote {records[0]}") == 1  # rank 1 wrote no record
    assert (run / "train_ddp_process_1.log").exists()  # rank 1 ran in the same run folder
    assert (run / "model").is_dir() and (run / "run.json").exists()
