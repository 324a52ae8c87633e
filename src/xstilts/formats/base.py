"""What every task format provides, and the shared batching helpers."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from transformers import PretrainedConfig

from xstilts.tasks.registry import TaskDef


class Format(Protocol):
    """featurize -> head -> logits -> loss / predict -> score, for one kind of task.

    Features are dicts of ints or int lists (batched by ``collate``); keys starting with "_" carry
    metadata that stays out of batches. ``predict`` maps per-feature outputs back to one prediction per example.
    """

    name: str

    def featurize(self, task: TaskDef, examples: list[dict], tokenizer: Any, max_length: int) -> list[dict]: ...
    def make_head(self, task: TaskDef, config: PretrainedConfig, kind: str = "linear") -> nn.Module: ...
    def represent(self, backbone: nn.Module, batch: dict, pooling: str) -> torch.Tensor:
        """What the head reads: pooled vectors, or hidden states per token."""
    def head_logits(self, head: nn.Module, reps: torch.Tensor, batch: dict) -> torch.Tensor: ...
    def logits(self, backbone: nn.Module, head: nn.Module, batch: dict, pooling: str) -> torch.Tensor: ...
    def loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor: ...
    def predict(self, outputs: list[np.ndarray], features: list[dict], examples: list[dict],
                task: TaskDef) -> list: ...
    def score(self, predictions: list, examples: list[dict], task: TaskDef, language: str) -> dict[str, float]: ...


def head_dropout(config: PretrainedConfig) -> float:
    """A head's dropout, as in transformers' task models: ``classifier_dropout`` if set, else the backbone's."""
    given = getattr(config, "classifier_dropout", None)
    return given if given is not None else getattr(config, "hidden_dropout_prob", 0.1)


def pooled_head(config: PretrainedConfig, num_outputs: int, kind: str) -> nn.Module:
    """The head of a pooled vector: dropout -> linear, or the RoBERTa/jiant dense-tanh-linear head ("mlp")."""
    if kind == "mlp":
        return ClassificationHead(config.hidden_size, num_outputs, head_dropout(config))
    return nn.Sequential(nn.Dropout(head_dropout(config)), nn.Linear(config.hidden_size, num_outputs))


class ClassificationHead(nn.Module):
    """dense -> tanh -> dropout -> linear on a pooled vector (the RoBERTa/XLM-R classification head)."""

    def __init__(self, hidden_size: int, num_outputs: int, dropout: float):
        super().__init__()
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_size, num_outputs)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(torch.tanh(self.dense(self.dropout(pooled)))))


def feature_length(feature: dict) -> int:
    """Tokens in a feature (all choices for multiple choice): the key for length-grouped batching."""
    ids = feature["input_ids"]
    return sum(len(x) for x in ids) if ids and isinstance(ids[0], list) else len(ids)


def _pad(rows: list[list[int]], width: int, pad_id: int) -> list[list[int]]:
    return [r + [pad_id] * (width - len(r)) for r in rows]


IGNORE_INDEX = -100


def collate(features: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Dynamic padding to the longest sequence in the batch: input_ids (B, L) or (B, C, L) for multiple
    choice, an attention mask, and every other non-"_" key ("label" becomes "labels"; lists pad with -100)."""
    first = features[0]["input_ids"]
    if first and isinstance(first[0], list):
        width = max(len(s) for f in features for s in f["input_ids"])
        ids = torch.tensor([_pad(f["input_ids"], width, pad_id) for f in features])
    else:
        width = max(len(f["input_ids"]) for f in features)
        ids = torch.tensor(_pad([f["input_ids"] for f in features], width, pad_id))
    batch = {"input_ids": ids, "attention_mask": (ids != pad_id).long()}
    for key in features[0]:
        if key == "input_ids" or key.startswith("_"):
            continue
        values = [f[key] for f in features]
        if isinstance(values[0], list):
            values = _pad(values, max(len(v) for v in values), IGNORE_INDEX)
        batch["labels" if key == "label" else key] = torch.tensor(values)
    return batch

