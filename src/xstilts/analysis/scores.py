"""XTREME and XTREME-R suite scores from results that may lack some of a suite's tasks.

Task scores are the official ones (:func:`xstilts.metrics.suites.aggregate`). The official ``evaluate.py``
(google-research/xtreme at 838c13b69daafb9328785d16caae2711e4012123) reports a group only when every task of it is
there and ``all_task`` only when every task of the suite is, and names no missing task. Here a group and the overall
score are means over the tasks present instead, and a score with any task missing is marked partial and names the
missing tasks; with every task present the numbers are the official ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import fmean

import pandas as pd

from xstilts.metrics.suites import SUITES, SuiteTask, aggregate

# the per-language scores the official report averages, by the task's metric scheme
_KEYS = {
    "accuracy": ("accuracy",),
    "seqeval": ("f1",),
    "bucc_f1": ("f1",),
    "squad": ("exact_match", "f1"),
    "mlqa": ("exact_match", "f1"),
    "map@20": ("map@20",),
}
_RUN = ["model", "intermediate", "recipe"]


@dataclass(frozen=True)
class SuiteScores:
    """Task scores, group and overall means over the tasks present, and the missing tasks (group -> its missing
    tasks, "all" -> every one; empty when none is)."""

    tasks: dict[str, float]
    groups: dict[str, float]
    score: float | None
    missing: dict[str, list[str]]
    partial: bool


def _official(task: SuiteTask, per_language: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """The task's languages with only the metrics its official score averages."""
    lacking = [lang for lang in task.languages if lang not in per_language]
    if lacking:
        raise ValueError(f"{task.name}: no results for {', '.join(lacking)}")
    keys = _KEYS[task.metric]
    return {lang: {m: v for m, v in per_language[lang].items() if m in keys} for lang in task.languages}


def suite_scores(per_task: dict[str, dict[str, dict[str, float]]], suite: str) -> SuiteScores:
    """Scores of a suite from ``{task: {language: {metric: value}}}`` for any of its tasks, each with every one of
    its languages."""
    s = SUITES[suite]
    report = aggregate(s, {t: _official(s.tasks[t], v) if t in s.tasks else v for t, v in per_task.items()})
    tasks = {t: report[t]["avg_metric"] for t in s.tasks if t in report}
    groups = {g: fmean(tasks[t] for t in ts if t in tasks) for g, ts in s.groups.items() if set(ts) & set(tasks)}
    missing = {g: [t for t in ts if t not in tasks] for g, ts in s.groups.items() if set(ts) - set(tasks)}
    absent = [t for t in s.tasks if t not in tasks]
    if absent:
        missing["all"] = absent
    return SuiteScores(tasks, groups, fmean(tasks.values()) if tasks else None, missing, bool(absent))


def _share_untrained(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows of jobs that train nothing (no recipe: retrieval off the encoder) join every recipe of their model and
    intermediate setting; they stand alone where that setting has no recipe."""
    untrained = rows["recipe"].isna()
    recipes = rows.loc[~untrained, _RUN].drop_duplicates()
    shared = rows[untrained].drop(columns="recipe").merge(recipes, on=_RUN[:2])
    trained_runs = pd.MultiIndex.from_frame(recipes[_RUN[:2]])
    alone = rows[untrained & ~pd.MultiIndex.from_frame(rows[_RUN[:2]]).isin(trained_runs)]
    return pd.concat([rows[~untrained], shared, alone], ignore_index=True)


def score_rows(rows: pd.DataFrame, suite: str) -> pd.DataFrame:
    """One row per (model, intermediate, recipe) of exported metric rows: ``score``, each group, each task (test
    split, each job's own task, mean over seeds) and ``missing``, the missing tasks and those lacking languages."""
    s = SUITES[suite]
    test = rows[(rows["split"] == "test") & rows["task"].isin(list(s.tasks)) & (rows["task"] == rows["target"])]
    means = _share_untrained(test).groupby([*_RUN, "task", "language", "metric"], dropna=False)["value"].mean()
    out = []
    for run, sub in means.groupby(level=_RUN, dropna=False):
        per_task: dict[str, dict[str, dict[str, float]]] = {}
        for (*_, task, lang, metric), value in sub.items():
            per_task.setdefault(task, {}).setdefault(lang, {})[metric] = value
        lacking = {t: [lang for lang in s.tasks[t].languages if lang not in v] for t, v in per_task.items()}
        lacking = {t: langs for t, langs in lacking.items() if langs}
        scores = suite_scores({t: v for t, v in per_task.items() if t not in lacking}, suite)
        notes = [f"{t} (no {', '.join(lacking[t])})" if t in lacking else t for t in scores.missing.get("all", [])]
        run_scores = {"score": scores.score, **scores.groups, **scores.tasks, "missing": ", ".join(notes)}
        out.append(dict(zip(_RUN, run)) | run_scores)
    return pd.DataFrame(out, columns=[*_RUN, "score", *s.groups, *s.tasks, "missing"])
