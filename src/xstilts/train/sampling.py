"""Multi-task sampling distributions over tasks."""

from __future__ import annotations

import numpy as np


def task_probabilities(sizes: list[int], sampler: str) -> np.ndarray:
    """p_i for drawing task i: proportional to its size, or uniform."""
    n = np.asarray(sizes, dtype=float)
    if (n <= 0).any():
        raise ValueError("every task needs at least one training example")
    if sampler == "uniform":
        return np.full(len(n), 1.0 / len(n))
    if sampler == "proportional":
        return n / n.sum()
    raise ValueError(f"unknown sampler {sampler!r}")
