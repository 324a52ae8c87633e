"""Trends for studies: line fits (on a log or linear x axis), bootstrapped correlations, Pareto fronts and
mean curves with Student-t intervals."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats as sps

from xstilts.analysis.stats import Interval, seed_interval

_SYMBOLS = {"spearman": "rho", "pearson": "r"}


def _pair(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """x and y as float arrays of one length."""
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"x and y must be 1-d and of one length, got shapes {a.shape} and {b.shape}")
    return a, b


@dataclass(frozen=True)
class Fit:
    """Least-squares line ``value = intercept + slope * X`` with X = log10(param) when ``log``, else the param."""

    slope: float
    intercept: float
    r2: float
    slope_interval: Interval | None  # Student-t interval of the slope (n - 2 dof); None for n < 3
    n: int
    log: bool

    @property
    def label(self) -> str:
        """The fit as a legend or sentence names it."""
        return f"fit: slope {self.slope:+.2f}{' per decade' if self.log else ''}, R² = {self.r2:.2f}"

    def predict(self, params: Sequence[float] | float) -> np.ndarray:
        """Fitted values at ``params``."""
        x = np.asarray(params, dtype=np.float64)
        return self.intercept + self.slope * (np.log10(x) if self.log else x)


def log_fit(params: Sequence[float], values: Sequence[float], confidence: float = 0.95, log: bool = True) -> Fit:
    """Line of ``values`` against log10(``params``) (against ``params`` themselves when ``log`` is False)."""
    p, y = _pair(params, values)
    if log and not (p > 0).all():
        raise ValueError("log_fit on a log axis needs positive params")
    x = np.log10(p) if log else p
    if np.unique(x).size < 2:
        raise ValueError("log_fit needs at least 2 distinct params")
    res = sps.linregress(x, y)
    interval = None
    if x.size >= 3:
        half = sps.t.ppf((1 + confidence) / 2, x.size - 2) * res.stderr
        interval = Interval(float(res.slope), float(res.slope - half), float(res.slope + half))
    return Fit(float(res.slope), float(res.intercept), float(res.rvalue**2), interval, int(x.size), log)


@dataclass(frozen=True)
class Correlation:
    """A correlation coefficient with its p-value and a percentile bootstrap interval over (x, y) pairs."""

    method: Literal["spearman", "pearson"]
    coefficient: float  # nan for n < 3 or a constant x or y
    p_value: float
    n: int
    interval: Interval | None  # None when no resample had a defined coefficient
    kept: int  # resamples kept: those whose x and y are not constant

    def __str__(self) -> str:
        bounds = f" [{self.interval.low:.2f}, {self.interval.high:.2f}]" if self.interval else ""
        return f"{_SYMBOLS[self.method]} = {self.coefficient:.2f}{bounds} (n={self.n})"


def _rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson coefficient of each row pair of (B, n) arrays, clipped to [-1, 1]."""
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    r = (a * b).sum(axis=1) / np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    return np.clip(r, -1.0, 1.0)


def correlation(
    x: Sequence[float],
    y: Sequence[float],
    method: Literal["spearman", "pearson"] = "spearman",
    resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Correlation:
    """Spearman or Pearson correlation of x and y; resamples with a constant x or y are dropped."""
    if method not in _SYMBOLS:
        raise ValueError(f"method must be 'spearman' or 'pearson', got {method!r}")
    a, b = _pair(x, y)
    n = a.size
    if n < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return Correlation(method, math.nan, math.nan, n, None, 0)
    res = (sps.spearmanr if method == "spearman" else sps.pearsonr)(a, b)
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    xs, ys = a[idx], b[idx]
    ok = (np.ptp(xs, axis=1) > 0) & (np.ptp(ys, axis=1) > 0)
    xs, ys = xs[ok], ys[ok]
    if method == "spearman":
        xs, ys = sps.rankdata(xs, axis=1), sps.rankdata(ys, axis=1)
    interval = None
    if xs.shape[0]:
        low, high = np.percentile(_rowwise_pearson(xs, ys), [50 * (1 - confidence), 50 * (1 + confidence)])
        interval = Interval(float(res.statistic), float(low), float(high))
    return Correlation(method, float(res.statistic), float(res.pvalue), n, interval, int(xs.shape[0]))


def pareto_front(cost: Sequence[float], value: Sequence[float]) -> list[int]:
    """Indices of the points no other point dominates (cost <= and value >=, one strictly), by increasing cost."""
    c, v = _pair(cost, value)
    if np.isnan(c).any() or np.isnan(v).any():
        raise ValueError("pareto_front needs costs and values without nan")
    no_worse = (c[:, None] <= c[None, :]) & (v[:, None] >= v[None, :])  # [q, p]: q is no worse than p
    better = (c[:, None] < c[None, :]) | (v[:, None] > v[None, :])
    front = np.flatnonzero(~(no_worse & better).any(axis=0))
    return [int(i) for i in front[np.argsort(c[front], kind="stable")]]


def curve(x: Sequence, groups: Sequence[Sequence[float]], confidence: float = 0.95) -> pd.DataFrame:
    """Per x the mean of its group's values, a Student-t interval (nan bounds for n < 2) and n, sorted by x."""
    if len(x) != len(groups):
        raise ValueError(f"curve needs one group per x, got {len(x)} x and {len(groups)} groups")
    if len(set(x)) != len(x):
        raise ValueError("curve needs distinct x")
    rows = []
    for xi, values in zip(x, groups):
        if len(values) == 0:
            raise ValueError(f"curve: x={xi!r} has no values")
        rows.append((xi, *seed_interval(values, confidence), len(values)))
    df = pd.DataFrame(rows, columns=["x", "mean", "low", "high", "n"])
    return df.sort_values("x", kind="stable", ignore_index=True)
