"""Predictions and labels written in the layout the official XTREME evaluator reads (``<task>/test-<lang>.<ext>``),
so ``xstilts score`` (or a leaderboard) can score them. The format of the task writes the files' content."""

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
) -> bool:
    """Write ``job_dir/{predictions,labels}/<task>/test-<lang>.<ext>`` when the task belongs to a suite."""
    task = suite_task(task_name)
    if task is None:
        return False
    name = f"{task.name}/test-{language}.{task.ext}"
    pred_text, label_text = fmt.official_files(predictions, examples, task.ext)
    atomic_write_text(Path(job_dir) / "predictions" / name, pred_text)
    atomic_write_text(Path(job_dir) / "labels" / name, label_text)
    return True
