"""report.md: per target task, languages x intermediate settings, averages and gains over the baseline."""

from __future__ import annotations

import pandas as pd

from xstilts.config import NONE_SETTING
from xstilts.evaluate.metrics import primary_metric


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
    table = table[[s for s in settings if s in table.columns]]
    langs = sorted(table.index, key=lambda lang: (lang != "en", lang))
    table = table.loc[langs]
    zero_shot = table.drop(index="en", errors="ignore")
    summary = pd.DataFrame({"avg (all)": table.mean(), "avg (zero-shot)": zero_shot.mean()}).T
    if NONE_SETTING in table.columns:
        summary.loc["gain vs none (zero-shot)"] = zero_shot.mean() - zero_shot.mean()[NONE_SETTING]
    return pd.concat([table, summary])


def build_report(rows: list[dict], settings: list[str], title: str) -> str:
    """The markdown report of an experiment's metric rows."""
    df = pd.DataFrame(rows)
    parts = [f"# {title}", "", "Scores in percent (mean over seeds). Zero-shot = every language but English.", ""]
    for target in sorted(t for t in df.target.unique() if t):
        sub = df[(df.target == target) & (df.split == "test")]
        seeds = sorted(str(s) for s in df[df.target == target].seed.dropna().unique())
        parts += [f"## {target} ({primary_metric(set(sub.metric))}, {sub.language.nunique()} languages, seeds: "
                  f"{', '.join(seeds) or 'n/a'})", "", _markdown(target_table(df, target, settings), "language"), ""]
    inter = df[df.kind == "intermediate"]
    if len(inter):
        dev = inter.pivot_table(index="intermediate", columns="task", values="value", aggfunc="mean")
        parts += ["## Intermediate tasks: English dev", "", _markdown(dev, "setting"), ""]
    return "\n".join(parts)
