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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _UnitEncoder(_FakeEncoder):
    """Unit vectors (the index searches by inner product), 8 dimensions."""

    def encode(self, texts, kind, **kwargs) -> np.ndarray:
        self.seen += list(texts)
        v = np.array(
            [[len(t) % 5 + 1, t.count("a"), t.count("e"), sum(map(ord, t)) % 7, 1, 0, 0, 0] for t in texts],
            dtype=np.float32,
        )
        return v / np.linalg.norm(v, axis=1, keepdims=True)


QUERIES = {f"q{i}": f"which passage has {'a' * (i % 4)} number {i} {'e' * (i % 3)}" for i in range(7)}
QRELS = {f"q{i}": {f"d{(3 * i) % 11}": 1 + i % 2} for i in range(7)}


def _evaluate(encoder):
    from embexp.eval.evaluator import RetrievalEvaluator

    ev = RetrievalEvaluator(CORPUS, QUERIES, QRELS, name="dev", k_values=[1, 5, 10], primary="ndcg@10")
    res = ev(encoder)
    return res.metrics, {q: [d for d, _ in r] for q, r in res.run.items()}


def _mining_cfg(data_path: str, model_dir: str) -> dict:
    return {
        "data": {"kind": "beir", "path": data_path, "dev_fraction": 0.2},
        "model": {"name_or_path": model_dir, "query_max_length": 32, "passage_max_length": 64},
        "negatives": {"kind": "iterative", "n_negatives": 2, "window": [1, 10], "depth": 30},
        "eval": {"batch_size": 4, "dtype": "fp32", "cache": False},
        "paths": {"cache_dir": None},
    }


def _ddp_worker(rank: int, port: int, out: str, data_path: str, model_dir: str) -> None:
    from omegaconf import OmegaConf

    from embexp.mining.curriculum import Curriculum
    from embexp.model.encoder import build_encoder
    from embexp.utils.dist import broadcast_object, map_sharded

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        got = {"calls": []}

        def fn(part):
            got["calls"].append(list(part))
            return np.array([[i, i * i] for i in part], np.float32), np.array([[-i] for i in part], np.int64)

        got["rows"] = [a.tolist() for a in map_sharded(fn, list(range(7)))]
        got["broadcast"] = broadcast_object({"from": rank})
        enc = _UnitEncoder()
        got["metrics"], got["run"] = _evaluate(enc)
        got["encoded_queries"] = [t for t in enc.seen if t in QUERIES.values()]
        torch.manual_seed(0)
        cfg = OmegaConf.create(_mining_cfg(data_path, model_dir))
        data = prepare_data(cfg.data)
        cur = Curriculum(cfg, data, f"{out}-run{rank}").prepare(build_encoder(cfg.model))
        got["pool"], got["rounds"] = cur.pool, len(cur.rounds)
        with open(f"{out}-{rank}.json", "w") as f:
            json.dump(got, f)
    finally:
        dist.destroy_process_group()


def test_queries_search_and_mining_are_sharded_and_only_rank_zero_writes(
    tmp_path, multi_beir, tiny_model_dir
):
    out = str(tmp_path / "r")
    mp.spawn(_ddp_worker, args=(_free_port(), out, str(multi_beir), str(tiny_model_dir)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"r-{r}.json").read_text()) for r in range(2)]
    # map_sharded: each rank computed its contiguous part; every rank holds all rows in order
    assert [r["calls"] for r in ranks] == [[[0, 1, 2]], [[3, 4, 5, 6]]]
    for r in ranks:
        assert r["rows"] == [[[i, i * i] for i in range(7)], [[-i] for i in range(7)]]
        assert r["broadcast"] == {"from": 0}
    # evaluation: each rank encoded (and searched) half the queries; metrics as in one process
    metrics, run = _evaluate(_UnitEncoder())
    assert sorted(ranks[0]["encoded_queries"] + ranks[1]["encoded_queries"]) == sorted(QUERIES.values())
    assert len(ranks[0]["encoded_queries"]) == 3
    for r in ranks:
        assert r["run"] == run
        assert r["metrics"] == pytest.approx(metrics, abs=1e-9)
    # mining: the same pool on both ranks, written by rank 0 only
    assert ranks[0]["pool"] == ranks[1]["pool"] and ranks[0]["pool"] and ranks[0]["rounds"] == 1
    assert (tmp_path / "r-run0" / "negatives.jsonl").exists()
    assert (tmp_path / "r-run0" / "mining_rounds.jsonl").exists()
    assert not (tmp_path / "r-run1").exists() or not any((tmp_path / "r-run1").iterdir())


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


def test_the_main_process_before_the_group_exists_is_the_launchers_rank_zero(monkeypatch):
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    from embexp.utils.dist import is_main_process

    assert not dist.is_initialized() and is_main_process()
    monkeypatch.setattr(rank_zero_only, "rank", 1)  # what Lightning reads from RANK / SLURM_PROCID
    assert not is_main_process()
    monkeypatch.setattr(rank_zero_only, "rank", 0)
    monkeypatch.setenv("NODE_RANK", "1")
    assert not is_main_process()
