"""The study report: the analyses a config names (``report.analyses``), over everything in OUT, written as
report.md, a self-contained report.html, tables.tex and figures/*.png. Every number comes from OUT."""

from __future__ import annotations

import functools
import itertools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from xstilts.analysis import figures, resources, tiers
from xstilts.analysis.document import Block, Details, Figure, Heading, Paragraph, Table, markdown, write
from xstilts.analysis.interactions import resource_slopes
from xstilts.analysis.report import (
    INTRO,
    TargetScores,
    gains_blocks,
    grid_groups,
    is_probe,
    movement_blocks,
    multiplicity_note,
    target_scores,
    target_table,
    targets_of,
    verdict,
)
from xstilts.analysis.scores import suite_tables
from xstilts.analysis.stats import Interval, holm, seed_interval, signed
from xstilts.analysis.trends import correlation, curve, log_fit, pareto_front
from xstilts.config.schema import NONE_SETTING, ExperimentConfig
from xstilts.errors import UserError
from xstilts.experiments.cost import model_params
from xstilts.experiments.export import rows
from xstilts.experiments.rundir import RunDir
from xstilts.metrics import per_example

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
    order: tuple[str, ...] = ()  # the config's targets, in its order

    @functools.cached_property
    def targets(self) -> list[str]:
        """The targets the rows hold: the config's order first, then any others alphabetically."""
        return targets_of(self.df, self.order)

    def figure(self, *parts: str) -> Path:
        return self.figures / (re.sub(r"[^A-Za-z0-9.]+", "-", "-".join(p for p in parts if p)).strip("-") + ".png")

    @functools.cached_property
    def scores(self) -> dict[tuple[str, str], TargetScores]:
        """(target, group name) -> its settings' scores and gains with intervals, for groups that fine-tuned."""
        out = {}
        for target in self.targets:
            for name, group in self.groups:
                if (group[(group.target == target) & (group.split == "test")].recipe != "probe").any():
                    out[target, name] = target_scores(group, target, self.settings, self.examples)
        return out

    def by_id(self) -> dict[str, dict]:
        return {r["job_id"]: r for r in self.results}


def short(label: str) -> str:
    """A setting label for a figure: grid keys without their path (``[epochs=3]``, not ``[intermediate.train.epochs=3]``)."""
    return re.sub(r"[\w*]+(?:\.[\w*]+)*\.(\w+)=", r"\1=", label)


def _ci(iv: Interval | None) -> str:
    if iv is None or math.isnan(iv.low):
        return "n/a"
    return f"{signed(iv.estimate)} [{signed(iv.low)}, {signed(iv.high)}]"


def _score_ci(iv: Interval | None) -> str:
    """A score's interval (scores are not signed as gains are)."""
    return "n/a" if iv is None or math.isnan(iv.low) else f"[{iv.low:.1f}, {iv.high:.1f}]"


def _cell(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.1f}"
    return str(v)


def _title(target: str, name: str) -> str:
    return f"{target}{f' ({name})' if name else ''}"


def gains(study: Study) -> list[Block]:
    return [*gains_blocks(study.scores, study.groups, study.settings, study.figure), *movement_blocks(study.results)]


def contrasts(study: Study) -> list[Block]:
    """Every pair of intermediate settings, the baseline's included: the later one in the config minus the
    earlier, paired by seed, with Holm over the pairs. The probes are compared with the baseline in 'gains'."""
    blocks: list[Block] = []
    for (target, name), ts in study.scores.items():
        ran = [c for c in study.settings if c in ts.settings and ts.settings[c].jobs]
        pairs = [(b, a) for a, b in itertools.combinations(ran, 2)]
        if not pairs:
            continue
        estimates = [ts.contrast(a, b)["avg"] for a, b in pairs]
        adjusted = holm(estimates)
        table = pd.DataFrame(
            {
                "difference [95% CI]": [str(e) for e in estimates],
                "p": [f"{e.p:.3f}" for e in estimates],
                "MDE": [f"{e.mde:.1f}" for e in estimates],
                "significant": [verdict(e, a if len(pairs) > 1 else None) for e, a in zip(estimates, adjusted)],
            },
            index=[f"{a} - {b}" for a, b in pairs],
        )
        kept = [f"`{a}` - `{b}` {e}" for (a, b), e, keep in zip(pairs, estimates, adjusted) if keep]
        blocks += [
            Heading(f"Contrasts between settings: {_title(target, name)}", 2),
            Paragraph(
                f"{len(kept)} of {len(pairs)} differences on the zero-shot average are significant after Holm's "
                "correction" + (": " + "; ".join(kept[:8]) if kept else "") + "."
            ),
            Details(
                f"All {len(pairs)} contrasts",
                (
                    Paragraph(multiplicity_note(len(pairs), sum(e.significant for e in estimates), sum(adjusted))),
                    Table(
                        table,
                        "contrast",
                        str,
                        "Zero-shot average of one setting minus another, paired by seed where both ran the same seeds.",
                    ),
                ),
            ),
        ]
    return blocks


def _zero_shot_gains(group: pd.DataFrame, target: str, settings: list[str]) -> pd.DataFrame:
    """Language (zero-shot) x setting: the setting's score minus the baseline's (means over seeds)."""
    table = target_table(group, target, settings).drop(index=list(SUMMARY_ROWS), errors="ignore")
    if NONE_SETTING not in table.columns:
        return pd.DataFrame()
    others = [c for c in table.columns if c != NONE_SETTING and not is_probe(c)]
    return table[others].sub(table[NONE_SETTING], axis=0).drop(index="en", errors="ignore")


def heatmap(study: Study) -> list[Block]:
    blocks: list[Block] = []
    for target in study.targets:
        for name, group in study.groups:
            table = _zero_shot_gains(group, target, study.settings)
            if table.empty or table.columns.empty:
                continue
            ts = study.scores.get((target, name))
            noise = pd.DataFrame(
                {c: {lang: not e.significant for (s, lang), e in ts.language_gains().items() if s == c} for c in table}
                if ts
                else {},
            )
            path = figures.gain_heatmap(
                table.rename(columns=short), study.figure("heatmap", target, name), noise.rename(columns=short)
            )
            best, worst = table.stack().idxmax(), table.stack().idxmin()
            blocks += [
                Heading(f"Gain per language: {_title(target, name)}", 2),
                Figure(
                    path,
                    f"Zero-shot gain over none in points, per language (rows) and setting (columns), {target}; "
                    "washed-out hatched cells: the 95% interval includes 0.",
                ),
                Paragraph(
                    f"The largest gain is {signed(table.loc[best])} points ({best[1]} in {best[0]}), the largest loss "
                    f"{signed(table.loc[worst])} ({worst[1]} in {worst[0]}); per-language intervals are in the gains "
                    "tables."
                ),
            ]
    return blocks


def _run_gains(ts: TargetScores) -> pd.DataFrame:
    """One row per (setting, run, language): the run's score minus the baseline's (its same-seed run where both
    ran the same seeds, else the baseline's mean)."""
    reps, base = ts.replicates, ts.settings.get(NONE_SETTING)
    if reps is None or base is None or not base.jobs:
        return pd.DataFrame(columns=["setting", "language", "gain"])
    base_seed = {reps.runs[j].seed: j for j in base.jobs}
    base_mean = np.mean([reps.point[j] for j in base.jobs], axis=0)
    out = []
    for c, sc in ts.settings.items():
        if c == NONE_SETTING or is_probe(c) or not sc.jobs:
            continue
        paired = sorted(sc.seeds, key=str) == sorted(base_seed, key=str) and None not in base_seed
        for j in sc.jobs:
            ref = reps.point[base_seed[reps.runs[j].seed]] if paired else base_mean
            out += [{"setting": c, "language": lang, "gain": g} for lang, g in zip(reps.languages, reps.point[j] - ref)]
    return pd.DataFrame(out)


def _slope_words(frame: pd.DataFrame, covariate: dict[str, float | None], what: str, unit: str) -> str:
    data = frame.assign(x=frame.language.map(covariate))
    try:
        fit = resource_slopes(data, what)
    except UserError as e:
        return f"{what}: n/a ({e})."
    slopes = "; ".join(
        f"`{s.setting}` {signed(s.estimate)} {unit} [{signed(s.low)}, {signed(s.high)}], p = {s.p:.3f}"
        for s in fit.slopes
    )
    note = "" if fit.converged else " The fit did not converge; read it with care."
    return (
        f"{what} (mixed model, language random intercept; {fit.languages} languages, {fit.observations} "
        f"observations): slope of the gain per {unit.removeprefix('points per ')} {slopes}.{note}"
    )


def resource_tiers(study: Study) -> list[Block]:
    """Gains by resource tier (with n per tier), and the gain x resource interaction by a mixed model on the
    tier and on the CC-100 size."""
    blocks: list[Block] = []
    for (target, name), ts in study.scores.items():
        table = _zero_shot_gains(dict(study.groups)[name], target, study.settings)
        if table.empty:
            continue
        counts = tiers.tier_counts(table.index)
        counts = counts[counts.n > 0]
        cells, bars = {}, []
        for setting in table.columns:
            cells[setting] = {}
            for tier, row in counts.iterrows():
                members = [m.strip() for m in row["members"].split(",")]
                mean, low, high = seed_interval(table.loc[members, setting].dropna().tolist())
                cells[setting][tier] = (
                    f"{signed(mean)} (n={row.n}: too few to estimate)"
                    if row.too_small
                    else f"{_ci(Interval(mean, low, high))} (n={row.n})"
                )
                if not row.too_small:
                    bars.append({"tier": tier, "gain": mean, "low": low, "high": high, "series": short(setting)})
        run_gains = _run_gains(ts)
        tier_of = {lang: float(t) if (t := tiers.language_tier(lang)) != "unknown" else None for lang in table.index}
        size_of = {lang: resources.log_resource(lang) for lang in table.index}
        blocks += [
            Heading(f"Gain by language resource: {_title(target, name)}", 2),
            Paragraph(
                "Does the gain depend on how well-resourced a language is? The interaction of each setting (against "
                "none) with the language's resources, from a linear mixed model of every run's per-language gain "
                "(language as a random effect); a negative slope means lower-resource languages gain more. "
                + _slope_words(run_gains, tier_of, "Resource tier (Joshi et al. 2020, 0-5)", "points per tier")
                + " "
                + _slope_words(run_gains, size_of, "CC-100 size (Conneau et al. 2020)", "points per tenfold GiB")
            ),
            Table(
                pd.DataFrame(cells),
                "tier",
                str,
                f"Mean zero-shot gain per tier (5 = most resourced), Student-t 95% interval over its languages; a tier "
                f"of fewer than {tiers.MIN_LANGUAGES} languages is too small to estimate.",
            ),
        ]
        if bars:
            path = figures.tier_bars(pd.DataFrame(bars).set_index("tier"), study.figure("tiers", target, name))
            blocks.append(Figure(path, "Mean zero-shot gain per resource tier (tiers large enough to estimate)."))
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
    for target in study.targets:
        points = []
        for name, group in study.groups:
            model = _model_of(group)
            params = model_params(model) if model else None
            ts = study.scores.get((target, name))
            for setting, sc in ts.settings.items() if ts else []:
                gain = sc.gain["avg"] if sc.gain else None
                if params and not is_probe(setting) and sc.score is not None:
                    points.append(
                        {
                            "model": model,
                            "params": params,
                            "series": setting,
                            "score": sc.score.estimate,
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
                "Non-embedding parameters, zero-shot average, and gain over none (95% interval over seeds and items).",
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


def _tasks_in(setting: str) -> int:
    name = setting.split(" [")[0]
    return 0 if name == NONE_SETTING else len(name.split("+"))


def num_tasks(study: Study) -> list[Block]:
    """Mean gain per number of intermediate tasks k >= 1 (the baseline, k = 0, is the reference, not a point)."""
    blocks: list[Block] = []
    for target in study.targets:
        rows_, words = [], []
        for (t, name), ts in study.scores.items():
            if t != target:
                continue
            by_k: dict[int, list[float]] = {}
            for setting, g in ts.gains().items():
                if not is_probe(setting):
                    by_k.setdefault(_tasks_in(setting), []).append(g.estimate)
            if not by_k:
                continue
            table = curve(list(by_k), list(by_k.values()))
            rows_ += [{**r, "series": name or target} for r in table.to_dict("records")]
            pairs = [(k, g) for k, gs in by_k.items() for g in gs]
            words.append(f"{name or target}: {correlation([k for k, _ in pairs], [g for _, g in pairs], 'spearman')}")
        if not rows_:
            continue
        frame = pd.DataFrame(rows_).rename(columns={"x": "k"})
        path = figures.count_curve(frame, study.figure("num-tasks", target))
        shown = frame.assign(
            gain=[
                f"{signed(m)} (one setting: no interval)" if math.isnan(lo) else _ci(Interval(m, lo, hi))
                for m, lo, hi in zip(frame["mean"], frame.low, frame.high)
            ]
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
                "Mean zero-shot gain over none of the settings with k intermediate tasks, Student-t 95% interval over "
                "those settings.",
            ),
            Figure(path, f"Mean zero-shot gain against the number of intermediate tasks, {target}."),
            Paragraph(
                "Spearman correlation of the number of tasks and the gain over the settings with at least one task "
                "(the baseline is the reference, not a point; bootstrap 95% interval): "
                + "; ".join(words)
                + ". Each point is one setting's mean gain, so with a handful of settings these intervals understate "
                "the uncertainty; the per-setting intervals are in the gains sections."
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
    for target in study.targets:
        points = []
        for name, group in study.groups:
            ts = study.scores.get((target, name))
            for setting, sc in ts.settings.items() if ts else []:
                if not is_probe(setting) and sc.score and (meters := _inference(study, target, setting, group)):
                    label = short(f"{name} {setting}".strip())
                    points.append(
                        {"label": label, "score": sc.score.estimate, "score_ci": _score_ci(sc.score), **meters}
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
                "Zero-shot average (95% interval over seeds and items), latency of one example (ms, p50 and p95) and "
                "throughput in batches of 32 (examples/s), measured on English dev where each job ran.",
            ),
            Figure(path, f"Zero-shot score against p50 latency; the Pareto front is joined, {target}."),
            Paragraph(
                f"The front runs from {cheapest.label} ({cheapest.score:.1f} at {cheapest.latency_ms_p50:.1f} ms) "
                f"to {best.label} ({best.score:.1f} at {best.latency_ms_p50:.1f} ms): "
                f"{signed(best.score - cheapest.score)} points for "
                f"{best.latency_ms_p50 / max(cheapest.latency_ms_p50, 1e-9):.1f}x the latency. Settings of one model "
                "share its architecture: their latency differences are measurement noise (the meter runs where each "
                "job ran, with whatever else that machine was doing)."
            ),
        ]
    return blocks


def throughput(study: Study) -> list[Block]:
    """Intermediate-training throughput against the zero-shot gain the intermediate job gave its target."""
    blocks: list[Block] = []
    by_id = study.by_id()
    for target in study.targets:
        points = []
        for name, group in study.groups:
            ts = study.scores.get((target, name))
            for setting, g in ts.gains().items() if ts else []:
                ids = set(group[(group.target == target) & (group.intermediate == setting)].job_id)
                speeds = [
                    by_id[by_id[i]["upstream"]]["train"]["examples_per_second"]
                    for i in ids
                    if by_id.get(i, {}).get("upstream") in by_id
                ]
                if speeds:
                    points.append(
                        {"x": float(np.mean(speeds)), "y": g.estimate, "label": short(f"{name} {setting}".strip())}
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


def _english_dev(study: Study, group: pd.DataFrame) -> pd.Series:
    """Each single intermediate task trained for this group's model: its English dev headline score (mean over
    seeds), candidates never sent to a target included."""
    models = set(group[group.recipe != "probe"].model)
    inter = study.df[(study.df.kind == "intermediate") & (study.df.split == "dev") & study.df.headline]
    inter = inter[
        inter.model.isin(models)
        & ~inter.intermediate.str.split(" [", regex=False).str[0].str.contains("+", regex=False)
    ]
    inter = inter[inter.task == inter.intermediate.str.split(" [", regex=False).str[0]]
    return inter.groupby("intermediate").value.mean()


def selection_table(study: Study, target: str, name: str) -> tuple[pd.DataFrame, object]:
    """Single intermediate tasks of a group ranked by English dev score (1 = best), with the zero-shot gain each
    gave (NaN when never sent to the target) and the Spearman correlation of the two (None below 3 tasks)."""
    dev = _english_dev(study, dict(study.groups)[name])
    gains_ = study.scores[target, name].gains()
    table = pd.DataFrame({"english dev": dev, "rank": dev.rank(ascending=False, method="min")})
    for column, part in (("gain", "estimate"), ("low", "low"), ("high", "high")):
        table[column] = [getattr(gains_[s], part) if s in gains_ else np.nan for s in table.index]
    both = table[["english dev", "gain"]].dropna()
    rho = correlation(both["english dev"], both.gain, "spearman") if len(both) >= 3 else None
    return table.sort_values(["rank", "english dev"]), rho


def selection(study: Study) -> list[Block]:
    """Per target and grid group: single intermediate tasks ranked by English dev score against the zero-shot gain
    each gave, with its interval, and their Spearman correlation."""
    blocks: list[Block] = []
    for target, name in study.scores:
        table, rho = selection_table(study, target, name)
        if table.empty:
            continue
        shown = pd.DataFrame(
            {
                "english dev": table["english dev"].map(lambda v: f"{v:.1f}"),
                "rank": table["rank"].map(lambda v: f"{v:.0f}"),
                "zero-shot gain [95% CI]": [
                    "not sent to the target" if pd.isna(g) else _ci(Interval(g, lo, hi))
                    for g, lo, hi in zip(table.gain, table.low, table.high)
                ],
            }
        )
        blocks += [
            Heading(f"Intermediate tasks: English dev rank and zero-shot gain: {_title(target, name)}", 2),
            Table(shown, "task", str, "Rank 1 = best English dev score; the gain over none on the zero-shot average."),
            Paragraph(
                f"Spearman correlation of English dev score and {target} gain: "
                + (
                    "n/a (fewer than 3 tasks with a gain)"
                    if rho is None
                    else f"{rho}; with so few tasks, read it with care"
                )
                + "."
            ),
        ]
    return blocks


def suite(study: Study) -> list[Block]:
    blocks: list[Block] = []
    for heading, table, caption in suite_tables(study.df):
        blocks += [Heading(heading, 2), Table(table, table.index.name, _cell, caption)]
    if not blocks:
        return [Heading("XTREME and XTREME-R scores", 2), Paragraph("None: no target is an XTREME or XTREME-R task.")]
    return blocks


ANALYSES: dict[str, Callable[[Study], list[Block]]] = {
    "gains": gains,
    "contrasts": contrasts,
    "heatmap": heatmap,
    "tiers": resource_tiers,
    "scaling": scaling,
    "num-tasks": num_tasks,
    "pareto": pareto,
    "throughput": throughput,
    "selection": selection,
    "suite": suite,
}


def load_study(run: RunDir, settings: list[str], targets: Sequence[str] = ()) -> Study:
    """Everything OUT holds, ready for the analyses (``targets``: the config's, for their order)."""

    @functools.cache  # a probe shared by several grid groups is read once
    def examples(job_id: str) -> dict:
        return per_example.read(run.per_example(job_id))

    df, groups = grid_groups(pd.DataFrame(rows(run)))
    return Study(df, groups, settings, examples, run.load_results(), run.root / "figures", tuple(targets))


def report_blocks(study: Study, title: str, analyses: list[str]) -> list[Block]:
    blocks: list[Block] = [Heading(title, 1), Paragraph(INTRO)]
    for analysis in analyses:
        blocks += ANALYSES[analysis](study)
    return blocks


def write_report(run: RunDir, cfg: ExperimentConfig, formats: list[str] | None = None) -> list[Path]:
    """report.md / report.html / tables.tex (``formats``, else the config's) and figures/*.png of OUT."""
    study = load_study(run, cfg.intermediate.settings, [t.task for t in cfg.targets])
    blocks = report_blocks(study, cfg.name, cfg.report.analyses)
    return write(blocks, run.root, cfg.name, set(formats or cfg.report.formats))


def report_markdown(run: RunDir, settings: list[str], title: str, analyses: list[str] = ("gains", "selection")) -> str:
    """The report of OUT as markdown text (its figures written under OUT/figures)."""
    return markdown(report_blocks(load_study(run, settings), title, list(analyses)), run.root)
