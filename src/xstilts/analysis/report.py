"""Per target (and grid group): every setting's zero-shot score and gain over the baseline with two-level intervals
(seeds and test items, see ``stats``), the findings in words and forest plots, then the full tables."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from xstilts.analysis import figures
from xstilts.analysis.document import Block, Details, Figure, Heading, Paragraph, Table
from xstilts.analysis.stats import ALPHA, Estimate, Replicates, Run, compare, holm, signed
from xstilts.config.schema import NONE_SETTING
from xstilts.experiments.export import METER_COLUMNS, ROW_COLUMNS
from xstilts.metrics import per_example

PROBE = "probe (frozen)"  # a probe reference whose input scaling was not recorded
PROBE_LABELS = {"standardised": "probe (frozen, standardised)", "normalised": "probe (frozen, L2-normalised)"}
Examples = Callable[[str], dict[str, np.ndarray]]  # job id -> its per-example statistics
FigurePath = Callable[..., Path]  # name parts -> where a figure goes
RESAMPLES = 1000  # item resamples per target: they estimate a variance, not percentiles


def is_probe(setting: str) -> bool:
    return setting.startswith(PROBE[:-1])


def _fmt(x: float) -> str:
    return "" if pd.isna(x) else f"{x:.1f}" if round(x, 1) != 0 else "0.0"


def _headline(rows: pd.DataFrame, target: str) -> pd.DataFrame:
    """A target's test rows of its headline metric, the probe references' settings named by their input."""
    sub = rows[(rows.target == target) & (rows.split == "test") & (rows.task == target) & rows.headline].copy()
    probes = sub.recipe == "probe"
    scaling = sub["probe_input"] if "probe_input" in sub else pd.Series(None, index=sub.index)
    sub.loc[probes, "intermediate"] = [PROBE_LABELS.get(v, PROBE) for v in scaling[probes]]
    return sub


def _order(columns, settings: list[str]) -> list[str]:
    rest = sorted(c for c in set(columns) - set(settings) if not is_probe(c))
    probes = [p for p in (*PROBE_LABELS.values(), PROBE) if p in columns]
    return [s for s in settings if s in columns] + rest + probes


def target_table(rows: pd.DataFrame, target: str, settings: list[str]) -> pd.DataFrame:
    """Test scores (mean over seeds) per language x setting, then average rows and the gain over 'none'."""
    sub = _headline(rows, target)
    table = sub.pivot_table(index="language", columns="intermediate", values="value", aggfunc="mean")
    table = table[_order(table.columns, settings)]
    langs = sorted(table.index, key=lambda lang: (lang != "en", lang))
    table = table.loc[langs]
    zero_shot = table.drop(index="en", errors="ignore")
    summary = pd.DataFrame({"avg (all)": table.mean(), "avg (zero-shot)": zero_shot.mean()}).T
    if NONE_SETTING in table.columns:
        summary.loc["gain vs none (zero-shot)"] = zero_shot.mean() - zero_shot.mean()[NONE_SETTING]
    return pd.concat([table, summary])


@dataclass(frozen=True)
class SettingScore:
    """A setting's jobs (those that kept per-example statistics), their seeds (None: deterministic), its
    zero-shot average and its gain over the baseline per language and "avg"."""

    jobs: tuple[str, ...]
    seeds: tuple[int | None, ...]
    score: Estimate | None
    gain: dict[str, Estimate] | None


@dataclass(frozen=True)
class TargetScores:
    """The settings of one target (one grid group) and the item resamples they share."""

    target: str
    metric: str
    settings: dict[str, SettingScore]
    replicates: Replicates | None
    note: str  # what limits the intervals (no item keys, no statistics), "" when nothing

    def contrast(self, a: str, b: str) -> dict[str, Estimate]:
        """Setting ``a`` minus setting ``b`` per language and "avg", paired where they share seeds."""
        if self.replicates is None or not self.settings[a].jobs or not self.settings[b].jobs:
            raise ValueError(f"{self.target}: {a} or {b} kept no per-example statistics")
        return compare(self.replicates, list(self.settings[a].jobs), list(self.settings[b].jobs))

    def gains(self) -> dict[str, Estimate]:
        """Setting -> its gain over the baseline on the zero-shot average."""
        return {c: sc.gain["avg"] for c, sc in self.settings.items() if sc.gain}

    def language_gains(self) -> dict[tuple[str, str], Estimate]:
        """(setting, language) -> its gain over the baseline."""
        return {
            (c, lang): e for c, sc in self.settings.items() if sc.gain for lang, e in sc.gain.items() if lang != "avg"
        }


def _seed(value: object) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def _run(stats: dict, task: str, metric: str, languages: list[str], seed: int | None) -> Run | None:
    """A job's statistics on every language (None when it lacks one), with its item keys where it kept them."""
    values = {lang: stats.get(per_example.key(task, "test", lang, metric)) for lang in languages}
    if any(v is None for v in values.values()):
        return None
    items = {lang: stats.get(per_example.key(task, "test", lang, per_example.ITEMS)) for lang in languages}
    return Run(values, items if all(v is not None for v in items.values()) else None, seed)


def target_scores(
    rows: pd.DataFrame, target: str, settings: list[str], examples: Examples, resamples: int = RESAMPLES
) -> TargetScores:
    """Every setting of a target's rows (one grid group), in report order, with two-level intervals."""
    sub = _headline(rows, target)
    metric, task = sub.metric.iloc[0], sub.task.iloc[0]
    languages = sorted(set(sub.language) - {"en"})
    jobs = sub.drop_duplicates("job_id").set_index("job_id")
    runs, parallel, by_setting = {}, False, {}
    for c in _order(set(sub.intermediate), settings):
        by_setting[c] = []
        for job_id in sorted(jobs.index[jobs.intermediate == c]):
            stats = examples(job_id)
            run = _run(stats, task, metric, languages, _seed(jobs.seed[job_id]))
            if run is not None:
                runs[job_id] = run
                by_setting[c].append(job_id)
                parallel |= bool(stats.get(per_example.parallel_key(task, "test"), False))
    reps = Replicates(runs, parallel, resamples) if runs and languages else None
    base = by_setting.get(NONE_SETTING, [])
    out = {}
    for c, ids in by_setting.items():
        seeds = tuple(runs[j].seed for j in ids)
        score = compare(reps, ids)["avg"] if ids else None
        gain = compare(reps, ids, base) if ids and base and c != NONE_SETTING else None
        out[c] = SettingScore(tuple(ids), seeds, score, gain)
    return TargetScores(target, metric, out, reps, _note(reps, runs, jobs, parallel))


def _note(reps: Replicates | None, runs: dict, jobs: pd.DataFrame, parallel: bool) -> str:
    if reps is None:
        return "No job kept per-example statistics for this metric: no intervals."
    parts = []
    if len(runs) < len(jobs):
        parts.append(
            f"{len(jobs) - len(runs)} of {len(jobs)} jobs kept no per-example statistics and have no interval."
        )
    if not reps.keyed:
        parts.append(
            "These results carry no item keys (written before xstilts recorded them): languages are resampled "
            "independently, so for a test set parallel across languages the average's interval may be too narrow."
        )
    elif parallel:
        parts.append("Parallel test set: items are resampled jointly across languages by their keys.")
    return " ".join(parts)


# ---- words and tables ----


def _ci(e: Estimate | None) -> str:
    return "n/a" if e is None or math.isnan(e.low) else f"[{signed(e.low)}, {signed(e.high)}]"


def _score_ci(e: Estimate) -> str:
    return "n/a" if math.isnan(e.low) else f"[{e.low:.1f}, {e.high:.1f}]"


def _seeds_words(e: Estimate) -> str:
    return {
        "paired": f"{e.runs} seeds, paired",
        "unpaired": f"unpaired, {e.runs} run{'s' * (e.runs != 1)} against {e.base_runs}",
        "deterministic": "deterministic jobs: no seed variance",
        "unmeasured": "one seed: seed variance not measured",
    }.get(e.seeds, e.seeds)


def verdict(e: Estimate, adjusted: bool | None = None) -> str:
    """Whether a gain is significant: its interval excludes 0 (and, where given, it survives Holm)."""
    if not e.seed_measured:
        return "not tested (one seed)"
    if not e.significant:
        return "no (within noise)"
    return "yes" if adjusted in (None, True) else "raw only (not after Holm)"


def _power_words(e: Estimate, effect: str = "gain") -> str:
    if e.significant:
        return ""
    what = "the test items alone" if not e.seed_measured else "this design"
    return f"; {what} could have detected a {effect} of {e.mde:.1f} points or more (80% power)"


def finding(setting: str, e: Estimate, languages: int, adjusted: bool | None) -> str:
    """One sentence: a setting's gain on the zero-shot average with its interval, verdict and power; for a probe
    reference, whether the fine-tuned baseline beats it."""
    lead = f"`{setting}`: {signed(e.estimate)} points {_ci(e)} over none on the zero-shot average"
    said = f"{lead} ({languages} languages; {_seeds_words(e)})."
    if not is_probe(setting):
        return f"{said} Significant: {verdict(e, adjusted)}{_power_words(e)}."
    beaten = verdict(e, adjusted)
    if beaten == "yes" and e.estimate > 0:
        beaten = "no, the probe scores significantly above it"
    return f"{said} The fine-tuned baseline beats this probe: {beaten}{_power_words(e, 'difference')}."


def _marks(e: Estimate, adjusted: bool) -> str:
    return f"{e}{' *' if e.significant else ''}{'†' if adjusted else ''}"


def multiplicity_note(tests: int, raw: int, adjusted: int) -> str:
    """How many tests a table holds, what chance alone would mark, and Holm's correction."""
    if tests == 1:
        return "This table holds 1 test: Holm's correction leaves it unchanged."
    return (
        f"This table holds {tests} tests. If no gain were real, chance alone would put * (interval excludes 0) on "
        f"about {ALPHA * tests:.1f} of them; here {raw} {'has' if raw == 1 else 'have'} it. † marks the {adjusted} "
        f"that {'stays' if adjusted == 1 else 'stay'} significant after "
        f"Holm's correction over the table's {tests} tests (family-wise error {ALPHA:.0%})."
    )


def summary_table(ts: TargetScores) -> tuple[pd.DataFrame, dict[str, bool]]:
    """Per setting: runs, zero-shot average, gain over none with its interval, p, Holm, MDE and the verdict; and
    which gains survive Holm over the settings."""
    gains = ts.gains()
    adjusted = dict(zip(gains, holm(list(gains.values()))))
    rows = []
    for c, sc in ts.settings.items():
        g = gains.get(c)
        rows.append(
            {
                "setting": c,
                "runs": str(len(sc.jobs)),
                "zero-shot avg": "n/a" if sc.score is None else f"{sc.score.estimate:.1f} {_score_ci(sc.score)}",
                "gain vs none": "" if g is None else f"{signed(g.estimate)} {_ci(g)}",
                "p": "" if g is None else f"{g.p:.3f}",
                "MDE": "" if g is None else f"{g.mde:.1f}",
                "significant": "" if g is None else verdict(g, adjusted[c]),
            }
        )
    return pd.DataFrame(rows).set_index("setting"), adjusted


def language_table(ts: TargetScores) -> tuple[pd.DataFrame, dict[tuple[str, str], bool]]:
    """Language x setting: the gain over none with its interval, * where it excludes 0, † where it survives Holm
    over the whole table; and the Holm marks."""
    gains = ts.language_gains()
    adjusted = dict(zip(gains, holm(list(gains.values()))))
    cells: dict[str, dict[str, str]] = {}
    for (c, lang), e in gains.items():
        cells.setdefault(c, {})[lang] = _marks(e, adjusted[c, lang])
    return pd.DataFrame(cells), adjusted


# ---- the gains analysis ----


def _forest_frame(gains: dict[str, Estimate]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "estimate": [e.estimate for e in gains.values()],
            "low": [e.low for e in gains.values()],
            "high": [e.high for e in gains.values()],
            "significant": [e.significant for e in gains.values()],
        },
        index=list(gains),
    )


def _language_findings(ts: TargetScores, adjusted: dict[tuple[str, str], bool]) -> str:
    gains = ts.language_gains()
    raw = [k for k, e in gains.items() if e.significant]
    kept = [k for k in raw if adjusted[k]]
    listed = "; ".join(f"`{c}` in {lang} {gains[c, lang]}" for c, lang in kept[:8])
    more = f" (and {len(kept) - 8} more)" if len(kept) > 8 else ""
    return (
        f"Per language ({len(gains)} gains): {len(kept)} significant after Holm's correction"
        + (f": {listed}{more}" if kept else "")
        + f". {len(raw)} raw intervals exclude 0, where chance alone would give about {ALPHA * len(gains):.1f}."
    )


def findings_blocks(ts: TargetScores, figure: FigurePath, name: str) -> list[Block]:
    """The answer first: one sentence per setting with its interval, then forest plots of the gains on the
    average and per language."""
    summary_adj = dict(zip(ts.gains(), holm(list(ts.gains().values()))))
    langs = len(ts.replicates.languages) if ts.replicates else 0
    words = [finding(c, e, langs, summary_adj[c] if len(summary_adj) > 1 else None) for c, e in ts.gains().items()]
    if not words:
        return [Paragraph("No gain over none to report (no baseline or no per-example statistics).")]
    _, language_adj = language_table(ts)
    blocks: list[Block] = [Paragraph(w) for w in words]
    if len(summary_adj) > 1:
        blocks.append(Paragraph(multiplicity_note(len(summary_adj), *_counts(ts.gains(), summary_adj))))
    blocks.append(Paragraph(_language_findings(ts, language_adj)))
    average = figures.forest(_forest_frame(ts.gains()), figure("forest", ts.target, name))
    blocks.append(
        Figure(average, f"Gain over none on the zero-shot average, 95% interval (grey: includes 0), {ts.target}.")
    )
    per_language = pd.DataFrame(
        [
            {
                "panel": c,
                "language": lang,
                "estimate": e.estimate,
                "low": e.low,
                "high": e.high,
                "significant": e.significant,
            }
            for (c, lang), e in ts.language_gains().items()
        ]
    )
    path = figures.forest_grid(per_language, figure("forest-languages", ts.target, name))
    blocks.append(
        Figure(path, f"Gain over none per language and setting, 95% intervals (grey: includes 0), {ts.target}.")
    )
    return blocks


def _counts(gains: dict, adjusted: dict) -> tuple[int, int]:
    return sum(e.significant for e in gains.values()), sum(adjusted.values())


def tables_blocks(ts: TargetScores, rows: pd.DataFrame, settings: list[str]) -> list[Block]:
    """The full tables: scores per language, the summary with intervals, the per-language gains."""
    summary, _ = summary_table(ts)
    per_language, adjusted = language_table(ts)
    blocks: list[Block] = [
        Table(target_table(rows, ts.target, settings), "language", _fmt, "Test scores (mean over seeds)."),
        Table(
            summary,
            "setting",
            str,
            "Zero-shot average and gain over none with 95% intervals over seeds and test items; p two-sided; MDE: "
            "the smallest gain this design detects with 80% power at the 5% level; significant: the interval excludes "
            "0 (Holm-adjusted over the settings where there are several).",
        ),
    ]
    if ts.note:
        blocks.append(Paragraph(ts.note))
    if not per_language.empty:
        marks = [e for e in ts.language_gains().values()]
        blocks += [
            Paragraph(multiplicity_note(len(marks), sum(e.significant for e in marks), sum(adjusted.values()))),
            Table(
                per_language, "language", str, "Gain over none per language, 95% interval (* excludes 0, † after Holm)."
            ),
        ]
    return blocks


def heading(ts: TargetScores, name: str, group: pd.DataFrame) -> str:
    seeds = sorted({str(int(s)) for s in group[group.target == ts.target].seed.dropna()})
    languages = group[(group.target == ts.target) & (group.split == "test")].language.nunique()
    return (
        f"{ts.target}{f' ({name})' if name else ''} ({ts.metric}, {languages} languages, "
        f"seeds: {', '.join(seeds) or 'n/a'})"
    )


def gains_blocks(
    scores: dict[tuple[str, str], TargetScores],
    groups: list[tuple[str, pd.DataFrame]],
    settings: list[str],
    figure: FigurePath,
) -> list[Block]:
    """Per target and grid group: the findings and forest plots, then the full tables (collapsed in HTML)."""
    blocks: list[Block] = []
    by_name = dict(groups)
    for (target, name), ts in scores.items():
        group = by_name[name]
        blocks += [
            Heading(heading(ts, name, group), 2),
            *findings_blocks(ts, figure, name),
            Details(f"Full tables: {target}{f' ({name})' if name else ''}", tuple(tables_blocks(ts, group, settings))),
        ]
    return blocks


# ---- grids, movement, selection ----


def movement_table(results: list[dict]) -> pd.DataFrame:
    """How far each trained setting moved the encoder (means over seeds; see train/meters.py)."""
    rows = [
        {
            "job": f"{r['kind']} {r['intermediate']}" + (f" -> {r['target']}" if r["target"] else ""),
            **r["train"]["movement"],
        }
        for r in results
        if (r.get("train") or {}).get("movement") and r["train"].get("recipe") != "probe"
    ]
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows)
    table = df.groupby("job", sort=False).agg(
        runs=("relative_change", "size"),
        relative_change=("relative_change", "mean"),
        max_abs_change=("max_abs_change", "max"),
        cka_english_dev=("cka_english_dev", "mean"),
    )
    return table.rename(
        columns={
            "relative_change": "relative weight change",
            "max_abs_change": "largest change",
            "cka_english_dev": "CKA before/after (English dev)",
        }
    )


def movement_blocks(results: list[dict]) -> list[Block]:
    moved = movement_table(results)
    if moved.empty:
        return []
    return [
        Heading("How far training moved the encoder", 2),
        Paragraph(
            "Relative change of the non-embedding weights, the largest single change, and linear CKA "
            "between the mean-pooled English dev representations before and after training (1 = unchanged)."
        ),
        Table(moved, "job", lambda v: f"{v:.3g}"),
    ]


def grid_groups(df: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[str, pd.DataFrame]]]:
    """Split a grid's rows for the target tables: varying ``intermediate.*`` grid values join the setting's
    column label (``mnli [intermediate.train.lr=1e-05]``); every other varying grid value (and the model, if
    several) makes its own group of tables, each with its own baseline. Without a grid: one unnamed group."""
    keys = [k for k in df.columns if k not in ROW_COLUMNS and k not in METER_COLUMNS and df[k].nunique() > 1]
    in_label = [k for k in keys if k.startswith("intermediate.")]
    df = df.copy()
    if in_label:

        def label(row: pd.Series) -> str:
            values = ", ".join(f"{k}={_value(row[k])}" for k in in_label if not pd.isna(row[k]))
            return f"{row.intermediate} [{values}]" if values else row.intermediate

        df["intermediate"] = df.apply(label, axis=1)
    by = [k for k in keys if k not in in_label] + (["model"] if df.model.nunique() > 1 else [])
    if not by:
        return df, [("", df)]
    probe = (df.recipe == "probe") & df[[k for k in by if k != "model"]].isna().all(axis=1)
    groups = df[~probe].groupby(by, dropna=False, sort=False)  # a probe shared by the groups joins each
    named = []
    for values, g in groups:
        values = values if isinstance(values, tuple) else (values,)
        name = ", ".join(f"{k}={v}" for k, v in zip(by, values) if not pd.isna(v))
        named.append((_group_order(values), name, pd.concat([g, df[probe & (df.model.isin(set(g.model)))]])))
    return df, [(name, g) for _, name, g in sorted(named, key=lambda x: x[0])]


def _value(v: object) -> object:
    """A grid value as written in the config: 16, not the 16.0 a column with gaps turns it into."""
    return int(v) if isinstance(v, float) and v.is_integer() else v


def _group_order(values: tuple) -> tuple:
    """Groups in the order of their grid values (not of when their jobs finished), missing values last."""
    return tuple((pd.isna(v), type(v).__name__, 0 if pd.isna(v) else v) for v in values)


def targets_of(df: pd.DataFrame, order: Sequence[str] = ()) -> list[str]:
    """The targets of ``df``: those in ``order`` first, in that order, then the rest alphabetically."""
    present = {t for t in df.target.unique() if t}
    return [t for t in order if t in present] + sorted(present - set(order))


INTRO = (
    "Scores in percent (mean over seeds). Zero-shot = every language but English. Each target section opens with "
    "its findings: every interval is a 95% interval over training seeds and test items (seeds with t-quantiles at "
    "seeds - 1 degrees of freedom, items by bootstrap resampling, jointly across languages for parallel test sets); "
    "a gain is significant only when that interval excludes 0, and never on one seed. The probe references fit a "
    "linear head on the frozen pretrained encoder (standardised, and L2-normalised as MTEB does): the floor any "
    "fine-tuned setting should beat."
)
