"""Uncertainty statistics for reports: seed intervals and a paired bootstrap over examples and runs.

Per-example statistics ("stats") are arrays of shape (n_examples, k) from which a metric (in percent) is computed:
k == 1 mean of per-example values, k == 2 (correct, total) ratio, k == 3 (tp, predicted, gold) micro F1.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from xstilts.metrics.per_example import metric_from_sums, metric_value

# resamples are drawn in chunks of about this many example indices, which bounds memory
_CHUNK_ENTRIES = 1 << 21


def seed_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of a Student-t interval across seeds; nan bounds for a single value."""
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


def _stack(arms: list[list[dict[str, np.ndarray]]]) -> dict[str, list[np.ndarray]]:
    """Languages in every run of every arm -> per arm the stats stacked over its runs (runs, n, k)."""
    if any(not runs for runs in arms):
        raise ValueError("every arm needs at least one run")
    langs = sorted(set.intersection(*(set(run) for runs in arms for run in runs)))
    if not langs:
        raise ValueError("no language is present in every run")
    out = {}
    for lang in langs:
        shapes = {np.shape(run[lang]) for runs in arms for run in runs}
        if len(shapes) != 1 or len(shape := next(iter(shapes))) != 2 or shape[0] == 0:
            raise ValueError(f"{lang}: stats must be non-empty, 2-d and of one shape in all runs, got {sorted(shapes)}")
        out[lang] = [np.stack([np.asarray(run[lang], dtype=np.float64) for run in runs]) for runs in arms]
    return out


def _types(per_arm: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Distinct examples (rows of all runs' stats side by side): per arm their stats (runs, types, k), each
    example's type and each type's frequency."""
    n, k = per_arm[0].shape[1:]
    table = np.concatenate([a.transpose(1, 0, 2).reshape(n, -1) for a in per_arm], axis=1)
    types, inverse, freq = np.unique(table, axis=0, return_inverse=True, return_counts=True)
    bounds = np.cumsum([0, *(len(a) * k for a in per_arm)])
    per_type = [types[:, lo:hi].reshape(len(types), -1, k).transpose(1, 0, 2) for lo, hi in itertools.pairwise(bounds)]
    return per_type, inverse.reshape(-1), freq


def _draw_counts(rng: np.random.Generator, inverse: np.ndarray, freq: np.ndarray, resamples: int) -> np.ndarray:
    """How often each type is drawn when resampling all examples with replacement, shape (resamples, types).

    These counts are multinomial with the types' frequencies: few types (e.g. 0/1 accuracy) are drawn directly,
    many by drawing example indices and counting their types (faster then).
    """
    n, m = len(inverse), len(freq)
    if m * 16 <= n:
        return rng.multinomial(n, freq / n, size=resamples).astype(np.float64)
    idx = inverse[rng.integers(0, n, size=(resamples, n))] + (np.arange(resamples) * m)[:, None]
    return np.bincount(idx.ravel(), minlength=resamples * m).reshape(resamples, m).astype(np.float64)


def _arm_replicates(stats: np.ndarray, counts: np.ndarray, run_idx: np.ndarray, n: int) -> np.ndarray:
    """Replicate scores of one arm on one language from type stats (runs, types, k), counts (B, types) and the
    drawn runs (B, runs)."""
    runs, m, k = stats.shape
    sums = (counts @ stats.transpose(1, 0, 2).reshape(m, runs * k)).reshape(-1, runs, k)  # 2-d matmul is fastest
    return np.take_along_axis(metric_from_sums(sums, n), run_idx, axis=1).mean(axis=1)


def _bootstrap(
    arms: list[list[dict[str, np.ndarray]]], signs: list[float], resamples: int, confidence: float, seed: int
) -> dict[str, Interval]:
    """Percentile intervals of sum_i signs[i] * score(arm i) per language and on average (paired examples)."""
    stacked = _stack(arms)
    example_seq, *run_seqs = np.random.SeedSequence(seed).spawn(1 + len(arms))
    example_rng = np.random.default_rng(example_seq)
    run_idx = [np.random.default_rng(s).integers(0, len(r), size=(resamples, len(r))) for s, r in zip(run_seqs, arms)]
    estimates = np.zeros(len(stacked))
    reps = np.zeros((resamples, len(stacked)))
    for j, per_arm in enumerate(stacked.values()):
        for sign, runs in zip(signs, per_arm):
            estimates[j] += sign * np.mean([metric_value(s) for s in runs])
        per_type, inverse, freq = _types(per_arm)
        n = len(inverse)
        step = max(1, _CHUNK_ENTRIES // n)
        for start in range(0, resamples, step):
            counts = _draw_counts(example_rng, inverse, freq, min(step, resamples - start))
            rows = slice(start, start + len(counts))
            for sign, stats, idx in zip(signs, per_type, run_idx):
                reps[rows, j] += sign * _arm_replicates(stats, counts, idx[rows], n)
    q = [50 * (1 - confidence), 50 * (1 + confidence)]
    lows, highs = np.percentile(reps, q, axis=0)
    out = {lang: Interval(float(e), float(lo), float(hi)) for lang, e, lo, hi in zip(stacked, estimates, lows, highs)}
    avg_low, avg_high = np.percentile(reps.mean(axis=1), q)
    out["avg"] = Interval(float(estimates.mean()), float(avg_low), float(avg_high))
    return out


def bootstrap_gain(
    arm: list[dict[str, np.ndarray]],
    base: list[dict[str, np.ndarray]],
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Interval]:
    """Paired bootstrap of score(arm) - score(base) per language and 'avg', resampling examples and runs.

    Each run maps language -> stats; both arms hold the same examples in the same order. A replicate draws example
    indices per language (shared by both arms and all runs) and, per arm, its runs with replacement (shared by all
    languages).
    """
    return _bootstrap([arm, base], [1.0, -1.0], resamples, confidence, seed)


def bootstrap_score(
    runs: list[dict[str, np.ndarray]], resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> dict[str, Interval]:
    """Bootstrap of one arm's score per language and 'avg', resampling examples and runs as in bootstrap_gain."""
    return _bootstrap([runs], [1.0], resamples, confidence, seed)
