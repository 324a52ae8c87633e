"""Loading and saving a backbone (any HF encoder) with its tokenizer; its blocks, parameter depths and freezing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from xstilts.errors import UserError
from xstilts.models.registry import model_error, resolve_model


def load_backbone(ref: str) -> tuple[nn.Module, Any]:
    """(AutoModel, AutoTokenizer) for a model reference or a saved checkpoint directory."""
    from transformers import AutoModel, AutoTokenizer

    path = resolve_model(ref)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        backbone = (
            AutoModel.from_pretrained(path, add_pooling_layer=False)
            if _is_bert_like(path)
            else AutoModel.from_pretrained(path)
        )
    except (OSError, ValueError) as e:
        raise model_error(ref, e) from None
    return backbone, tokenizer


def _is_bert_like(path: str) -> bool:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(path).model_type in {"bert", "roberta", "xlm-roberta", "camembert"}


def local_device() -> torch.device:
    """This process's GPU (``LOCAL_RANK`` under ``accelerate launch``), else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def blocks(backbone: nn.Module) -> nn.ModuleList:
    """The backbone's transformer blocks, bottom first (the module list as long as its layer count)."""
    depth = backbone.config.num_hidden_layers
    found = next((m for m in backbone.modules() if isinstance(m, nn.ModuleList) and len(m) == depth), None)
    if found is None:
        raise UserError(f"{type(backbone).__name__}: cannot find its {depth} transformer blocks")
    return found


def parameter_depths(backbone: nn.Module) -> dict[str, int]:
    """Each backbone parameter's depth: 0 for the embeddings, i + 1 for block i, L + 1 above the blocks."""
    depth = {id(p): i + 1 for i, block in enumerate(blocks(backbone)) for p in block.parameters()}
    embedded = {id(p) for p in backbone.get_input_embeddings().parameters()}
    embedded |= {id(p) for p in getattr(backbone, "embeddings", nn.Module()).parameters()}
    top = backbone.config.num_hidden_layers + 1
    return {name: 0 if id(p) in embedded else depth.get(id(p), top) for name, p in backbone.named_parameters()}


def freeze(backbone: nn.Module, parts: list[str]) -> list[str]:
    """Stop gradients to ``parts`` ("embeddings", "layers:N" = the first N blocks); returns the frozen names."""
    depths = parameter_depths(backbone)
    for part in parts:
        if part.startswith("layers:") and int(part.split(":")[1]) > backbone.config.num_hidden_layers:
            raise UserError(f"freeze: {part!r}, but the model has {backbone.config.num_hidden_layers} layers")
    frozen = []
    for name, p in backbone.named_parameters():
        for part in parts:
            if (part == "embeddings" and depths[name] == 0) or (
                part.startswith("layers:") and 1 <= depths[name] <= int(part.split(":")[1])
            ):
                p.requires_grad_(False)
                frozen.append(name)
                break
    return frozen


def save_backbone(backbone: nn.Module, tokenizer: Any, directory: Path) -> None:
    """Write backbone weights and tokenizer as a standard HF directory (callers make it atomic)."""
    backbone.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
