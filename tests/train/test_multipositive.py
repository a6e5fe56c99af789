"""Multi-positive, graded data: which pairs train, what mining may return, and what a run reports
(coverage of the curriculum, the base model in model selection, cost under a step budget)."""

import json

import numpy as np
import pytest

from embexp.data.prepare import prepare_data, select_positives
from embexp.mining.curriculum import MiningInputs, mine_with_encoder
from embexp.train.data import build_examples

from conftest import MULTI_QRELS, TINY, mining_params, run_cli


def _data(path, **kw):
    return prepare_data({"kind": "beir", "path": str(path), "dev_fraction": 0.2, **kw})


def _graded(split):
    return {(q, d): g for q, d, g in MULTI_QRELS[split]}


def test_min_positive_grade_selects_the_training_pairs(multi_beir):
    grades = _graded("train")
    for min_grade in (1, 2):
        data = _data(multi_beir, min_positive_grade=min_grade)
        pairs = {(ex.query_id, ex.positive_ids[0]) for ex in build_examples(data)}
        expected = {(q, d) for (q, d), g in grades.items() if g >= min_grade and q in data.train}
        assert pairs == expected and pairs
        assert data.n_train_pairs == len(expected)
        assert data.selection["n_below_min_grade"] == sum(
            1 for (q, d), g in grades.items() if q in data.train and 1 <= g < min_grade
        )
    with pytest.raises(Exception, match="data.min_positive_grade"):
        _data(multi_beir, min_positive_grade=3)


def test_max_positives_per_query_is_a_seeded_sample_that_keeps_the_best_grades():
    train = {f"q{i}": {f"d{j}": (2 if j == i else 1) for j in range(10)} for i in range(5)}
    a, sa = select_positives(train, 1, cap=3, seed=7)
    b, _ = select_positives(train, 1, cap=3, seed=7)
    c, _ = select_positives(train, 1, cap=3, seed=8)
    assert a == b and a != c
    assert all(len(v) == 3 and f"d{q[1:]}" in v for q, v in a.items())  # the grade-2 doc is always kept
    assert sa["n_dropped_by_cap"] == 5 * 7 and sa["n_pairs"] == 15
    # one query's draw does not depend on the others
    only, _ = select_positives({"q3": train["q3"]}, 1, cap=3, seed=7)
    assert only["q3"] == a["q3"]


@pytest.mark.parametrize("reference", ["best", "lowest"])
def test_mining_never_returns_a_labelled_positive(multi_beir, tiny_encoder, reference):
    data = _data(multi_beir, min_positive_grade=2)  # grade-1 docs do not train, but are never negatives
    params = mining_params(
        window=(1, 15), n_negatives=15, depth=15, margin_rel=None, margin_reference=reference
    )
    res = mine_with_encoder(tiny_encoder, data, params, inputs=MiningInputs.from_data(data))
    labelled = {}
    for split in MULTI_QRELS:
        for (q, d), g in _graded(split).items():
            if g > 0:
                labelled.setdefault(q, set()).add(d)
    assert res.negatives
    for q, negs in res.negatives.items():
        got = {n.doc_id for n in negs}
        assert got and not got & labelled[q], q
    # every non-labelled document is available: the window holds all of them
    n_docs = len(data.dataset.corpus)
    for q, negs in res.negatives.items():
        assert len(negs) == min(15, n_docs - len(labelled[q]))


def _run(tmp_path, name, *extra):
    out = tmp_path / name
    args = [*TINY, "data=beir", "data.dev_fraction=0.2", f"hydra.run.dir={out}", *extra]
    p = run_cli("embexp.cli.train", *args)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads((out / "metrics.json").read_text()), p, out


def test_budget_coverage_warning_and_base_model_selection(multi_beir, tmp_path):
    """lr=1e-30 (updates below fp32 resolution): no epoch can beat the base (equal dev scores), so
    the base is kept and said to be; a one-rank window with two negatives per example: no example
    gets its negatives mined."""
    rec, p, out = _run(
        tmp_path,
        "run",
        f"data.path={multi_beir}",
        "optimizer.lr=1e-30",
        "trainer.max_epochs=2",
        "train.max_steps=3",
        "negatives=static",
        "negatives.window=[2,2]",
        "negatives.depth=2",
        "negatives.n_negatives=2",
        "negatives.min_coverage=1.0",
    )
    # cost under the budget: 3 steps of 2 pairs, epochs of ceil(3 / 2) = 2 steps
    c = rec["cost"]
    assert c["train_steps"] == 3 and rec["n_train_pairs"] == c["n_train_pairs"] == 6
    assert c["epochs"] == 2 and [h["step"] for h in rec["dev_history"]] == [2, 3]
    assert c["pairs_per_s"] == pytest.approx(6 / (c["train_wall_s"] - c["validation_s"]))
    assert c["n_train_examples"] == rec["data"]["n_train_pairs"] > 6
    # the curriculum's coverage and its warning
    r0 = rec["negatives"]["rounds"][0]
    assert r0["example_coverage"] == 0.0 and r0["n_examples_topped_up"] == c["n_train_examples"]
    assert any(w.startswith("mining round 0: only 0%") for w in rec["warnings"])
    assert "only 0%" in p.stdout + p.stderr
    rounds = [json.loads(x) for x in (out / "mining_rounds.jsonl").read_text().splitlines()]
    assert rounds[0]["warning"] in rec["negatives"]["warnings"]
    # the base model won model selection, and says so
    sel = rec["model_selection"]
    assert sel["base_wins"] and sel["selected"] == "base" and sel["base"] == sel["best_epoch_score"]
    assert any("NO EPOCH BEATS THE BASE MODEL" in w for w in rec["warnings"])
    assert "NO EPOCH BEATS THE BASE MODEL" in p.stdout + p.stderr
    assert c["selected"] == "base" and c["best_epoch"] is None
    for k, v in rec["metrics"].items():
        if k.startswith("final/test/"):
            assert v == pytest.approx(rec["metrics"]["baseline/" + k[len("final/") :]], abs=1e-6), k
    # dense labels: every test query's relevant documents were trained on, the tail slice is empty
    assert any(w.startswith("test: slice 'tail' is empty") for w in rec["warnings"])
    assert "final/test/slice/head/ndcg@10" in rec["metrics"]
    # the data card travels with the run
    assert rec["data_card"]["splits"]["train"]["positives_per_query"]["p50"] > 1


def test_select_base_false_keeps_the_best_epoch_and_still_warns(multi_beir, tmp_path):
    rec, _, _ = _run(
        tmp_path,
        "run",
        f"data.path={multi_beir}",
        "optimizer.lr=1e-30",
        "trainer.max_epochs=1",
        "train.select_base=false",
    )
    sel = rec["model_selection"]
    assert sel["base_wins"] and sel["selected"] == "epoch 0" and rec["cost"]["best_epoch"] == 0
    assert any("select_base=false" in w for w in rec["warnings"])
    assert np.isfinite(rec["metrics"]["final/test/ndcg@10"])


def _fake_trainer(world=1, acc=1):
    from types import SimpleNamespace as NS

    return NS(
        world_size=world,
        accumulate_grad_batches=acc,
        limit_train_batches=1.0,
        fit_loop=NS(max_epochs=3, epoch_loop=NS(max_steps=-1)),
    )


@pytest.mark.parametrize(
    "world, acc, n_batches, train, want",
    [  # an epoch of ceil(100 / 3) = 34 optimizer steps, 3 epochs
        (1, 1, 3400, {"max_steps": 100}, {"max_epochs": 3, "epoch_steps": 34, "limit_train_batches": 34}),
        # 4 ranks share a 100-batch pass: 25 steps a pass, the budget still 100 steps (4 epochs)
        (4, 1, 100, {"max_steps": 100}, {"max_epochs": 4, "epoch_steps": 25}),
        # accumulation: 34 optimizer steps are 136 batches
        (1, 4, 3400, {"max_steps": 100}, {"max_epochs": 3, "epoch_steps": 34, "limit_train_batches": 136}),
        # the cadence alone keeps trainer.max_epochs passes' worth of steps
        (1, 1, 3400, {"val_every_steps": 500}, {"max_steps": 10200, "max_epochs": 21, "epoch_steps": 500}),
    ],
)
def test_step_budget_counts_optimizer_steps_per_rank(world, acc, n_batches, train, want):
    from omegaconf import OmegaConf

    from embexp.train.run import apply_step_budget

    cfg = OmegaConf.create(
        {"train": {"max_steps": None, "val_every_steps": None, **train}, "trainer": {"max_epochs": 3}}
    )
    t = _fake_trainer(world, acc)
    got = apply_step_budget(t, cfg, n_batches)
    assert {k: got[k] for k in want} == want
    assert t.fit_loop.max_epochs == got["max_epochs"]
    # Lightning's own max_steps stays unset (StepBudget ends the run): with it set, Lightning took a
    # resume from an end-of-epoch checkpoint for a restart inside the epoch and lost an epoch
    assert t.fit_loop.epoch_loop.max_steps == -1
    assert t.limit_train_batches == got.get("limit_train_batches", 1.0)
