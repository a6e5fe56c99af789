"""benchmarks/throughput.py end to end on the CPU with a tiny BERT shape: every contender (plain
loop, sentence-transformers' trainer, embexp padded and unpadded, corpus encoding) runs and reports,
the unpadded check agrees with the padded forward, and one failing contender becomes an error row
while the others still run (a device run is one short lease)."""

import argparse
import importlib
import json
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
throughput = importlib.import_module("throughput")

TINY = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128}


@pytest.fixture(scope="module")
def bench_data(tmp_path_factory):
    from conftest import write_beir

    root = tmp_path_factory.mktemp("bench")
    out = root / "data"
    throughput.prepare(write_beir(root / "beir"), out)
    return out


def args(data, out, **kw):
    base = dict(
        data=data,
        shapes=["tiny"],
        batch=4,
        steps=2,
        warmup=1,
        max_len=32,
        encode_batch=8,
        corpus_limit=0,
        precision="fp32",
        skip=[],
        cpu=True,
        embexp_workers=[0],
        embexp_variants=["padded", "unpadded"],
        out=str(out),
    )
    return argparse.Namespace(**{**base, **kw})


def test_every_contender_runs_and_the_unpadded_check_agrees(bench_data, tmp_path, monkeypatch):
    monkeypatch.setitem(throughput.SHAPES, "tiny", TINY)
    throughput.run(args(bench_data, tmp_path / "r.json"))
    rows = json.loads((tmp_path / "r.json").read_text())["results"]
    assert not [r for r in rows if "error" in r]
    train = {r["contender"]: r for r in rows if "pairs_per_s" in r}
    assert set(train) == {
        "plain PyTorch loop",
        "sentence-transformers trainer",
        "embexp (padded, 0 loader workers)",
        "embexp (unpadded, 0 loader workers)",
    }
    for r in train.values():
        assert r["steps"] == 2 and r["pairs_per_s"] > 0 and 0 <= r["padding_share"] < 1
        assert r["mfu_real"] is None  # no card peak on a CPU
    enc = {r["contender"]: r for r in rows if "docs_per_s" in r}
    assert set(enc) == {"embexp encode (padded)", "sentence-transformers encode"}
    assert all(r["docs_per_s"] > 0 for r in enc.values())
    (check,) = [r for r in rows if "check" in r]  # recorded, not only printed
    assert check["max_abs_emb_fp32"] < 1e-4 and check["rel_grad_fp32"] < 1e-4


def test_a_failing_contender_is_an_error_row_and_the_rest_still_run(bench_data, tmp_path, monkeypatch):
    monkeypatch.setitem(throughput.SHAPES, "tiny", TINY)

    def broken(*a, **k):
        raise RuntimeError("no kernel for this card")

    monkeypatch.setattr(throughput, "run_st", broken)
    monkeypatch.setattr(throughput, "check_unpadded", broken)
    run = args(bench_data, tmp_path / "r.json", skip=["encode"], embexp_variants=["unpadded"])
    throughput.run(run)
    rows = json.loads((tmp_path / "r.json").read_text())["results"]
    errors = [r for r in rows if "error" in r]
    assert [r["contender"] for r in errors] == ["unpadded check", "sentence-transformers trainer"]
    assert {r["error"] for r in errors} == {"RuntimeError: no kernel for this card"}
    assert {r["contender"] for r in rows if "pairs_per_s" in r} == {
        "plain PyTorch loop",
        "embexp (unpadded, 0 loader workers)",
    }
