"""Uncertainty statistics: seed intervals, metric values, paired bootstrap against scipy, linear CKA."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from scipy.stats import ortho_group

from xstilts.analysis.stats import Interval, bootstrap_gain, bootstrap_score, seed_interval
from xstilts.metrics.per_example import metric_value
from xstilts.train.meters import linear_cka


def _binary(rng: np.random.Generator, n: int, p: float) -> np.ndarray:
    return (rng.random((n, 1)) < p).astype(np.float64)


@pytest.fixture(scope="module")
def pair() -> tuple[np.ndarray, np.ndarray]:
    """Paired 0/1 correctness of two systems on 400 examples (about 72% vs 60%)."""
    rng = np.random.default_rng(7)
    base = _binary(rng, 400, 0.6)
    keep = rng.random((400, 1)) < 0.5
    return np.where(keep, base, _binary(rng, 400, 0.85)), base


def test_seed_interval_matches_scipy():
    values = [71.2, 73.5, 70.1, 72.8]
    mean, low, high = seed_interval(values, confidence=0.9)
    ref = sps.t.interval(0.9, df=3, loc=np.mean(values), scale=sps.sem(values))
    assert mean == pytest.approx(71.9)
    assert (low, high) == pytest.approx(ref, rel=1e-12)
    mean, low, high = seed_interval([64.0])
    assert mean == 64.0 and math.isnan(low) and math.isnan(high)


def test_metric_value_kinds():
    assert metric_value(np.array([[1], [0], [1], [1]])) == pytest.approx(75.0)
    assert metric_value(np.array([[0.5], [1.0], [0.0], [0.7]])) == pytest.approx(55.0)
    # token accuracy: (3 + 5) correct of (4 + 6) tokens
    assert metric_value(np.array([[3, 4], [5, 6]])) == pytest.approx(80.0)
    # micro F1: tp 2+1, predicted 3+2, gold 4+1 -> 2*3 / (5+5)
    assert metric_value(np.array([[2, 3, 4], [1, 2, 1]])) == pytest.approx(60.0)
    assert metric_value(np.zeros((3, 3))) == 0.0
    # batched over leading axes
    batch = np.array([[[1], [0]], [[1], [1]]])
    np.testing.assert_allclose(metric_value(batch), [50.0, 100.0])
    with pytest.raises(ValueError):
        metric_value(np.ones((3, 4)))


def test_interval_str_and_significance():
    assert str(Interval(1.3, -0.4, 2.9)) == "+1.3 [-0.4, +2.9]"
    assert not Interval(1.3, -0.4, 2.9).significant
    assert Interval(2.0, 0.5, 3.0).significant and Interval(-2.0, -3.0, -0.1).significant
    assert not Interval(1.0, math.nan, math.nan).significant


def test_gain_matches_scipy_and_normal_approximation(pair):
    a, b = pair
    gain = bootstrap_gain([{"de": a}], [{"de": b}], resamples=20000, seed=3)["de"]
    ref = sps.bootstrap(
        (a[:, 0], b[:, 0]),
        lambda x, y, axis: 100 * (np.mean(x, axis=axis) - np.mean(y, axis=axis)),
        paired=True,
        vectorized=True,
        method="percentile",
        n_resamples=20000,
        rng=np.random.default_rng(11),
    ).confidence_interval
    assert gain.high - gain.low > 8  # so the 0.5-point tolerance below is meaningful
    assert gain.low == pytest.approx(ref.low, abs=0.5)
    assert gain.high == pytest.approx(ref.high, abs=0.5)
    d = 100 * (a[:, 0] - b[:, 0])
    half = 1.96 * d.std(ddof=1) / math.sqrt(len(d))
    assert gain.low == pytest.approx(d.mean() - half, abs=0.5)
    assert gain.high == pytest.approx(d.mean() + half, abs=0.5)


def test_estimates_and_seeds(pair):
    a, b = pair
    rng = np.random.default_rng(1)
    c = _binary(rng, 300, 0.5)
    arm, base = [{"de": a, "fr": c}], [{"de": b, "fr": 1 - c}]
    out = bootstrap_gain(arm, base, resamples=500, seed=5)
    assert set(out) == {"de", "fr", "avg"}
    assert out["de"].estimate == metric_value(a) - metric_value(b)
    assert out["fr"].estimate == metric_value(c) - metric_value(1 - c)
    assert out["avg"].estimate == (out["de"].estimate + out["fr"].estimate) / 2
    assert bootstrap_gain(arm, base, resamples=500, seed=5) == out
    other = bootstrap_gain(arm, base, resamples=500, seed=6)
    assert other != out and all(other[k].estimate == out[k].estimate for k in out)
    # the average's interval is narrower than the wider language's
    assert out["avg"].high - out["avg"].low < max(out[k].high - out[k].low for k in ("de", "fr"))


def test_runs(pair):
    a, b = pair
    one = bootstrap_gain([{"de": a}], [{"de": b}], resamples=1000, seed=2)
    same = bootstrap_gain([{"de": a}] * 3, [{"de": b}] * 2, resamples=1000, seed=2)
    for key in one:
        assert same[key].estimate == pytest.approx(one[key].estimate, abs=1e-12)
        assert (same[key].low, same[key].high) == pytest.approx((one[key].low, one[key].high), abs=1e-9)
    # three genuinely different runs (about 60%, 70%, 80%) vs examples alone: their mean per example as one run
    rng = np.random.default_rng(4)
    runs = [_binary(rng, 400, p) for p in (0.6, 0.7, 0.8)]
    seeds = bootstrap_gain([{"de": r} for r in runs], [{"de": b}], resamples=2000, seed=2)["de"]
    examples = bootstrap_gain([{"de": np.mean(runs, axis=0)}], [{"de": b}], resamples=2000, seed=2)["de"]
    assert seeds.estimate == pytest.approx(examples.estimate)
    assert seeds.high - seeds.low > 1.5 * (examples.high - examples.low)


def test_languages_and_validation(pair):
    a, b = pair
    out = bootstrap_gain([{"de": a, "fr": a[:10]}], [{"de": b}], resamples=100)
    assert set(out) == {"de", "avg"}
    with pytest.raises(ValueError):
        bootstrap_gain([{"de": a}], [{"de": b[:-1]}], resamples=100)
    with pytest.raises(ValueError):
        bootstrap_gain([{"de": a}, {"de": a[:-1]}], [{"de": b}], resamples=100)
    with pytest.raises(ValueError):
        bootstrap_gain([{"de": a}], [], resamples=100)
    with pytest.raises(ValueError):
        bootstrap_gain([{"de": a}], [{"fr": b}], resamples=100)


def test_f1_gain_matches_index_bootstrap():
    rng = np.random.default_rng(9)
    n = 300
    gold = rng.integers(0, 4, n)
    stats = []
    for quality in (0.8, 0.6):
        pred = np.maximum(gold + rng.integers(-1, 2, n), 0)
        tp = np.minimum(rng.binomial(np.minimum(pred, gold), quality), np.minimum(pred, gold))
        stats.append(np.stack([tp, pred, gold], axis=1).astype(np.float64))
    a, b = stats

    def f1(s: np.ndarray) -> np.ndarray:  # micro F1 of (..., n, 3) written out independently
        t = s.sum(axis=-2)
        return 100 * 2 * t[..., 0] / (t[..., 1] + t[..., 2])

    est = f1(a) - f1(b)
    gain = bootstrap_gain([{"en": a}], [{"en": b}], resamples=10000, seed=1)["en"]
    assert gain.estimate == pytest.approx(est, abs=1e-9)
    assert gain.low < est < gain.high and gain.significant
    ref = sps.bootstrap(
        (np.arange(n),),
        lambda i, axis: f1(a[i]) - f1(b[i]),
        vectorized=True,
        method="percentile",
        n_resamples=10000,
        rng=np.random.default_rng(2),
    ).confidence_interval
    assert gain.high - gain.low > 5
    assert gain.low == pytest.approx(ref.low, abs=0.5)
    assert gain.high == pytest.approx(ref.high, abs=0.5)
    mid = (gain.low + gain.high) / 2
    assert abs(mid - est) < 0.1 * (gain.high - gain.low)


def test_zero_and_clear_gains(pair):
    a, b = pair
    zero = bootstrap_gain([{"de": a, "fr": b}] * 2, [{"de": a, "fr": b}], resamples=300)
    assert all(v == Interval(0.0, 0.0, 0.0) and not v.significant for v in zero.values())
    clear = bootstrap_gain([{"de": np.ones_like(b)}], [{"de": b}], resamples=300)
    assert clear["de"].significant and clear["avg"].significant and clear["de"].low > 30


def test_score_and_scale():
    rng = np.random.default_rng(0)
    langs = [f"l{i}" for i in range(20)]
    runs = [{lang: _binary(rng, 2000, 0.7) for lang in langs} for _ in range(3)]
    base = [{lang: _binary(rng, 2000, 0.6) for lang in langs}]
    out = bootstrap_gain(runs, base, resamples=2000)
    assert set(out) == {*langs, "avg"} and out["avg"].significant
    score = bootstrap_score(runs, resamples=2000)
    assert score["l0"].estimate == pytest.approx(np.mean([metric_value(r["l0"]) for r in runs]))
    assert score["avg"].low < score["avg"].estimate < score["avg"].high
    # continuous per-example values (SQuAD-like F1) take the example-index path
    cont = [{lang: rng.random((2000, 1)) for lang in langs[:5]} for _ in range(2)]
    out = bootstrap_score(cont, resamples=500)
    assert 45 < out["avg"].low < 50 < out["avg"].high < 55


def test_linear_cka():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 10))
    assert linear_cka(x, x) == pytest.approx(1.0)
    q = ortho_group.rvs(10, random_state=1)
    assert linear_cka(x, 3.5 * x @ q + 2.0) == pytest.approx(1.0)
    assert linear_cka(x, rng.normal(size=(500, 10))) < 0.2
    # direct formula with explicit centering matrices on a small case with related inputs
    x = rng.normal(size=(40, 6))
    y = np.tanh(x[:, :4] @ rng.normal(size=(4, 5))) + 0.3 * rng.normal(size=(40, 5))
    h = np.eye(40) - np.ones((40, 40)) / 40
    k, lin = x @ x.T, y @ y.T
    ref = np.trace(k @ h @ lin @ h) / math.sqrt(np.trace(k @ h @ k @ h) * np.trace(lin @ h @ lin @ h))
    assert 0.2 < ref < 0.99
    assert linear_cka(x, y) == pytest.approx(ref, rel=1e-10)
    with pytest.raises(ValueError):
        linear_cka(x, y[:-1])
