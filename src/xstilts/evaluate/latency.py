"""Inference speed of a trained model, measured where it ran: latency of single examples and throughput of
batches, on the task's own (English test) features."""

from __future__ import annotations

import time

import numpy as np
import torch

from xstilts.formats.base import collate

LATENCY_EXAMPLES = 64  # single-example forward passes timed (after WARMUP untimed ones)
THROUGHPUT_EXAMPLES = 256
WARMUP = 4


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def measure(model: torch.nn.Module, task: str, features: list[dict], pad_id: int, batch_size: int = 32) -> dict:
    """p50 and p95 latency (ms) of one example at a time, and examples per second in batches of ``batch_size``
    (in file order, each batch padded to its longest), on the first examples of ``features``."""
    model.eval()
    device = next(model.parameters()).device
    singles = features[: WARMUP + LATENCY_EXAMPLES]
    times = []
    for i, feature in enumerate(singles):
        batch = {k: v.to(device) for k, v in collate([feature], pad_id).items()}
        _sync(device)
        start = time.perf_counter()
        model.logits(task, batch)
        _sync(device)
        if i >= WARMUP or len(singles) <= WARMUP:
            times.append(time.perf_counter() - start)
    batches = features[:THROUGHPUT_EXAMPLES]
    _sync(device)
    start = time.perf_counter()
    for k in range(0, len(batches), batch_size):
        model.logits(task, {n: v.to(device) for n, v in collate(batches[k : k + batch_size], pad_id).items()})
    _sync(device)
    seconds = time.perf_counter() - start
    return {
        "latency_ms_p50": round(float(np.percentile(times, 50)) * 1000, 3),
        "latency_ms_p95": round(float(np.percentile(times, 95)) * 1000, 3),
        "latency_examples": len(times),
        "throughput_batch": batch_size,
        "throughput_examples_per_second": round(len(batches) / seconds, 2),
        "throughput_examples": len(batches),
        "threads": torch.get_num_threads(),
    }
