"""The study report: the analyses a config names (``report.analyses``), over everything in OUT, written as
report.md, a self-contained report.html, tables.tex and figures/*.png. Every number comes from OUT."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from xstilts.analysis import figures, tiers
from xstilts.analysis.document import Block, Figure, Heading, Paragraph, Table, write
from xstilts.analysis.report import (
    INTRO,
    PROBE,
    SettingScore,
    gains_blocks,
    grid_groups,
    movement_blocks,
    selection_blocks,
    setting_scores,
    target_table,
    targets_of,
)
from xstilts.analysis.scores import score_rows
from xstilts.analysis.stats import Interval, seed_interval, signed
from xstilts.analysis.trends import correlation, curve, log_fit, pareto_front
from xstilts.config.schema import NONE_SETTING, ExperimentConfig
from xstilts.experiments.cost import model_params
from xstilts.experiments.export import rows
from xstilts.experiments.rundir import RunDir
from xstilts.metrics import per_example
from xstilts.metrics.suites import SUITES

SUMMARY_ROWS = ("avg (all)", "avg (zero-shot)", "gain vs none (zero-shot)")


@dataclass(frozen=True)
class Study:
    """What every analysis reads: the rows (with grid columns) and their grid groups, the settings in config
    order, each job's per-example statistics and result, and where figures go."""

    df: pd.DataFrame
    groups: list[tuple[str, pd.DataFrame]]
    settings: list[str]
    examples: Callable[[str], dict]
    results: list[dict]
    figures: Path

    def figure(self, *parts: str) -> Path:
        return self.figures / (re.sub(r"[^A-Za-z0-9.]+", "-", "-".join(p for p in parts if p)).strip("-") + ".png")

    @functools.cached_property
    def scores(self) -> dict[tuple[str, str], dict[str, SettingScore]]:
        """(target, group name) -> setting -> its zero-shot score and gain with intervals."""
        out = {}
        for target in targets_of(self.df):
            for name, group in self.groups:
                if (group[(group.target == target) & (group.split == "test")].recipe != "probe").any():
                    out[target, name] = setting_scores(group, target, self.settings, self.examples)
        return out

    def by_id(self) -> dict[str, dict]:
        return {r["job_id"]: r for r in self.results}


def short(label: str) -> str:
    """A setting label for a figure: grid keys without their path (``[epochs=3]``, not ``[intermediate.train.epochs=3]``)."""
    return re.sub(r"[\w*]+(?:\.[\w*]+)*\.(\w+)=", r"\1=", label)


def _curve_cell(k: int, mean: float, low: float, high: float) -> str:
    if k == 0:
        return "0 (the baseline)"
    if math.isnan(low):
        return f"{signed(mean)} (one setting: no interval)"
    return _ci(Interval(mean, low, high))


def _score_ci(iv: Interval | None) -> str:
    """A score's bootstrap interval (scores are not signed as gains are)."""
    return "n/a" if iv is None or math.isnan(iv.low) else f"[{iv.low:.1f}, {iv.high:.1f}]"


def _ci(iv: Interval | None) -> str:
    if iv is None or math.isnan(iv.low):
        return "n/a"
    return f"{signed(iv.estimate)} [{signed(iv.low)}, {signed(iv.high)}]"


def _zero_shot_gains(group: pd.DataFrame, target: str, settings: list[str]) -> pd.DataFrame:
    """Language (zero-shot) x setting: the setting's score minus the baseline's (means over seeds)."""
    table = target_table(group, target, settings).drop(index=list(SUMMARY_ROWS), errors="ignore")
    if NONE_SETTING not in table.columns:
        return pd.DataFrame()
    others = [c for c in table.columns if c not in (NONE_SETTING, PROBE)]
    return table[others].sub(table[NONE_SETTING], axis=0).drop(index="en", errors="ignore")


def gains(study: Study) -> list[Block]:
    scores = study.scores  # the bootstrap the later analyses read too, computed once
    blocks = gains_blocks(study.df, study.groups, study.settings, study.examples, lambda t, n, g: scores[t, n])
    return [*blocks, *movement_blocks(study.results)]


def heatmap(study: Study) -> list[Block]:
    blocks: list[Block] = []
    for target in targets_of(study.df):
        for name, group in study.groups:
            table = _zero_shot_gains(group, target, study.settings)
            if table.empty or table.columns.empty:
                continue
            path = figures.gain_heatmap(table.rename(columns=short), study.figure("heatmap", target, name))
            best, worst = table.stack().idxmax(), table.stack().idxmin()
            blocks += [
                Heading(f"Gain per language: {target}{f' ({name})' if name else ''}", 2),
                Figure(
                    path, f"Zero-shot gain over none in points, per language (rows) and setting (columns), {target}."
                ),
                Paragraph(
                    f"The largest gain is {signed(table.loc[best])} points ({best[1]} in {best[0]}), the largest loss "
                    f"{signed(table.loc[worst])} ({worst[1]} in {worst[0]}); per-language intervals are in the gains "
                    "tables."
                ),
            ]
    return blocks


def resource_tiers(study: Study) -> list[Block]:
    blocks: list[Block] = []
    for target in targets_of(study.df):
        for name, group in study.groups:
            table = _zero_shot_gains(group, target, study.settings)
            if table.empty:
                continue
            cells, bars, words = {}, [], []
            for setting in table.columns:
                per_tier = tiers.by_tier(table[setting].dropna())
                cells[setting] = {}
                for tier, row in per_tier.iterrows():
                    members = [m.strip() for m in row["members"].split(",") if m.strip()]
                    mean, low, high = seed_interval(table.loc[members, setting].tolist())
                    cells[setting][tier] = f"{_ci(Interval(mean, low, high))} (n={len(members)})"
                    bars.append({"tier": tier, "gain": mean, "low": low, "high": high, "series": short(setting)})
                known = table[setting].dropna()
                ranks = [(int(t), g) for lang, g in known.items() if (t := tiers.language_tier(lang)) != "unknown"]
                rho = correlation([t for t, _ in ranks], [g for _, g in ranks], "spearman")
                words.append(f"{setting}: {rho} between resource tier and gain")
            frame = pd.DataFrame(bars).set_index("tier")
            path = figures.tier_bars(frame, study.figure("tiers", target, name))
            blocks += [
                Heading(f"Gain by language resource tier: {target}{f' ({name})' if name else ''}", 2),
                Table(
                    pd.DataFrame(cells), "tier", str, "Mean zero-shot gain per tier, Student-t 95% CI over languages."
                ),
                Figure(path, "Mean zero-shot gain per resource tier (5 = most resourced; Joshi et al. 2020)."),
                Paragraph(
                    "Spearman correlation across languages (bootstrap 95% CI; a negative value means lower-resource "
                    "languages gain more): " + "; ".join(words) + "."
                ),
            ]
    return blocks


def _model_of(group: pd.DataFrame) -> str | None:
    models = set(group[group.recipe != "probe"].model)
    return models.pop() if len(models) == 1 else None


def _slope_ci(fit) -> str:
    iv = fit.slope_interval
    return "n/a" if iv is None else f"[{iv.low:+.2f}, {iv.high:+.2f}]"


def _fit_words(frame: pd.DataFrame, column: str) -> list[str]:
    """Per series: the least-squares fit of ``column`` against log10 parameters, with its slope interval."""
    words = []
    for series, g in frame.groupby("series", sort=False):
        if g.params.nunique() >= 2:
            fit = log_fit(g.params, g[column])
            words.append(f"{series}: {fit.label.removeprefix('fit: ')} (slope 95% CI {_slope_ci(fit)}, n={fit.n})")
    return words


def scaling(study: Study) -> list[Block]:
    """Zero-shot score and gain against parameter count: one point per model (a grid group) and setting."""
    blocks: list[Block] = []
    for target in targets_of(study.df):
        points = []
        for name, group in study.groups:
            model = _model_of(group)
            params = model_params(model) if model else None
            for setting, sc in study.scores.get((target, name), {}).items():
                gain = sc.gain["avg"] if sc.gain else None
                if params and setting != PROBE:
                    points.append(
                        {
                            "model": model,
                            "params": params,
                            "series": setting,
                            "score": sc.seeds.estimate,
                            "value": gain.estimate if gain else np.nan,
                            "low": gain.low if gain else np.nan,
                            "high": gain.high if gain else np.nan,
                            "gain": _ci(gain),
                        }
                    )
        frame = pd.DataFrame(points)
        if frame.empty or frame.params.nunique() < 2:
            continue
        gained = frame[frame.value.notna()]
        path = figures.scaling_curve(gained, study.figure("scaling", target), y_label="zero-shot gain (points)")
        blocks += [
            Heading(f"Score and gain against model size: {target}", 2),
            Table(
                frame.assign(params=[f"{n / 1e6:.1f}M" for n in frame.params]).set_index(
                    frame.model + ", " + frame.series
                )[["params", "score", "gain"]],
                "model, setting",
                _cell,
                "Non-embedding parameters, zero-shot average, and gain over none (paired-bootstrap 95% CI).",
            ),
            Figure(path, f"Zero-shot gain over none against non-embedding parameters (log scale), {target}."),
            Paragraph(
                "Least-squares fits against log10 parameters, per setting. Zero-shot score: "
                + "; ".join(_fit_words(frame, "score"))
                + ". Gain over none: "
                + ("; ".join(_fit_words(gained, "value")) or "n/a")
                + "."
            ),
        ]
    return blocks


def num_tasks(study: Study) -> list[Block]:
    blocks: list[Block] = []
    for target in targets_of(study.df):
        rows_, words = [], []
        for (t, name), scores in study.scores.items():
            if t != target:
                continue
            by_k: dict[int, list[float]] = {}
            for setting, sc in scores.items():
                if setting == PROBE:
                    continue
                k = 0 if setting.split(" [")[0] == NONE_SETTING else len(setting.split(" [")[0].split("+"))
                by_k.setdefault(k, []).append(0.0 if k == 0 else sc.gain["avg"].estimate if sc.gain else np.nan)
            table = curve(list(by_k), [[v for v in vs if not np.isnan(v)] or [np.nan] for vs in by_k.values()])
            rows_ += [{**r, "series": name or target} for r in table.to_dict("records")]
            pairs = [(k, g) for k, gs in by_k.items() for g in gs if not np.isnan(g)]
            words.append(f"{name or target}: {correlation([k for k, _ in pairs], [g for _, g in pairs], 'spearman')}")
        if not rows_:
            continue
        frame = pd.DataFrame(rows_).rename(columns={"x": "k"})
        path = figures.count_curve(frame, study.figure("num-tasks", target))
        shown = frame.assign(
            gain=[_curve_cell(k, m, lo, hi) for k, m, lo, hi in zip(frame.k, frame["mean"], frame.low, frame.high)]
        )
        by = [
            f"{k}" + (f" ({series})" if frame.series.nunique() > 1 else "") for k, series in zip(frame.k, frame.series)
        ]
        blocks += [
            Heading(f"Number of intermediate tasks: {target}", 2),
            Table(
                shown.set_index(pd.Index(by))[["gain", "n"]],
                "tasks",
                str,
                "Mean zero-shot gain over none of the settings with k intermediate tasks, Student-t 95% CI over "
                "those settings.",
            ),
            Figure(path, f"Mean zero-shot gain against the number of intermediate tasks, {target}."),
            Paragraph(
                "Spearman correlation of the number of tasks and the gain over the settings (the baseline counts as "
                "0 tasks, gain 0; bootstrap 95% CI): "
                + "; ".join(words)
                + ". Each point is one setting's mean gain, so with a handful of settings these intervals understate "
                "the uncertainty; the per-setting intervals are in the gains tables."
            ),
        ]
    return blocks


def _inference(study: Study, target: str, setting: str, group: pd.DataFrame) -> dict | None:
    """Mean inference meters of a setting's target jobs in a group (results written before the ``meters`` block
    kept them under ``inference``)."""
    ids = set(group[(group.target == target) & (group.intermediate == setting) & (group.recipe != "probe")].job_id)
    keys = ("latency_ms_p50", "latency_ms_p95", "throughput_examples_per_second")
    found = (r.get("meters") or r.get("inference") or {} for r in study.results if r["job_id"] in ids)
    meters = [m for m in found if all(k in m for k in keys)]
    if not meters:
        return None
    return {k: float(np.mean([m[k] for m in meters])) for k in keys}


def pareto(study: Study) -> list[Block]:
    blocks: list[Block] = []
    for target in targets_of(study.df):
        points = []
        for name, group in study.groups:
            for setting, sc in study.scores.get((target, name), {}).items():
                if setting != PROBE and (meters := _inference(study, target, setting, group)):
                    label = short(f"{name} {setting}".strip())
                    points.append(
                        {"label": label, "score": sc.seeds.estimate, "score_ci": _score_ci(sc.score), **meters}
                    )
        if len(points) < 2:
            continue
        frame = pd.DataFrame(points)
        front = pareto_front(frame.latency_ms_p50, frame.score)
        frame["front"] = frame.index.isin(front)
        path = figures.pareto(
            frame.rename(columns={"latency_ms_p50": "latency_ms"}),
            study.figure("pareto", target),
            y_label="zero-shot score",
        )
        cheapest, best = frame.loc[front[0]], frame.loc[front[-1]]
        blocks += [
            Heading(f"Accuracy against inference latency: {target}", 2),
            Table(
                frame.set_index("label")[
                    ["score", "score_ci", "latency_ms_p50", "latency_ms_p95", "throughput_examples_per_second", "front"]
                ],
                "setting",
                _cell,
                "Zero-shot average (bootstrap 95% CI), latency of one example (ms, p50 and p95) and throughput in "
                "batches of 32 (examples/s), measured on English dev where each job ran.",
            ),
            Figure(path, f"Zero-shot score against p50 latency; the Pareto front is joined, {target}."),
            Paragraph(
                f"The front runs from {cheapest.label} ({cheapest.score:.1f} at {cheapest.latency_ms_p50:.1f} ms) "
                f"to {best.label} ({best.score:.1f} at {best.latency_ms_p50:.1f} ms): "
                f"{signed(best.score - cheapest.score)} points for "
                f"{best.latency_ms_p50 / max(cheapest.latency_ms_p50, 1e-9):.1f}x the latency. Settings of one model share its architecture: their latency differences are measurement noise (the meter runs where each job ran, with whatever else that machine was doing)."
            ),
        ]
    return blocks


def _cell(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


def throughput(study: Study) -> list[Block]:
    """Intermediate-training throughput against the zero-shot gain the intermediate job gave its target."""
    blocks: list[Block] = []
    by_id = study.by_id()
    for target in targets_of(study.df):
        points = []
        for name, group in study.groups:
            for setting, sc in study.scores.get((target, name), {}).items():
                ids = set(group[(group.target == target) & (group.intermediate == setting)].job_id)
                speeds = [
                    by_id[by_id[i]["upstream"]]["train"]["examples_per_second"]
                    for i in ids
                    if by_id.get(i, {}).get("upstream") in by_id
                ]
                if speeds and sc.gain:
                    points.append(
                        {
                            "x": float(np.mean(speeds)),
                            "y": sc.gain["avg"].estimate,
                            "label": short(f"{name} {setting}".strip()),
                        }
                    )
        if len(points) < 2:
            continue
        frame = pd.DataFrame(points)
        fit = log_fit(frame.x, frame.y, log=False) if frame.x.nunique() >= 2 else None
        path = figures.scatter_fit(
            frame,
            study.figure("throughput", target),
            "intermediate training (examples/s)",
            "zero-shot gain (points)",
            fit,
        )
        words = [str(correlation(frame.x, frame.y, m)) for m in ("spearman", "pearson")]
        blocks += [
            Heading(f"Training throughput against gain: {target}", 2),
            Table(
                frame.set_index("label").rename(columns={"x": "intermediate examples/s", "y": "gain vs none"}),
                "setting",
                _cell,
                "Examples per second of the intermediate job and the zero-shot gain over none it gave.",
            ),
            Figure(path, f"Zero-shot gain against intermediate-training throughput, {target}."),
            Paragraph(
                f"Correlation of throughput and gain (bootstrap 95% CI): Spearman {words[0]}, Pearson {words[1]}"
                + (f"; {fit.label}." if fit else ".")
                + (
                    f" With {len(frame)} points the bootstrap interval understates the uncertainty."
                    if len(frame) < 8
                    else ""
                )
            ),
        ]
    return blocks


def selection(study: Study) -> list[Block]:
    return selection_blocks(study.df, study.groups)


def suite(study: Study) -> list[Block]:
    blocks: list[Block] = []
    for name in SUITES:
        table = score_rows(study.df, name)
        if table.empty:
            continue
        blocks += [
            Heading(f"{SUITES[name].name} scores", 2),
            Table(
                table,
                "model, setting, recipe",
                _cell,
                "Task, group and overall scores as XTREME's evaluate.py aggregates them (missing: tasks not run here).",
            ),
        ]
    return blocks


ANALYSES: dict[str, Callable[[Study], list[Block]]] = {
    "gains": gains,
    "heatmap": heatmap,
    "tiers": resource_tiers,
    "scaling": scaling,
    "num-tasks": num_tasks,
    "pareto": pareto,
    "throughput": throughput,
    "selection": selection,
    "suite": suite,
}


def write_report(run: RunDir, cfg: ExperimentConfig, formats: list[str] | None = None) -> list[Path]:
    """report.md / report.html / tables.tex (``formats``, else the config's) and figures/*.png of OUT."""

    @functools.cache  # a probe shared by several grid groups is read once
    def examples(job_id: str) -> dict:
        return per_example.read(run.per_example(job_id))

    df, groups = grid_groups(pd.DataFrame(rows(run)))
    study = Study(df, groups, cfg.intermediate.settings, examples, run.load_results(), run.root / "figures")
    blocks: list[Block] = [Heading(cfg.name, 1), Paragraph(INTRO)]
    for analysis in cfg.report.analyses:
        blocks += ANALYSES[analysis](study)
    return write(blocks, run.root, cfg.name, set(formats or cfg.report.formats))
