"""Per-example statistics of test metrics, kept beside a result for bootstrap confidence intervals.

A metric's statistics are an array of shape (examples, k) from which the metric is recomputed on any resample:
k = 1 holds each example's own score (the metric is 100 x their mean: accuracy, SQuAD/MLQA exact match and F1),
k = 3 holds (true positives, predicted, gold) chunk counts (micro F1: seqeval), k = 2 (correct, total) tokens
(token accuracy). Only statistics that reproduce the reported metric are kept.

Beside the statistics, each (task, split, language) keeps its items' keys under the pseudo-metric ``ITEMS``: one
string per row, naming the test item the row scores. A test set that is parallel across languages (translations
of the same items: XNLI, PAWS-X, XQuAD, MLQA, XCOPA, Tatoeba) gives an item the same key in every language, and
says so under ``parallel_key(task, split)``; a bootstrap then resamples those items jointly across languages.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from xstilts.cache import atomic_write_bytes

FILE = "per_example.npz"


def metric_from_sums(sums: np.ndarray, n: int) -> np.ndarray:
    """Metric (percent) from stats summed over examples, shape (..., k); 0 where the denominator is 0."""
    k = sums.shape[-1]
    if k == 1:
        num, den = sums[..., 0], np.full(sums.shape[:-1], float(n))
    elif k == 2:
        num, den = sums[..., 0], sums[..., 1]
    elif k == 3:
        num, den = 2 * sums[..., 0], sums[..., 1] + sums[..., 2]
    else:
        raise ValueError(f"stats need 1, 2 or 3 columns, got {k}")
    return 100 * np.divide(num, den, out=np.zeros(np.shape(num)), where=den != 0)


def metric_value(stats: np.ndarray) -> float | np.ndarray:
    """Metric (percent) of stats shaped (..., n, k), reducing the example axis; a float for a 2-d input."""
    s = np.asarray(stats, dtype=np.float64)
    if s.ndim < 2:
        raise ValueError(f"stats must have shape (..., n, k), got {s.shape}")
    value = metric_from_sums(s.sum(axis=-2), s.shape[-2])
    return float(value) if value.ndim == 0 else value


def chunk_counts(gold: list[list[str]], pred: list[list[str]]) -> np.ndarray:
    """(true positive, predicted, gold) chunks per sentence, as seqeval's default mode reads the tags."""
    from seqeval.metrics.sequence_labeling import get_entities

    rows = []
    with warnings.catch_warnings():  # "NOUN seems not to be NE tag": POS tags read as chunks, as XTREME does
        warnings.simplefilter("ignore")
        for g, p in zip(gold, pred):
            gold_chunks, pred_chunks = set(get_entities(list(g))), set(get_entities(list(p)))
            rows.append((len(gold_chunks & pred_chunks), len(pred_chunks), len(gold_chunks)))
    return np.array(rows, dtype=np.float64).reshape(-1, 3)


def example_stats(
    score: Callable[[list, list], dict[str, float]],
    predictions: list,
    examples: list[dict],
    scores: dict[str, float],
    counts: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Statistics of every metric in ``scores`` that they reproduce: ``counts`` given by the caller, else each
    example scored alone by ``score(predictions, examples)`` (right for metrics that are means over examples)."""
    out = dict(counts or {})
    alone = [score([p], [ex]) for p, ex in zip(predictions, examples, strict=True)]
    for metric in scores:
        if metric not in out and alone and all(metric in a for a in alone):
            out[metric] = np.array([[a[metric] / 100] for a in alone])
    return reproducing(out, scores)


def reproducing(stats: dict[str, np.ndarray], scores: dict[str, float]) -> dict[str, np.ndarray]:
    """The statistics that give back their reported metric (to 1e-6)."""
    return {m: s for m, s in stats.items() if m in scores and len(s) and abs(metric_value(s) - scores[m]) < 1e-6}


def write(path: Path, stats: dict[str, np.ndarray]) -> None:
    """Save ``key -> array`` atomically as an .npz file."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **stats)
    atomic_write_bytes(path, buffer.getvalue())


def read(path: Path) -> dict[str, Any]:
    """The arrays of a per-example file (empty when the job kept none)."""
    if not Path(path).is_file():
        return {}
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


ITEMS = "@item"  # the pseudo-metric under which a language's item keys are kept


def key(task: str, split: str, language: str, metric: str) -> str:
    return f"{task}|{split}|{language}|{metric}"


def parallel_key(task: str, split: str) -> str:
    """Where a 0-d bool array says whether the task's ``split`` is parallel across languages."""
    return f"{task}|{split}|@parallel"
