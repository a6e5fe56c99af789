"""embexp-report on damaged or foreign run files: a clear error naming the file, what is wrong and
the ways out, never a traceback and never a run silently left out of the report."""

from __future__ import annotations

import json

import pytest

from embexp.errors import ReportError
from embexp.report.runs import load_runs

from conftest import run_cli
from fixture_runs import make_beir, make_run


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_beir(tmp_path_factory.mktemp("synth") / "beir", n_docs=40, n_test=12, n_train=6)


def _truncate(path):
    text = path.read_text()
    path.write_text(text[: len(text) // 2])


def _edit(name, change):
    def apply(run):
        path = run / name
        path.write_text(json.dumps(change(json.loads(path.read_text()))))

    return apply


def _per_query(keep):
    def apply(run):
        path = run / "per_query.jsonl"
        rows = [json.loads(x) for x in path.read_text().splitlines()]
        path.write_text("".join(json.dumps(r) + "\n" for r in keep(rows)))

    return apply


DAMAGE = {
    "truncated metrics": (
        "metrics.json",
        lambda run: _truncate(run / "metrics.json"),
        "invalid JSON at line 1, column",
    ),
    "empty metrics": (
        "metrics.json",
        lambda run: (run / "metrics.json").write_text(""),
        "it is empty (cut short or damaged)",
    ),
    "binary metrics": (
        "metrics.json",
        lambda run: (run / "metrics.json").write_bytes(b"\xff\xfe\x00"),
        "not UTF-8",
    ),
    "foreign metrics": (
        "metrics.json",
        lambda run: (run / "metrics.json").write_text('{"status": "finished"}'),
        "missing field 'metrics'",
    ),
    "no status": (
        "metrics.json",
        lambda run: (run / "metrics.json").write_text('{"ok": 1}'),
        "missing field 'status'",
    ),
    "a list": (
        "metrics.json",
        lambda run: (run / "metrics.json").write_text("[1, 2]"),
        "holds a list, not a JSON object",
    ),
    "text metric": (
        "metrics.json",
        _edit("metrics.json", lambda m: {**m, "metrics": {**m["metrics"], "final/test/ndcg@10": "high"}}),
        "field 'metrics': 'final/test/ndcg@10' is a string, expected a number",
    ),
    "no data anywhere": (
        "metrics.json",
        lambda run: [
            _edit("metrics.json", lambda m: {k: v for k, v in m.items() if k != "data"})(run),
            _edit("provenance.json", lambda p: {k: v for k, v in p.items() if k != "data"})(run),
        ],
        "missing field 'data'",
    ),
    "truncated run.json": ("run.json", lambda run: _truncate(run / "run.json"), "invalid JSON"),
    "run.json without config": (
        "run.json",
        _edit("run.json", lambda r: {"config_hash": "x"}),
        "missing field 'config'",
    ),
    "foreign provenance": (
        "provenance.json",
        lambda run: (run / "provenance.json").write_text("{}"),
        "missing field 'config'",
    ),
    "missing provenance": ("provenance.json", lambda run: (run / "provenance.json").unlink(), "is missing"),
    "no final rows": (
        "per_query.jsonl",
        _per_query(lambda rows: [r for r in rows if r["model"] != "final"]),
        "no rows of the fine-tuned model",
    ),
    "row without query id": (
        "per_query.jsonl:1",
        _per_query(lambda rows: [{k: v for k, v in r.items() if k != "query_id"} for r in rows]),
        "not a per-query row (missing field 'query_id')",
    ),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_damaged_run_is_an_error_naming_file_problem_and_ways_out(case, data_dir, tmp_path):
    good = make_run(tmp_path / "runs", "good", data_dir, seed=1)
    bad = make_run(tmp_path / "runs", "bad", data_dir, seed=2)
    name, damage, problem = DAMAGE[case]
    damage(bad)
    with pytest.raises(ReportError) as e:
        load_runs([str(tmp_path / "runs")])
    msg = str(e.value)
    assert f"{bad.resolve() / name}: " in msg and problem in msg, msg
    assert f"move or delete the run folder {bad.resolve()}" in msg and "force=true" in msg, msg
    assert str(good) not in msg
    assert len(load_runs([str(good)])[0]) == 1  # the error is about that run alone


def test_an_unfinished_run_is_still_skipped_with_a_note(data_dir, tmp_path):
    make_run(tmp_path / "runs", "good", data_dir, seed=1)
    failed = tmp_path / "runs" / "failed"
    failed.mkdir()
    (failed / "run.json").write_text(json.dumps({"config": {}}))
    (failed / "metrics.json").write_text(json.dumps({"status": "failed", "reason": "OOM"}))
    runs, notes = load_runs([str(tmp_path / "runs")])
    assert [r.name for r in runs] == ["good"] and notes == [f"skipped {failed.resolve()}: not finished"]


@pytest.mark.parametrize(
    "content, problem", [(None, "invalid JSON at line"), ('{"status": "finished"}', "missing field")]
)
def test_cli_exits_2_with_one_line_on_a_damaged_run(content, problem, data_dir, tmp_path):
    run = make_run(tmp_path / "runs", "a", data_dir, seed=1)
    if content is None:
        _truncate(run / "metrics.json")
    else:
        (run / "metrics.json").write_text(content)
    p = run_cli("embexp.cli.report", str(run), f"out={tmp_path / 'out'}", "latency=false", "wandb=false")
    assert p.returncode == 2, p.stderr[-3000:]
    assert "Traceback" not in p.stderr
    errors = [line for line in p.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and str(run / "metrics.json") in errors[0] and problem in errors[0], p.stderr
    assert not (tmp_path / "out").exists()
