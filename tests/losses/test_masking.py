import pytest
import torch

from embexp.losses import as_key_set, candidate_ids, false_negative_mask, text_key


def test_single_positive_id_per_query_masks_duplicates_off_the_diagonal():
    mask = false_negative_mask(["d1", "d2", "d1"], ["d1", "d2", "d1"])
    expected = torch.tensor(
        [
            [False, False, True],
            [False, False, False],
            [True, False, False],
        ]
    )
    assert mask.dtype == torch.bool
    assert torch.equal(mask, expected)


def test_shape_and_hard_negative_columns():
    # B=2, N=2: columns [p0, p1, n00, n01, n10, n11]
    cands = candidate_ids(["a", "b"], [["a", "x"], ["y", "b"]])
    assert cands == ["a", "b", "a", "x", "y", "b"]
    mask = false_negative_mask(["a", "b"], cands)
    assert mask.shape == (2, 6)
    # row 0: its own mined negative n00 is 'a' -> masked; row 1: n11 is 'b' -> masked
    assert mask[0].tolist() == [False, False, True, False, False, False]
    assert mask[1].tolist() == [False, False, False, False, False, True]


def test_several_labelled_positives_mask_other_rows_positives():
    # query 0 is labelled with d1 and d5; row 1's positive is d5
    mask = false_negative_mask([{"d1", "d5"}, {"d5"}], ["d1", "d5"])
    assert mask.tolist() == [[False, True], [False, False]]


def test_own_positive_keys_are_always_included():
    # positive_sets omit the embedded positive: a copy of my own column still masks
    mask = false_negative_mask([set(), set()], ["d1", "d1"])
    assert mask.tolist() == [[False, True], [True, False]]


def test_same_id_or_identical_text_both_mask():
    t = text_key("the same passage")
    cands = [{"d1", t}, {"d2", t}, {"d3", text_key("other")}]
    mask = false_negative_mask(cands, cands)
    assert mask.tolist() == [
        [False, True, False],
        [True, False, False],
        [False, False, False],
    ]


def test_own_columns_is_never_masked_and_validated():
    mask = false_negative_mask(["a", "a"], ["a", "a", "a"], own_columns=[2, 0])
    assert mask.tolist() == [[True, True, False], [False, True, True]]
    mask_t = false_negative_mask(["a", "a"], ["a", "a", "a"], own_columns=torch.tensor([2, 0]))
    assert torch.equal(mask, mask_t)
    with pytest.raises(ValueError, match="own_columns"):
        false_negative_mask(["a"], ["a"], own_columns=[1])
    with pytest.raises(ValueError, match="own_columns"):
        false_negative_mask(["a", "b"], ["a", "b"], own_columns=[0])


def test_unknown_ids_never_mask():
    mask = false_negative_mask([None, None], [None, None])
    assert not mask.any()


def test_key_set_conventions():
    assert as_key_set("doc") == frozenset({"doc"})  # a string is one id, not its characters
    assert as_key_set(("corpus", "doc")) == frozenset({("corpus", "doc")})  # tuples are composite ids
    assert as_key_set(7) == frozenset({7})
    assert as_key_set(["a", "b", None]) == frozenset({"a", "b"})
    assert as_key_set(None) == frozenset()


def test_text_key():
    assert text_key("abc") == text_key("abc")
    assert text_key("abc") != text_key("abd")
    assert text_key("abc").startswith("text:")


def test_candidate_ids_validates_rows():
    assert candidate_ids(["a", "b"]) == ["a", "b"]
    with pytest.raises(ValueError):
        candidate_ids(["a", "b"], [["x"]])
    with pytest.raises(ValueError, match="same number"):
        candidate_ids(["a", "b"], [["x"], ["y", "z"]])


@pytest.mark.parametrize("seed", range(5))
def test_key_mask_on_hashes_equals_false_negative_mask(seed):
    import random

    from embexp.losses.masking import key_mask, key_tensor

    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(12)]
    b, n_neg = 6, 2
    cand = [frozenset(rng.sample(docs, rng.randint(1, 2))) for _ in range(b * (1 + n_neg))]
    pos = [frozenset(rng.sample(docs, rng.randint(0, 4))) for _ in range(b)]
    own = rng.sample(range(len(cand)), b)
    want = false_negative_mask(pos, cand, own_columns=own)
    got = key_mask(key_tensor(pos), key_tensor(cand), torch.tensor(own), chunk=4)
    assert got.dtype == torch.bool and torch.equal(got, want)
    assert want.any()  # the draw has false negatives to find
