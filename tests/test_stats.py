"""Uncertainty statistics: two-level intervals (seeds and items), Holm, the minimum detectable effect, the mixed model
of gain x resource, and linear CKA; each against scipy, statsmodels or a closed form."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats as sps
from scipy.stats import ortho_group
from statsmodels.stats.power import NormalIndPower, TTestPower

from xstilts.analysis.interactions import resource_slopes
from xstilts.analysis.stats import Estimate, Interval, Replicates, Run, compare, holm, minimum_detectable, seed_interval
from xstilts.errors import UserError
from xstilts.metrics.per_example import metric_value
from xstilts.train.meters import linear_cka


def _binary(rng: np.random.Generator, n: int, p: float) -> np.ndarray:
    return (rng.random((n, 1)) < p).astype(np.float64)


def _gain(arm: list[dict], base: list[dict], seeds=(None, None), **kw) -> dict[str, Estimate]:
    """compare() of two arms given as lists of language -> stats, with the seeds of their runs."""
    runs = {f"a{i}": Run(s, None, seeds[0] if seeds[0] is None else seeds[0][i]) for i, s in enumerate(arm)}
    runs |= {f"b{i}": Run(s, None, seeds[1] if seeds[1] is None else seeds[1][i]) for i, s in enumerate(base)}
    reps = Replicates(runs, resamples=kw.pop("resamples", 2000), seed=kw.pop("seed", 0), **kw)
    return compare(reps, [f"a{i}" for i in range(len(arm))], [f"b{i}" for i in range(len(base))])


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
    assert metric_value(np.array([[3, 4], [5, 6]])) == pytest.approx(80.0)  # token accuracy: 8 of 10
    assert metric_value(np.array([[2, 3, 4], [1, 2, 1]])) == pytest.approx(60.0)  # micro F1: 2*3 / (5+5)
    assert metric_value(np.zeros((3, 3))) == 0.0
    np.testing.assert_allclose(metric_value(np.array([[[1], [0]], [[1], [1]]])), [50.0, 100.0])
    with pytest.raises(ValueError):
        metric_value(np.ones((3, 4)))


def test_interval_str_and_significance():
    assert str(Interval(1.3, -0.4, 2.9)) == "+1.3 [-0.4, +2.9]"
    assert not Interval(1.3, -0.4, 2.9).significant
    assert Interval(2.0, 0.5, 3.0).significant and Interval(-2.0, -3.0, -0.1).significant
    assert not Interval(1.0, math.nan, math.nan).significant
    assert not Estimate(2.0, 0.5, 3.0, seeds="unmeasured").significant  # one seed: never marked
    assert Estimate(2.0, 0.5, 3.0, seeds="paired").significant


def test_item_level_alone_is_the_paired_bootstrap(pair):
    """Deterministic runs (no seed): the interval is the estimate +- z * the bootstrap standard error of the paired
    difference, whose closed form is sd(d) / sqrt(n)."""
    a, b = pair
    gain = _gain([{"de": a}], [{"de": b}], resamples=20000, seed=3)["de"]
    d = 100 * (a[:, 0] - b[:, 0])
    assert gain.estimate == pytest.approx(d.mean())
    assert gain.seeds == "deterministic" and math.isinf(gain.df)
    assert gain.se == pytest.approx(d.std(ddof=0) / math.sqrt(len(d)), rel=0.03)
    assert gain.high - gain.estimate == pytest.approx(sps.norm.ppf(0.975) * gain.se)
    assert gain.p == pytest.approx(2 * sps.norm.sf(gain.estimate / gain.se))
    assert gain.significant


def test_worked_case_three_seeds_on_twenty_thousand_items_is_not_significant():
    """Per-seed gains 0.18, 3.15 and 6.76 points on 20k examples: the seeds decide, with 2 degrees of freedom."""
    n, rng = 20_000, np.random.default_rng(0)
    base = _binary(rng, n, 0.6)
    wrong = np.flatnonzero(base[:, 0] == 0)
    arms = []
    for flips in (36, 630, 1352):  # 0.18, 3.15, 6.76 points
        arm = base.copy()
        arm[wrong[:flips]] = 1
        arms.append({"en": arm})
    gain = _gain(arms, [{"en": base}] * 3, seeds=((1, 2, 3), (1, 2, 3)), resamples=2000)["en"]
    assert gain.estimate == pytest.approx((0.18 + 3.15 + 6.76) / 3)
    assert gain.seeds == "paired" and not gain.significant
    t_interval = sps.t.interval(0.95, 2, loc=gain.estimate, scale=sps.sem([0.18, 3.15, 6.76]))
    assert (gain.low, gain.high) == pytest.approx(t_interval, abs=0.2)  # [-4.8, +11.5]: item noise is tiny here
    assert gain.df == pytest.approx(2, abs=0.05)


def test_seed_pairing_and_deterministic_arms(pair):
    a, b = pair
    paired = _gain([{"de": a}, {"de": b}], [{"de": b}, {"de": a}], seeds=((1, 2), (2, 1)))["avg"]
    assert paired.seeds == "paired" and paired.runs == 2
    unpaired = _gain([{"de": a}, {"de": b}], [{"de": b}, {"de": a}], seeds=((1, 2), (3, 4)))["avg"]
    assert unpaired.seeds == "unpaired"
    one = _gain([{"de": a}], [{"de": b}], seeds=((1,), (1,)))["avg"]
    assert one.seeds == "unmeasured" and not one.significant and one.low > 0  # the items alone would say "yes"
    probe = _gain([{"de": a}], [{"de": b}, {"de": b}, {"de": a}], seeds=(None, (1, 2, 3)))["avg"]
    assert probe.seeds == "unpaired" and probe.df < 10  # only the seeded arm brings seed variance


def test_seed_variance_widens_the_interval(pair):
    """Three genuinely different runs (about 60%, 70%, 80%) against their mean as one run: the seed spread counts."""
    a, b = pair
    rng = np.random.default_rng(4)
    runs = [{"de": _binary(rng, 400, p)} for p in (0.6, 0.7, 0.8)]
    seeds = _gain(runs, [{"de": b}] * 3, seeds=((1, 2, 3), (1, 2, 3)))["de"]
    mean = _gain([{"de": np.mean([r["de"] for r in runs], axis=0)}], [{"de": b}])["de"]
    assert seeds.estimate == pytest.approx(mean.estimate)
    assert seeds.high - seeds.low > 3 * (mean.high - mean.low)
    same = _gain([{"de": a}] * 3, [{"de": b}] * 3, seeds=((1, 2, 3), (1, 2, 3)))["de"]
    alone = _gain([{"de": a}], [{"de": b}])["de"]
    assert (same.low, same.high) == pytest.approx((alone.low, alone.high), abs=1e-9)  # identical seeds add nothing


def test_parallel_items_are_resampled_jointly():
    """Per-item gains identical in every language: jointly resampled, the average is as uncertain as one language;
    resampled independently it would look sqrt(L) times more certain."""
    rng = np.random.default_rng(2)
    base, arm = _binary(rng, 300, 0.5), _binary(rng, 300, 0.6)
    langs = [f"l{i}" for i in range(9)]
    keys = {lang: np.array([f"q{i}" for i in range(300)]) for lang in langs}

    def avg(parallel: bool) -> Estimate:
        runs = {"a": Run({lang: arm for lang in langs}, keys), "b": Run({lang: base for lang in langs}, keys)}
        return compare(Replicates(runs, parallel=parallel, resamples=4000), ["a"], ["b"])["avg"]

    joint, independent = avg(True), avg(False)
    single = avg(True)  # any one language has the same se as the joint average here
    assert joint.se == pytest.approx(single.se)
    assert joint.se / independent.se == pytest.approx(3.0, rel=0.1)


def test_rows_are_aligned_by_item_key():
    rng = np.random.default_rng(5)
    a, b = _binary(rng, 50, 0.7), _binary(rng, 50, 0.5)
    keys = np.array([f"k{i}" for i in range(50)])
    perm = rng.permutation(50)
    straight = {"a": Run({"de": a}, {"de": keys}), "b": Run({"de": b}, {"de": keys})}
    shuffled = {"a": Run({"de": a[perm]}, {"de": keys[perm]}), "b": Run({"de": b}, {"de": keys})}
    one, other = (compare(Replicates(r, resamples=500), ["a"], ["b"])["de"] for r in (straight, shuffled))
    assert one == other
    repeated = np.array(["x", "x", *keys[2:]])  # a key a language holds twice (two rows of one item)
    twice = {"a": Run({"de": a}, {"de": repeated}, 1), "b": Run({"de": b}, {"de": repeated[::-1]}, 1)}
    assert compare(Replicates(twice, parallel=True, resamples=200), ["a"], ["b"])["de"].estimate == pytest.approx(
        metric_value(a) - metric_value(b[::-1])
    )
    with pytest.raises(ValueError, match="other test items"):
        Replicates({"a": Run({"de": a}, {"de": keys}), "b": Run({"de": b[:-1]}, {"de": keys[:-1]})})


def test_f1_statistics():
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

    gain = _gain([{"en": a}], [{"en": b}], resamples=10000, seed=1)["en"]
    assert gain.estimate == pytest.approx(f1(a) - f1(b), abs=1e-9)
    idx = np.random.default_rng(2).integers(0, n, size=(10000, n))
    assert gain.se == pytest.approx(np.std(f1(a[idx]) - f1(b[idx])), rel=0.05)


def test_holm_equals_the_closed_form():
    p = [0.01, 0.04, 0.03, 0.005, 0.2]
    # Holm: sort ascending, compare p_(i) with alpha / (m - i + 1), stop at the first failure
    order = np.argsort(p)
    expected, still = [False] * len(p), True
    for rank, i in enumerate(order):
        still = still and p[i] <= 0.05 / (len(p) - rank)
        expected[i] = still
    estimates = [Estimate(1.0, 0.5, 1.5, p=v, seeds="paired") for v in p]
    assert holm(estimates) == expected == [True, False, False, True, False]
    assert holm([Estimate(1.0, 0.5, 1.5, p=0.001, seeds="unmeasured")]) == [False]
    assert holm([Estimate(1.0, 0.5, 1.5, p=0.04, seeds="paired")]) == [True]  # a family of one is unchanged
    assert holm([]) == []


@pytest.mark.parametrize("df", [1, 2, 4, 9, 30])
def test_mde_equals_statsmodels_t_power(df):
    # a one-sample t-test on df + 1 observations: effect size d has noncentrality d * sqrt(df + 1)
    d = TTestPower().solve_power(nobs=df + 1, alpha=0.05, power=0.8)
    assert minimum_detectable(1.7, df) == pytest.approx(1.7 * d * math.sqrt(df + 1), rel=1e-6)


def test_mde_normal_and_non_integer_df():
    z = NormalIndPower().solve_power(nobs1=1, ratio=0, alpha=0.05, power=0.8)
    assert minimum_detectable(2.0, math.inf) == pytest.approx(2.0 * z, rel=1e-6)
    assert z == pytest.approx(sps.norm.ppf(0.975) + sps.norm.ppf(0.8), abs=1e-5)  # less the far tail
    assert minimum_detectable(1.0, 4) > minimum_detectable(1.0, 4.5) > minimum_detectable(1.0, 5)
    assert minimum_detectable(0.0, 3) == 0.0


def _slopes_frame() -> pd.DataFrame:
    rng = np.random.default_rng(3)
    langs = {f"l{i}": x for i, x in enumerate([0.5, 1.0, 1.3, 2.0, 2.2, 3.1, 3.5, 4.0])}
    rows = []
    for setting, slope in (("a", -1.0), ("b", 0.4)):
        for lang, x in langs.items():
            shift = rng.normal(0, 0.3)
            for _ in range(3):
                rows.append(
                    {"setting": setting, "language": lang, "x": x, "gain": 1 + slope * x + shift + rng.normal(0, 0.5)}
                )
    return pd.DataFrame(rows)


def test_mixed_model_equals_statsmodels_formula_fit():
    frame = _slopes_frame()
    fit = resource_slopes(frame)
    ref_data = frame.assign(xc=frame.x - frame.drop_duplicates("language").x.mean())
    ref = smf.mixedlm("gain ~ 0 + C(setting) + C(setting):xc", ref_data, groups=ref_data["language"]).fit(reml=True)
    bounds = ref.conf_int()
    for s in fit.slopes:
        name = f"C(setting)[{s.setting}]:xc"
        assert s.estimate == pytest.approx(ref.fe_params[name], rel=1e-6)
        assert (s.low, s.high) == pytest.approx(tuple(bounds.loc[name]), rel=1e-5)
        assert s.p == pytest.approx(ref.pvalues[name], rel=1e-5)
    assert fit.languages == 8 and fit.observations == 48 and fit.converged
    assert fit.slopes[0].significant and fit.slopes[0].estimate < 0


def test_mixed_model_on_one_language_is_one_clear_line():
    frame = _slopes_frame()
    with pytest.raises(UserError, match=r"needs at least 3 languages with distinct values, got 1 language\(s\)"):
        resource_slopes(frame[frame.language == "l0"], "the resource tier")


def test_linear_cka():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 10))
    assert linear_cka(x, x) == pytest.approx(1.0)
    q = ortho_group.rvs(10, random_state=1)
    assert linear_cka(x, 3.5 * x @ q + 2.0) == pytest.approx(1.0)
    assert linear_cka(x, rng.normal(size=(500, 10))) < 0.2
    x = rng.normal(size=(40, 6))
    y = np.tanh(x[:, :4] @ rng.normal(size=(4, 5))) + 0.3 * rng.normal(size=(40, 5))
    h = np.eye(40) - np.ones((40, 40)) / 40
    k, lin = x @ x.T, y @ y.T
    ref = np.trace(k @ h @ lin @ h) / math.sqrt(np.trace(k @ h @ k @ h) * np.trace(lin @ h @ lin @ h))
    assert 0.2 < ref < 0.99
    assert linear_cka(x, y) == pytest.approx(ref, rel=1e-10)
    with pytest.raises(ValueError):
        linear_cka(x, y[:-1])
