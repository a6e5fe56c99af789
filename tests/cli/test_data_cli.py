"""embexp-data inspect on the tiny BEIR folder with the tiny model's tokenizer; usage errors;
the model layer's token counters (prefixes counted, nothing truncated)."""

import dataclasses
import json

import pytest

from embexp.cli.data import main
from embexp.config.store import allowed_top_level_keys
from embexp.train.preflight import check_config

from conftest import compose_config, run_cli


def test_the_default_config_passes_the_checks():
    cfg = compose_config(["model=tiny"], "data_inspect")
    check_config(cfg, task="data_inspect")  # no eval node needed
    assert set(cfg) <= allowed_top_level_keys() and cfg.out is None and cfg.data.kind == "quickstart"


def test_inspect_prints_and_writes_the_card(tiny_beir, tmp_path, tiny_model_dir):
    out, run = tmp_path / "card.json", tmp_path / "run"
    p = run_cli(
        "embexp.cli.data",
        "inspect",
        "data=beir",
        f"data.path={tiny_beir}",
        "model=tiny",
        f"out={out}",
        f"hydra.run.dir={run}",
    )
    assert p.returncode == 0, p.stderr[-3000:]
    card = json.loads(out.read_text())
    assert not (run / "data_card.json").exists()  # out= wins over the run directory
    assert card["corpus"]["n_docs"] == 6 and card["dataset"]["eval_split"] == "test"
    ev = card["splits"]["eval"]
    assert (ev["n_queries"], ev["n_pairs"], ev["grades"]) == (4, 4, {"0": 1, "1": 3, "2": 1})
    train, dev = card["splits"]["train"], card["splits"]["dev"]
    assert train["n_queries"] + dev["n_queries"] == 4 and dev["n_queries"] >= 1  # dev carved from train
    tokens = card["tokens"]
    assert (tokens["query"]["max_length"], tokens["passage"]["max_length"]) == (
        32,
        64,
    )  # conf/model/tiny.yaml
    assert tokens["passage"]["n_sampled"] == 6 and tokens["query"]["n_sampled"] == 8
    assert tokens["passage"]["share_truncated"] == 0 and 10 < tokens["passage"]["max"] < 64
    assert card["model"]["name_or_path"] == "tiny-random-bert" and card["warnings"] == []
    assert "data card: tiny-beir" in p.stdout and "eval (test)" in p.stdout


@pytest.mark.parametrize(
    "argv, needle", [(["mine"], "unknown subcommand 'mine'"), ([], "missing subcommand")]
)
def test_unknown_or_missing_subcommand_is_a_usage_error(argv, needle, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert needle in err and "usage: embexp-data inspect" in err


def test_unknown_subcommand_from_the_shell():
    p = run_cli("embexp.cli.data", "inpsect", "data=beir")
    assert p.returncode == 2 and "unknown subcommand 'inpsect'" in p.stderr and "Traceback" not in p.stderr


def test_token_counters_count_prefixes_and_do_not_truncate(tiny_model_dir, tiny_encoder, tmp_path):
    from embexp.model.encoder import encoder_token_counter, token_counter

    texts = ["short query", " ".join(["word"] * 100)]
    cfg = {"name_or_path": str(tiny_model_dir), "query_prefix": "query: ", "passage_prefix": ""}
    count = token_counter(cfg)
    plain = encoder_token_counter(tiny_encoder)  # no prefixes, passage_max_length 64
    assert plain(texts, "passage") == [4, 102]  # [CLS] + words + [SEP], the long one untruncated
    assert count(texts, "passage") == plain(texts, "passage")
    assert count(texts, "query") == [n + 2 for n in plain(texts, "query")]  # "query", ":"

    # a checkpoint: null prefixes in the config take the saved ones (as BiEncoder.load does)
    tiny_encoder.spec = dataclasses.replace(tiny_encoder.spec, query_prefix="query: ")
    ckpt = tiny_encoder.save(tmp_path / "ckpt", base_model=str(tiny_model_dir))
    saved = token_counter({"name_or_path": str(ckpt), "query_prefix": None, "passage_prefix": None})
    assert saved(texts, "query") == count(texts, "query") and saved(texts, "passage") == [4, 102]
