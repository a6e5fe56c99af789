"""The curriculum in-process (tiny encoder, no Trainer): leakage guard, re-mining from
the current weights with the validation's corpus embeddings, pool swaps, warm-up."""

import json
from types import SimpleNamespace

import pytest
import torch

from embexp.data.prepare import prepare_data
from embexp.errors import ConfigError
from embexp.eval.evaluator import RetrievalEvaluator
from embexp.mining import rounds as round_fns
from embexp.mining import sources
from embexp.mining.curriculum import Curriculum, MiningInputs, mine_with_encoder, validate_negatives
from embexp.model.encoder import build_encoder
from embexp.train.data import PairDataModule

from conftest import mining_params
from mining_data import make_cfg, synthetic_beir


@pytest.fixture()
def mining_beir(tmp_path):
    return synthetic_beir(tmp_path / "mining-beir")


class FakeModule:
    def __init__(self, encoder):
        self.encoder = encoder
        self.last_eval = None


def _validate(encoder, data):
    ev = RetrievalEvaluator(
        data.dataset.corpus,
        data.dataset.queries,
        data.dev,
        name="dev",
        k_values=[10],
        primary="ndcg@10",
        dtype="fp32",
    )
    return ev(encoder, keep_embeddings=True)


def _perturb(encoder, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in encoder.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.5)


def test_eval_queries_and_any_split_positives_never_mined(tmp_path, tiny_encoder):
    # q0 is also a test query (positive d40); q1's text equals test query qx's (positive d41);
    # q2 has a positive d42 in an unused split "other"; leakage=warn keeps q0 and q1 in train
    path = synthetic_beir(
        tmp_path / "b",
        extra_qrels={"test": [("q0", "d40", 1), ("qx", "d41", 1)], "other": [("q2", "d42", 1)]},
        extra_queries=[("qx", "PLACEHOLDER")],
    )
    lines = (path / "queries.jsonl").read_text().splitlines()
    q1 = json.loads(lines[1])["text"]
    (path / "queries.jsonl").write_text(
        "\n".join(
            line if '"qx"' not in line else json.dumps({"_id": "qx", "text": q1.upper() + "!"})
            for line in lines
        )
        + "\n"
    )
    cfg = make_cfg(path, "x")
    cfg.data.leakage = "warn"
    data = prepare_data(cfg.data)
    assert {"q0", "q1", "q2"} <= set(data.train)
    params = mining_params(window=(1, 60), n_negatives=60, depth=60, margin_rel=None, text_filter=False)
    inputs = MiningInputs.from_data(data)
    assert set(inputs.skipped) == {"q0", "q1"}
    res = mine_with_encoder(tiny_encoder, data, params, inputs=inputs, dtype="fp32")
    pool = res.doc_ids()
    assert "q0" not in pool and "q1" not in pool and not set(pool) - set(data.train)
    # everything else is returned (the window spans the corpus), so the absences are the guard's doing
    assert set(pool["q2"]) == set(data.dataset.corpus.ids) - {"d2", "d42"}
    assert set(pool["q5"]) == set(data.dataset.corpus.ids) - {"d5", "d35"}
    assert res.stats["n_queries_skipped_leakage"] == 2


def test_iterative_remines_from_current_weights_with_validation_embeddings(
    mining_beir, tiny_model_dir, tmp_path, monkeypatch
):
    cfg = make_cfg(mining_beir, tiny_model_dir, kind="iterative", n_negatives=2, window=[1, 8])
    data = prepare_data(cfg.data)
    encoder = build_encoder(cfg.model)
    c = Curriculum(cfg, data, tmp_path).prepare(encoder)
    round0 = c.pool
    assert c.pool_round == 0 and c.rounds[0]["corpus_source"] == "encoded"
    module = FakeModule(encoder)
    dm = PairDataModule(encoder, data, batch_size=2, n_negatives=2)
    c.attach(module, dm)
    assert dm.n_negatives == 2
    assert {ex.query_id: ex.negative_ids for ex in dm.examples} == {
        ex.query_id: round0[ex.query_id] for ex in dm.examples
    }

    # same weights: the same pool; then change the weights: a different pool
    same = mine_with_encoder(encoder, data, c.params, dtype="fp32").doc_ids()
    assert same == round0
    _perturb(encoder)
    result = _validate(encoder, data)
    module.last_eval = result

    def no_encoding(*a, **k):
        raise AssertionError("the corpus was re-encoded although validation had just embedded it")

    monkeypatch.setattr(round_fns, "encode_corpus", no_encoding)
    module.last_eval_epoch = 0  # as Lightning calls it: right after the validation of epoch 0
    c.on_validation_end(
        SimpleNamespace(sanity_checking=False, current_epoch=0, max_epochs=3, loggers=[]), module
    )
    assert c.pool_round == 1 and c.rounds[-1]["corpus_source"] == "validation" and c.rounds[-1]["epoch"] == 0
    assert c.pool != round0
    assert c.rounds[-1]["overlap_previous"] < 1.0
    # the data module now serves the new pool, through the collate the DataLoader calls
    assert {ex.query_id: ex.negative_ids for ex in dm.examples} == {
        ex.query_id: c.pool[ex.query_id] for ex in dm.examples
    }
    batch = dm.train_dataloader().collate_fn([(0, 3), (1, 3)])
    assert batch["n_neg"] == 2 and c.used[3] == {1}
    # the hook does not mine twice for an epoch; files are written
    c.on_eval(result, 0)
    assert len(c.rounds) == 2
    rounds = [json.loads(line) for line in (tmp_path / "mining_rounds.jsonl").read_text().splitlines()]
    assert [r["round"] for r in rounds] == [0, 1]
    prov = json.loads((tmp_path / "negatives.provenance.json").read_text())
    assert prov["round"] == 1 and prov["encoder_fingerprint"] == encoder.fingerprint()


def test_warmup_and_refresh_schedule(mining_beir, tiny_model_dir, tmp_path):
    cfg = make_cfg(mining_beir, tiny_model_dir, kind="iterative", warmup_epochs=2, refresh_every=2)
    data = prepare_data(cfg.data)
    encoder = build_encoder(cfg.model)
    c = Curriculum(cfg, data, tmp_path).prepare(encoder)
    assert (
        c.pool is None and c.rounds == []
    )  # iterative + warm-up: the first pool comes from warmed-up weights
    module = FakeModule(encoder)
    dm = PairDataModule(encoder, data, batch_size=2, n_negatives=2)
    c.attach(module, dm)
    assert dm.n_negatives == 0 and not c.active  # in-batch only during warm-up
    assert [c._due(e) for e in range(2)] == [False, True]  # first pool after epoch E - 1 = 1
    c.on_train_epoch_end(
        type("T", (), {"current_epoch": 1, "max_epochs": 6, "loggers": []})(), module
    )  # no validation ran
    assert (
        c.pool_round == 0 and c.rounds[0]["corpus_source"] == "encoded" and c.active and dm.n_negatives == 2
    )
    # then every refresh_every = 2 epochs, and never after the last epoch (max_epochs = 6)
    assert [c._due(e) for e in range(2, 6)] == [False, True, False, False]


def test_static_warmup_activates_at_epoch_start(mining_beir, tiny_model_dir, tmp_path):
    cfg = make_cfg(mining_beir, tiny_model_dir, kind="static", warmup_epochs=1)
    data = prepare_data(cfg.data)
    encoder = build_encoder(cfg.model)
    c = Curriculum(cfg, data, tmp_path).prepare(encoder)
    dm = PairDataModule(encoder, data, batch_size=2, n_negatives=2)
    c.attach(FakeModule(encoder), dm)
    assert c.pool is not None and dm.n_negatives == 0
    trainer = type("T", (), {"current_epoch": 0, "max_epochs": 3, "loggers": []})()
    c.on_train_epoch_start(trainer, None)
    assert dm.n_negatives == 0
    trainer.current_epoch = 1
    c.on_train_epoch_start(trainer, None)
    assert dm.n_negatives == 2 and c.active
    assert not any(c._due(e) for e in range(3))  # static never re-mines


def test_negatives_file_is_guarded_and_reused(mining_beir, tiny_model_dir, tmp_path):
    f = tmp_path / "given.jsonl"
    f.write_text(
        json.dumps(
            {
                "query_id": "q3",
                "negatives": [
                    {"doc_id": "d3", "score": 0.9, "rank": 1},
                    {"doc_id": "d9", "score": 0.5, "rank": 2},
                ],
            }
        )
        + "\n"
        + json.dumps({"query_id": "q20", "negatives": ["d1"]})  # a test query: dropped
        + "\n"
    )
    cfg = make_cfg(mining_beir, tiny_model_dir, file=str(f))
    data = prepare_data(cfg.data)
    c = Curriculum(cfg, data, tmp_path / "run").prepare(build_encoder(cfg.model))
    assert c.pool == {"q3": ["d9"]}  # d3 is q3's positive
    assert c.rounds[0]["source"] == "file" and c.rounds[0]["n_queries_dropped"] == 1
    assert (tmp_path / "run" / "negatives.jsonl").exists()
    f.write_text(json.dumps({"query_id": "q3", "negatives": ["nope"]}) + "\n")
    from embexp.errors import DataError

    with pytest.raises(DataError, match="not in the corpus"):
        Curriculum(cfg, data, tmp_path / "run2").prepare(build_encoder(cfg.model))


def test_static_pool_is_reused_when_provenance_matches(mining_beir, tiny_model_dir, tmp_path, monkeypatch):
    cfg = make_cfg(mining_beir, tiny_model_dir)
    data = prepare_data(cfg.data)
    encoder = build_encoder(cfg.model)
    first = Curriculum(cfg, data, tmp_path).prepare(encoder)
    monkeypatch.setattr(sources, "mine_with_encoder", lambda *a, **k: pytest.fail("mined again"))
    again = Curriculum(cfg, data, tmp_path).prepare(encoder)
    assert again.pool == first.pool and again.pool_round == 0


@pytest.mark.parametrize(
    "neg, key",
    [
        ({"kind": "hard"}, "negatives.kind"),
        ({"window": [5, 2]}, "negatives.window"),
        ({"n_negatives": -1}, "negatives.n_negatives"),
        ({"sampling": "hardest"}, "negatives.sampling"),
        ({"kind": "iterative", "refresh_every": 0}, "negatives.refresh_every"),
        ({"warmup_epochs": -1}, "negatives.warmup_epochs"),
        ({"file": "/nonexistent/negatives.jsonl"}, "negatives.file"),
        ({"veto_file": "/nonexistent/veto.tsv"}, "negatives.veto_file"),
        ({"veto_hook": "nonexistent_module:veto"}, "negatives.veto_hook"),
    ],
)
def test_validate_negatives_names_the_key(neg, key, tmp_path):
    cfg = make_cfg(tmp_path, tmp_path, **neg)
    with pytest.raises(ConfigError) as e:
        validate_negatives(cfg.negatives)
    assert e.value.key == key


def test_in_batch_needs_nothing(tmp_path):
    from omegaconf import OmegaConf

    assert validate_negatives(OmegaConf.create({"kind": "in_batch", "n_negatives": 0})) is None
    with pytest.raises(ConfigError, match="negatives.n_negatives"):
        validate_negatives(OmegaConf.create({"kind": "in_batch", "n_negatives": -2}))
