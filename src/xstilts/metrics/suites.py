"""XTREME and XTREME-R as xtreme's ``evaluate.py`` defines them: tasks, languages, metrics, groups, aggregation.

Language lists and their order are the official ones. Aggregation follows the official report: per
task the unweighted mean of each metric over the task's languages (``avg_<metric>``), the task score
``avg_metric`` ((EM + F1) / 2 for QA), group scores and ``all_task`` as unweighted means of task scores.

One departure, for XTREME-R only: the official script lists LAReQA with no languages and leaves it out
of every group, so it can never report ``all_task``. Here LAReQA is scored on the 11 XQuAD-R languages
with mAP@20 and counts in the retrieval group, as in the XTREME-R paper.
"""

from __future__ import annotations

from dataclasses import dataclass

QA_METRICS = ("squad", "mlqa")


@dataclass(frozen=True)
class SuiteTask:
    """One task of a suite: its test languages (official order), metric, main group and file extension."""

    name: str
    languages: tuple[str, ...]
    metric: str  # accuracy | seqeval | squad | mlqa | bucc_f1 | map@20
    group: str
    ext: str


@dataclass(frozen=True)
class Suite:
    name: str
    tasks: dict[str, SuiteTask]
    groups: dict[str, tuple[str, ...]]  # report key -> tasks, in the official order

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


def _suite(name: str, rows: list[tuple[str, str, str, str, str]], groups: dict[str, tuple[str, ...]]) -> Suite:
    tasks = {t: SuiteTask(t, _langs(langs), metric, group, ext) for t, langs, metric, group, ext in rows}
    return Suite(name, tasks, groups)


XTREME = _suite(
    "xtreme",
    [
        ("pawsx", "de,en,es,fr,ja,ko,zh", "accuracy", "classification", "tsv"),
        ("xnli", _XNLI, "accuracy", "classification", "tsv"),
        ("panx", _PANX, "seqeval", "tagging", "tsv"),
        ("udpos", _UDPOS, "seqeval", "tagging", "tsv"),
        ("bucc2018", "de,fr,ru,zh", "bucc_f1", "retrieval", "tsv"),
        ("tatoeba", _TATOEBA, "accuracy", "retrieval", "tsv"),
        ("xquad", _XQUAD, "squad", "qa", "json"),
        ("mlqa", _MLQA, "mlqa", "qa", "json"),
        ("tydiqa", _TYDIQA, "squad", "qa", "json"),
    ],
    {
        "classification": ("pawsx", "xnli"),
        "tagging": ("udpos", "panx"),
        "qa": ("xquad", "mlqa", "tydiqa"),
        "retrieval": ("bucc2018", "tatoeba"),
    },
)

XTREME_R = _suite(
    "xtreme-r",
    [
        ("xnli", _XNLI, "accuracy", "classification", "tsv"),
        ("panx", _PANX + ",qu,pl,uk,az,lt,pa,gu,ro", "seqeval", "tagging", "tsv"),
        ("udpos", _UDPOS + ",lt,pl,uk,wo,ro", "seqeval", "tagging", "tsv"),
        ("tatoeba", _TATOEBA + ",az,lt,pl,uk,ro", "accuracy", "retrieval", "tsv"),
        ("xcopa", "et,ht,id,it,qu,sw,ta,th,tr,vi,zh", "accuracy", "classification", "jsonl"),
        ("lareqa", "ar,de,el,en,es,hi,ru,th,tr,vi,zh", "map@20", "retrieval", "json"),
        ("mewslix", "ar,de,en,es,fa,ja,pl,ro,ta,tr,uk", "map@20", "retrieval", "json"),
        ("xquad", _XQUAD + ",ro", "squad", "qa", "json"),
        ("mlqa", _MLQA, "mlqa", "qa", "json"),
        ("tydiqa", _TYDIQA, "squad", "qa", "json"),
    ],
    {
        "classification": ("xnli", "xcopa"),
        "tagging": ("udpos", "panx"),
        "qa": ("xquad", "mlqa", "tydiqa"),
        "retrieval": ("tatoeba", "mewslix", "lareqa"),
        "multi_choice": ("xcopa",),  # an official report key of its own
    },
)

SUITES: dict[str, Suite] = {s.name: s for s in (XTREME, XTREME_R)}


def _mean(values) -> float:
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


def aggregate(suite: Suite | str, per_task: dict[str, dict[str, dict[str, float]]]) -> dict:
    """The official JSON report from ``{task: {lang: {metric: score}}}`` for any subset of tasks.

    ``all_task`` appears only when every task is present, a group only when all its tasks are;
    then come the groups and the task blocks, all in the official order.
    """
    suite = SUITES[suite] if isinstance(suite, str) else suite
    unknown = set(per_task) - set(suite.tasks)
    if unknown:
        raise ValueError(f"tasks not in {suite.name}: {', '.join(sorted(unknown))}")
    tasks = {t: task_report(suite.tasks[t], per_task[t]) for t in suite.tasks if t in per_task}
    out: dict = {}
    if len(tasks) == len(suite.tasks):
        out["all_task"] = _mean(r["avg_metric"] for r in tasks.values())
    for group, members in suite.groups.items():
        if all(t in tasks for t in members):
            out[group] = _mean(tasks[t]["avg_metric"] for t in members)
    return out | tasks
