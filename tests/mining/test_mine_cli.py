"""embexp-mine and embexp-train with mined negatives, end to end on the tiny model."""

import json

import pytest

from conftest import TINY, run_cli

LOOSE = [
    "negatives.margin_rel=null",
    "negatives.window=[1,5]",
]  # the random tiny model scores everything alike


def _jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_mine_cli_writes_negatives_and_provenance_then_training_reuses_them(tiny_beir, tmp_path):
    out = tmp_path / "mine"
    p = run_cli(
        "embexp.cli.mine",
        "data=beir",
        f"data.path={tiny_beir}",
        "model=tiny",
        "logger=none",
        "eval.show_progress=false",
        *LOOSE,
        "negatives.n_negatives=2",
        f"hydra.run.dir={out}",
    )
    assert p.returncode == 0, p.stderr[-3000:]
    rows = _jsonl(out / "negatives.jsonl")
    train_qids = {"q1", "q2", "q4", "q6"}
    assert rows and {r["query_id"] for r in rows} <= train_qids
    for r in rows:
        assert len(r["negatives"]) == 2
        assert all(set(n) == {"doc_id", "score", "rank"} and 1 <= n["rank"] <= 5 for n in r["negatives"])
    prov = json.loads((out / "negatives.provenance.json").read_text())
    assert (
        len(prov["encoder_fingerprint"]) == 32 and prov["dataset_fingerprint"] == prov["data"]["fingerprint"]
    )
    assert prov["params"]["window"] == [1, 5] and prov["params"]["n_negatives"] == 2 and prov["time_s"] > 0
    assert prov["stats"]["n_queries"] == len(rows) and "mean_positive_rank" in prov["stats"]
    assert (out / "mining_rounds.jsonl").exists() and "mining round 0" in p.stdout + p.stderr

    # training on that file (static, fast_dev_run)
    run = tmp_path / "train"
    p = run_cli(
        "embexp.cli.train",
        "data=beir",
        f"data.path={tiny_beir}",
        *TINY,
        "debug=fast_dev_run",
        "negatives=static",
        f"negatives.file={out / 'negatives.jsonl'}",
        "negatives.n_negatives=2",
        f"hydra.run.dir={run}",
    )
    assert p.returncode == 0, p.stderr[-3000:]
    rec = json.loads((run / "metrics.json").read_text())
    assert rec["status"] == "finished" and rec["negatives"]["kind"] == "static"
    assert rec["negatives"]["rounds"][0]["source"] == "file"
    assert _jsonl(run / "mining_rounds.jsonl")[0]["source_file"] == str(out / "negatives.jsonl")


def test_static_with_warmup_two_epochs(tiny_beir, tmp_path):
    p = run_cli(
        "embexp.cli.train",
        "data=beir",
        f"data.path={tiny_beir}",
        *TINY,
        "trainer.max_epochs=2",
        "negatives=static",
        *LOOSE,
        "negatives.warmup_epochs=1",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert p.returncode == 0, p.stderr[-3000:]
    neg = json.loads((tmp_path / "run" / "metrics.json").read_text())["negatives"]
    assert neg["pool_round_by_epoch"] == {"0": [None], "1": [0]}  # epoch 0 in-batch only, then the pool
    rounds = _jsonl(tmp_path / "run" / "mining_rounds.jsonl")
    assert len(rounds) == 1 and rounds[0]["epoch"] is None and rounds[0]["corpus_source"] == "baseline"
    assert (tmp_path / "run" / "negatives.jsonl").exists() and (
        tmp_path / "run" / "negatives.provenance.json"
    ).exists()


def test_iterative_refresh_every_epoch(tiny_beir, tmp_path):
    p = run_cli(
        "embexp.cli.train",
        "data=beir",
        f"data.path={tiny_beir}",
        *TINY,
        "trainer.max_epochs=2",
        "negatives=iterative",
        "negatives.refresh_every=1",
        *LOOSE,
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert p.returncode == 0, p.stderr[-3000:]
    rounds = _jsonl(tmp_path / "run" / "mining_rounds.jsonl")
    assert [(r["round"], r["epoch"], r["corpus_source"]) for r in rounds] == [
        (0, None, "baseline"),
        (1, 0, "validation"),
    ]
    assert rounds[0]["encoder_fingerprint"] != rounds[1]["encoder_fingerprint"]
    for r in rounds:
        for k in ("wall_s", "mine_s", "mean_positive_rank", "false_negative_rate", "removed_text_share"):
            assert r[k] is not None, k
    assert rounds[1]["overlap_previous"] is not None
    neg = json.loads((tmp_path / "run" / "metrics.json").read_text())["negatives"]
    assert neg["pool_round_by_epoch"] == {"0": [0], "1": [1]}  # Lightning picked the new pool up in epoch 1
    assert json.loads((tmp_path / "run" / "negatives.provenance.json").read_text())["round"] == 1


@pytest.mark.parametrize(
    "override, key",
    [
        ("negatives=static negatives.window=[5,2]", "negatives.window"),
        ("negatives=iterative negatives.n_negatives=-1", "negatives.n_negatives"),
        ("negatives=static negatives.sampling=hardest", "negatives.sampling"),
    ],
)
def test_bad_negatives_config_fails_before_training(override, key, tiny_beir, tmp_path):
    p = run_cli(
        "embexp.cli.train",
        "data=beir",
        f"data.path={tiny_beir}",
        *TINY,
        *override.split(),
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert p.returncode == 2, p.stderr[-2000:]
    assert key in p.stderr and "Traceback" not in p.stderr
    assert (
        not (tmp_path / "run" / "checkpoints").exists()
        and not (tmp_path / "run" / "negatives.jsonl").exists()
    )


def test_mine_cli_rejects_in_batch(tiny_beir, tmp_path):
    p = run_cli(
        "embexp.cli.mine",
        "data=beir",
        f"data.path={tiny_beir}",
        "model=tiny",
        "logger=none",
        "negatives=in_batch",
        f"hydra.run.dir={tmp_path}",
    )
    assert p.returncode == 2 and "negatives.kind" in p.stderr and "Traceback" not in p.stderr
