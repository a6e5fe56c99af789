"""embexp-report on synthetic finished runs: grouping, refusals, every number traced back to the
runs' own files, single-seed flags, the reference rows and the families of tests."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from embexp.errors import ReportError
from embexp.eval import stats
from embexp.report.build import ReportSettings, build_report
from embexp.report.runs import differing_keys, find_run_dirs, group_runs, load_runs

from fixture_runs import decision_runs, make_beir, make_run

FAST = ReportSettings(latency=False, resamples=999)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_beir(tmp_path_factory.mktemp("synth") / "beir")


@pytest.fixture(scope="module")
def decision(tmp_path_factory, data_dir):
    return decision_runs(tmp_path_factory.mktemp("runs"), data_dir)


@pytest.fixture(scope="module")
def report(decision):
    return build_report([str(decision)], FAST)


def _metrics(path) -> dict:
    return json.loads((path / "metrics.json").read_text())["metrics"]


def _rows(path, model="final") -> dict:
    rows = [json.loads(x) for x in (path / "per_query.jsonl").read_text().splitlines()]
    return {r["query_id"]: r for r in rows if r["model"] == model}


# ---- finding and grouping -------------------------------------------------------------------
def test_finds_every_run_of_a_multirun_and_globs(decision):
    assert len(find_run_dirs([decision])) == 9
    assert len(find_run_dirs([str(decision / "[0-2]")])) == 3
    with pytest.raises(ReportError, match="no such run"):
        find_run_dirs([decision / "nope"])


def test_groups_by_the_keys_that_differ_never_the_seed(decision):
    runs, _ = load_runs([decision])
    keys = differing_keys(runs)
    assert "adapter.kind" in keys and "optimizer.lr" in keys
    assert "seed" not in keys and "data.sample_seed" not in keys
    configs, used = group_runs(runs)
    assert sorted(c.name for c in configs) == ["fx_full", "fx_last_layer", "fx_lora"]  # experiment names
    assert all(sorted(c.seeds) == [1, 2, 3] for c in configs)
    by_lr, used = group_runs(runs, ["optimizer.lr"])
    assert used == ["optimizer.lr"] and len(by_lr) == 3


def test_a_curriculum_grid_groups_by_kind_never_by_a_copy_of_the_seed(tmp_path, data_dir):
    miner = {"n_negatives": 1, "window": [2, 20], "margin_rel": 0.05, "fill_below_window": True}
    for n, (seed, kind) in enumerate((s, k) for s in (1, 2, 3) for k in ("in_batch", "static", "iterative")):
        negatives = {"kind": "in_batch", "n_negatives": 0} if kind == "in_batch" else {**miner, "kind": kind}
        if kind != "in_batch":
            negatives["seed"] = seed  # conf/negatives/static.yaml: seed: ${seed}
        make_run(tmp_path, str(n), data_dir, seed=seed, experiment="fx_lora", extra={"negatives": negatives})
    runs, _ = load_runs([tmp_path])
    keys = differing_keys(runs)
    assert "negatives.kind" in keys and "negatives.seed" not in keys
    configs, _ = group_runs(runs)
    assert [c.name for c in configs] == [  # only the key that tells them apart, not every miner setting
        "fx_lora (kind=in_batch)",
        "fx_lora (kind=iterative)",
        "fx_lora (kind=static)",
    ]
    assert all(c.seeds == [1, 2, 3] for c in configs)


def test_recovery_is_only_asked_of_runs_with_several_adapter_kinds(tmp_path, data_dir):
    for n, (seed, lr) in enumerate([(1, 1e-3), (2, 1e-3), (1, 1e-4), (2, 1e-4)]):
        make_run(tmp_path / "lora", str(n), data_dir, adapter="lora", lr=lr, seed=seed)
    rep = build_report([str(tmp_path / "lora")], FAST)
    assert rep["recovery"] == [] and not any("recovery" in x for x in rep["warnings"] + rep["caveats"])
    make_run(tmp_path / "mixed", "ll", data_dir, adapter="last_layer", seed=1)
    make_run(tmp_path / "mixed", "lora", data_dir, adapter="lora", seed=1)
    rep = build_report([str(tmp_path / "mixed")], FAST)
    assert any("no recovery ratio: the runs lack a full fine-tune" in w for w in rep["warnings"])


def test_a_key_that_only_sometimes_equals_the_seed_still_groups(tmp_path, data_dir):
    for n, (seed, r) in enumerate([(1, 1), (2, 1), (1, 8), (2, 8)]):  # r=1 equals seed 1 by chance
        make_run(tmp_path, str(n), data_dir, adapter="lora", r=r, seed=seed)
    runs, _ = load_runs([tmp_path])
    configs, keys = group_runs(runs)
    assert keys == ["adapter.r"] and sorted(c.name for c in configs) == ["r=1", "r=8"]
    # one run each, a value equal to its seed: still two configurations (not a *seed key)
    for seed in (1, 2):
        make_run(tmp_path / "n", str(seed), data_dir, seed=seed, extra={"negatives": {"n_negatives": seed}})
    configs, keys = group_runs(load_runs([tmp_path / "n"])[0])
    assert keys == ["negatives.n_negatives"] and len(configs) == 2


def test_names_of_mixed_and_look_alike_configurations_stay_short_and_unique(tmp_path, decision, data_dir):
    mixed = shutil.copytree(decision, tmp_path / "mixed")
    make_run(mixed, "adhoc", data_dir, adapter="lora", r=8, seed=1, lr=1e-3)  # no experiment
    configs, _ = group_runs(load_runs([mixed])[0])
    assert sorted(c.name for c in configs) == ["fx_full", "fx_last_layer", "fx_lora", "kind=lora, r=8"]
    make_run(tmp_path / "alike", "a", data_dir, seed=1, extra={"optimizer": {"lr": 1e-3}})
    make_run(tmp_path / "alike", "b", data_dir, seed=1, extra={"optimizer": {"lr": 0.0010000001}})
    configs, _ = group_runs(load_runs([tmp_path / "alike"])[0])
    assert sorted(c.name for c in configs) == ["lr=0.001 #1", "lr=0.001 #2"]


def test_grouping_without_experiment_names_uses_the_values(tmp_path, data_dir):
    make_run(tmp_path, "a1", data_dir, adapter="lora", r=8, seed=1)
    make_run(tmp_path, "a2", data_dir, adapter="lora", r=8, seed=2)
    make_run(tmp_path, "b1", data_dir, adapter="lora", r=32, seed=1)
    runs, _ = load_runs([tmp_path])
    configs, keys = group_runs(runs)
    assert keys == ["adapter.r"]
    assert sorted(c.name for c in configs) == ["r=32", "r=8"]
    assert [len(c.runs) for c in sorted(configs, key=lambda c: c.name)] == [1, 2]


# ---- refusals and warnings --------------------------------------------------------------------
@pytest.mark.parametrize(
    "change, what",
    [
        ({"fingerprint": "other-data"}, "eval data fingerprint"),
        ({"base_model": "other-model"}, "base model"),
    ],
)
def test_refuses_runs_on_other_eval_data_or_base_model(tmp_path, data_dir, change, what):
    a = make_run(tmp_path, "a", data_dir, seed=1)
    b = make_run(tmp_path, "b", data_dir, seed=2, **change)
    with pytest.raises(ReportError, match=what) as e:
        build_report([str(tmp_path)], FAST)
    assert str(a) in str(e.value) and str(b) in str(e.value)


def test_refuses_another_eval_split_and_other_queries(tmp_path, data_dir):
    a = make_run(tmp_path, "a", data_dir, seed=1)
    b = make_run(tmp_path, "b", data_dir, seed=2)
    m = json.loads((b / "metrics.json").read_text())
    m["data"]["eval_split"] = "dev"
    (b / "metrics.json").write_text(json.dumps(m))
    with pytest.raises(ReportError, match="eval split"):
        build_report([str(a), str(b)], FAST)
    m["data"]["eval_split"] = "test"
    (b / "metrics.json").write_text(json.dumps(m))
    lines = (b / "per_query.jsonl").read_text().splitlines()
    (b / "per_query.jsonl").write_text("\n".join(x for x in lines if '"te0"' not in x) + "\n")
    with pytest.raises(ReportError, match="different queries"):
        build_report([str(a), str(b)], FAST)


def test_warns_when_step_budgets_differ_and_skips_unfinished_runs(tmp_path, data_dir):
    make_run(tmp_path, "a", data_dir, adapter="lora", seed=1, train_steps=50)
    make_run(tmp_path, "b", data_dir, adapter="full", seed=1, train_steps=80)
    c = make_run(tmp_path, "c", data_dir, adapter="full", seed=2, train_steps=80)
    m = json.loads((c / "metrics.json").read_text())
    (c / "metrics.json").write_text(json.dumps({**m, "status": "failed"}))
    rep = build_report([str(tmp_path)], FAST)
    assert any("step budgets differ" in w for w in rep["warnings"])
    assert any("step budgets differ" in c for c in rep["caveats"])
    assert any("skipped" in w and str(c) in w for w in rep["warnings"])
    assert sum(s["n_seeds"] for s in rep["systems"] if s["kind"] == "finetuned") == 2


def test_a_malformed_per_query_file_names_file_and_line(tmp_path, data_dir):
    a = make_run(tmp_path, "a", data_dir, seed=1)
    with open(a / "per_query.jsonl", "a") as f:
        f.write("{not json\n")
    n = len((a / "per_query.jsonl").read_text().splitlines())
    with pytest.raises(ReportError, match=f"per_query.jsonl:{n}"):
        build_report([str(a)], FAST)


# ---- every number traced back to the runs -------------------------------------------------------
def test_every_summary_number_equals_the_runs_metrics_json(report, decision):
    runs = {s["name"]: [decision / r["path"].split("/")[-1] for r in s["runs"]] for s in report["systems"]}
    checked = 0
    for row in report["summary"]:
        sl, m = row["slice"], row["metric"]
        key = f"test/{m}" if sl == "all" else f"test/slice/{sl}/{m}"
        if row["system"] == "base model":
            first = decision / report["systems"][1]["runs"][0]["path"].split("/")[-1]
            assert row["mean"] == pytest.approx(_metrics(first)[f"baseline/{key}"], abs=1e-12)
        elif row["system"] in ("fx_full", "fx_lora", "fx_last_layer"):
            vals = [_metrics(p)[f"final/{key}"] for p in runs[row["system"]]]
            assert row["per_seed"] == pytest.approx(vals, abs=1e-12)
            assert row["mean"] == pytest.approx(np.mean(vals), abs=1e-12)
            iv = stats.seed_mean_ci(vals)
            assert (row["ci_low"], row["ci_high"]) == pytest.approx((iv.low, iv.high))
            assert row["ci_method"].startswith("seeds") and row["flag"] is None
        else:
            continue
        checked += 1
    assert checked == 4 * 4 * 3  # 4 systems x 4 slices (all, head, jargon, tail) x 3 metrics


def test_per_query_values_and_differences_come_from_per_query_jsonl(report, decision):
    lora = [
        decision / r["path"].split("/")[-1]
        for s in report["systems"]
        if s["name"] == "fx_lora"
        for r in s["runs"]
    ]
    qids = report["query_ids"]
    want = np.mean([[_rows(p)[q]["ndcg@10"] for q in qids] for p in lora], axis=0)
    assert report["per_query"]["fx_lora"]["ndcg@10"] == pytest.approx(list(want))
    base = np.array([_rows(lora[0], "baseline")[q]["ndcg@10"] for q in qids])
    c = next(
        c
        for c in report["comparisons"]
        if (c["a"], c["b"], c["slice"], c["metric"]) == ("fx_lora", "base model", "all", "ndcg@10")
    )
    assert c["diff"] == pytest.approx(float(np.mean(want - base)))
    assert c["n_queries"] == len(qids)


def test_holm_runs_within_each_family(report):
    for family in ("configurations", "references"):
        rows = [c for c in report["comparisons"] if c["family"] == family]
        assert rows
        assert [c["p_holm"] for c in rows] == pytest.approx(stats.holm([c["p"] for c in rows]))
        assert all(c["significant"] == (c["p_holm"] < 0.05) for c in rows)
    pairs = {(c["a"], c["b"]) for c in report["comparisons"]}
    assert ("fx_full", "base model") in pairs and ("fx_full", "fx_lora") in pairs
    assert ("BM25", "base model") in pairs and ("fx_full", "hybrid: base model") in pairs
    assert ("hybrid: fx_full", "hybrid: base model") in pairs


def test_recovery_ratio_is_lora_gain_over_full_gain(report):
    r = next(
        r
        for r in report["recovery"]
        if (r["cheaper"], r["full"], r["slice"], r["metric"]) == ("fx_lora", "fx_full", "all", "recall@10")
    )
    pq, base = report["per_query"], np.array(report["per_query"]["base model"]["recall@10"])
    gain = lambda s: np.mean(np.array(pq[s]["recall@10"]) - base)  # noqa: E731
    assert r["ratio"] == pytest.approx(gain("fx_lora") / gain("fx_full"))
    assert r["ci_low"] <= r["ratio"] <= r["ci_high"]


def test_references_are_computed_on_the_same_queries(report):
    names = [s["name"] for s in report["systems"] if s["kind"] == "reference"]
    assert names[:2] == ["BM25", "hybrid: base model"]
    assert {"hybrid: fx_full", "hybrid: fx_lora", "hybrid: fx_last_layer"} <= set(names)
    assert all(len(report["per_query"][n]["ndcg@10"]) == len(report["query_ids"]) for n in names)


def test_regressions_are_significant_and_below(report):
    for r in report["regressions"]:
        assert r["diff"] < 0 and r["p_holm"] < 0.05
        assert r["against"] in ("base model", "fx_full", "fx_lora", "fx_last_layer")


def test_a_single_seed_gets_bootstrap_cis_with_the_flag(tmp_path, data_dir):
    make_run(tmp_path, "lora", data_dir, adapter="lora", seed=1, quality=0.6)
    make_run(tmp_path, "full", data_dir, adapter="full", seed=1, quality=0.7)
    rep = build_report([str(tmp_path)], FAST)
    tuned = {s["name"] for s in rep["systems"] if s["kind"] == "finetuned"}
    assert tuned == {"kind=lora", "kind=full"}  # only the key that tells them apart
    rows = [r for r in rep["summary"] if r["system"] in tuned]
    assert rows and all(r["flag"] and "1 seed" in r["flag"] for r in rows)
    assert all(r["ci_method"].startswith("query bootstrap") for r in rows)
    assert all(r["ci_low"] <= r["mean"] <= r["ci_high"] for r in rows)
    assert any("fewer than 3 seeds" in c for c in rep["caveats"])


def test_references_are_skipped_with_a_note_when_the_data_is_gone(tmp_path, data_dir):
    local = shutil.copytree(data_dir, tmp_path / "data")
    make_run(tmp_path / "runs", "a", local, seed=1)
    shutil.rmtree(local)
    rep = build_report([str(tmp_path / "runs")], FAST)
    assert not [s for s in rep["systems"] if s["kind"] == "reference"]
    assert any("could not be loaded" in w for w in rep["warnings"])


def test_verdict_is_generated_from_the_numbers(report):
    best = max(
        (
            r
            for r in report["summary"]
            if r["slice"] == "all" and r["metric"] == "ndcg@10" and r["system"].startswith("fx")
        ),
        key=lambda r: r["mean"],
    )
    assert f"**{best['system']}**: {best['mean']:.4f}" in report["verdict"]
    assert "hybrid baseline" in report["verdict"] and "recovers" in report["verdict"]


def test_a_metric_the_runs_lack_is_a_clean_error(decision):
    with pytest.raises(ReportError, match="no per-query map@7.*the runs have: .*ndcg@10"):
        build_report([str(decision)], ReportSettings(latency=False, resamples=999, metrics=["map@7"]))


def test_references_on_changed_data_are_skipped(tmp_path, data_dir):
    make_run(tmp_path / "runs", "a", data_dir, seed=1, fingerprint="what-the-run-saw")
    rep = build_report([str(tmp_path / "runs")], FAST)
    assert not [s for s in rep["systems"] if s["kind"] == "reference"]
    assert any("reference rows skipped" in w and "what-the-run-saw" in w for w in rep["warnings"])


def test_the_base_model_comes_from_any_run_that_evaluated_it(tmp_path, data_dir):
    a = make_run(tmp_path, "a", data_dir, seed=1)
    make_run(tmp_path, "b", data_dir, seed=2)
    rows = [x for x in (a / "per_query.jsonl").read_text().splitlines() if '"baseline"' not in x]
    (a / "per_query.jsonl").write_text("\n".join(rows) + "\n")
    rep = build_report([str(tmp_path)], FAST)
    assert "base model" in {s["name"] for s in rep["systems"]}


def test_runs_that_kept_the_base_model_are_a_caveat(tmp_path, data_dir):
    make_run(tmp_path, "a", data_dir, adapter="full", seed=1, selected="base")
    make_run(tmp_path, "b", data_dir, adapter="full", seed=2)
    rep = build_report([str(tmp_path)], FAST)
    assert any("1 of 2 runs kept the base model" in c for c in rep["caveats"])
    (tuned,) = [s for s in rep["systems"] if s["kind"] == "finetuned"]
    assert sorted(r["selected"] for r in tuned["runs"]) == ["base", "epoch 2"]
