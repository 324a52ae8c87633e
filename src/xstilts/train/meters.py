"""How far training moved the encoder: relative weight change and linear CKA of English dev representations."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from xstilts.formats.base import collate
from xstilts.formats.pooling import encode
from xstilts.models.backbone import parameter_depths

MAX_SEQUENCES = 512  # English dev sequences whose representations are compared


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA (Kornblith et al. 2019) of representations (n, d1) and (n, d2) with the same rows, in float64."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"need 2-d inputs with the same number of rows, got {x.shape} and {y.shape}")
    x = x - x.mean(axis=0)
    y = y - y.mean(axis=0)
    den = np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)
    return float(np.linalg.norm(y.T @ x) ** 2 / den) if den > 0 else math.nan


def _sequences(features: list[dict]) -> list[list[int]]:
    """Every token sequence of the features (each choice of a multiple-choice feature), at most MAX_SEQUENCES."""
    out = []
    for f in features:
        ids = f["input_ids"]
        out += ids if ids and isinstance(ids[0], list) else [ids]
    return out[:MAX_SEQUENCES]


class Movement:
    """Snapshot of a backbone before training: its non-embedding weights and the mean-pooled last-layer
    representations of English dev sequences; :meth:`measure` compares the trained backbone with it."""

    def __init__(self, backbone: nn.Module, dev_features: list[dict], pad_id: int, batch_size: int = 64):
        self.pad_id, self.batch_size = pad_id, batch_size
        depths = parameter_depths(backbone)
        self.before = {n: p.detach().float().cpu().clone() for n, p in backbone.named_parameters() if depths[n] > 0}
        self.sequences = _sequences(dev_features)
        self.reps = self._represent(backbone)

    @torch.no_grad()
    def _represent(self, backbone: nn.Module) -> np.ndarray:
        was_training = backbone.training
        backbone.eval()
        device = next(backbone.parameters()).device
        out = []
        for start in range(0, len(self.sequences), self.batch_size):
            batch = collate([{"input_ids": s} for s in self.sequences[start : start + self.batch_size]], self.pad_id)
            out.append(
                encode(backbone, batch["input_ids"].to(device), batch["attention_mask"].to(device), "mean")
                .float()
                .cpu()
                .numpy()
            )
        backbone.train(was_training)
        return np.concatenate(out)

    def measure(self, backbone: nn.Module) -> dict:
        """relative_change: |after - before| / |before| over the non-embedding weights; max_abs_change; and
        cka_english_dev between the representations before and after (1 = unchanged)."""
        moved = total = 0.0
        largest = 0.0
        for name, p in backbone.named_parameters():
            if name in self.before:
                delta = p.detach().float().cpu() - self.before[name]
                moved += float(delta.pow(2).sum())
                total += float(self.before[name].pow(2).sum())
                largest = max(largest, float(delta.abs().max()))
        return {
            "relative_change": round((moved / total) ** 0.5, 8),
            "max_abs_change": largest,
            "cka_english_dev": round(linear_cka(self.reps, self._represent(backbone)), 6),
            "cka_sequences": len(self.sequences),
        }
