"""Uncertainty of scores and gains over two levels: training seeds and test items.

A job's per-example statistics ("stats", see ``metrics.per_example``) give its metric on any resample of the test
items. :class:`Replicates` resamples the items of every job of a target once, with the same draws for all jobs, so
any score, gain or contrast is a linear combination of per-job replicate scores. Items of a parallel test set
(translations of the same items) are drawn jointly across languages by their keys; other languages are drawn
independently.

An :class:`Estimate` combines the two levels (method of moments on a crossed seeds x items design):

- seeds: the variance across seeds of the per-seed values (per-seed gains when both arms ran the same seeds, else
  each arm's own), less the item noise that each single run's value carries (estimated from the bootstrap);
- items: the bootstrap variance of the mean over seeds, resampling items with the runs held fixed;
- the interval is estimate +- t * se. The spread across seeds is the only term estimated from few values (seeds - 1
  degrees of freedom each arm), so the t has Satterthwaite's degrees of freedom for that one term (normal when no
  arm has seed variance). In simulation this keeps 95% coverage from seed-dominated to item-dominated designs.

A job without a seed (the probe: deterministic) has no seed variance. An arm with one seeded run has seed variance
that was not measured: its estimate is never marked significant.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize
from scipy import stats as sps

from xstilts.metrics.per_example import metric_from_sums, metric_value

ALPHA, POWER = 0.05, 0.8
_CHUNK_ENTRIES = 1 << 22  # item draws per chunk of resamples, which bounds memory


def seed_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of a Student-t interval across values; nan bounds for a single value."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        raise ValueError("seed_interval needs at least one value")
    mean = float(v.mean())
    if v.size == 1:
        return mean, math.nan, math.nan
    half = sps.t.ppf((1 + confidence) / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
    return mean, float(mean - half), float(mean + half)


@dataclass(frozen=True)
class Interval:
    """A point estimate with a confidence interval."""

    estimate: float
    low: float
    high: float

    @property
    def significant(self) -> bool:
        """True when the interval excludes 0 (False when a bound is nan)."""
        return bool(self.low > 0 or self.high < 0)

    def __str__(self) -> str:
        return f"{signed(self.estimate)} [{signed(self.low)}, {signed(self.high)}]"


def signed(x: float) -> str:
    """``x`` with its sign, one decimal; a value that rounds to zero is +0.0."""
    return f"{x:+.1f}" if round(x, 1) != 0 else "+0.0"


def minimum_detectable(se: float, df: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest true effect a two-sided t-test (normal when ``df`` is inf) at ``alpha`` detects with
    probability ``power``, for an estimate with standard error ``se``."""
    if se == 0:
        return 0.0
    crit = sps.norm.ppf(1 - alpha / 2) if math.isinf(df) else sps.t.ppf(1 - alpha / 2, df)
    if math.isinf(df):

        def reach(d: float) -> float:
            return sps.norm.sf(crit - d) + sps.norm.cdf(-crit - d) - power
    else:

        def reach(d: float) -> float:  # d is the noncentrality; the far tail underflows to nan where it is ~0
            return sps.nct.sf(crit, df, d) + np.nan_to_num(sps.nct.cdf(-crit, df, d)) - power

    return se * optimize.brentq(reach, 0.0, 2 * crit + 5, xtol=1e-10)


@dataclass(frozen=True)
class Estimate(Interval):
    """A score or gain with its two-level interval: standard error, degrees of freedom, two-sided p-value, the
    minimum detectable effect (80% power, alpha 0.05) and how the seeds entered."""

    se: float = math.nan
    df: float = math.inf
    p: float = math.nan
    seeds: str = ""  # paired | unpaired (a gain), seeded (a score), deterministic, or unmeasured (one seeded run)
    runs: int = 0  # of the arm
    base_runs: int = 0

    @functools.cached_property
    def mde(self) -> float:
        """The minimum detectable effect at 80% power and alpha 0.05 (a null "could have detected" it)."""
        return minimum_detectable(self.se, self.df)

    @property
    def seed_measured(self) -> bool:
        return self.seeds != "unmeasured"

    @property
    def significant(self) -> bool:
        """The interval excludes 0 and seed variance was measured (or there is none)."""
        return self.seed_measured and super().significant


def holm(estimates: Sequence[Estimate], alpha: float = ALPHA) -> list[bool]:
    """Holm-adjusted significance of a family of estimates (family-wise error at ``alpha``); an estimate whose seed
    variance was not measured is never marked."""
    if not estimates:
        return []
    from statsmodels.stats.multitest import multipletests  # statsmodels is slow to import: only when needed

    reject = multipletests([e.p for e in estimates], alpha=alpha, method="holm")[0]
    return [bool(r) and e.seed_measured for r, e in zip(reject, estimates)]


@dataclass(frozen=True)
class Run:
    """One job's per-example statistics on a target's test sets: language -> (n, k) stats, the item keys of the
    rows (language -> (n,) keys, None when the job did not record them) and its seed (None: deterministic)."""

    stats: dict[str, np.ndarray]
    items: dict[str, np.ndarray] | None = None
    seed: int | None = None


def _ratio(stats: np.ndarray) -> np.ndarray:
    """Stats in (numerator, denominator) or (tp, predicted, gold) form: a per-example mean becomes (value, 1)."""
    s = np.asarray(stats, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] == 0 or s.shape[1] not in (1, 2, 3):
        raise ValueError(f"stats must be non-empty with 1, 2 or 3 columns, got shape {s.shape}")
    return np.column_stack([s, np.ones(len(s))]) if s.shape[1] == 1 else s


class Replicates:
    """Point scores and item-bootstrap replicate scores of every job of one target, per language.

    All jobs hold the same test items per language (aligned by item key where every job recorded keys, else by
    row order). With ``parallel`` and item keys, a replicate draws keys from the union of all languages' keys and
    every language takes the items of the drawn keys; otherwise each language draws its own items.
    """

    def __init__(self, runs: dict[str, Run], parallel: bool = False, resamples: int = 1000, seed: int = 0):
        if not runs:
            raise ValueError("Replicates needs at least one run")
        self.runs = runs
        self.jobs = list(runs)
        self.languages = sorted(set.intersection(*(set(r.stats) for r in runs.values())))
        if not self.languages:
            raise ValueError("no language is present in every run")
        keyed = all(r.items is not None and lang in r.items for r in runs.values() for lang in self.languages)
        self.parallel = bool(parallel and keyed)
        self.keyed = keyed
        aligned = {lang: self._aligned(lang, keyed) for lang in self.languages}
        self.point = {
            j: np.array([metric_value(np.asarray(runs[j].stats[lang])) for lang in self.languages]) for j in self.jobs
        }
        self.resamples = resamples
        self.replicates = self._draw(aligned, resamples, seed)

    def _aligned(self, lang: str, keyed: bool) -> tuple[np.ndarray | None, np.ndarray]:
        """(item keys or None, stats of all jobs side by side: (n, jobs * columns)) for one language; rows in the
        order of their keys (so that the draws do not depend on the order a job scored its items in)."""
        first = self.runs[self.jobs[0]]
        keys = np.sort(np.asarray(first.items[lang]).astype(str), kind="stable") if keyed else None
        columns = []
        for job in self.jobs:
            run = self.runs[job]
            stats = _ratio(run.stats[lang])
            if keyed:
                stats = _reorder(stats, np.asarray(run.items[lang]).astype(str), keys, f"{lang}: job {job}")
            elif stats.shape != _ratio(first.stats[lang]).shape:
                raise ValueError(f"{lang}: job {job} has {len(stats)} examples, others {len(first.stats[lang])}")
            columns.append(stats)
        if len({c.shape[1] for c in columns}) != 1:
            raise ValueError(f"{lang}: jobs keep different statistics for one metric")
        return keys, np.concatenate(columns, axis=1)

    def _draw(self, aligned: dict[str, tuple[np.ndarray | None, np.ndarray]], resamples: int, seed: int) -> dict:
        """Job -> (resamples, languages) replicate scores."""
        k = next(iter(aligned.values()))[1].shape[1] // len(self.jobs)
        out = np.zeros((resamples, len(self.languages), len(self.jobs)))
        rng = np.random.default_rng(seed)
        if self.parallel:
            union = sorted({key for keys, _ in aligned.values() for key in keys})
            index = {key: i for i, key in enumerate(union)}
            spread = {}
            for lang, (keys, stats) in aligned.items():  # an item a language holds twice counts twice
                full = np.zeros((len(union), stats.shape[1]))
                np.add.at(full, [index[key] for key in keys], stats)
                spread[lang] = full
            self._fill(out, rng, len(union), list(enumerate(spread.values())), k, resamples)
        else:
            for j, (_, stats) in enumerate(aligned.values()):
                self._fill(out, rng, len(stats), [(j, stats)], k, resamples)
        return {job: out[:, :, i] for i, job in enumerate(self.jobs)}

    def _fill(self, out: np.ndarray, rng: np.random.Generator, n: int, blocks: list, k: int, resamples: int) -> None:
        """Draw ``n`` items with replacement ``resamples`` times (in chunks) and score each language block."""
        step = max(1, _CHUNK_ENTRIES // n)
        for start in range(0, resamples, step):
            b = min(step, resamples - start)
            drawn = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
            counts = np.bincount(drawn.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)
            for j, stats in blocks:
                sums = (counts @ stats).reshape(b, len(self.jobs), k)
                out[start : start + b, j, :] = metric_from_sums(sums, n)

    def column(self, job: str, language: str | None) -> tuple[float, np.ndarray]:
        """A job's point score and replicates on one language, or on the mean over languages (None)."""
        if language is None:
            return float(self.point[job].mean()), self.replicates[job].mean(axis=1)
        i = self.languages.index(language)
        return float(self.point[job][i]), self.replicates[job][:, i]


def _reorder(stats: np.ndarray, keys: np.ndarray, order: np.ndarray, where: str) -> np.ndarray:
    """Rows of ``stats`` (keyed by ``keys``) in the order of ``order``; a key that repeats keeps its rows' order."""
    if len(keys) == len(order) and np.array_equal(keys, order):
        return stats
    if len(keys) != len(stats) or sorted(keys) != sorted(order):
        raise ValueError(f"{where} was scored on other test items")
    return stats[np.argsort(keys, kind="stable")][np.argsort(np.argsort(order, kind="stable"), kind="stable")]


def _units(reps: Replicates, arm: list[str], base: list[str]) -> list[tuple[str, list[list[tuple[float, str]]]]]:
    """Variance groups: (kind, units), each unit a signed list of jobs. Both arms on the same seeds: one group of
    per-seed differences; else one group per arm."""
    seeds = {j: reps.runs[j].seed for j in arm + base}
    a, b = sorted(seeds[j] for j in arm if seeds[j] is not None), sorted(seeds[j] for j in base if seeds[j] is not None)
    if base and a and a == b and len(a) == len(arm) == len(base) and len(set(a)) == len(a):
        by_seed = {seeds[j]: j for j in base}
        return [("paired", [[(1.0, j), (-1.0, by_seed[seeds[j]])] for j in arm])]
    groups = []
    for sign, jobs in ((1.0, arm), (-1.0, base)):
        if jobs:
            deterministic = all(seeds[j] is None for j in jobs)
            groups.append(("deterministic" if deterministic else "seeded", [[(sign, j)] for j in jobs]))
    return groups


def _combine(reps: Replicates, arm: list[str], base: list[str], language: str | None, confidence: float) -> Estimate:
    """The estimate of mean(arm) - mean(base) (or of mean(arm) alone) on a language or the average."""
    groups = _units(reps, arm, base)
    estimate, total_reps, seed_var, df_terms, unmeasured = 0.0, 0.0, 0.0, 0.0, False
    for kind, units in groups:
        points, unit_reps = [], []
        for unit in units:
            cols = [(s, *reps.column(j, language)) for s, j in unit]
            points.append(sum(s * p for s, p, _ in cols))
            unit_reps.append(sum(s * r for s, _, r in cols))
        r = len(units)
        stacked = np.stack(unit_reps)
        estimate += float(np.mean(points))
        total_reps = total_reps + stacked.mean(axis=0)
        if kind == "deterministic":
            continue
        if r == 1:
            unmeasured = True
            continue
        between = float(np.var(points, ddof=1)) / r
        noise = (float(stacked.var(axis=1, ddof=1).mean()) - float(stacked.mean(axis=0).var(ddof=1))) / (r - 1)
        seed_var += max(between - noise, 0.0)
        df_terms += between**2 / (r - 1)  # the spread across seeds is the one term with few degrees of freedom
    item_var = float(np.var(total_reps, ddof=1))
    var = item_var + seed_var
    se = math.sqrt(var)
    df = var**2 / df_terms if df_terms > 0 else math.inf
    if se == 0:
        low = high = estimate
        p = 1.0 if estimate == 0 else 0.0
    else:
        q = sps.norm.ppf((1 + confidence) / 2) if math.isinf(df) else sps.t.ppf((1 + confidence) / 2, df)
        low, high = estimate - q * se, estimate + q * se
        p = float(2 * (sps.norm.sf(abs(estimate) / se) if math.isinf(df) else sps.t.sf(abs(estimate) / se, df)))
    kinds = {kind for kind, _ in groups}
    label = "unmeasured" if unmeasured else next(iter(kinds)) if len(kinds) == 1 else "seeded"
    label = "unpaired" if label == "seeded" and base else label
    return Estimate(estimate, low, high, se, df, p, label, len(arm), len(base))


def compare(
    reps: Replicates, arm: list[str], base: list[str] | None = None, confidence: float = 0.95
) -> dict[str, Estimate]:
    """Per language and "avg" (the mean over languages): mean score of the ``arm`` jobs minus that of the ``base``
    jobs (their score alone without a base), with two-level intervals."""
    if not arm:
        raise ValueError("compare needs at least one job in the arm")
    base = base or []
    out = {lang: _combine(reps, arm, base, lang, confidence) for lang in reps.languages}
    out["avg"] = _combine(reps, arm, base, None, confidence)
    return out
