"""Loading a backbone (any HF encoder) with its tokenizer, and the shared-backbone multi-head model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from xstilts.models.registry import model_error, resolve_model


def load_backbone(ref: str) -> tuple[nn.Module, Any]:
    """(AutoModel, AutoTokenizer) for a model reference or a saved checkpoint directory."""
    from transformers import AutoModel, AutoTokenizer

    path = resolve_model(ref)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        backbone = AutoModel.from_pretrained(path, add_pooling_layer=False) if _is_bert_like(path) \
            else AutoModel.from_pretrained(path)
    except (OSError, ValueError) as e:
        raise model_error(ref, e) from None
    return backbone, tokenizer


def _is_bert_like(path: str) -> bool:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(path).model_type in {"bert", "roberta", "xlm-roberta", "camembert"}


class MultiHeadModel(nn.Module):
    """One backbone and named heads; ``head_of`` maps each task to its head (tasks may share one).
    ``forward(task, batch)`` returns that task's logits."""

    def __init__(self, backbone: nn.Module, heads: dict[str, nn.Module], formats: dict[str, Any],
                 head_of: dict[str, str], pooling: str):
        super().__init__()
        self.backbone = backbone
        self.heads = nn.ModuleDict(heads)
        self.formats = formats
        self.head_of = head_of
        self.pooling = pooling

    def forward(self, task: str, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.formats[task].logits(self.backbone, self.heads[self.head_of[task]], batch, self.pooling)


def save_backbone(backbone: nn.Module, tokenizer: Any, directory: Path) -> None:
    """Write backbone weights and tokenizer as a standard HF directory (callers make it atomic)."""
    backbone.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
