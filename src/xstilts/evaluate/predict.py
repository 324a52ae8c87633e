"""Batched inference of a task head, length-sorted for speed, returned in input order."""

from __future__ import annotations

import numpy as np
import torch

from xstilts.formats.base import collate, feature_length


@torch.inference_mode()
def predict_logits(
    model: torch.nn.Module, task: str, features: list[dict], batch_size: int, pad_id: int
) -> list[np.ndarray]:
    """Outputs of ``model.logits(task, ...)`` (a MultiHeadModel), one array per feature (sequence outputs keep the batch's padding)."""
    model.eval()
    device = next(model.parameters()).device
    order = np.argsort([-feature_length(f) for f in features], kind="stable")
    out: list[np.ndarray] = [np.empty(0)] * len(features)
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        batch = collate([features[i] for i in idx], pad_id)
        logits = model.logits(task, {k: v.to(device) for k, v in batch.items()}).float().cpu().numpy()
        for i, row in zip(idx, logits):
            out[i] = row
    return out
