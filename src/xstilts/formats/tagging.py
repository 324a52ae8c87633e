"""Sequence tagging (UD-POS, WikiANN NER): one tag per word, predicted at the word's first sub-word."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from xstilts.errors import UserError
from xstilts.formats.base import IGNORE_INDEX, CostHint, HeadFormat, Row, TaskInfo, lines
from xstilts.metrics import per_example
from xstilts.metrics.official import accuracy, seqeval_scores
from xstilts.metrics.per_example import chunk_counts

if TYPE_CHECKING:
    import torch
    from torch import nn
    from transformers import PretrainedConfig


def _first_subwords(words: list[int | None]) -> list[tuple[int, int]]:
    """(token position, word index) of each word's first token."""
    return [(t, w) for t, w in enumerate(words) if w is not None and (t == 0 or words[t - 1] != w)]


class Tagging(HeadFormat):
    """Examples {"id", "tokens", "tags"}: one tag of the task's label set per word."""

    name = "tagging"
    metrics = ("seqeval", "accuracy")
    cost = CostHint(40)
    user_fields = ("tokens", "tags")
    labelled = True

    def headline(self, metric: str) -> str:
        return "accuracy" if metric == "accuracy" else "f1"

    def user_inputs(self, columns: dict[str, Any]) -> tuple[str, ...]:
        return ("tokens",)

    def user_example(self, row: Row, columns: dict[str, Any], labels: list[str] | None, metric: str) -> dict:
        tokens, tags = row.words(columns["tokens"]), row.words(columns["tags"])
        if not tokens or len(tokens) != len(tags):
            raise UserError(f"{row.at}: {len(tokens)} tokens but {len(tags)} tags")
        if bad := next((t for t in tags if t not in labels), None):
            raise UserError(f"{row.at}: tag {bad!r} is not one of {', '.join(labels)}")
        return {"tokens": tokens, "tags": tags}

    def official_files(self, predictions: list, examples: list[dict], ext: str) -> tuple[str, str]:
        """One tag per line, a blank line after each sentence."""
        return (
            "".join(lines(tags) + "\n" for tags in predictions),
            "".join(lines(ex["tags"]) + "\n" for ex in examples),
        )

    def featurize(self, task: TaskInfo, examples: list[dict], tokenizer: Any, max_length: int) -> list[dict]:
        index = {tag: i for i, tag in enumerate(task.labels)}
        enc = tokenizer(
            [ex["tokens"] for ex in examples], is_split_into_words=True, truncation=True, max_length=max_length
        )
        feats = []
        for k, ex in enumerate(examples):
            if unknown := set(ex["tags"]) - index.keys():
                raise UserError(
                    f"{task.name}: example {ex.get('id')!r} has tags {sorted(unknown)} outside {list(index)}"
                )
            words = enc.word_ids(k)
            label = [IGNORE_INDEX] * len(words)
            for t, w in _first_subwords(words):
                label[t] = index[ex["tags"][w]]
            feats.append({"input_ids": enc["input_ids"][k], "label": label, "_words": words})
        return feats

    def make_head(self, task: TaskInfo, config: PretrainedConfig, kind: str = "linear") -> nn.Module:
        from xstilts.formats.heads import linear_head

        return linear_head(config, len(task.labels))

    def represent(self, backbone: nn.Module, batch: dict, pooling: str) -> torch.Tensor:
        return backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state

    def loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        import torch.nn.functional as F

        return F.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten(), ignore_index=IGNORE_INDEX)

    def predict(self, outputs: list[np.ndarray], features: list[dict], examples: list[dict], task: TaskInfo) -> list:
        """A tag per word; words cut off by truncation get "O" (or the first label when there is no "O")."""
        fallback = "O" if "O" in task.labels else task.labels[0]
        preds = []
        for out, feat, ex in zip(outputs, features, examples):
            tags = [fallback] * len(ex["tokens"])
            for t, w in _first_subwords(feat["_words"]):
                tags[w] = task.labels[int(out[t].argmax())]
            preds.append(tags)
        return preds

    def example_stats(
        self, predictions: list, examples: list[dict], task: TaskInfo, language: str, scores: dict[str, float]
    ) -> dict[str, np.ndarray]:
        """Per-sentence statistics of the headline metric: chunk counts for F1, (correct, total) for accuracy."""
        gold = [ex["tags"] for ex in examples]
        if task.metric == "accuracy":
            counts = {
                "accuracy": np.array(
                    [[sum(p == g for p, g in zip(ps, gs)), len(gs)] for ps, gs in zip(predictions, gold)],
                    dtype=np.float64,
                ).reshape(-1, 2)
            }
        else:
            counts = {"f1": chunk_counts(gold, predictions)}
        return per_example.reproducing(counts, scores)

    def score(self, predictions: list, examples: list[dict], task: TaskInfo, language: str) -> dict[str, float]:
        """seqeval chunk F1 (XTREME's POS and NER), or per-token accuracy for metric "accuracy" (CCG)."""
        gold = [ex["tags"] for ex in examples]
        if task.metric == "accuracy":
            return {"accuracy": accuracy([t for s in predictions for t in s], [t for s in gold for t in s])}
        return seqeval_scores(gold, predictions)
