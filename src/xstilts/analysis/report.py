"""report.md: per target task, languages x intermediate settings, averages and gains over the baseline, with
confidence intervals across seeds and from a paired bootstrap over test examples (and seeds)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from xstilts.analysis.document import Block, Heading, Paragraph, Table, markdown
from xstilts.analysis.stats import Interval, bootstrap_gain, bootstrap_score, seed_interval, signed
from xstilts.analysis.trends import Correlation, correlation
from xstilts.config.schema import NONE_SETTING
from xstilts.experiments.export import METER_COLUMNS, ROW_COLUMNS
from xstilts.metrics import per_example

PROBE = "probe (frozen)"  # the column of the linear probe on the frozen pretrained encoder
Examples = Callable[[str], dict[str, np.ndarray]]  # job id -> its per-example statistics


def _fmt(x: float) -> str:
    return "" if pd.isna(x) else f"{x:.1f}" if round(x, 1) != 0 else "0.0"


def _headline(rows: pd.DataFrame, target: str) -> pd.DataFrame:
    """A target's test rows of its headline metric, the probe's setting named PROBE."""
    sub = rows[(rows.target == target) & (rows.split == "test") & (rows.task == target) & rows.headline].copy()
    sub.loc[sub.recipe == "probe", "intermediate"] = PROBE
    return sub


def _order(columns, settings: list[str]) -> list[str]:
    rest = sorted(set(columns) - set(settings) - {PROBE})
    return [s for s in settings if s in columns] + rest + ([PROBE] if PROBE in columns else [])


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


def _runs(sub: pd.DataFrame, setting: str, metric: str, languages: list[str], examples: Examples) -> list[dict]:
    """Per-example statistics of each run (job) of a setting, by language; runs missing any are left out."""
    runs = []
    for job_id in sorted(set(sub[sub.intermediate == setting].job_id)):
        stats = examples(job_id)
        run = {lang: stats.get(per_example.key(sub.task.iloc[0], "test", lang, metric)) for lang in languages}
        if all(v is not None for v in run.values()):
            runs.append(run)
    return runs


def _ci(interval: Interval | None, sign: bool = False) -> str:
    if interval is None or math.isnan(interval.low):
        return "n/a"
    f = signed if sign else _fmt
    return f"[{f(interval.low)}, {f(interval.high)}]"


@dataclass(frozen=True)
class SettingScore:
    """A setting's zero-shot average: its runs, the Student-t interval across them, the bootstrap interval over
    test examples (and runs), and the paired-bootstrap gain over the baseline ("avg" and per language)."""

    runs: int
    seeds: Interval
    score: Interval | None
    gain: dict[str, Interval] | None


def setting_scores(
    rows: pd.DataFrame, target: str, settings: list[str], examples: Examples, resamples: int = 2000
) -> dict[str, SettingScore]:
    """Every setting of a target's rows (one grid group), in report order. The bootstrap resamples test examples
    (paired across settings) and, with several runs, the runs."""
    sub = _headline(rows, target)
    metric = sub.metric.iloc[0]
    languages = sorted(set(sub.language) - {"en"})
    runs = {c: _runs(sub, c, metric, languages, examples) for c in _order(set(sub.intermediate), settings)}
    base = runs.get(NONE_SETTING) or []
    out = {}
    for c, arm in runs.items():
        per_seed = sub[(sub.intermediate == c) & sub.language.isin(languages)].groupby("job_id").value.mean()
        gain = bootstrap_gain(arm, base, resamples) if arm and base and c != NONE_SETTING else None
        out[c] = SettingScore(
            len(per_seed),
            Interval(*seed_interval(per_seed.tolist())),
            bootstrap_score(arm, resamples)["avg"] if arm else None,
            gain,
        )
    return out


def uncertainty_tables(
    rows: pd.DataFrame, target: str, settings: list[str], examples: Examples, resamples: int = 2000
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per setting: zero-shot average with its CI across seeds and its bootstrap CI, and the gain over the
    baseline with its paired-bootstrap CI; per language x setting: the gain with its CI, "*" where it excludes 0)."""
    return score_tables(setting_scores(rows, target, settings, examples, resamples))


def score_tables(scores: dict[str, SettingScore]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The tables of :func:`uncertainty_tables` from scores already computed."""
    summary = []
    for c, sc in scores.items():
        gain = sc.gain["avg"] if sc.gain else None
        summary.append(
            {
                "setting": c,
                "runs": sc.runs,
                "zero-shot avg": f"{sc.seeds.estimate:.1f}",
                "seed 95% CI": _ci(sc.seeds),
                "bootstrap 95% CI": _ci(sc.score),
                "gain vs none": signed(gain.estimate) if gain else "",
                "gain 95% CI": _ci(gain, sign=True) if gain else "",
                "significant": "" if gain is None else ("yes" if gain.significant else "no (within noise)"),
            }
        )
    per_language = pd.DataFrame(
        {
            c: {lang: f"{iv}{'*' if iv.significant else ''}" for lang, iv in sc.gain.items() if lang != "avg"}
            for c, sc in scores.items()
            if sc.gain
        }
    )
    return pd.DataFrame(summary).set_index("setting"), per_language


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


def _english_dev(df: pd.DataFrame) -> pd.DataFrame:
    """Headline English dev score of each intermediate task per setting (mean over seeds)."""
    inter = df[(df.kind == "intermediate") & (df.split == "dev") & df.headline]
    return inter.pivot_table(index="intermediate", columns="task", values="value", aggfunc="mean")


def selection_table(df: pd.DataFrame, targets: list[str]) -> tuple[pd.DataFrame, dict[str, Correlation | None]]:
    """Single intermediate tasks ranked by English dev score, with the zero-shot gain each gave per target,
    and per target the Spearman correlation of dev score and gain with its bootstrap CI (None below 3 tasks)."""
    dev = _english_dev(df)
    singles = pd.Series({s: dev.loc[s, s] for s in dev.index if "+" not in s and s in dev.columns}, dtype=float)
    table = pd.DataFrame({"english dev": singles, "rank": singles.rank(ascending=False, method="min")})
    rho = {}
    for target in targets:
        gains = target_table(df, target, [NONE_SETTING]).loc["gain vs none (zero-shot)"]
        table[f"gain {target}"] = gains.reindex(table.index)
        both = table[["english dev", f"gain {target}"]].dropna()
        rho[target] = correlation(both.iloc[:, 0], both.iloc[:, 1], "spearman") if len(both) >= 3 else None
    return table.sort_values("rank"), rho


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


INTRO = (
    "Scores in percent (mean over seeds). Zero-shot = every language but English. "
    f"{PROBE}: a linear probe fit on the frozen pretrained encoder (English train, L2 chosen on English dev), "
    "the reference any fine-tuned setting should beat."
)


Scores = Callable[[str, str, pd.DataFrame], dict[str, SettingScore]]  # (target, group name, group) -> scores


def gains_blocks(
    df: pd.DataFrame,
    groups: list[tuple[str, pd.DataFrame]],
    settings: list[str],
    examples: Examples,
    scores: Scores | None = None,
) -> list[Block]:
    """Per target and grid group: the score table, the zero-shot averages and gains with their intervals, and
    the per-language gains. ``scores`` gives a group's setting scores when the caller has them already."""
    scores = scores or (lambda target, name, group: setting_scores(group, target, settings, examples))
    blocks: list[Block] = []
    for target in targets_of(df):
        for name, group in groups:
            sub = group[(group.target == target) & (group.split == "test")]
            if (sub.recipe != "probe").sum() == 0:  # a shared probe alone makes no table
                continue
            seeds = sorted({str(int(s)) for s in group[group.target == target].seed.dropna()})
            metric = sub[sub.headline].metric.iloc[0]
            heading = (
                f"{target}{f' ({name})' if name else ''} ({metric}, "
                f"{sub.language.nunique()} languages, seeds: {', '.join(seeds) or 'n/a'})"
            )
            summary, per_language = score_tables(scores(target, name, group))
            blocks += [
                Heading(heading, 2),
                Table(target_table(group, target, settings), "language", _fmt),
                Paragraph(
                    "Zero-shot average with 95% confidence intervals: across seeds (Student t), and from a paired "
                    "bootstrap over test examples and seeds (2,000 resamples). A gain whose interval includes 0 "
                    "is within noise."
                ),
                Table(summary, "setting", str),
            ]
            if not per_language.empty:
                blocks += [
                    Paragraph("Gain over none per language, paired-bootstrap 95% CI (* = the interval excludes 0):"),
                    Table(per_language, "language", str),
                ]
    return blocks


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


def selection_blocks(df: pd.DataFrame, groups: list[tuple[str, pd.DataFrame]]) -> list[Block]:
    """English dev rank of single intermediate tasks against the zero-shot gain each gave (one configuration
    only: nothing under a grid)."""
    if (
        len(groups) > 1
        or any(k.startswith("intermediate.") for k in df.columns)
        or not (df.kind == "intermediate").any()
    ):
        return []
    table, rho = selection_table(
        df, [t for t in targets_of(df) if NONE_SETTING in set(df[df.target == t].intermediate)]
    )
    return [
        Heading("Intermediate tasks: English dev rank and zero-shot gain", 2),
        Paragraph("Rank 1 = best English dev score; gain = zero-shot average minus the baseline's."),
        Table(table, "task", _fmt),
        *(
            Paragraph(
                f"Spearman correlation of English dev score and {t} gain: "
                + ("n/a (fewer than 3 tasks)" if r is None else str(r))
            )
            for t, r in rho.items()
        ),
        Paragraph("English dev of every intermediate job:"),
        Table(_english_dev(df), "setting", _fmt),
    ]


def targets_of(df: pd.DataFrame) -> list[str]:
    return sorted(t for t in df.target.unique() if t)


def build_report(
    rows: list[dict], settings: list[str], title: str, examples: Examples = lambda job_id: {}, results: list[dict] = ()
) -> str:
    """The markdown report of an experiment's metric rows (with ``grid`` columns, one table per grid group);
    ``examples`` gives a job's per-example statistics, from which the confidence intervals come, and
    ``results`` (the jobs' results) the encoder-movement meters."""
    df, groups = grid_groups(pd.DataFrame(rows))
    blocks = [Heading(title, 1), Paragraph(INTRO), *gains_blocks(df, groups, settings, examples)]
    blocks += movement_blocks(list(results)) + selection_blocks(df, groups)
    return markdown(blocks, Path("."))
