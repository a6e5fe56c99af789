"""embexp.eval.stats against independent computations (hand enumeration, numpy bootstraps, scipy t)."""

from __future__ import annotations

import itertools
import math
import os
import warnings

import numpy as np
import pytest
from scipy import stats

from embexp.eval.stats import (
    Interval,
    Paired,
    Ratio,
    bootstrap_mean_ci,
    holm,
    paired_comparison,
    recovery_ratio,
    seed_mean_ci,
)


def _exact_sign_flip_p(a, b) -> float:
    """Two-sided p of mean(a - b) over all 2^n sign patterns, enumerated here by hand."""
    d = np.asarray(a, float) - np.asarray(b, float)
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=d.size)))
    null = signs @ d / d.size
    observed = abs(d.mean())
    return float(np.mean(np.abs(null) >= observed - 1e-12))


def _numpy_percentile_bootstrap(x, confidence, resamples, seed):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(resamples, x.size))
    means = x[idx].mean(axis=1)
    alpha = (1 - confidence) / 2
    return np.percentile(means, [100 * alpha, 100 * (1 - alpha)])


@pytest.fixture(scope="module")
def per_query():
    """300 per-query scores of a base model, a full fine-tune (+0.10) and a LoRA run (+0.07)."""
    rng = np.random.default_rng(42)
    base = rng.random(300)
    full = base + 0.10 + 0.1 * rng.standard_normal(300)
    lora = base + 0.07 + 0.1 * rng.standard_normal(300)
    return lora, full, base


# --- paired_comparison -------------------------------------------------------------------------


@pytest.mark.parametrize("ties", [0, 3])
def test_paired_p_is_the_exact_sign_flip_p_for_small_n(ties):
    rng = np.random.default_rng(ties)
    b = rng.random(10)
    a = b + 0.15 + 0.3 * rng.standard_normal(10)
    a[:ties] = b[:ties]  # queries where both systems score the same
    expected = _exact_sign_flip_p(a, b)
    res = paired_comparison(a, b, seed=0)
    assert res.p == pytest.approx(expected, rel=1e-12)
    assert 0.0 < res.p < 1.0
    # 2^10 <= 9999 resamples: the test is exact, so the p does not depend on the seed
    assert paired_comparison(a, b, seed=123).p == res.p


@pytest.mark.parametrize("seed", [0, 5, 6])
def test_paired_p_close_to_paired_t_test_for_n300(seed):
    rng = np.random.default_rng(seed)
    b = rng.random(300)
    a = np.clip(b + 0.02 + 0.15 * rng.standard_normal(300), 0, 1)
    p = paired_comparison(a, b, seed=seed).p
    assert p == pytest.approx(stats.ttest_rel(a, b).pvalue, abs=0.015)


def test_paired_sign_conventions_and_large_effect(per_query):
    lora, full, base = per_query
    res = paired_comparison(full, base, seed=1)
    assert isinstance(res, Paired)
    assert res.n == 300
    assert res.mean_a == pytest.approx(full.mean()) and res.mean_b == pytest.approx(base.mean())
    assert res.diff == pytest.approx(full.mean() - base.mean())
    assert res.diff > 0 and 0 < res.low < res.diff < res.high
    assert res.p < 0.001

    swapped = paired_comparison(base, full, seed=1)
    assert swapped.diff == pytest.approx(-res.diff)
    assert (swapped.low, swapped.high) == pytest.approx((-res.high, -res.low))
    assert swapped.p == pytest.approx(res.p)


def test_paired_identical_inputs():
    x = [0.0, 0.5, 1.0, 0.25]
    res = paired_comparison(x, np.array(x))
    assert res == Paired(mean_a=0.4375, mean_b=0.4375, diff=0.0, low=0.0, high=0.0, p=1.0, n=4)


def test_paired_ci_agrees_with_numpy_bootstrap_of_differences(per_query):
    lora, full, _ = per_query
    res = paired_comparison(full, lora, seed=3)
    low, high = _numpy_percentile_bootstrap(full - lora, 0.95, 20000, seed=99)
    width = high - low
    assert res.low == pytest.approx(low, abs=0.1 * width)
    assert res.high == pytest.approx(high, abs=0.1 * width)


# --- bootstrap_mean_ci -------------------------------------------------------------------------


def test_bootstrap_ci_contains_mean_and_agrees_with_numpy():
    x = np.random.default_rng(0).beta(0.5, 0.8, size=300)
    ci = bootstrap_mean_ci(x, seed=7)
    assert isinstance(ci, Interval)
    assert ci.method == "query bootstrap (n_queries=300)"
    assert ci.mean == pytest.approx(x.mean())
    assert ci.low < ci.mean < ci.high
    low, high = _numpy_percentile_bootstrap(x, 0.95, 20000, seed=11)
    width = high - low
    assert ci.low == pytest.approx(low, abs=0.1 * width)
    assert ci.high == pytest.approx(high, abs=0.1 * width)
    # a 90% interval is inside the 95% one of the same resamples
    ci90 = bootstrap_mean_ci(x, confidence=0.9, seed=7)
    assert ci.low < ci90.low < ci90.high < ci.high


def test_bootstrap_ci_narrows_with_n():
    rng = np.random.default_rng(1)
    small = bootstrap_mean_ci(rng.random(50), resamples=2000)
    large = bootstrap_mean_ci(rng.random(2000), resamples=2000)
    assert large.high - large.low < 0.5 * (small.high - small.low)


def test_bootstrap_ci_constant_input_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ci = bootstrap_mean_ci([1.0] * 20)
    assert (ci.mean, ci.low, ci.high) == (1.0, 1.0, 1.0)
    assert ci.method == "query bootstrap (n_queries=20)"


# --- seed_mean_ci ------------------------------------------------------------------------------


@pytest.mark.parametrize("confidence", [0.95, 0.9])
def test_seed_mean_ci_is_the_t_interval(confidence):
    values = [0.612, 0.645, 0.598]
    mean = sum(values) / 3
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / 2)
    half = stats.t.ppf(1 - (1 - confidence) / 2, 2) * sd / math.sqrt(3)
    ci = seed_mean_ci(values, confidence=confidence)
    assert ci.method == "seeds (t, n=3)"
    assert (ci.mean, ci.low, ci.high) == pytest.approx((mean, mean - half, mean + half), rel=1e-12)


def test_seed_mean_ci_edge_cases():
    with pytest.raises(ValueError, match="values"):
        seed_mean_ci([0.5])
    ci = seed_mean_ci(np.array([0.1, 0.1, 0.1, 0.1]))
    assert ci.low == ci.mean == ci.high == pytest.approx(0.1)
    assert ci.method == "seeds (t, n=4)"


# --- holm --------------------------------------------------------------------------------------


def test_holm_textbook_example():
    # sorted 0.005, 0.01, 0.03, 0.04 -> 4*0.005, 3*0.01, 2*0.03, max(1*0.04, 0.06)
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_missing_values_are_passed_through_and_not_counted():
    out = holm([0.01, None, 0.04, float("nan"), 0.03, 0.005])
    assert out[1] is None and out[3] is None
    assert [out[i] for i in (0, 2, 4, 5)] == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_edge_cases():
    assert holm([0.5, 0.6, 0.01]) == pytest.approx([1.0, 1.0, 0.03])
    assert holm([]) == []
    assert holm([None]) == [None]
    with pytest.raises(ValueError, match="pvalues"):
        holm([0.2, 1.5])


# --- recovery_ratio ----------------------------------------------------------------------------


def test_recovery_ratio_point_estimate_and_ci(per_query):
    lora, full, base = per_query
    res = recovery_ratio(lora, full, base, seed=2)
    assert isinstance(res, Ratio)
    gain_lora, gain_full = lora.mean() - base.mean(), full.mean() - base.mean()
    assert res.gain_lora == pytest.approx(gain_lora)
    assert res.gain_full == pytest.approx(gain_full)
    assert res.ratio == pytest.approx(gain_lora / gain_full)
    assert res.stable
    assert res.low < res.ratio < res.high
    # a hand-written paired bootstrap of the same statistic gives a similar interval
    idx = np.random.default_rng(5).integers(0, 300, size=(20000, 300))
    ratios = (lora[idx].mean(1) - base[idx].mean(1)) / (full[idx].mean(1) - base[idx].mean(1))
    low, high = np.percentile(ratios, [2.5, 97.5])
    assert (res.low, res.high) == pytest.approx((low, high), abs=0.1 * (high - low))


def test_recovery_ratio_is_one_when_lora_matches_full(per_query):
    _, full, base = per_query
    res = recovery_ratio(list(full), full, base, resamples=999)
    assert (res.ratio, res.low, res.high) == pytest.approx((1.0, 1.0, 1.0))


def test_recovery_ratio_unstable_when_full_gain_is_noise(per_query):
    lora, _, base = per_query
    full = base + 0.1 * np.random.default_rng(3).standard_normal(300)
    full = full - (full.mean() - base.mean())  # full's mean gain is exactly (up to rounding) zero
    res = recovery_ratio(lora, full, base, resamples=999)
    assert not res.stable
    assert math.isnan(res.low) and math.isnan(res.high)
    assert res.gain_full == pytest.approx(0.0, abs=1e-12)

    same = recovery_ratio(lora, base, base, resamples=999)
    assert not same.stable and same.gain_full == 0.0
    assert math.isnan(same.ratio) and math.isnan(same.low)


# --- reproducibility and validation ------------------------------------------------------------


def test_same_seed_same_results(per_query):
    lora, full, base = per_query
    assert bootstrap_mean_ci(lora, seed=4) == bootstrap_mean_ci(lora, seed=4)
    assert bootstrap_mean_ci(lora, seed=4) != bootstrap_mean_ci(lora, seed=5)
    assert paired_comparison(lora, base, resamples=999, seed=4) == paired_comparison(
        lora, base, resamples=999, seed=4
    )
    assert recovery_ratio(lora, full, base, resamples=999, seed=4) == recovery_ratio(
        lora, full, base, resamples=999, seed=4
    )
    # a fresh Generator is the same stream as its int seed
    assert bootstrap_mean_ci(lora, seed=np.random.default_rng(4)) == bootstrap_mean_ci(lora, seed=4)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: paired_comparison([], []), "a"),
        (lambda: paired_comparison([0.1, 0.2], [0.1]), "b"),
        (lambda: paired_comparison([0.1, float("nan")], [0.1, 0.2]), "a"),
        (lambda: bootstrap_mean_ci(np.ones((2, 3))), "x"),
        (lambda: bootstrap_mean_ci([0.1, 0.2], confidence=1.5), "confidence"),
        (lambda: recovery_ratio([0.1, 0.2], [0.1, 0.2], [0.3]), "base"),
        (lambda: recovery_ratio([0.1, 0.2], None, [0.1, 0.2]), "full"),
        (lambda: seed_mean_ci([]), "values"),
    ],
)
def test_invalid_inputs_raise_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^{name}"):
        call()


def test_masked_rows_equal_separate_comparisons_on_their_queries():
    """Padding a row's other queries with zero differences changes neither its p-value (exactly
    enumerated here) nor its mean; the interval comes from the row's own queries."""
    from embexp.eval.stats import paired_comparisons

    rng = np.random.default_rng(5)
    a, b = rng.random((3, 12)), rng.random((3, 12))
    masks = np.zeros((3, 12), dtype=bool)
    masks[0, :12] = True
    masks[1, :7] = True
    masks[2, 5:] = True
    batched = paired_comparisons(a, b, masks=masks, resamples=9999, seed=0)
    for i, r in enumerate(batched):
        alone = paired_comparison(a[i][masks[i]], b[i][masks[i]], resamples=9999, seed=0)
        assert (
            r.n == alone.n and r.diff == pytest.approx(alone.diff) and r.mean_a == pytest.approx(alone.mean_a)
        )
        assert r.p == pytest.approx(_exact_sign_flip_p(a[i][masks[i]], b[i][masks[i]]))
        assert r.low <= r.diff <= r.high


def test_masked_intervals_do_not_depend_on_the_hash_seed():
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from embexp.eval.stats import paired_comparisons\n"
        "r = np.random.default_rng(0); a, b = r.random((4, 30)), r.random((4, 30))\n"
        "m = np.zeros((4, 30), bool); m[0] = True; m[1, :10] = True; m[2, 10:] = True; m[3, ::2] = True\n"
        "print([(x.low, x.high) for x in paired_comparisons(a, b, masks=m, resamples=999, seed=0)])\n"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": h},
        ).stdout
        for h in ("1", "2", "3")
    }
    assert len(outs) == 1 and "(" in outs.pop()


def test_a_full_fine_tune_that_lost_gives_no_recovery_share():
    rng = np.random.default_rng(2)
    base = rng.random(300)
    full, lora = base - 0.4, base - 0.35  # both clearly worse than the base model
    res = recovery_ratio(lora, full, base, resamples=999, seed=0)
    assert not res.stable and res.gain_full < 0
