"""Report figures as PNG files readable at paper column width (3.4 in wide, 8 pt text), rendered headless.

Figures are drawn on ``matplotlib.figure.Figure`` objects, not through pyplot: no display or backend is needed,
nothing is left open, and the importing process's backend is untouched. Each function writes its PNG atomically
and returns the path.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from xstilts.cache import atomic_write_bytes

WIDTH, HEIGHT, DPI = 3.4, 2.6, 200  # inches, inches, dots per inch
_STYLE = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "lines.markersize": 4,
    "errorbar.capsize": 2,
}
_ANNOTATE_MAX_CELLS = 120  # heatmaps with more cells than this are not annotated
_GAIN = "zero-shot gain (points)"


class Fit(Protocol):
    """A fitted curve: its prediction at given x values and a legend label."""

    label: str

    def predict(self, x: np.ndarray) -> np.ndarray: ...


@contextmanager
def _figure(path: Path, height: float = HEIGHT) -> Iterator[tuple[Figure, Axes]]:
    """A figure with one axes, saved to ``path`` as PNG when the block ends without an error."""
    with mpl.rc_context(_STYLE):
        fig = Figure(figsize=(WIDTH, height))
        ax = fig.add_subplot()
        yield fig, ax
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    atomic_write_bytes(Path(path), buf.getvalue())


def _check(frame: pd.DataFrame, what: str, columns: tuple[str, ...] = ()) -> None:
    if frame.empty:
        raise ValueError(f"{what}: nothing to plot (the table is empty)")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what}: the table lacks column(s) {missing}; it has {list(frame.columns)}")


def _series(frame: pd.DataFrame) -> list[tuple[str | None, pd.DataFrame]]:
    """(name, rows) per series in order of first appearance; one unnamed series without a 'series' column."""
    if "series" not in frame.columns:
        return [(None, frame)]
    return [(str(name), rows) for name, rows in frame.groupby("series", sort=False)]


def _yerr(value: pd.Series, low: pd.Series, high: pd.Series) -> np.ndarray:
    """Asymmetric error bar lengths; a missing bound (NaN) draws no whisker."""
    below = np.clip(value.to_numpy(float) - low.to_numpy(float), 0, None)
    above = np.clip(high.to_numpy(float) - value.to_numpy(float), 0, None)
    return np.vstack([below, above])


def _legend(ax: Axes) -> None:
    labels = ax.get_legend_handles_labels()[1]
    if labels:  # above the axes, where it hides no data; one column once labels are long
        ax.legend(
            loc="lower left", bbox_to_anchor=(0, 1.01), ncol=1 if max(map(len, labels)) > 24 else 2, borderaxespad=0
        )


def _fit_line(ax: Axes, fit: Fit | None, x: np.ndarray) -> None:
    if fit is not None:
        ax.plot(x, fit.predict(x), color="black", linestyle="--", linewidth=1, label=fit.label)


def gain_heatmap(gains: pd.DataFrame, path: Path, within_noise: pd.DataFrame | None = None) -> Path:
    """Languages (rows) x intermediate settings (columns) of zero-shot gains in points, diverging around 0; cells
    that ``within_noise`` marks True (their interval includes 0) are washed out and hatched."""
    _check(gains, "gain_heatmap")
    values = gains.to_numpy(float)
    bound = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 0.0
    bound = bound or 1.0
    cmap = mpl.colormaps["RdBu"].with_extremes(bad="#dddddd")
    muted = np.zeros(values.shape, bool) if within_noise is None else within_noise.reindex_like(gains).fillna(False)
    muted = np.asarray(muted, dtype=bool)
    with _figure(path, height=max(HEIGHT, 0.22 * len(gains) + 1.2)) as (fig, ax):
        image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=-bound, vmax=bound, aspect="auto")
        for i, j in zip(*np.nonzero(muted)):  # noise: a white wash and hatching over the colour
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="white", alpha=0.75, linewidth=0))
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///", linewidth=0, edgecolor="#bbbbbb"))
        ax.set_xticks(range(gains.shape[1]), [str(c) for c in gains.columns], rotation=45, ha="right")
        ax.set_yticks(range(gains.shape[0]), [str(i) for i in gains.index])
        ax.set_xlabel("intermediate task")
        ax.set_ylabel("language")
        ax.spines[:].set_visible(False)
        if values.size <= _ANNOTATE_MAX_CELLS:
            for (i, j), v in np.ndenumerate(values):
                if np.isfinite(v):
                    color = "#888888" if muted[i, j] else "white" if abs(v) > 0.6 * bound else "black"
                    ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=6, color=color)
        fig.colorbar(image, ax=ax, label=_GAIN)
    return Path(path)


def _forest_rows(ax: Axes, rows: pd.DataFrame) -> None:
    """One row per entry, top to bottom: the estimate and its interval, dark where ``significant``, else grey."""
    y = np.arange(len(rows))[::-1]
    dark = rows.significant.to_numpy(bool)
    for mask, color in ((dark, "C0"), (~dark, "#aaaaaa")):
        if mask.any():
            sub = rows[mask]
            ax.errorbar(
                sub.estimate,
                y[mask],
                xerr=_yerr(sub.estimate, sub.low, sub.high),
                fmt="o",
                color=color,
                markersize=3,
                linewidth=1,
            )
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set_yticks(y, [str(i) for i in rows.index])
    ax.set_ylim(-0.7, len(rows) - 0.3)


def forest(rows: pd.DataFrame, path: Path, x_label: str = _GAIN) -> Path:
    """A forest plot: per row (the index) ``estimate`` with its ``low``-``high`` interval; rows whose interval
    excludes 0 (``significant``) dark, the others grey."""
    _check(rows, "forest", ("estimate", "low", "high", "significant"))
    with _figure(path, height=max(1.2, 0.22 * len(rows) + 0.8)) as (_, ax):
        _forest_rows(ax, rows)
        ax.set_xlabel(x_label)
    return Path(path)


def forest_grid(rows: pd.DataFrame, path: Path, x_label: str = _GAIN, columns: int = 3) -> Path:
    """Small multiples of :func:`forest`, one panel per ``panel`` (rows within it: ``language``), sharing axes."""
    _check(rows, "forest_grid", ("panel", "language", "estimate", "low", "high", "significant"))
    panels = list(dict.fromkeys(rows.panel))
    languages = list(dict.fromkeys(rows.language))
    cols = min(columns, len(panels))
    grid_rows = -(-len(panels) // cols)
    with mpl.rc_context(_STYLE):
        fig = Figure(figsize=(WIDTH * cols / 1.6 + 0.6, grid_rows * (0.13 * len(languages) + 0.7)))
        axes = fig.subplots(grid_rows, cols, sharex=True, sharey=True, squeeze=False)
        for k, ax in enumerate(axes.flat):
            if k >= len(panels):
                ax.set_visible(False)
                continue
            sub = rows[rows.panel == panels[k]].set_index("language").reindex(languages)
            sub["significant"] = sub.significant.eq(True)  # a language the panel lacks: an empty row
            _forest_rows(ax, sub)
            ax.tick_params(labelleft=k % cols == 0)  # shared rows: the languages are named once per row of panels
            ax.set_title(str(panels[k]), fontsize=7)
            if k // cols == grid_rows - 1:
                ax.set_xlabel(x_label)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def scaling_curve(points: pd.DataFrame, path: Path, fit: Fit | None = None, *, y_label: str = "score") -> Path:
    """Value against parameter count (log x) per series, with CI error bars and an optional fitted line."""
    _check(points, "scaling_curve", ("params", "value", "low", "high"))
    with _figure(path) as (_, ax):
        for name, rows in _series(points.sort_values("params")):
            yerr = _yerr(rows.value, rows.low, rows.high)
            ax.errorbar(rows.params, rows.value, yerr=yerr, marker="o", linewidth=1, label=name)
        params = points.params.to_numpy(float)
        _fit_line(ax, fit, np.geomspace(params.min(), params.max(), 100))
        ax.set_xscale("log")
        ax.set_xlabel("parameters")
        ax.set_ylabel(y_label)
        _legend(ax)
    return Path(path)


def tier_bars(table: pd.DataFrame, path: Path, *, y_label: str = _GAIN) -> Path:
    """Gain per resource tier (the index) as bars with CI whiskers, grouped by series if there is a column."""
    _check(table, "tier_bars", ("gain", "low", "high"))
    tiers = list(dict.fromkeys(map(str, table.index)))
    groups = _series(table)
    width = 0.8 / len(groups)
    with _figure(path) as (_, ax):
        for k, (name, rows) in enumerate(groups):
            x = np.array([tiers.index(str(t)) for t in rows.index]) + (k - (len(groups) - 1) / 2) * width
            yerr = _yerr(rows.gain, rows.low, rows.high)
            ax.bar(x, rows.gain, width=width, yerr=yerr, label=name, error_kw={"linewidth": 0.8})
        ax.axhline(0, color="black", linewidth=0.6)
        ax.set_xticks(range(len(tiers)), tiers)
        ax.set_xlabel("resource tier (Joshi et al. 2020)")
        ax.set_ylabel(y_label)
        _legend(ax)
    return Path(path)


def count_curve(table: pd.DataFrame, path: Path, *, y_label: str = _GAIN) -> Path:
    """Mean (with CI) against the number of intermediate tasks, per series if there is a column."""
    _check(table, "count_curve", ("k", "mean", "low", "high"))
    with _figure(path) as (_, ax):
        for name, rows in _series(table.sort_values("k")):
            yerr = _yerr(rows["mean"], rows.low, rows.high)
            ax.errorbar(rows.k, rows["mean"], yerr=yerr, marker="o", linewidth=1, label=name)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("number of intermediate tasks")
        ax.set_ylabel(y_label)
        _legend(ax)
    return Path(path)


def _annotate(ax: Axes, x: pd.Series, y: pd.Series, labels: pd.Series) -> None:
    for xi, yi, label in zip(x, y, labels):
        ax.annotate(str(label), (xi, yi), xytext=(3, 3), textcoords="offset points", fontsize=6)


def pareto(points: pd.DataFrame, path: Path, *, y_label: str = "score") -> Path:
    """Score against latency, each point labelled; the Pareto front (``front`` true) joined by a step line."""
    _check(points, "pareto", ("latency_ms", "score", "label", "front"))
    on = points.front.astype(bool)
    front = points[on].sort_values("latency_ms")
    with _figure(path) as (_, ax):
        if not on.all():
            ax.scatter(points.latency_ms[~on], points.score[~on], s=12, color="grey", label="dominated")
        ax.scatter(front.latency_ms, front.score, s=14, color="C0", zorder=3, label="Pareto front")
        ax.step(front.latency_ms, front.score, where="post", color="C0", linewidth=1)
        _annotate(ax, points.latency_ms, points.score, points.label)
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel(y_label)
        _legend(ax)
    return Path(path)


def scatter_fit(points: pd.DataFrame, path: Path, x_label: str, y_label: str, fit: Fit | None = None) -> Path:
    """Labelled points ``x``, ``y`` with an optional fitted line."""
    _check(points, "scatter_fit", ("x", "y", "label"))
    with _figure(path) as (_, ax):
        ax.scatter(points.x, points.y, s=12, color="C0")
        _annotate(ax, points.x, points.y, points.label)
        x = points.x.to_numpy(float)
        _fit_line(ax, fit, np.linspace(x.min(), x.max(), 100))
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        _legend(ax)
    return Path(path)
