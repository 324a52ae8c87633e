"""Batched inference of a task head, length-sorted for speed, returned in input order."""

from __future__ import annotations

import numpy as np
import torch

from xstilts.formats.base import collate, feature_length


@torch.inference_mode()
def predict_logits(model: torch.nn.Module, task: str, features: list[dict], batch_size: int, pad_id: int) -> np.ndarray:
    """Logits of ``model.heads[task]`` for every feature."""
    model.eval()
    device = next(model.parameters()).device
    order = np.argsort([-feature_length(f) for f in features], kind="stable")
    chunks = []
    for start in range(0, len(order), batch_size):
        batch = collate([features[i] for i in order[start:start + batch_size]], pad_id)
        batch = {k: v.to(device) for k, v in batch.items()}
        chunks.append(model(task, batch).float().cpu().numpy())
    logits = np.concatenate(chunks)
    out = np.empty_like(logits)
    out[order] = logits
    return out
