"""Single-text and text-pair classification (pocket-topic, NLI, paraphrase, sentiment)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from xstilts.errors import UserError
from xstilts.formats.base import CostHint, FieldProblem, HeadFormat, Row, TaskInfo, label_files
from xstilts.metrics.official import accuracy

if TYPE_CHECKING:
    import torch
    from torch import nn
    from transformers import PretrainedConfig


class Classification(HeadFormat):
    """Examples {"id", <text fields>, "label"}: one text, or a pair; labels are the task's label strings."""

    name = "classification"
    cost = CostHint(60)
    user_fields = ("text", "text_a", "text_b", "label")
    labelled = True

    def user_columns(self, given: dict[str, Any]) -> dict[str, Any]:
        """``text``, or ``text_a`` and ``text_b`` (a pair); and ``label``."""
        pair = {"text_a", "text_b"} & given.keys()
        if pair and "text" in given:
            raise FieldProblem(("fields", "text"), "use text, or text_a and text_b, not both")
        if len(pair) == 1:
            raise FieldProblem(("fields", pair.pop()), "text_a and text_b go together")
        columns = super().user_columns(given)
        drop = ("text",) if pair else ("text_a", "text_b")
        return {f: c for f, c in columns.items() if f not in drop}

    def user_example(self, row: Row, columns: dict[str, Any], labels: list[str] | None, metric: str) -> dict:
        label = row.raw(columns["label"])
        label = str(label) if isinstance(label, int) and not isinstance(label, bool) else label
        if label not in labels:
            raise UserError(f"{row.at}: label {label!r} is not one of {', '.join(labels)}")
        return {**{f: row.text(columns[f]) for f in columns if f.startswith("text")}, "label": label}

    def official_files(self, predictions: list, examples: list[dict], ext: str) -> tuple[str, str]:
        return label_files(predictions, [ex["label"] for ex in examples], ext)

    def featurize(self, task: TaskInfo, examples: list[dict], tokenizer: Any, max_length: int) -> list[dict]:
        index = {label: i for i, label in enumerate(task.labels)}
        texts = [[ex[f] for ex in examples] for f in task.fields]
        enc = tokenizer(*texts, truncation=True, max_length=max_length)
        feats = []
        for ex, ids in zip(examples, enc["input_ids"]):
            if ex["label"] not in index:
                raise UserError(
                    f"{task.name}: example {ex.get('id')!r} has label {ex['label']!r} outside {list(index)}"
                )
            feats.append({"input_ids": ids, "label": index[ex["label"]]})
        return feats

    def make_head(self, task: TaskInfo, config: PretrainedConfig, kind: str = "linear") -> nn.Module:
        from xstilts.formats.heads import pooled_head

        return pooled_head(config, len(task.labels), kind)

    def represent(self, backbone: nn.Module, batch: dict, pooling: str) -> torch.Tensor:
        from xstilts.formats.pooling import encode

        return encode(backbone, batch["input_ids"], batch["attention_mask"], pooling)

    def loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        import torch.nn.functional as F

        return F.cross_entropy(logits, batch["labels"])

    def predict(self, outputs: list[np.ndarray], features: list[dict], examples: list[dict], task: TaskInfo) -> list:
        return [task.labels[int(o.argmax())] for o in outputs]

    def score(self, predictions: list, examples: list[dict], task: TaskInfo, language: str) -> dict[str, float]:
        return {"accuracy": accuracy(predictions, [ex["label"] for ex in examples])}
