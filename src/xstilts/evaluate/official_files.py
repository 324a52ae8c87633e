"""Predictions and labels of every test language, in the layout the official XTREME evaluator reads
(``<task>/test-<lang>.<ext>``), so ``xstilts score`` (or a leaderboard) can score a suite's tasks; other tasks
(pocket, user tasks) get the same layout. The format of the task writes the files' content."""

from __future__ import annotations

from pathlib import Path

from xstilts.cache import atomic_write_text
from xstilts.formats.base import Format
from xstilts.metrics.suites import SUITES, SuiteTask


def suite_task(name: str) -> SuiteTask | None:
    """The task's entry in XTREME or XTREME-R (whichever lists more languages), or None."""
    found = [s.tasks[name] for s in SUITES.values() if name in s.tasks]
    return max(found, key=lambda t: len(t.languages)) if found else None


def write_official(
    job_dir: Path, fmt: Format, task_name: str, language: str, predictions, examples: list[dict]
) -> None:
    """Write ``job_dir/{predictions,labels}/<task>/test-<lang>.<ext>`` (the suite's extension for a suite task,
    else the format's own, ``Format.file_ext``) unless the format has no prediction files."""
    task = suite_task(task_name)
    ext = task.ext if task else fmt.file_ext
    name = f"{task_name}/test-{language}.{ext}"
    files = fmt.official_files(predictions, examples, ext)
    if files is None:
        return
    pred_text, label_text = files
    atomic_write_text(Path(job_dir) / "predictions" / name, pred_text)
    atomic_write_text(Path(job_dir) / "labels" / name, label_text)
