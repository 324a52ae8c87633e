"""Retrieval without training: pooled hidden states of one layer, cosine nearest neighbour (Tatoeba-style)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from xstilts.models.pooling import encode, num_layers


def default_layer(backbone: nn.Module) -> int:
    """About 14/24 of the model's depth, as XTREME reads XLM-R large at layer 14."""
    return max(1, round(num_layers(backbone) * 14 / 24))


@torch.inference_mode()
def embed(backbone: nn.Module, tokenizer: Any, texts: list[str], layer: int, pooling: str,
          max_length: int, batch_size: int, contexts: list[str] | None = None) -> np.ndarray:
    """L2-normalised pooled embeddings, one row per text (encoded with its context when given), in input order."""
    backbone.eval()
    args = (texts, contexts) if contexts is not None else (texts,)
    ids = tokenizer(*args, truncation=True, max_length=max_length)["input_ids"]
    order = np.argsort([len(x) for x in ids], kind="stable")
    out = np.zeros((len(texts), backbone.config.hidden_size), dtype=np.float32)
    pad = tokenizer.pad_token_id
    device = next(backbone.parameters()).device
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        width = max(len(ids[i]) for i in idx)
        batch = torch.tensor([ids[i] + [pad] * (width - len(ids[i])) for i in idx], device=device)
        pooled = encode(backbone, batch, (batch != pad).long(), pooling, layer)
        out[idx] = torch.nn.functional.normalize(pooled.float(), dim=-1).cpu().numpy()
    return out

