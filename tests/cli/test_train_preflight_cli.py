"""embexp-train on training data that cannot teach anything: refused in one line (exit 2) before
any model is loaded or trained, naming the cause and the way out, instead of a run whose loss is
0 at every step and whose "best epoch" is the base model."""

from __future__ import annotations

import pytest

from conftest import QUERIES, TINY, run_cli, write_beir

DOCS = [(f"d{i}", f"title {i}", f"passage number {i}") for i in range(1, 5)]
CASES = {
    "one positive": (DOCS, "all 5 training pairs have the same positive passage ('d1')", "negatives=static"),
    "one document": (DOCS[:1], "the corpus holds a single document ('d1')", "add corpus documents"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_training_data_without_any_negative_is_refused(case, tmp_path):
    docs, cause, way = CASES[case]
    qrels = {
        "train": [(q, "d1", 1) for q in ("q1", "q2", "q3", "q4", "q5")],
        "dev": [("q6", "d1", 1)],
        "test": [("q7", "d1", 1), ("q8", "d1", 1)],
    }
    data = write_beir(tmp_path / "beir", docs=docs, queries=QUERIES, qrels=qrels)
    out = tmp_path / "run"
    p = run_cli("embexp.cli.train", "data=beir", f"data.path={data}", *TINY, f"hydra.run.dir={out}")
    assert p.returncode == 2, p.stderr[-3000:]
    assert "Traceback" not in p.stderr
    errors = [line for line in p.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, p.stderr[-3000:]
    assert errors[0].startswith(f"error: {data}: no training pair can meet a negative: {cause}"), errors[0]
    assert "the loss would be 0 at every step" in errors[0] and way in errors[0]
    assert not (out / "baseline.json").exists() and not (out / "checkpoints").exists()
