"""Multiple choice: each (question, choice) pair is encoded and scored; softmax over the choices."""

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


class MultipleChoice(HeadFormat):
    """Examples {"id", "question", "choices", "label"}: the label is the 0-based index of the right choice."""

    name = "multiple_choice"
    cost = CostHint(60, sequences=4)
    user_fields = ("question", "choices", "label")

    def user_columns(self, given: dict[str, Any]) -> dict[str, Any]:
        """``choices`` may name one column holding a list, or a list of columns."""
        choices = given.get("choices")
        if isinstance(choices, list):
            if len(choices) < 2 or not all(isinstance(c, str) for c in choices):
                raise FieldProblem(("fields", "choices"), "expected one column, or a list of two column names or more")
            return {**super().user_columns({**given, "choices": "choices"}), "choices": choices}
        return super().user_columns(given)

    def user_inputs(self, columns: dict[str, Any]) -> tuple[str, ...]:
        return ("question", "choices")

    def user_example(self, row: Row, columns: dict[str, Any], labels: list[str] | None, metric: str) -> dict:
        c = columns["choices"]
        choices = [row.text(x) for x in c] if isinstance(c, list) else row.raw(c)
        if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(x, str) for x in choices):
            raise UserError(
                f"{row.at}: field {c!r} must be a list of two strings or more"
                + (" (in CSV/TSV, map choices to a list of columns)" if isinstance(choices, str) else "")
            )
        label = row.integer(columns["label"])
        if not 0 <= label < len(choices):
            raise UserError(f"{row.at}: label {label} is not a choice index (0 to {len(choices) - 1})")
        return {"question": row.text(columns["question"]), "choices": choices, "label": label}

    def user_agrees(self, example: dict, first: dict, at: str) -> None:
        if len(example["choices"]) != len(first["choices"]):
            raise UserError(f"{at}: {len(example['choices'])} choices, earlier examples have {len(first['choices'])}")

    def official_files(self, predictions: list, examples: list[dict], ext: str) -> tuple[str, str]:
        return label_files(predictions, [ex["label"] for ex in examples], ext)

    def featurize(self, task: TaskInfo, examples: list[dict], tokenizer: Any, max_length: int) -> list[dict]:
        q_field, c_field = task.fields
        firsts = [ex[q_field] for ex in examples for _ in ex[c_field]]
        seconds = [c for ex in examples for c in ex[c_field]]
        ids = tokenizer(firsts, seconds, truncation=True, max_length=max_length)["input_ids"]
        feats, k = [], 0
        for ex in examples:
            n = len(ex[c_field])
            feats.append({"input_ids": ids[k : k + n], "label": int(ex["label"])})
            k += n
        return feats

    def make_head(self, task: TaskInfo, config: PretrainedConfig, kind: str = "linear") -> nn.Module:
        from xstilts.formats.heads import pooled_head

        return pooled_head(config, 1, kind)

    def represent(self, backbone: nn.Module, batch: dict, pooling: str) -> torch.Tensor:
        """Pooled vectors of every (question, choice) pair: (batch, choices, hidden)."""
        from xstilts.formats.pooling import encode

        b, c, length = batch["input_ids"].shape
        pooled = encode(
            backbone, batch["input_ids"].view(b * c, length), batch["attention_mask"].view(b * c, length), pooling
        )
        return pooled.view(b, c, -1)

    def head_logits(self, head: nn.Module, reps: torch.Tensor, batch: dict) -> torch.Tensor:
        return head(reps).squeeze(-1)

    def loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        import torch.nn.functional as F

        return F.cross_entropy(logits, batch["labels"])

    def predict(self, outputs: list[np.ndarray], features: list[dict], examples: list[dict], task: TaskInfo) -> list:
        return [int(o.argmax()) for o in outputs]

    def score(self, predictions: list, examples: list[dict], task: TaskInfo, language: str) -> dict[str, float]:
        return {"accuracy": accuracy(predictions, [int(ex["label"]) for ex in examples])}
