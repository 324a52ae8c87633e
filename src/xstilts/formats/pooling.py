"""Encoding and pooling of a backbone's hidden states."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


def pool(hidden: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """Mean over unmasked tokens, the first token ('cls'), or the last unmasked one ('last': what a decoder's
    causal attention has read the whole input into; found from the mask, so either padding side works)."""
    if how == "cls":
        return hidden[:, 0]
    if how == "last":
        positions = torch.arange(1, mask.shape[1] + 1, device=mask.device)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), (mask * positions).argmax(1)]
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


def num_layers(backbone: nn.Module) -> int:
    return int(backbone.config.num_hidden_layers)


@contextlib.contextmanager
def truncated(backbone: nn.Module, layer: int) -> Iterator[bool]:
    """Run only the first ``layer`` transformer blocks when the architecture allows it; yields whether it did."""
    blocks = getattr(getattr(backbone, "encoder", None), "layer", None)
    if not isinstance(blocks, nn.ModuleList) or layer >= len(blocks):
        yield False
        return
    backbone.encoder.layer = blocks[:layer]
    try:
        yield True
    finally:
        backbone.encoder.layer = blocks


def encode(
    backbone: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, how: str, layer: int | None = None
) -> torch.Tensor:
    """Pooled hidden states of ``layer`` (default: the last), shape (batch, hidden)."""
    if layer is None or layer == num_layers(backbone):
        hidden = backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    else:
        with truncated(backbone, layer) as cut:
            out = backbone(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=not cut)
            hidden = out.last_hidden_state if cut else out.hidden_states[layer]
    return pool(hidden, attention_mask, how)
