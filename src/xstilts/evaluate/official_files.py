"""Predictions and labels written in the layout the official XTREME evaluator reads (``<task>/test-<lang>.<ext>``),
so ``xstilts score`` (or a leaderboard) can score them."""

from __future__ import annotations

import json
from pathlib import Path

from xstilts.cache import atomic_write_text
from xstilts.evaluate.suites import SUITES, SuiteTask


def suite_task(name: str) -> SuiteTask | None:
    """The task's entry in XTREME or XTREME-R (whichever lists more languages), or None."""
    found = [s.tasks[name] for s in SUITES.values() if name in s.tasks]
    return max(found, key=lambda t: len(t.languages)) if found else None


def _lines(values) -> str:
    return "".join(f"{v}\n" for v in values)


def _squad(examples: list[dict]) -> dict:
    return {"data": [{"paragraphs": [{"context": ex["context"], "qas": [{
        "id": ex["id"], "question": ex["question"],
        "answers": [{"text": t, "answer_start": s} for t, s in zip(ex["answers"]["text"],
                                                                    ex["answers"]["answer_start"])]}]}]}
                     for ex in examples]}


def render(task: SuiteTask, predictions, examples: list[dict]) -> tuple[str, str]:
    """(prediction file text, label file text) for one language."""
    if task.metric == "accuracy" and task.ext == "jsonl":
        return (_lines(json.dumps({"label": p}) for p in predictions),
                _lines(json.dumps({"label": ex["label"]}) for ex in examples))
    if task.metric == "accuracy" and task.name == "tatoeba":
        return _lines(predictions), _lines(range(len(examples)))
    if task.metric == "accuracy":
        return _lines(predictions), _lines(ex["label"] for ex in examples)
    if task.metric == "seqeval":
        return ("".join(_lines(tags) + "\n" for tags in predictions),
                "".join(_lines(ex["tags"]) + "\n" for ex in examples))
    if task.metric in ("squad", "mlqa"):
        return (json.dumps(dict(zip((ex["id"] for ex in examples), predictions)), ensure_ascii=False),
                json.dumps(_squad(examples), ensure_ascii=False))
    if task.metric == "bucc_f1":
        gold = sorted((ex["id"], en) for ex in examples if ex.get("side") == "src" for en in ex.get("gold") or [])
        return _lines(f"{a}\t{b}" for a, b in sorted(predictions)), _lines(f"{a}\t{b}" for a, b in gold)
    if task.metric == "map@20":
        return (json.dumps(predictions, ensure_ascii=False),
                json.dumps({ex["id"]: ex["relevant"] for ex in examples}, ensure_ascii=False))
    raise ValueError(f"no official file format for metric {task.metric!r}")


def write_official(out: Path, task_name: str, language: str, predictions, examples: list[dict]) -> bool:
    """Write ``out/{predictions,labels}/<task>/test-<lang>.<ext>`` when the task belongs to a suite."""
    task = suite_task(task_name)
    if task is None:
        return False
    name = f"{task.name}/test-{language}.{task.ext}"
    pred_text, label_text = render(task, predictions, examples)
    atomic_write_text(Path(out) / "predictions" / name, pred_text)
    atomic_write_text(Path(out) / "labels" / name, label_text)
    return True
