"""Scoring a trained model or a bare encoder: English dev, and zero-shot test sets language by language."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np
from torch import nn

from xstilts.config.schema import EvalConfig
from xstilts.data.items import ITEM
from xstilts.evaluate.predict import predict_logits
from xstilts.formats.base import EncoderFormat, Evaluation, HeadFormat
from xstilts.formats.retrieval import default_layer, embed
from xstilts.models.multitask import MultiHeadModel
from xstilts.tasks.definition import TaskDef
from xstilts.tasks.features import task_features

Progress = Callable[[str, int, int], None]


def fixed_subset(examples: list[dict], n: int | None, key: str | None = "id") -> list[dict]:
    """The same ``n`` examples for every setting and seed: smallest hashes of ``key``, in file order (all of them
    when ``key`` is None: a format that needs whole sets)."""
    if n is None or key is None or len(examples) <= n:
        return examples
    digest = [hashlib.sha1(str(ex[key]).encode()).digest() for ex in examples]
    keep = set(sorted(range(len(examples)), key=digest.__getitem__)[:n])
    return [ex for i, ex in enumerate(examples) if i in keep]


def subset_key(task: TaskDef) -> str | None:
    """What ``fixed_subset`` keys ``task``'s test sets by: a parallel task's item key, so that every language
    keeps the same items (of those it has), else its format's key."""
    key = task.format.subset_key
    return ITEM if task.parallel and key is not None else key


def metric_rows(task: TaskDef, split: str, language: str, scores: dict[str, float], n: int) -> list[dict]:
    """A result's rows of scores; ``headline`` marks the one the task's format leads with."""
    return [
        {
            "task": task.name,
            "split": split,
            "language": language,
            "metric": m,
            "value": v,
            "n": n,
            "headline": m == task.headline,
        }
        for m, v in scores.items()
    ]


def evaluate(
    model: MultiHeadModel,
    task: TaskDef,
    split: str,
    language: str,
    examples: list[dict],
    tokenizer: Any,
    cfg: EvalConfig,
) -> Evaluation:
    """Scores, predictions and per-example statistics of a trained head on one language's examples of ``split``."""
    fmt: HeadFormat = task.format
    features = task_features(task, f"{split}:{language}", examples, tokenizer, cfg.max_length)
    outputs = predict_logits(model, task.name, features, cfg.batch_size, tokenizer.pad_token_id)
    predictions = fmt.predict(outputs, features, examples, task)
    scores = fmt.score(predictions, examples, task, language)
    return Evaluation(scores, predictions, fmt.example_stats(predictions, examples, task, language, scores))


def headline_score(task: TaskDef, examples: list[dict], features: list[dict]) -> Callable[[list], float]:
    """The headline score of per-feature outputs on these examples (English dev checks, the probe's selection)."""
    fmt: HeadFormat = task.format

    def score(outputs: list) -> float:
        predictions = fmt.predict(outputs, features, examples, task)
        return fmt.score(predictions, examples, task, task.train_language)[task.headline]

    return score


def dev_metrics(model: MultiHeadModel, task: TaskDef, dev: list[dict], tokenizer: Any, cfg: EvalConfig) -> list[dict]:
    """English dev scores, the only data used to compare checkpoints."""
    scores = evaluate(model, task, "dev", task.train_language, dev, tokenizer, cfg).scores
    return metric_rows(task, "dev", task.train_language, scores, len(dev))


def evaluate_encoder(
    backbone: nn.Module, tokenizer: Any, task: TaskDef, examples: dict[str, list[dict]], cfg: EvalConfig
) -> tuple[dict[str, Evaluation], int]:
    """A format without a head (retrieval) scored on pooled states of one layer: (per language, the layer)."""
    fmt: EncoderFormat = task.format
    layer = default_layer(backbone) if cfg.layer == "auto" else cfg.layer

    def encode(texts: list[str], contexts: list[str] | None = None) -> np.ndarray:
        return embed(backbone, tokenizer, texts, layer, cfg.pooling, cfg.max_length, cfg.batch_size, contexts)

    return fmt.evaluate(
        encode, task, examples, lambda lang: task.source.load("dev", lang), lambda: task.source.candidates("test")
    ), layer
