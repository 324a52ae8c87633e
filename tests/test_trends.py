"""Trend statistics against closed forms and scipy: line fits, bootstrapped correlations, Pareto fronts, curves."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from xstilts.analysis.trends import correlation, curve, log_fit, pareto_front


def test_log_fit_exact_on_log_linear_data():
    params = [1e6, 1e7, 1e8, 1e9]
    values = [10.0 + 2.5 * math.log10(p) for p in params]
    fit = log_fit(params, values)
    assert fit.slope == pytest.approx(2.5, abs=1e-12)
    assert fit.intercept == pytest.approx(10.0, abs=1e-10)
    assert fit.r2 == pytest.approx(1.0, abs=1e-12)
    assert fit.n == 4 and fit.log
    assert fit.slope_interval.low == pytest.approx(2.5, abs=1e-9)
    assert fit.slope_interval.high == pytest.approx(2.5, abs=1e-9)
    np.testing.assert_allclose(fit.predict([1e5, 1e10]), [22.5, 35.0])


def test_log_fit_slope_interval_closed_form():
    params = [1e6, 1e7, 1e8, 1e9, 1e10]
    values = [50.0, 53.0, 52.0, 57.0, 58.0]
    x, y = np.log10(params), np.asarray(values)
    sxx = ((x - x.mean()) ** 2).sum()
    slope = ((x - x.mean()) * (y - y.mean())).sum() / sxx
    intercept = y.mean() - slope * x.mean()
    resid = y - intercept - slope * x
    se = math.sqrt((resid**2).sum() / (len(x) - 2) / sxx)
    half = sps.t.ppf(0.95, df=3) * se  # 90% two-sided

    fit = log_fit(params, values, confidence=0.9)
    assert fit.slope == pytest.approx(slope, rel=1e-12)
    assert fit.intercept == pytest.approx(intercept, rel=1e-12)
    assert fit.r2 == pytest.approx(1 - (resid**2).sum() / ((y - y.mean()) ** 2).sum(), rel=1e-12)
    assert fit.slope_interval.estimate == pytest.approx(slope, rel=1e-12)
    assert (fit.slope_interval.low, fit.slope_interval.high) == pytest.approx((slope - half, slope + half), rel=1e-12)


def test_log_fit_linear_axis_and_small_or_bad_inputs():
    fit = log_fit([100.0, 200.0, 400.0], [1.0, 3.0, 7.0], log=False)
    assert (fit.slope, fit.intercept, fit.r2) == pytest.approx((0.02, -1.0, 1.0))
    assert not fit.log and fit.predict(300.0) == pytest.approx(5.0)
    two = log_fit([10.0, 1000.0], [1.0, 2.0])
    assert two.slope == pytest.approx(0.5) and two.slope_interval is None and two.n == 2
    with pytest.raises(ValueError, match="distinct"):
        log_fit([10.0, 10.0, 10.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="positive"):
        log_fit([0.0, 10.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="one length"):
        log_fit([1.0, 10.0], [1.0])


X = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]
Y = [2.1, 1.9, 3.5, 3.0, 4.8, 4.1, 6.2, 5.0]


@pytest.mark.parametrize("method, ref", [("spearman", sps.spearmanr), ("pearson", sps.pearsonr)])
def test_correlation_matches_scipy(method, ref):
    corr = correlation(X, Y, method=method, resamples=500)
    expected = ref(X, Y)
    assert corr.coefficient == pytest.approx(expected.statistic, rel=1e-12)
    assert corr.p_value == pytest.approx(expected.pvalue, rel=1e-12)
    assert corr.n == 8 and corr.method == method
    assert corr.interval.estimate == corr.coefficient


@pytest.mark.parametrize("method, ref", [("spearman", sps.spearmanr), ("pearson", sps.pearsonr)])
def test_correlation_bootstrap_matches_scipy_loop(method, ref):
    """The vectorised replicates equal scipy's coefficient on each resample of the same draws."""
    a, b = np.asarray(X), np.asarray([2.1, 1.9, 3.5, 3.5, 4.8, 4.1, 6.2, 5.0])  # a tie for the ranks
    idx = np.random.default_rng(3).integers(0, len(a), size=(300, len(a)))
    reps = [ref(a[i], b[i]).statistic for i in idx if np.ptp(a[i]) > 0 and np.ptp(b[i]) > 0]
    corr = correlation(a, b, method=method, resamples=300, seed=3, confidence=0.8)
    assert corr.kept == len(reps)
    assert (corr.interval.low, corr.interval.high) == pytest.approx(tuple(np.percentile(reps, [10, 90])), rel=1e-9)


def test_correlation_monotone_reproducible_and_covering():
    monotone = correlation([1, 2, 3, 4, 5, 6], [1, 4, 9, 16, 25, 36], resamples=300)
    assert monotone.coefficient == pytest.approx(1.0)
    assert (monotone.interval.low, monotone.interval.high) == pytest.approx((1.0, 1.0))
    three = correlation([1, 2, 3], [1, 4, 9], resamples=300)
    assert 0 < three.kept < 300  # about 1 in 9 resamples draws one point three times and is dropped
    assert (three.interval.low, three.interval.high) == pytest.approx((1.0, 1.0))

    rng = np.random.default_rng(11)
    x = rng.normal(size=30)
    y = 0.5 * x + rng.normal(size=30)
    for method in ("spearman", "pearson"):
        first = correlation(x, y, method=method, seed=5)
        assert first == correlation(x, y, method=method, seed=5)
        assert first.interval != correlation(x, y, method=method, seed=6).interval
        assert first.interval.low < first.coefficient < first.interval.high
        assert first.kept == 2000


def test_correlation_undefined_and_str():
    for x, y in [([1.0, 2.0], [3.0, 4.0]), ([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])]:
        corr = correlation(x, y)
        assert math.isnan(corr.coefficient) and math.isnan(corr.p_value) and corr.interval is None
    assert str(correlation([1.0, 2.0], [3.0, 4.0])) == "rho = nan (n=2)"
    corr = correlation(X, Y, resamples=200)
    assert str(corr) == f"rho = {corr.coefficient:.2f} [{corr.interval.low:.2f}, {corr.interval.high:.2f}] (n=8)"
    assert str(correlation(X, Y, method="pearson", resamples=200)).startswith("r = ")
    with pytest.raises(ValueError, match="method"):
        correlation(X, Y, method="kendall")


def test_pareto_front_hand_made():
    cost = [5.0, 1.0, 3.0, 2.0, 4.0, 3.0, 6.0, 2.0]
    value = [9.0, 2.0, 6.0, 2.0, 5.0, 7.0, 9.0, 4.0]
    # 1 (1, 2); 7 (2, 4) beats 3 (2, 2); 5 (3, 7) beats 2 (3, 6) and 4 (4, 5); 0 (5, 9) beats 6 (6, 9)
    assert pareto_front(cost, value) == [1, 7, 5, 0]
    assert pareto_front([1.0, 1.0], [3.0, 3.0]) == [0, 1]  # equal points do not dominate each other
    assert pareto_front([], []) == []
    with pytest.raises(ValueError, match="nan"):
        pareto_front([1.0, math.nan], [1.0, 2.0])


def test_curve_closed_form():
    df = curve([3, 1, 2], [[70.0, 72.0, 71.0, 75.0], [65.0], [68.0, 69.0]], confidence=0.9)
    assert list(df.columns) == ["x", "mean", "low", "high", "n"]
    assert df.x.tolist() == [1, 2, 3] and df.n.tolist() == [1, 2, 4]
    assert df["mean"].tolist() == pytest.approx([65.0, 68.5, 72.0])
    assert math.isnan(df.low[0]) and math.isnan(df.high[0])
    for row, values in zip(df.itertuples(), [[65.0], [68.0, 69.0], [70.0, 72.0, 71.0, 75.0]]):
        if len(values) > 1:
            half = sps.t.ppf(0.95, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(len(values))
            assert (row.low, row.high) == pytest.approx((row.mean - half, row.mean + half), rel=1e-12)
    with pytest.raises(ValueError, match="distinct"):
        curve([1, 1], [[1.0], [2.0]])
    with pytest.raises(ValueError, match="no values"):
        curve([1], [[]])
