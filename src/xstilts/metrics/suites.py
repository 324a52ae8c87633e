"""XTREME and XTREME-R as google-research/xtreme's ``evaluate.py`` defines them: tasks, languages, metrics, groups.

Read at commit 838c13b69daafb9328785d16caae2711e4012123. Language lists and their order are the official ones.
:func:`aggregate` is that script's JSON report: per task the unweighted mean of each metric over the task's
languages (``avg_<metric>``) and the task score ``avg_metric`` ((EM + F1) / 2 for QA); a group only when every one
of its tasks was scored, ``all_task`` only when every task of the suite was, each an unweighted mean of task scores.

LAReQA: the script lists it for XTREME-R with no languages and in no group, so its block is empty (``{}``) and
XTREME-R never gets ``all_task``. Where LAReQA's folders are there it writes that report, then stops with a KeyError
while printing; with every task there it stops before writing anything. :func:`aggregate` gives the report it writes
or would write, without ``all_task``. xstilts scores LAReQA itself, with mAP@20 on the 11 XQuAD-R languages; that
score, the XTREME-R paper's retrieval category (Tatoeba, Mewsli-X and LAReQA) and the mean of the tasks run are
reported apart from the official report, under their own names (:func:`suite_scores`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

QA_METRICS = ("squad", "mlqa")
TASK_MEAN = "mean of the tasks run"
PAPER_RETRIEVAL = "retrieval (XTREME-R paper, with LAReQA)"


@dataclass(frozen=True)
class SuiteTask:
    """One task of a suite: its test languages (official order), metric and file extension."""

    name: str
    languages: tuple[str, ...]
    metric: str  # accuracy | seqeval | squad | mlqa | bucc_f1 | map@20
    ext: str


@dataclass(frozen=True)
class Suite:
    name: str  # the --suite value
    title: str  # the benchmark's name
    tasks: dict[str, SuiteTask]
    groups: dict[str, tuple[str, ...]]  # the official report's group keys -> tasks, in the official order
    unscored: tuple[str, ...] = ()  # tasks the official script lists with no language
    extra_groups: dict[str, tuple[str, ...]] = field(default_factory=dict)  # groups it does not report

    @property
    def languages(self) -> tuple[str, ...]:
        """Every language code of the suite, sorted."""
        return tuple(sorted({lang for t in self.tasks.values() for lang in t.languages}))


def _langs(codes: str) -> tuple[str, ...]:
    return tuple(codes.split(","))


_PANX = (
    "ar,he,vi,id,jv,ms,tl,eu,ml,ta,te,af,nl,en,de,el,bn,hi,mr,ur,fa,fr,it,pt,es,bg,ru,ja,ka,ko,th,sw,yo,my,"
    "zh,kk,tr,et,fi,hu"
)
_UDPOS = "af,ar,bg,de,el,en,es,et,eu,fa,fi,fr,he,hi,hu,id,it,ja,kk,ko,mr,nl,pt,ru,ta,te,th,tl,tr,ur,vi,yo,zh"
_TATOEBA = "ar,he,vi,id,jv,tl,eu,ml,ta,te,af,nl,de,el,bn,hi,mr,ur,fa,fr,it,pt,es,bg,ru,ja,ka,ko,th,sw,zh,kk,tr,et,fi,hu"
_XQUAD = "en,es,de,el,ru,tr,ar,vi,th,zh,hi"
_XNLI = "ar,bg,de,el,en,es,fr,hi,ru,sw,th,tr,ur,vi,zh"
_MLQA = "en,es,de,ar,hi,vi,zh"
_TYDIQA = "en,ar,bn,fi,id,ko,ru,sw,te"


def _tasks(rows: list[tuple[str, str, str, str]]) -> dict[str, SuiteTask]:
    return {t: SuiteTask(t, _langs(langs), metric, ext) for t, langs, metric, ext in rows}


XTREME = Suite(
    "xtreme",
    "XTREME",
    _tasks(
        [
            ("pawsx", "de,en,es,fr,ja,ko,zh", "accuracy", "tsv"),
            ("xnli", _XNLI, "accuracy", "tsv"),
            ("panx", _PANX, "seqeval", "tsv"),
            ("udpos", _UDPOS, "seqeval", "tsv"),
            ("bucc2018", "de,fr,ru,zh", "bucc_f1", "tsv"),
            ("tatoeba", _TATOEBA, "accuracy", "tsv"),
            ("xquad", _XQUAD, "squad", "json"),
            ("mlqa", _MLQA, "mlqa", "json"),
            ("tydiqa", _TYDIQA, "squad", "json"),
        ]
    ),
    {
        "classification": ("pawsx", "xnli"),
        "tagging": ("udpos", "panx"),
        "qa": ("xquad", "mlqa", "tydiqa"),
        "retrieval": ("bucc2018", "tatoeba"),
    },
)

XTREME_R = Suite(
    "xtreme-r",
    "XTREME-R",
    _tasks(
        [
            ("xnli", _XNLI, "accuracy", "tsv"),
            ("panx", _PANX + ",qu,pl,uk,az,lt,pa,gu,ro", "seqeval", "tsv"),
            ("udpos", _UDPOS + ",lt,pl,uk,wo,ro", "seqeval", "tsv"),
            ("tatoeba", _TATOEBA + ",az,lt,pl,uk,ro", "accuracy", "tsv"),
            ("xcopa", "et,ht,id,it,qu,sw,ta,th,tr,vi,zh", "accuracy", "jsonl"),
            ("lareqa", "ar,de,el,en,es,hi,ru,th,tr,vi,zh", "map@20", "json"),  # xstilts' languages, not official
            ("mewslix", "ar,de,en,es,fa,ja,pl,ro,ta,tr,uk", "map@20", "json"),
            ("xquad", _XQUAD + ",ro", "squad", "json"),
            ("mlqa", _MLQA, "mlqa", "json"),
            ("tydiqa", _TYDIQA, "squad", "json"),
        ]
    ),
    {
        "classification": ("xnli", "xcopa"),
        "tagging": ("udpos", "panx"),
        "qa": ("xquad", "mlqa", "tydiqa"),
        "retrieval": ("tatoeba", "mewslix"),
        "multi_choice": ("xcopa",),
    },
    unscored=("lareqa",),
    extra_groups={PAPER_RETRIEVAL: ("tatoeba", "mewslix", "lareqa")},
)

SUITES: dict[str, Suite] = {s.name: s for s in (XTREME, XTREME_R)}


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values)


def task_report(task: SuiteTask, per_language: dict[str, dict[str, float]]) -> dict:
    """Official per-task block: ``{metric: {lang: score}}``, ``avg_<metric>`` and ``avg_metric``.

    ``per_language`` maps each of the task's languages to its metric dict (e.g. exact_match, f1).
    """
    report: dict = {}
    for lang in task.languages:
        for metric, value in per_language[lang].items():
            report.setdefault(metric, {})[lang] = value
    report.update({f"avg_{m}": _mean(report[m].values()) for m in list(report)})
    if task.metric in QA_METRICS:
        report["avg_metric"] = (report["avg_exact_match"] + report["avg_f1"]) / 2
    else:
        key = next(k for k in ("avg_f1", "avg_accuracy", "avg_map@20") if k in report)
        report["avg_metric"] = report[key]
    return report


def _suite(suite: Suite | str, per_task: dict) -> Suite:
    suite = SUITES[suite] if isinstance(suite, str) else suite
    unknown = set(per_task) - set(suite.tasks)
    if unknown:
        raise ValueError(f"tasks not in {suite.name}: {', '.join(sorted(unknown))}")
    for task, per_language in per_task.items():
        lacking = [lang for lang in suite.tasks[task].languages if lang not in per_language]
        if lacking:
            raise ValueError(f"{task}: no results for {', '.join(lacking)}")
    return suite


def _complete_groups(groups: dict[str, tuple[str, ...]], scores: dict[str, float]) -> dict[str, float]:
    """Each group whose every task has a score: the mean of its task scores."""
    return {g: _mean(scores[t] for t in ts) for g, ts in groups.items() if all(t in scores for t in ts)}


def aggregate(suite: Suite | str, per_task: dict[str, dict[str, dict[str, float]]]) -> dict:
    """The official JSON report from ``{task: {lang: {metric: score}}}`` for the tasks run, each with all its
    languages: ``all_task``, the complete groups, then the task blocks, all in the official order."""
    suite = _suite(suite, per_task)
    blocks = {
        t: {} if t in suite.unscored else task_report(suite.tasks[t], per_task[t]) for t in suite.tasks if t in per_task
    }
    scores = {t: block["avg_metric"] for t, block in blocks.items() if block}
    overall = {"all_task": _mean(scores.values())} if set(scores) == set(suite.tasks) else {}
    return overall | _complete_groups(suite.groups, scores) | blocks


@dataclass(frozen=True)
class SuiteScores:
    """A suite's scores for the tasks run: the official report and, apart from it, what it does not report."""

    label: str  # the suite's title when every task was run, else "partial <title> (k of n tasks)"
    missing: tuple[str, ...]  # the suite's tasks not run, in the official order
    tasks: dict[str, float]  # each task run: its score (an unscored task's from ``extra``)
    official: dict  # :func:`aggregate`
    extra: dict  # name -> score (or an unscored task's block) that the official script does not report

    def as_json(self) -> dict:
        return {
            "label": self.label,
            "missing": list(self.missing),
            "official (evaluate.py)": self.official,
            "not in evaluate.py": self.extra,
        }


def _label(suite: Suite, tasks_run: int) -> str:
    """The suite's title only for a complete run."""
    n = len(suite.tasks)
    return suite.title if tasks_run == n else f"partial {suite.title} ({tasks_run} of {n} tasks)"


def suite_scores(suite: Suite | str, per_task: dict[str, dict[str, dict[str, float]]]) -> SuiteScores:
    """The official report and, under their own names, the unscored tasks' blocks (xstilts' scoring), the complete
    extra groups and, where the official report has no ``all_task``, the mean of the tasks run."""
    suite = _suite(suite, per_task)
    official = aggregate(suite, per_task)
    extra = {t: task_report(suite.tasks[t], per_task[t]) for t in suite.unscored if t in per_task}
    blocks = official | extra
    scores = {t: blocks[t]["avg_metric"] for t in suite.tasks if t in per_task}
    extra |= _complete_groups(suite.extra_groups, scores)
    if scores and "all_task" not in official:
        extra[TASK_MEAN] = _mean(scores.values())
    missing = tuple(t for t in suite.tasks if t not in per_task)
    return SuiteScores(_label(suite, len(scores)), missing, scores, official, extra)
