"""Multiple choice: each (question, choice) pair is encoded and scored; softmax over the choices."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig

from xstilts.evaluate.metrics import accuracy
from xstilts.formats.base import pooled_head
from xstilts.models.pooling import encode
from xstilts.tasks.registry import TaskDef


class MultipleChoice:
    name = "multiple_choice"

    def featurize(self, task: TaskDef, examples: list[dict], tokenizer: Any, max_length: int) -> list[dict]:
        q_field, c_field = task.fields
        firsts = [ex[q_field] for ex in examples for _ in ex[c_field]]
        seconds = [c for ex in examples for c in ex[c_field]]
        ids = tokenizer(firsts, seconds, truncation=True, max_length=max_length)["input_ids"]
        feats, k = [], 0
        for ex in examples:
            n = len(ex[c_field])
            feats.append({"input_ids": ids[k:k + n], "label": int(ex["label"])})
            k += n
        return feats

    def make_head(self, task: TaskDef, config: PretrainedConfig, kind: str = "linear") -> nn.Module:
        return pooled_head(config, 1, kind)

    def represent(self, backbone: nn.Module, batch: dict, pooling: str) -> torch.Tensor:
        """Pooled vectors of every (question, choice) pair: (batch, choices, hidden)."""
        b, c, length = batch["input_ids"].shape
        pooled = encode(backbone, batch["input_ids"].view(b * c, length),
                        batch["attention_mask"].view(b * c, length), pooling)
        return pooled.view(b, c, -1)

    def head_logits(self, head: nn.Module, reps: torch.Tensor, batch: dict) -> torch.Tensor:
        return head(reps).squeeze(-1)

    def logits(self, backbone: nn.Module, head: nn.Module, batch: dict, pooling: str) -> torch.Tensor:
        return self.head_logits(head, self.represent(backbone, batch, pooling), batch)

    def loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        return F.cross_entropy(logits, batch["labels"])

    def predict(self, outputs: list[np.ndarray], features: list[dict], examples: list[dict],
                task: TaskDef) -> list:
        return [int(o.argmax()) for o in outputs]

    def score(self, predictions: list, examples: list[dict], task: TaskDef, language: str) -> dict[str, float]:
        return {"accuracy": accuracy(predictions, [int(ex["label"]) for ex in examples])}
