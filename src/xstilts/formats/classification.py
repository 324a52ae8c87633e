"""Single-text and text-pair classification (pocket-topic, NLI, paraphrase, sentiment)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig

from xstilts.errors import UserError
from xstilts.evaluate.metrics import accuracy
from xstilts.formats.base import pooled_head
from xstilts.models.pooling import encode
from xstilts.tasks.registry import TaskDef


class Classification:
    name = "classification"

    def featurize(self, task: TaskDef, examples: list[dict], tokenizer: Any, max_length: int) -> list[dict]:
        index = {label: i for i, label in enumerate(task.labels)}
        texts = [[ex[f] for ex in examples] for f in task.fields]
        enc = tokenizer(*texts, truncation=True, max_length=max_length)
        feats = []
        for ex, ids in zip(examples, enc["input_ids"]):
            if ex["label"] not in index:
                raise UserError(f"{task.name}: example {ex.get('id')!r} has label {ex['label']!r} outside {list(index)}")
            feats.append({"input_ids": ids, "label": index[ex["label"]]})
        return feats

    def make_head(self, task: TaskDef, config: PretrainedConfig, kind: str = "linear") -> nn.Module:
        return pooled_head(config, len(task.labels), kind)

    def represent(self, backbone: nn.Module, batch: dict, pooling: str) -> torch.Tensor:
        return encode(backbone, batch["input_ids"], batch["attention_mask"], pooling)

    def head_logits(self, head: nn.Module, reps: torch.Tensor, batch: dict) -> torch.Tensor:
        return head(reps)

    def logits(self, backbone: nn.Module, head: nn.Module, batch: dict, pooling: str) -> torch.Tensor:
        return self.head_logits(head, self.represent(backbone, batch, pooling), batch)

    def loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        return F.cross_entropy(logits, batch["labels"])

    def predict(self, outputs: list[np.ndarray], features: list[dict], examples: list[dict],
                task: TaskDef) -> list:
        return [task.labels[int(o.argmax())] for o in outputs]

    def score(self, predictions: list, examples: list[dict], task: TaskDef, language: str) -> dict[str, float]:
        return {"accuracy": accuracy(predictions, [ex["label"] for ex in examples])}
