"""Multi-task sampling distributions over tasks."""

from __future__ import annotations

import numpy as np


def task_probabilities(sizes: list[int], sampler: str, temperature: float = 2.0, cap: int | None = None) -> np.ndarray:
    """p_i for drawing task i: uniform, proportional to its size n_i, temperature (n_i^(1/T)), or
    proportional with each size capped (min(n_i, cap))."""
    n = np.asarray(sizes, dtype=float)
    if (n <= 0).any():
        raise ValueError("every task needs at least one training example")
    weights = {
        "uniform": lambda: np.ones_like(n),
        "proportional": lambda: n,
        "temperature": lambda: n ** (1.0 / temperature),
        "capped": lambda: np.minimum(n, cap),
    }
    if sampler not in weights:
        raise ValueError(f"unknown sampler {sampler!r}")
    w = weights[sampler]()
    return w / w.sum()
