"""XTREME and XTREME-R scores of exported metric rows, which may lack some of a suite's tasks or languages.

The numbers are :func:`xstilts.metrics.suites.suite_scores` of the tasks run with every language: the official
report of google-research/xtreme's ``evaluate.py`` (a group only when all its tasks were run, ``all_task`` only when
every task was) and, under their own names, what that script does not report. A run lacking a task, or a language
of one, is labelled "partial <suite> (k of n tasks)" and names what it lacks.
"""

from __future__ import annotations

import pandas as pd

from xstilts.metrics.suites import SUITES, TASK_MEAN, Suite, SuiteTask, suite_scores

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


def _official_metrics(task: SuiteTask, per_language: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Each language's results with only the metrics the official score averages."""
    keys = _KEYS[task.metric]
    return {lang: {m: v for m, v in scores.items() if m in keys} for lang, scores in per_language.items()}


def _share_untrained(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows of jobs that train nothing (no recipe: retrieval off the encoder) join every recipe of their model and
    intermediate setting; they stand alone where that setting has no recipe."""
    untrained = rows["recipe"].isna()
    recipes = rows.loc[~untrained, _RUN].drop_duplicates()
    shared = rows[untrained].drop(columns="recipe").merge(recipes, on=_RUN[:2])
    trained_runs = pd.MultiIndex.from_frame(recipes[_RUN[:2]])
    alone = rows[untrained & ~pd.MultiIndex.from_frame(rows[_RUN[:2]]).isin(trained_runs)]
    return pd.concat([rows[~untrained], shared, alone], ignore_index=True)


def _summaries(s: Suite) -> list[str]:
    """The official report's overall and group keys, then the names of the summaries it does not report."""
    return ["all_task", *s.groups, *s.extra_groups, TASK_MEAN]


def score_rows(rows: pd.DataFrame, suite: str) -> pd.DataFrame:
    """One row per (model, intermediate, recipe) of exported metric rows (test split, each job's own task, mean over
    seeds): ``label``, ``missing`` (tasks not run, or lacking languages), then ``all_task`` and the groups of the
    official report, the scores it does not report, and each task's score; NaN where a score is not reported."""
    s = SUITES[suite]
    test = rows[(rows["split"] == "test") & rows["task"].isin(list(s.tasks)) & (rows["task"] == rows["target"])]
    means = _share_untrained(test).groupby([*_RUN, "task", "language", "metric"], dropna=False)["value"].mean()
    out = []
    for run, sub in means.groupby(level=_RUN, dropna=False):
        per_task: dict[str, dict[str, dict[str, float]]] = {}
        for (*_, task, lang, metric), value in sub.items():
            per_task.setdefault(task, {}).setdefault(lang, {})[metric] = value
        lacking = {t: [lang for lang in s.tasks[t].languages if lang not in v] for t, v in per_task.items()}
        complete = {t: _official_metrics(s.tasks[t], v) for t, v in per_task.items() if not lacking[t]}
        scores = suite_scores(s, complete)
        notes = [f"{t} (no {', '.join(lacking[t])})" if lacking.get(t) else t for t in scores.missing]
        reported = scores.official | scores.extra
        summaries = {k: reported[k] for k in _summaries(s) if k in reported}
        out.append(
            dict(zip(_RUN, run)) | {"label": scores.label, "missing": ", ".join(notes)} | summaries | scores.tasks
        )
    return pd.DataFrame(out, columns=[*_RUN, "label", "missing", *_summaries(s), *s.tasks])


def _caption(s: Suite, columns: list[str], missing: str) -> str:
    """What the table's runs lack, and every column the official report does not hold."""
    official = (
        "Scores as google-research/xtreme's evaluate.py reports them: a group only when all its tasks were run, "
        "all_task only when every task of the suite was."
    )
    parts = [official]
    if s.unscored:
        parts.append(
            f"It reports no all_task for {s.title}: it lists {', '.join(s.unscored)} with no language and never scores it."
        )
    if missing:
        parts.append(f"Not run: {missing}.")
    extra = []
    for c in columns:
        if c in s.unscored:
            task = s.tasks[c]
            extra.append(f"{c}: scored by xstilts ({task.metric} over its {len(task.languages)} languages)")
        elif c in s.extra_groups:
            extra.append(f"{c}: mean of {', '.join(s.extra_groups[c])}")
        elif c == TASK_MEAN:
            extra.append(f"{c}: unweighted mean of the task scores shown")
    if extra:
        parts.append(f"Not from evaluate.py: {'; '.join(extra)}.")
    return " ".join(parts)


def _run_name(run: pd.Series) -> str:
    return ", ".join("-" if pd.isna(run[c]) else str(run[c]) for c in _RUN)


def suite_tables(rows: pd.DataFrame) -> list[tuple[str, pd.DataFrame, str]]:
    """(heading, table, caption) for each suite in exported metric rows and each set of tasks its runs cover: the
    heading names the suite only for runs with every task and language ("partial XTREME-R (6 of 10 tasks)"
    otherwise); each table holds only the scores reported for its runs, indexed by "model, setting, recipe"."""
    out = []
    for name, s in SUITES.items():
        table = score_rows(rows, name)
        for (label, missing), runs in table.groupby(["label", "missing"]):
            frame = runs[[*_summaries(s), *s.tasks]].dropna(axis=1, how="all")
            frame.index = pd.Index([_run_name(r) for _, r in runs.iterrows()], name="model, setting, recipe")
            out.append((f"{label} scores", frame, _caption(s, list(frame.columns), missing)))
    return out
