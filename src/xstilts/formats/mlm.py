"""Masked language modelling (MLM): the paper's multilingual-MLM auxiliary task in the intermediate mix.

Masking follows BERT: round(15%) (at least one) of an example's non-special tokens get a label; of those,
80% become the mask token, 10% a random non-special token and 10% stay. It is seeded by the example id, so
every epoch, run and dev evaluation masks the same positions. The head is always fresh (backbones load
without their pre-trained MLM head); its decoder is the backbone's input-embedding matrix itself.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np

from xstilts.errors import UserError
from xstilts.formats.base import IGNORE_INDEX, CostHint, HeadFormat, TaskInfo
from xstilts.metrics.official import accuracy

if TYPE_CHECKING:
    import torch
    from torch import nn
    from transformers import PretrainedConfig

MASK_RATE, KEEP_MASK, KEEP_RANDOM = 0.15, 0.8, 0.1


def mask_tokens(
    ids: list[int], special: list[int], example_id: Any, mask_id: int, random_ids: np.ndarray
) -> tuple[list[int], list[int]]:
    """(input ids, labels) for one example: labels hold the original id at masked positions, -100 elsewhere."""
    seed = int.from_bytes(hashlib.sha256(str(example_id).encode()).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    inputs, labels = list(ids), [IGNORE_INDEX] * len(ids)
    candidates = [i for i, s in enumerate(special) if not s]
    if not candidates:
        return inputs, labels
    for pos in sorted(
        int(p) for p in rng.choice(candidates, max(1, round(MASK_RATE * len(candidates))), replace=False)
    ):
        labels[pos] = ids[pos]
        r = rng.random()
        if r < KEEP_MASK:
            inputs[pos] = mask_id
        elif r < KEEP_MASK + KEEP_RANDOM:
            inputs[pos] = int(random_ids[rng.integers(len(random_ids))])
    return inputs, labels


def _masked(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the masked positions first and in order, cut to the batch's largest count; and which are real."""
    import torch

    is_masked = labels != IGNORE_INDEX
    width = int(is_masked.sum(1).max()) if labels.numel() else 0
    order = torch.sort((~is_masked).int(), dim=1, stable=True).indices[:, :width]
    return order, is_masked.gather(1, order)


class MaskedLM(HeadFormat):
    """Examples {"id", "text"}; scored by masked-token accuracy (percent)."""

    name = "mlm"
    cost = CostHint(128)
    probe_able = False  # the tied decoder reads the embeddings the encoder trains

    def featurize(self, task: TaskInfo, examples: list[dict], tokenizer: Any, max_length: int) -> list[dict]:
        if tokenizer.mask_token_id is None:
            raise UserError(f"{task.name}: the model's tokenizer has no mask token, which masked LM needs")
        enc = tokenizer(
            [ex["text"] for ex in examples], truncation=True, max_length=max_length, return_special_tokens_mask=True
        )
        random_ids = np.setdiff1d(np.arange(tokenizer.vocab_size), tokenizer.all_special_ids)
        feats = []
        for ex, ids, special in zip(examples, enc["input_ids"], enc["special_tokens_mask"]):
            inputs, labels = mask_tokens(ids, special, ex["id"], tokenizer.mask_token_id, random_ids)
            feats.append({"input_ids": inputs, "label": labels})
        return feats

    def make_head(self, task: TaskInfo, config: PretrainedConfig, kind: str = "linear") -> nn.Module:
        from xstilts.formats.heads import MLMHead

        return MLMHead(config.hidden_size)

    def attach(self, head: nn.Module, backbone: nn.Module) -> None:
        head.attach(backbone)

    def represent(self, backbone: nn.Module, batch: dict, pooling: str) -> torch.Tensor:
        """Hidden states at each row's masked positions: (B, M, hidden), M the batch's most masked."""
        hidden = backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        order, _ = _masked(batch["labels"])
        return hidden.gather(1, order.unsqueeze(-1).expand(-1, -1, hidden.size(-1)))

    def logits(self, backbone: nn.Module, head: nn.Module, batch: dict, pooling: str) -> torch.Tensor:
        """(B, M, vocab) logits at the masked positions; under inference mode (prediction) the (B, M) argmax ids
        instead, so predictions never hold vocabulary-sized arrays."""
        import torch

        scores = head(self.represent(backbone, batch, pooling), backbone.get_input_embeddings().weight)
        return scores.argmax(-1) if torch.is_inference_mode_enabled() else scores

    def loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        import torch.nn.functional as F

        order, real = _masked(batch["labels"])
        if not real.any():  # nothing masked in the whole batch: a zero that keeps the graph
            return logits.sum() * 0.0
        gold = batch["labels"].gather(1, order)
        return F.cross_entropy(logits.flatten(0, 1).float(), gold.flatten(), ignore_index=IGNORE_INDEX)

    def predict(self, outputs: list[np.ndarray], features: list[dict], examples: list[dict], task: TaskInfo) -> list:
        """Per example {"predicted": ids, "gold": ids} at its masked positions, in position order."""
        preds = []
        for out, feat in zip(outputs, features):
            gold = [t for t in feat["label"] if t != IGNORE_INDEX]
            ids = out.argmax(-1) if out.ndim == 2 else out
            preds.append({"predicted": [int(i) for i in ids[: len(gold)]], "gold": gold})
        return preds

    def score(self, predictions: list, examples: list[dict], task: TaskInfo, language: str) -> dict[str, float]:
        pred = [i for p in predictions for i in p["predicted"]]
        gold = [i for p in predictions for i in p["gold"]]
        if not gold:
            raise UserError(f"{task.name}: no masked tokens to score ({language})")
        return {"accuracy": accuracy(pred, gold)}
