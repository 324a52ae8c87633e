"""The paper's target-task protocol (XTREME's fine-tuning recipe): defaults any config field overrides."""

from __future__ import annotations


def fine_tuning(epochs: float, batch_size: int = 32, max_length: int = 256) -> dict:
    """Full fine-tuning from a fresh RoBERTa-style head (jiant's), lr 1e-5, 10% warm-up, effective batch 32 (QA
    16), the checkpoint chosen on English dev; the same max length for training and evaluation."""
    return {
        "train": {
            "recipe": "full",
            "head": "mlp",
            "lr": 1e-5,
            "batch_size": batch_size,
            "warmup_ratio": 0.1,
            "epochs": epochs,
            "max_length": max_length,
            "select_on_dev": True,
        },
        "eval": {"max_length": max_length},
    }


CLASSIFICATION = fine_tuning(2)
PAWSX = fine_tuning(5)
TAGGING = fine_tuning(10)
QA = fine_tuning(2, batch_size=16, max_length=384)
RETRIEVAL = {"eval": {"max_length": 512, "layer": "auto"}}  # layer auto: about 14/24 of the depth
