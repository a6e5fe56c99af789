"""A new negatives kind is one Python file and one YAML (``tests/mining/plugins/``): the
curriculum schedules it, keeps its pool's files and provenance, and never lets it hand a
positive to training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embexp.data.prepare import prepare_data
from embexp.errors import ConfigError, DataError
from embexp.mining.curriculum import Curriculum
from embexp.mining.miner import MiningResult, Negative
from embexp.mining.rounds import MiningInputs
from embexp.mining.sources import MiningRequest, guard, plugin_round
from embexp.model.encoder import build_encoder

from conftest import TINY, run_cli
from mining_data import make_cfg, synthetic_beir

PLUGINS = Path(__file__).parent / "plugins"
SOURCE = "lexical_negatives:LexicalNegatives"


@pytest.fixture()
def mining_beir(tmp_path):
    return synthetic_beir(tmp_path / "beir")


@pytest.fixture()
def plugins_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(PLUGINS))


def test_a_plugin_source_makes_each_round(
    mining_beir, tiny_model_dir, tmp_path, plugins_on_path, monkeypatch
):
    cfg = make_cfg(mining_beir, tiny_model_dir, kind="iterative", source=SOURCE, n_negatives=3)
    data = prepare_data(cfg.data)
    encoder = build_encoder(cfg.model)
    c = Curriculum(cfg, data, tmp_path).prepare(encoder)
    assert c.pool_round == 0 and c.rounds[0]["source"] == SOURCE
    assert c.rounds[0]["round_asked"] == 0  # the plug-in's own statistics travel with the round
    for q, negs in c.pool.items():
        assert len(negs) == 3 and not set(negs) & c.inputs.exclude[q]
    prov = json.loads((tmp_path / "negatives.provenance.json").read_text())
    assert prov["negatives_source"] == SOURCE and prov["kind"] == "iterative"
    # rerun with the same config: the plug-in's pool of round 0 is re-used, not asked again
    monkeypatch.setattr(type(c.source), "__call__", lambda *a: pytest.fail("asked again"))
    again = Curriculum(cfg, data, tmp_path).prepare(encoder)
    assert again.pool == c.pool and again.pool_round == 0
    monkeypatch.undo()
    c.trainer = type("T", (), {"current_epoch": 0, "max_epochs": 3, "loggers": []})()
    c.on_train_epoch_end(c.trainer, None)  # re-mined with the plug-in: round 1
    assert c.pool_round == 1 and c.rounds[1]["round_asked"] == 1 and c.rounds[1]["source"] == SOURCE
    # the same folder with the built-in miner: another source, its pool is not re-used
    miner = Curriculum(make_cfg(mining_beir, tiny_model_dir, kind="iterative", n_negatives=3), data, tmp_path)
    assert miner.prepare(encoder).rounds[-1]["source"] == "mined"


def test_a_source_gets_the_guard_a_negatives_file_gets(mining_beir, tiny_model_dir, tmp_path):
    cfg = make_cfg(mining_beir, tiny_model_dir)
    inputs = MiningInputs.from_data(prepare_data(cfg.data))
    q = inputs.query_ids[0]
    positive = sorted(inputs.exclude[q])[0]
    result = MiningResult(
        {
            q: [Negative(positive, 1.0, 1), Negative("d59", 0.5, 2), Negative("d59", 0.5, 3)],
            "q20": [Negative("d1", 1.0, 1)],  # a test query: never mined for
        },
        {"mine": 1},
    )
    kept, counts = guard(result, inputs, SOURCE)
    assert {k: [n.doc_id for n in v] for k, v in kept.negatives.items()} == {q: ["d59"]}
    assert counts == {"n_queries_dropped": 1, "n_negatives_dropped": 2}  # the positive, the repeat
    # a source's own counts never override what the guard left
    request = MiningRequest(inputs.data, inputs, None, None, 0, None, None)
    stats = plugin_round(lambda r: result, SOURCE, request).stats
    assert (stats["n_queries"], stats["n_negatives"], stats["mine"]) == (1, 1, 1)
    result.stats.update(n_queries=99, n_negatives=99)
    assert plugin_round(lambda r: result, SOURCE, request).stats["n_negatives"] == 1
    with pytest.raises(DataError, match="not in the corpus") as e:
        guard(MiningResult({q: [Negative("nope", 1.0, 1)]}, {}), inputs, SOURCE)
    assert SOURCE in str(e.value)


@pytest.mark.parametrize(
    "source, match",
    [("no_such_module:Source", "cannot import"), ("json:dumps", "could not be built|callable")],
)
def test_a_bad_source_names_the_key(source, match, mining_beir, tiny_model_dir, tmp_path):
    cfg = make_cfg(mining_beir, tiny_model_dir, source=source)
    with pytest.raises(ConfigError, match=match) as e:
        Curriculum(cfg, prepare_data(cfg.data), tmp_path)
    assert e.value.key == "negatives.source"


def test_the_plugin_yaml_trains_from_the_command_line(tiny_beir, tmp_path):
    """``negatives=lexical`` from a config folder on ``hydra.searchpath``: nothing in embexp changed."""
    run = tmp_path / "run"
    args = [
        "data=beir",
        f"data.path={tiny_beir}",
        *TINY,
        "trainer.max_epochs=2",
        f"hydra.searchpath=[file://{PLUGINS / 'conf'}]",
        "negatives=lexical",
        "negatives.kind=iterative",
        f"hydra.run.dir={run}",
    ]
    p = run_cli("embexp.cli.train", *args, env={"PYTHONPATH": str(PLUGINS)})
    assert p.returncode == 0, p.stderr[-3000:]
    rounds = [json.loads(line) for line in (run / "mining_rounds.jsonl").read_text().splitlines()]
    assert [r["source"] for r in rounds] == [SOURCE, SOURCE] and rounds[1]["epoch"] == 0
    summary = json.loads((run / "metrics.json").read_text())["negatives"]
    assert summary["kind"] == "iterative" and summary["n_rounds"] == 2


def test_embexp_mine_uses_the_plugin_too(tiny_beir, tmp_path):
    out = tmp_path / "mine"
    args = [
        "data=beir",
        f"data.path={tiny_beir}",
        "model=tiny",
        "logger=none",
        "eval.show_progress=false",
        f"hydra.searchpath=[file://{PLUGINS / 'conf'}]",
        "negatives=lexical",
        f"hydra.run.dir={out}",
    ]
    p = run_cli("embexp.cli.mine", *args, env={"PYTHONPATH": str(PLUGINS)})
    assert p.returncode == 0, p.stderr[-3000:]
    rounds = [json.loads(line) for line in (out / "mining_rounds.jsonl").read_text().splitlines()]
    assert rounds[0]["source"] == SOURCE and rounds[0]["round_asked"] == 0
    prov = json.loads((out / "negatives.provenance.json").read_text())
    assert prov["negatives_source"] == SOURCE
