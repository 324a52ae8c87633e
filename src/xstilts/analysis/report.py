"""report.md: per target task, languages x intermediate settings, averages and gains over the baseline."""

from __future__ import annotations

import pandas as pd

from xstilts.config import NONE_SETTING
from xstilts.evaluate.metrics import primary_metric
from xstilts.experiments.store import ROW_COLUMNS


def _fmt(x: float) -> str:
    return "" if pd.isna(x) else f"{x:.1f}"


def _markdown(df: pd.DataFrame, index_name: str) -> str:
    cols = [index_name, *map(str, df.columns)]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for idx, row in df.iterrows():
        lines.append("| " + " | ".join([str(idx), *(_fmt(v) for v in row)]) + " |")
    return "\n".join(lines)


def target_table(rows: pd.DataFrame, target: str, settings: list[str]) -> pd.DataFrame:
    """Test scores (mean over seeds) per language x setting, then average rows and the gain over 'none'."""
    sub = rows[(rows.target == target) & (rows.split == "test") & (rows.task == target)]
    metric = primary_metric(set(sub.metric))
    sub = sub[sub.metric == metric]
    table = sub.pivot_table(index="language", columns="intermediate", values="value", aggfunc="mean")
    table = table[[s for s in settings if s in table.columns] + sorted(set(table.columns) - set(settings))]
    langs = sorted(table.index, key=lambda lang: (lang != "en", lang))
    table = table.loc[langs]
    zero_shot = table.drop(index="en", errors="ignore")
    summary = pd.DataFrame({"avg (all)": table.mean(), "avg (zero-shot)": zero_shot.mean()}).T
    if NONE_SETTING in table.columns:
        summary.loc["gain vs none (zero-shot)"] = zero_shot.mean() - zero_shot.mean()[NONE_SETTING]
    return pd.concat([table, summary])


def _english_dev(df: pd.DataFrame) -> pd.DataFrame:
    """Headline English dev score of each intermediate task per setting (mean over seeds)."""
    inter = df[(df.kind == "intermediate") & (df.split == "dev")]
    keep = inter.groupby("task").metric.transform(lambda m: m == primary_metric(set(m)))
    return inter[keep].pivot_table(index="intermediate", columns="task", values="value", aggfunc="mean")


def selection_table(df: pd.DataFrame, targets: list[str]) -> tuple[pd.DataFrame, dict[str, float | None]]:
    """Single intermediate tasks ranked by English dev score, with the zero-shot gain each gave per target,
    and per target the Spearman correlation of dev score and gain (None below 3 tasks)."""
    from scipy.stats import spearmanr

    dev = _english_dev(df)
    singles = pd.Series({s: dev.loc[s, s] for s in dev.index if "+" not in s and s in dev.columns}, dtype=float)
    table = pd.DataFrame({"english dev": singles, "rank": singles.rank(ascending=False, method="min")})
    rho = {}
    for target in targets:
        gains = target_table(df, target, [NONE_SETTING]).loc["gain vs none (zero-shot)"]
        table[f"gain {target}"] = gains.reindex(table.index)
        both = table[["english dev", f"gain {target}"]].dropna()
        rho[target] = float(spearmanr(both.iloc[:, 0], both.iloc[:, 1]).statistic) if len(both) >= 3 else None
    return table.sort_values("rank"), rho


def _grid_groups(df: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[str, pd.DataFrame]]]:
    """Split a grid's rows for the target tables: varying ``intermediate.*`` grid values join the setting's
    column label (``mnli [intermediate.train.lr=1e-05]``); every other varying grid value (and the model, if
    several) makes its own group of tables, each with its own baseline. Without a grid: one unnamed group."""
    keys = [k for k in df.columns if k not in ROW_COLUMNS and df[k].nunique() > 1]
    in_label = [k for k in keys if k.startswith("intermediate.")]
    df = df.copy()
    if in_label:
        def label(row: pd.Series) -> str:
            values = ", ".join(f"{k}={row[k]}" for k in in_label if not pd.isna(row[k]))
            return f"{row.intermediate} [{values}]" if values else row.intermediate

        df["intermediate"] = df.apply(label, axis=1)
    by = [k for k in keys if k not in in_label] + (["model"] if df.model.nunique() > 1 else [])
    if not by:
        return df, [("", df)]
    groups = df.groupby(by, dropna=False, sort=False)
    return df, [(", ".join(f"{k}={v}" for k, v in zip(by, values if isinstance(values, tuple) else (values,))
                           if not pd.isna(v)), g) for values, g in groups]


def build_report(rows: list[dict], settings: list[str], title: str) -> str:
    """The markdown report of an experiment's metric rows (with ``grid`` columns, one table per grid group)."""
    df, groups = _grid_groups(pd.DataFrame(rows))
    parts = [f"# {title}", "", "Scores in percent (mean over seeds). Zero-shot = every language but English.", ""]
    targets = sorted(t for t in df.target.unique() if t)
    for target in targets:
        for name, group in groups:
            sub = group[(group.target == target) & (group.split == "test")]
            if sub.empty:
                continue
            seeds = sorted({str(int(s)) for s in group[group.target == target].seed.dropna()})
            parts += [f"## {target}{f' ({name})' if name else ''} ({primary_metric(set(sub.metric))}, "
                      f"{sub.language.nunique()} languages, seeds: {', '.join(seeds) or 'n/a'})", "",
                      _markdown(target_table(group, target, settings), "language"), ""]
    if len(groups) > 1 or any(k.startswith("intermediate.") for k in df.columns):
        return "\n".join(parts)  # the selection table compares tasks under one configuration only
    if (df.kind == "intermediate").any():
        table, rho = selection_table(df, [t for t in targets if NONE_SETTING in set(df[df.target == t].intermediate)])
        parts += ["## Intermediate tasks: English dev rank and zero-shot gain", "",
                  "Rank 1 = best English dev score; gain = zero-shot average minus the baseline's.", "",
                  _markdown(table, "task"), ""]
        parts += [f"Spearman correlation of English dev score and {t} gain: "
                  + ("n/a (fewer than 3 tasks)" if r is None else f"{r:.2f}") for t, r in rho.items()]
        parts += ["", "English dev of every intermediate job:", "", _markdown(_english_dev(df), "setting"), ""]
    return "\n".join(parts)
