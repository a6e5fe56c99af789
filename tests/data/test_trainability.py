"""The pre-flight check of the training data: a set on which no pair can meet a negative (one
document, one shared positive, identical texts) is refused before any model is loaded, with the
cause and the way out; pairs and batches that can meet none are named, with their share, in the
data card's warnings."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from embexp.data.card import data_card, format_card
from embexp.data.prepare import prepare_data
from embexp.data.trainability import check_training_signal, training_pairs
from embexp.errors import ConfigError, DataError

from conftest import write_beir

DOCS = [(f"d{i}", f"title {i}", f"passage number {i} about topic {i}") for i in range(1, 7)]
QUERIES = [(f"q{i}", f"question number {i}") for i in range(1, 9)]
TEST = [("q7", "d1", 1)]
DEV = [("q8", "d1", 1)]


def _data(tmp_path, train, docs=DOCS):
    folder = write_beir(
        tmp_path / "beir", docs=docs, queries=QUERIES, qrels={"train": train, "dev": DEV, "test": TEST}
    )
    return prepare_data({"kind": "beir", "path": str(folder)})


def _neg(kind="in_batch", **kw):
    return {"kind": kind, "n_negatives": 0 if kind == "in_batch" else 1, "warmup_epochs": 0, **kw}


ONE_POSITIVE = [(f"q{i}", "d1", 1) for i in range(1, 5)]


def test_every_query_sharing_one_positive_is_refused_with_in_batch_negatives(tmp_path):
    data = _data(tmp_path, ONE_POSITIVE)
    with pytest.raises(DataError) as e:
        check_training_signal(data, _neg(), batch_size=2)
    msg = str(e.value)
    assert msg.startswith(str(tmp_path / "beir")), msg
    assert (
        "no training pair can meet a negative: all 4 training pairs have the same positive passage ('d1')"
        in msg
    )
    assert "masked as a false negative, so the loss would be 0 at every step" in msg
    assert "negatives=static" in msg and "5 documents that are not a query's positives" in msg


def test_mined_negatives_rescue_one_shared_positive_but_not_a_warm_up(tmp_path):
    data = _data(tmp_path, ONE_POSITIVE)
    rep = check_training_signal(data, _neg("static"), batch_size=2)
    assert rep["n_pairs_without_negative"] == 0 and rep["n_pairs_without_in_batch_negative"] == 4
    assert rep["warnings"] == [] and data.training_signal is rep
    rep = check_training_signal(data, _neg("static", warmup_epochs=1), batch_size=2)
    (w,) = rep["warnings"]
    assert w.startswith("negatives.warmup_epochs=1: the warm-up trains on in-batch negatives only, and no")
    assert "set negatives.warmup_epochs=0" in w


@pytest.mark.parametrize("kind", ["in_batch", "static", "iterative"])
def test_a_one_document_corpus_is_refused_for_every_kind(kind, tmp_path):
    docs = [("d1", "only", "the only passage")]
    data = _data(tmp_path, [(f"q{i}", "d1", 1) for i in range(1, 5)], docs=docs)
    with pytest.raises(DataError) as e:
        check_training_signal(data, _neg(kind), batch_size=2)
    msg = str(e.value)
    assert "the corpus holds a single document ('d1'), the positive of every training pair" in msg
    assert "add corpus documents that are not positives of every query" in msg
    assert ("nor does the corpus hold a document" in msg) == (kind != "in_batch")


def test_positives_with_identical_text_mask_each_other(tmp_path):
    docs = [*DOCS, ("d9", "title 1", "passage number 1 about topic 1")]  # d9's passage = d1's
    data = _data(tmp_path, [("q1", "d1", 1), ("q2", "d9", 1), ("q3", "d1", 1)], docs=docs)
    with pytest.raises(DataError, match=r"same positive passage \('d1', 'd9': identical text\)"):
        check_training_signal(data, _neg(), batch_size=2)


def test_queries_whose_positives_cover_every_training_positive(tmp_path):
    # one topic (d1, d2) relevant to every training query: no pair ever meets an unmasked positive
    train = [(q, d, 1) for q in ("q1", "q2", "q3") for d in ("d1", "d2")]
    with pytest.raises(DataError, match="every training query has all 2 distinct training positives"):
        check_training_signal(_data(tmp_path, train), _neg(), batch_size=2)


def test_pairs_that_never_meet_a_negative_are_a_warning_with_their_share(tmp_path):
    # q1's positives d1 and d2 are all the training positives: its 2 pairs can meet nothing in-batch
    data = _data(tmp_path, [("q1", "d1", 1), ("q1", "d2", 1), ("q2", "d1", 1), ("q3", "d2", 1)])
    rep = check_training_signal(data, _neg(), batch_size=2)
    assert rep["n_pairs_without_negative"] == 2
    (w,) = rep["warnings"]
    assert w.startswith("2 of 4 (50%) training pairs can never meet a negative (negatives=in_batch)")
    assert "queries 'q1'" in w and "negatives=static mines them negatives" in w
    assert check_training_signal(data, _neg("static"), batch_size=2)["warnings"] == []


def test_batches_whose_rows_all_mask_one_another_are_counted(tmp_path):
    data = _data(tmp_path, [("q1", "d1", 1), ("q2", "d1", 1), ("q3", "d1", 1), ("q4", "d2", 1)])
    assert training_pairs(data) == [("q1", "d1"), ("q2", "d1"), ("q3", "d1"), ("q4", "d2")]
    rep = check_training_signal(data, _neg(), batch_size=2, batches=[[0, 1], [2, 3]])
    assert rep["batches"] == {"n_batches": 2, "n_all_masked": 1}
    (w,) = rep["warnings"]
    assert w.startswith("1 of 2 (50%) batches of the first epoch (train.batch_size=2) hold only pairs whose")
    assert "75% of the training pairs share the positive 'd1'" in w
    rep = check_training_signal(data, _neg(), batch_size=2, batches=[[0, 3], [1, 2, 3], [2]])
    assert rep["batches"] == {"n_batches": 2, "n_all_masked": 0} and rep["warnings"] == []


def test_the_data_module_checks_the_batches_its_sampler_draws(tmp_path):
    from embexp.train.data import PairDataModule

    data = _data(tmp_path, [("q1", "d1", 1), ("q2", "d1", 1), ("q3", "d1", 1), ("q4", "d2", 1)])
    cfg = OmegaConf.create(
        {"seed": 0, "train": {"batch_size": 2, "no_duplicates": True}, "negatives": _neg()}
    )
    rep = PairDataModule.preflight(data, cfg)
    # three pairs share d1 and two batches hold them: one batch of d1 pairs alone is unavoidable
    assert rep["batches"] == {"n_batches": 2, "n_all_masked": 1} and len(rep["warnings"]) == 1
    card = data_card(data)
    assert card["training_signal"] == rep and rep["warnings"][0] in card["warnings"]
    assert f"  warning: {rep['warnings'][0]}" in format_card(card)
    cfg.negatives = _neg("static")
    assert PairDataModule.preflight(data, cfg)["warnings"] == []  # mined negatives for every row


def test_more_hard_negatives_than_a_query_has_documents_is_refused(tmp_path):
    docs = DOCS[:3]
    data = _data(tmp_path, [("q1", "d1", 1), ("q1", "d2", 1), ("q2", "d3", 1)], docs=docs)
    with pytest.raises(ConfigError) as e:
        check_training_signal(data, _neg("static", n_negatives=2), batch_size=2)
    assert e.value.key == "negatives.n_negatives"
    assert "training query 'q1' has only 1 corpus document(s) that are not its positives" in str(e.value)
    assert "set negatives.n_negatives <= 1" in str(e.value)
    assert check_training_signal(data, _neg("static", n_negatives=1), batch_size=2)["warnings"] == []


def test_the_collate_refuses_instead_of_drawing_forever(tmp_path, tiny_encoder):
    from embexp.train.data import Collator, build_examples

    docs = DOCS[:3]
    data = _data(tmp_path, [("q1", "d1", 1), ("q1", "d2", 1), ("q2", "d3", 1)], docs=docs)
    examples = build_examples(data, {})
    collate = Collator(tiny_encoder, data, examples, n_negatives=2)
    with pytest.raises(ConfigError, match="negatives.n_negatives"):
        collate.sample_negatives(0, 0)


def test_ordinary_data_passes_without_warnings(tiny_beir):
    data = prepare_data({"kind": "beir", "path": str(tiny_beir)})
    for kind in ("in_batch", "static"):
        rep = check_training_signal(data, _neg(kind), batch_size=2, batches=[[0, 1], [2]])
        assert rep["warnings"] == [] and rep["n_pairs_without_negative"] == 0
