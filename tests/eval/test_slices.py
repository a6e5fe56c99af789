import json

import pytest

from embexp.data.types import Corpus
from embexp.errors import ConfigError, DataError
from embexp.eval.slices import build_slices, is_jargon, load_slice_file


@pytest.mark.parametrize(
    "text",
    [
        "ACH reversal window",
        "how do i reset 2FA",
        "TX-4410-B wont pair",
        "sku ab1234 missing",
        "what is an RMA",
    ],
)
def test_jargon_detected(text):
    assert is_jargon(text)


@pytest.mark.parametrize("text", ["how do i get my money back", "Refund to my card", "is it 5 days"])
def test_plain_not_jargon(text):
    assert not is_jargon(text)


def test_slices_from_meta_file_frequency_and_exposure(tmp_path):
    queries = {"a": "ACH window", "b": "money back", "c": "label", "d": "label printing"}
    meta = {
        "a": {"frequency": 100, "slices": ["payments"]},
        "b": {"frequency": 1},
        "c": {"frequency": 5},
        "d": {"frequency": 50},
    }
    f = tmp_path / "s.tsv"
    f.write_text("query-id\tslice\nb\tvip,refunds\nzz\tvip\n")
    s = build_slices(["a", "b", "c", "d"], queries, meta, file=str(f))
    assert s["payments"] == {"a"} and s["vip"] == {"b"} and s["refunds"] == {"b"}
    assert s["jargon"] == {"a"}
    assert s["head"] == {"a"} and s["tail"] == {"b", "c"}
    # no frequency: by training exposure of the relevant documents
    s = build_slices(
        ["b", "c"], queries, {}, eval_qrels={"b": {"d1": 1}, "c": {"d2": 1}}, train_qrels={"x": {"d1": 1}}
    )
    assert s["head"] == {"b"} and s["tail"] == {"c"}


def test_rare_terms_count_as_jargon():
    corpus = Corpus(
        ["1", "2", "3"], ["", "", ""], ["common words here", "common words there", "zyzzyva common"]
    )
    s = build_slices(["q"], {"q": "what is zyzzyva"}, {}, corpus=corpus, rare_max_df=1, head_tail=False)
    assert s["jargon"] == {"q"}
    assert "jargon" not in build_slices(
        ["q"], {"q": "what is zyzzyva"}, {}, corpus=corpus, rare_max_df=0, head_tail=False
    )


def test_bad_slice_file(tmp_path):
    f = tmp_path / "s.tsv"
    f.write_text("q1\tvip\nq2\n")
    with pytest.raises(DataError, match=r"s.tsv:2: field 'slice'"):
        load_slice_file(f)
    j = tmp_path / "s.json"
    j.write_text(json.dumps({"q1": "vip"}))
    with pytest.raises(DataError, match="s.json"):
        load_slice_file(j)


def long_queries(query_ids, queries, query_meta, corpus):
    """A slice of one's own (``eval.slices.rules``): queries of more than three words."""
    return [q for q in query_ids if len(queries[q].split()) > 3]


def test_user_rules_add_slices_named_after_the_function():
    queries = {"a": "ach reversal window length today", "b": "refund", "c": "card pin reset how to do it"}
    got = build_slices(
        ["a", "b", "c"], queries, {}, jargon=False, head_tail=False, rules=["test_slices:long_queries"]
    )
    assert got == {"long_queries": {"a", "c"}}
    with pytest.raises(ConfigError, match="eval.slices.rules"):
        build_slices(["a"], queries, {}, rules=["no_such_module:f"])


def test_head_tail_by_seen_share_on_dense_labels():
    """Every eval query has some relevant document among the training positives (the old 'any seen'
    rule would put them all in head); the seen share splits them."""
    train = {"t1": {"d1": 1, "d2": 1, "d3": 1}, "t2": {"d4": 2}}
    ev = {
        "a": {"d1": 1, "d2": 1, "d9": 1},  # 2/3 seen -> head
        "b": {"d1": 1, "d8": 1, "d9": 1},  # 1/3 -> tail
        "c": {"d4": 2, "d5": 0},  # grade 0 is not relevant: 1/1 -> head
        "d": {"d7": 1},  # 0 -> tail
    }
    q = {k: k for k in ev}
    s = build_slices(list(ev), q, {}, eval_qrels=ev, train_qrels=train, jargon=False)
    assert s["head"] == {"a", "c"} and s["tail"] == {"b", "d"}
    s = build_slices(list(ev), q, {}, eval_qrels=ev, train_qrels=train, jargon=False, seen_share=0.3)
    assert s["head"] == {"a", "b", "c"} and s["tail"] == {"d"}


def test_an_empty_built_in_slice_is_noted():
    train = {"t": {"d1": 1, "d2": 1}}
    ev = {"a": {"d1": 1}, "b": {"d2": 1}}
    notes = []
    s = build_slices(["a", "b"], {"a": "a", "b": "b"}, {}, eval_qrels=ev, train_qrels=train, notes=notes)
    assert set(s) == {"head"}
    assert any(n.startswith("slice 'tail' is empty") and "seen share" in n for n in notes)
    assert any(n.startswith("slice 'jargon' is empty") for n in notes)
