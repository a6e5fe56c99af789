"""Statistics of per-query metrics: intervals, paired tests and multiple-comparison control (the
decision report's, and model selection's paired test of two epochs in embexp.train.selection).

Across seeds (few values, roughly normal): a Student-t interval, mean ± t(1-α/2, n-1) · sd/√n.
Across queries (many values, bounded and tied): a percentile bootstrap of the mean (scipy.stats.bootstrap).
Two systems on the same queries: a paired randomization test that flips the sign of each per-query
difference (scipy.stats.permutation_test, permutation_type="samples"; exact when 2^n ≤ resamples) and a
bootstrap interval of the mean difference. The p-values of a family of comparisons are Holm-adjusted.
The recovery ratio (share of the full fine-tune's gain a cheaper configuration reaches) gets a paired
query bootstrap, and is flagged unstable unless the full fine-tune's gain is significantly above 0.
All resampling goes through scipy with an explicit seed (an int or a numpy Generator): same seed, same result.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

Seed = int | np.random.Generator

# Resamples evaluated per vectorized call: memory is O(batch * n_queries); ~1000 for 300 queries was
# the fastest setting measured (larger batches only cost memory).
_BATCH_ELEMENTS = 300_000


@dataclass(frozen=True)
class Interval:
    """A point estimate with a two-sided confidence interval; ``method`` says how it was computed."""

    mean: float
    low: float
    high: float
    method: str


@dataclass(frozen=True)
class Paired:
    """System a against system b on the same ``n`` queries; ``diff = mean(a - b)``, CI and p of ``diff``."""

    mean_a: float
    mean_b: float
    diff: float
    low: float
    high: float
    p: float
    n: int


@dataclass(frozen=True)
class Ratio:
    """``ratio = gain_lora / gain_full`` (gains over the base model) with its CI; see `recovery_ratio`."""

    ratio: float
    low: float
    high: float
    gain_lora: float
    gain_full: float
    stable: bool


def _values(x: ArrayLike, name: str) -> np.ndarray:
    """``x`` as a non-empty 1-D float array of finite values; ValueError naming ``name`` otherwise."""
    if x is None:
        raise ValueError(f"{name}: expected a sequence of numbers, got None")
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D sequence of numbers, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: is empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return arr


def _aligned(**named: ArrayLike) -> list[np.ndarray]:
    """Validate each argument (see `_values`) and that all have the length of the first."""
    arrays = [_values(x, name) for name, x in named.items()]
    first = next(iter(named))
    for name, arr in zip(named, arrays):
        if arr.size != arrays[0].size:
            raise ValueError(
                f"{name}: has {arr.size} values but {first} has {arrays[0].size}; "
                "per-query values must be aligned on the same queries"
            )
    return arrays


def _check_params(confidence: float, resamples: int | None = None) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence: must be in (0, 1), got {confidence}")
    if resamples is not None and (int(resamples) != resamples or resamples < 1):
        raise ValueError(f"resamples: must be a positive integer, got {resamples}")


def _batch(n: int) -> int:
    return max(64, _BATCH_ELEMENTS // max(n, 1))


def _mean(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis)


def _percentile_ci(x: np.ndarray, confidence: float, resamples: int, rng: np.random.Generator):
    """(low, high) of the percentile bootstrap of mean(x); (c, c) for constant x, without resampling."""
    if np.ptp(x) == 0:
        return float(x[0]), float(x[0])
    res = stats.bootstrap(
        (x,),
        _mean,
        n_resamples=resamples,
        batch=_batch(x.size),
        vectorized=True,
        confidence_level=confidence,
        method="percentile",
        rng=rng,
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def seed_mean_ci(values: ArrayLike, confidence: float = 0.95) -> Interval:
    """Mean over per-seed values with a Student-t interval across seeds (no resampling, so no seed).

    ``mean ± t.ppf((1 + confidence) / 2, n - 1) * sd / sqrt(n)`` with the ddof=1 standard deviation.
    Needs n >= 2 seeds (ValueError otherwise); equal values give the interval (mean, mean).
    """
    _check_params(confidence)
    x = _values(values, "values")
    n = x.size
    if n < 2:
        raise ValueError(f"values: a t interval across seeds needs at least 2 values, got {n}")
    mean = float(np.mean(x))
    method = f"seeds (t, n={n})"
    if np.ptp(x) == 0:
        return Interval(mean, mean, mean, method)
    half = stats.t.ppf((1.0 + confidence) / 2.0, n - 1) * np.std(x, ddof=1) / math.sqrt(n)
    return Interval(mean, float(mean - half), float(mean + half), method)


def bootstrap_mean_ci(
    x: ArrayLike, *, confidence: float = 0.95, resamples: int = 9999, seed: Seed = 0
) -> Interval:
    """Query-bootstrap interval of the mean of per-query values (scipy.stats.bootstrap).

    The percentile method is used rather than BCa: per-query metrics are bounded and heavily tied (many
    queries at exactly 0 or 1), where BCa's jackknife acceleration is undefined (NaN interval and a
    DegenerateDataWarning); for a mean over hundreds of queries the bootstrap distribution is close to
    symmetric, where percentile and BCa agree, and percentile skips BCa's n extra statistic evaluations.
    Constant ``x`` returns (mean, mean) without resampling.
    """
    _check_params(confidence, resamples)
    arr = _values(x, "x")
    low, high = _percentile_ci(arr, confidence, resamples, np.random.default_rng(seed))
    return Interval(float(np.mean(arr)), low, high, f"query bootstrap (n_queries={arr.size})")


def _sign_flip_p(d: np.ndarray, counts: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Two-sided p of each row's mean difference, ``sum(d) / count`` (a row's queries outside its
    slice are 0 in ``d``), under random sign flips of each query's difference.

    scipy.stats.permutation_test draws (or, when 2^n <= resamples, enumerates) the sign patterns and
    computes the p-values: its one sample is a vector of ones, which it sign-flips
    (``permutation_type="samples"``), and the statistic applies every pattern to every row at once,
    ``signs @ d.T / counts``. This is the same test as flipping each row's differences (the same
    patterns, the same p-values) without materialising resamples x rows x queries. A zero never
    changes under a flip, so padding leaves each row's null distribution exactly its own; the rows
    share the patterns, and Holm's correction is valid under any dependence between the tests.
    """

    def mean_diff(signs, axis=-1):
        return (signs @ d.T) / counts

    res = stats.permutation_test(
        (np.ones(d.shape[-1]),),
        mean_diff,
        permutation_type="samples",
        vectorized=True,
        n_resamples=resamples,
        batch=max(64, _BATCH_ELEMENTS // max(d.shape[0], d.shape[-1])),
        alternative="two-sided",
        rng=rng,
    )
    return np.atleast_1d(res.pvalue)


def _percentile_cis(d: np.ndarray, confidence: float, resamples: int, rng: np.random.Generator):
    """(low, high) arrays of the percentile bootstrap of mean(d) per row; (c, c) for constant rows."""
    low, high = d[:, 0].astype(float).copy(), d[:, 0].astype(float).copy()
    varies = np.ptp(d, axis=-1) > 0
    if varies.any():
        res = stats.bootstrap(
            (d[varies],),
            _mean,
            n_resamples=resamples,
            batch=_batch(int(d[varies].size)),
            vectorized=True,
            confidence_level=confidence,
            method="percentile",
            axis=-1,
            rng=rng,
        )
        low[varies], high[varies] = res.confidence_interval.low, res.confidence_interval.high
    return low, high


def paired_comparisons(
    a: ArrayLike,
    b: ArrayLike,
    *,
    masks: ArrayLike | None = None,
    confidence: float = 0.95,
    resamples: int = 9999,
    seed: Seed = 0,
) -> list[Paired]:
    """:func:`paired_comparison` for each row of ``a`` and ``b`` (k, n), each on the queries of its
    row of ``masks`` (k, n booleans; default all): every p-value from one vectorized scipy call, the
    intervals from one bootstrap call per distinct mask (the report's slices)."""
    _check_params(confidence, resamples)
    a_, b_ = np.atleast_2d(np.asarray(a, dtype=float)), np.atleast_2d(np.asarray(b, dtype=float))
    if a_.shape != b_.shape or a_.shape[-1] == 0:
        raise ValueError(f"b: shape {b_.shape} does not match a's {a_.shape} (or no queries)")
    if not (np.isfinite(a_).all() and np.isfinite(b_).all()):
        raise ValueError("a, b: per-query values must be finite")
    m = np.ones(a_.shape, dtype=bool) if masks is None else np.atleast_2d(np.asarray(masks, dtype=bool))
    counts = m.sum(axis=-1)
    if m.shape != a_.shape or not counts.all():
        raise ValueError(f"masks: shape {m.shape} must match a's {a_.shape}, with >= 1 query per row")
    d = np.where(m, a_ - b_, 0.0)
    p, low, high = np.ones(len(d)), np.zeros(len(d)), np.zeros(len(d))
    nz = np.any(d != 0, axis=-1)
    rng = np.random.default_rng(seed)
    if nz.any():
        p[nz] = _sign_flip_p(d[nz], counts[nz], resamples, rng)
    for key in dict.fromkeys(r.tobytes() for r in m[nz]):  # first-seen order: same seed, same intervals
        rows = nz & np.all(m == np.frombuffer(key, dtype=bool), axis=-1)
        low[rows], high[rows] = _percentile_cis(d[rows][:, m[rows][0]], confidence, resamples, rng)
    mean = lambda x: np.where(m, x, 0.0).sum(-1) / counts  # noqa: E731
    return [
        Paired(float(ma), float(mb), float(md), float(lo), float(hi), float(pv), int(c))
        for ma, mb, md, lo, hi, pv, c in zip(mean(a_), mean(b_), mean(a_ - b_), low, high, p, counts)
    ]


def paired_comparison(
    a: ArrayLike, b: ArrayLike, *, confidence: float = 0.95, resamples: int = 9999, seed: Seed = 0
) -> Paired:
    """Compare two systems' per-query values on the same queries (same order): ``diff = mean(a - b)``.

    ``p``: paired randomization (sign-flip) test, two-sided, with ``resamples`` random sign patterns, or
    all 2^n of them (an exact p) when 2^n <= resamples. ``low``/``high``: percentile bootstrap interval
    of the mean of ``a - b`` over queries. All-zero differences give p = 1.0 and the interval (0, 0).
    """
    _check_params(confidence, resamples)
    a_, b_ = _aligned(a=a, b=b)
    return paired_comparisons(a_[None], b_[None], confidence=confidence, resamples=resamples, seed=seed)[0]


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values, in the order of the input.

    Sorted ascending, the i-th smallest (0-based) of m p-values becomes ``min(1, (m - i) * p)``, then a
    running maximum keeps the adjusted values monotone (step-down). None or NaN entries are returned as
    None and are not counted in the family size m.
    """
    vals: list[float | None] = []
    for i, p in enumerate(pvalues):
        if p is None or math.isnan(p):
            vals.append(None)
        elif not 0.0 <= p <= 1.0:
            raise ValueError(f"pvalues: entry {i} is {p}, not in [0, 1]")
        else:
            vals.append(float(p))
    present = [i for i, p in enumerate(vals) if p is not None]
    m = len(present)
    out: list[float | None] = [None] * len(vals)
    running = 0.0
    for rank, i in enumerate(sorted(present, key=lambda j: vals[j])):
        running = max(running, min(1.0, (m - rank) * vals[i]))
        out[i] = running
    return out


def _ratio_and_gain(lora, full, base, axis=-1):
    """Stacked (recovery ratio, full gain) of per-query arrays, vectorized along ``axis``."""
    mean_base = np.mean(base, axis=axis)
    gain_lora = np.mean(lora, axis=axis) - mean_base
    gain_full = np.mean(full, axis=axis) - mean_base
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.stack([gain_lora / gain_full, gain_full])


def recovery_ratio(
    lora: ArrayLike,
    full: ArrayLike,
    base: ArrayLike,
    *,
    confidence: float = 0.95,
    resamples: int = 9999,
    seed: Seed = 0,
) -> Ratio:
    """Share of the full fine-tune's gain that a cheaper configuration recovers.

    ``ratio = (mean(lora) - mean(base)) / (mean(full) - mean(base))``: 1 = the full gain, 0 = none of it,
    above 1 = more than the full fine-tune, negative = worse than the base model. The three arrays are
    per-query values aligned on the same queries. The interval is a paired percentile bootstrap over
    queries (scipy.stats.bootstrap, paired=True: each resample draws the same queries from all three).

    ``stable`` is True only when the bootstrap interval of the denominator ``gain_full`` (same
    resamples, same confidence) lies above 0. Otherwise the full fine-tune did not gain (a ratio of two
    losses is no share of a gain) or its gain is indistinguishable from zero and the ratio is
    meaningless (near-zero denominators make it arbitrarily large, of either sign), so ``low``
    and ``high`` are NaN; ``ratio`` is still reported (NaN when ``gain_full`` is exactly 0). Even when
    stable, ``low``/``high`` can be NaN or infinite if some resample's ``gain_full`` is exactly 0.
    """
    _check_params(confidence, resamples)
    lora_, full_, base_ = _aligned(lora=lora, full=full, base=base)
    ratio, gain_full = (float(v) for v in _ratio_and_gain(lora_, full_, base_))
    gain_lora = float(np.mean(lora_) - np.mean(base_))
    nan = float("nan")
    if gain_full == 0 and np.ptp(full_ - base_) == 0:  # every resample would divide by 0
        return Ratio(nan, nan, nan, gain_lora, 0.0, False)
    with warnings.catch_warnings():  # a resample with gain_full == 0 makes a NaN interval; handled below
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        warnings.simplefilter("ignore", RuntimeWarning)  # inf - inf inside numpy for those resamples
        res = stats.bootstrap(
            (lora_, full_, base_),
            _ratio_and_gain,
            n_resamples=resamples,
            batch=_batch(3 * lora_.size),
            vectorized=True,
            paired=True,
            confidence_level=confidence,
            method="percentile",
            rng=np.random.default_rng(seed),
        )
    (low, gain_low), (high, gain_high) = res.confidence_interval
    stable = bool(gain_full > 0 and gain_low > 0)  # a ratio of two losses is no "share of a gain"
    if not stable:
        low = high = nan
    return Ratio(ratio, float(low), float(high), gain_lora, gain_full, stable)
