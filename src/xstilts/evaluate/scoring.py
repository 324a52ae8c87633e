"""Score any system's test predictions laid out as xtreme's ``evaluate.py`` reads them.

Layout: ``DIR/<task>/test-<lang>.<ext>`` under both the predictions and the labels folder.

- tsv, one item a line (each line stripped, blank lines count): a label for pawsx/xnli, the index of
  the retrieved sentence for tatoeba, a ``src<TAB>trg`` id pair for bucc2018 (scored as sets);
- tsv, one tag a line with a blank line after each sentence: udpos, panx;
- jsonl, one object with a ``label`` a line: xcopa;
- json: predictions ``{question id: answer text}``, labels SQuAD-format (xquad, mlqa, tydiqa);
  predictions ``{query id: [ranked ids]}``, labels ``{query id: [gold ids]}`` (mewslix, lareqa).

As in the official script, a task is scored only when its predictions folder exists, line-based files
must hold as many items as their label file, and a QA or ranking query missing from the predictions
scores 0. Unlike it, a task folder without its label folder is an error (the official script skips the task).
"""

from __future__ import annotations

import json
from pathlib import Path

from xstilts.errors import UserError
from xstilts.metrics import official as metrics
from xstilts.metrics.suites import SUITES, SuiteScores, SuiteTask, suite_scores


def _lines(path: Path) -> list[str]:
    try:
        with path.open(encoding="utf-8") as f:
            return [line.strip() for line in f]
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def _sentences(path: Path) -> list[list[str]]:
    """Tags grouped into sentences at blank lines, as the official ``read_tag``."""
    sentences, current = [], []
    for line in _lines(path):
        if line:
            current.append(line)
        else:
            sentences.append(current)
            current = []
    return sentences + [current] if current else sentences


def _json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{e.lineno}: malformed JSON ({e.msg})") from None
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def _jsonl_labels(path: Path) -> list:
    out = []
    for n, line in enumerate(_lines(path), 1):
        try:
            out.append(json.loads(line)["label"])
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{n}: malformed JSON ({e.msg})") from None
        except (KeyError, TypeError):
            raise UserError(f'{path}:{n}: expected a JSON object with a "label"') from None
    return out


def _id_map(path: Path, value_type: type) -> dict:
    data = _json(path)
    what = "a string" if value_type is str else "a list of strings"
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a JSON object mapping each id to {what}")
    for key, value in data.items():
        ok = (
            isinstance(value, str)
            if value_type is str
            else (isinstance(value, list) and all(isinstance(v, str) for v in value))
        )
        if not ok:
            raise UserError(f"{path}: id {key!r} should map to {what}")
    return data


def _squad_golds(path: Path) -> dict[str, list[str]]:
    data = _json(path)
    articles = data["data"] if isinstance(data, dict) and "data" in data else data
    golds: dict[str, list[str]] = {}
    try:
        for article in articles:
            for paragraph in article["paragraphs"]:
                for qa in paragraph["qas"]:
                    if qa["id"] in golds:
                        raise UserError(f"{path}: question id {qa['id']!r} appears twice")
                    golds[qa["id"]] = [a["text"] for a in qa["answers"]]
                    if not all(isinstance(text, str) for text in golds[qa["id"]]):
                        raise UserError(f"{path}: question id {qa['id']!r}: expected answer texts to be strings")
    except (KeyError, TypeError) as e:
        raise UserError(
            f"{path}: expected SQuAD-format JSON (data > paragraphs > qas > answers > text; failed at {e})"
        ) from None
    if not golds:
        raise UserError(f"{path}: no questions")
    return golds


def _same_count(pred: list, gold: list, pred_path: Path, label_path: Path, unit: str) -> None:
    if len(pred) != len(gold):
        raise UserError(f"{pred_path}: {len(pred)} {unit}, but {label_path} has {len(gold)}")
    if not gold:
        raise UserError(f"{label_path}: no {unit}")


def score_language(task: SuiteTask, lang: str, pred_path: Path, label_path: Path) -> dict[str, float]:
    """The official metric dict of one prediction file against its label file."""
    metric = task.metric
    if metric == "accuracy":
        read = _jsonl_labels if task.ext == "jsonl" else _lines
        pred, gold = read(pred_path), read(label_path)
        _same_count(pred, gold, pred_path, label_path, "lines")
        return {"accuracy": metrics.accuracy(pred, gold)}
    if metric == "seqeval":
        pred, gold = _sentences(pred_path), _sentences(label_path)
        _same_count(pred, gold, pred_path, label_path, "sentences")
        for n, (p, g) in enumerate(zip(pred, gold), 1):
            if len(p) != len(g):
                raise UserError(f"{pred_path}: sentence {n} has {len(p)} tags, but {label_path} has {len(g)}")
        return metrics.seqeval_scores(gold, pred)
    if metric == "bucc_f1":
        pred, gold = ([tuple(line.split("\t")) for line in _lines(path)] for path in (pred_path, label_path))
        return metrics.bucc_f1(pred, gold)
    if metric in ("squad", "mlqa"):
        pred, gold = _id_map(pred_path, str), _squad_golds(label_path)
        try:
            return metrics.squad_scores(pred, gold) if metric == "squad" else metrics.mlqa_scores(pred, gold, lang)
        except ValueError as e:
            raise UserError(f"{label_path}: {e}") from None
    if metric == "map@20":
        pred, gold = _id_map(pred_path, list), _id_map(label_path, list)
        if any(not ids for ids in gold.values()):
            raise UserError(f"{label_path}: every id needs at least one gold id")
        if task.name == "mewslix":  # the official Mewsli-X scorer reads the first gold id, stripped
            gold = {q: [ids[0].strip()] for q, ids in gold.items()}
        return {"map@20": metrics.map_at_k(gold, pred, k=20)}
    raise ValueError(f"unknown metric {metric!r}")


def score_suite(suite: str, predictions_dir: Path, labels_dir: Path) -> SuiteScores:
    """Score every task folder of ``predictions_dir`` against ``labels_dir``: the official JSON report and, apart,
    what it does not report."""
    if suite not in SUITES:
        raise UserError(f"unknown suite {suite!r} (expected: {', '.join(SUITES)})")
    spec = SUITES[suite]
    predictions_dir, labels_dir = Path(predictions_dir), Path(labels_dir)
    for folder in (predictions_dir, labels_dir):
        if not folder.is_dir():
            raise UserError(f"{folder}: not a folder")
    per_task = {}
    for task in spec.tasks.values():
        if not (predictions_dir / task.name).is_dir():
            continue
        if not (labels_dir / task.name).is_dir():
            raise UserError(f"{labels_dir / task.name}: missing label folder for task {task.name}")
        per_task[task.name] = {}
        for lang in task.languages:
            name = f"{task.name}/test-{lang}.{task.ext}"
            pred_path, label_path = predictions_dir / name, labels_dir / name
            for path, kind in ((pred_path, "prediction"), (label_path, "label")):
                if not path.is_file():
                    raise UserError(f"{path}: missing {kind} file ({task.name}, language {lang})")
            per_task[task.name][lang] = score_language(task, lang, pred_path, label_path)
    if not per_task:
        raise UserError(f"{predictions_dir}: no task folder of {suite} (expected some of: {', '.join(spec.tasks)})")
    return suite_scores(spec, per_task)
