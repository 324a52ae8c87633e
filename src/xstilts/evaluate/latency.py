"""Inference speed of a trained model, measured where it ran: latency of single examples and throughput of
batches, on the task's own (English dev) features, or for an encoder alone on sentences it pools."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from xstilts.formats.base import collate
from xstilts.formats.pooling import encode

LATENCY_EXAMPLES = 64  # single-example forward passes timed (after WARMUP untimed ones)
THROUGHPUT_EXAMPLES = 256
WARMUP = 4
# Time caps, so that a big model on a CPU does not spend minutes on its meter: the single-example passes stop once
# LATENCY_SECONDS are timed, the batches once THROUGHPUT_SECONDS have passed (after one at least); the result says
# how many examples each timed.
LATENCY_SECONDS = 2.0
THROUGHPUT_SECONDS = 3.0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def _timed(forward: Callable[[dict], Any], features: list[dict], pad_id: int, device: torch.device, batch_size: int):
    """p50 and p95 latency (ms) of ``forward`` on one feature at a time, and features per second in batches of
    ``batch_size`` (in file order, each batch padded to its longest), on the first features (within the caps)."""
    singles = features[: WARMUP + LATENCY_EXAMPLES]
    times: list[float] = []
    for i, feature in enumerate(singles):
        batch = {k: v.to(device) for k, v in collate([feature], pad_id).items()}
        _sync(device)
        start = time.perf_counter()
        forward(batch)
        _sync(device)
        if i >= WARMUP or len(singles) <= WARMUP:
            times.append(time.perf_counter() - start)
            if sum(times) >= LATENCY_SECONDS:
                break
    batches = features[:THROUGHPUT_EXAMPLES]
    done = 0
    _sync(device)
    start = time.perf_counter()
    for k in range(0, len(batches), batch_size):
        forward({n: v.to(device) for n, v in collate(batches[k : k + batch_size], pad_id).items()})
        done += len(batches[k : k + batch_size])
        if time.perf_counter() - start >= THROUGHPUT_SECONDS:
            break
    _sync(device)
    seconds = time.perf_counter() - start
    return {
        "latency_ms_p50": round(float(np.percentile(times, 50)) * 1000, 3),
        "latency_ms_p95": round(float(np.percentile(times, 95)) * 1000, 3),
        "latency_examples": len(times),
        "throughput_examples_per_second": round(done / seconds, 2),
        "throughput_batch": batch_size,
        "throughput_examples": done,
    }


def measure(model: torch.nn.Module, task: str, features: list[dict], pad_id: int, batch_size: int = 32) -> dict:
    """Latency and throughput of ``model.logits(task, ...)`` (a MultiHeadModel) on the first of ``features``."""
    model.eval()
    device = next(model.parameters()).device
    return _timed(lambda batch: model.logits(task, batch), features, pad_id, device, batch_size)


def measure_encoder(
    backbone: torch.nn.Module,
    tokenizer: Any,
    texts: list[str],
    layer: int,
    pooling: str,
    max_length: int,
    batch_size: int = 32,
) -> dict:
    """Latency and throughput of encoding single ``texts`` and batches of them as a retrieval job does: the
    pooled states of ``layer`` (tokenized beforehand, so that only the encoder is timed)."""
    backbone.eval()
    device = next(backbone.parameters()).device
    ids = tokenizer(texts[:THROUGHPUT_EXAMPLES], truncation=True, max_length=max_length)["input_ids"]
    features = [{"input_ids": x} for x in ids]

    def forward(batch: dict) -> torch.Tensor:
        return encode(backbone, batch["input_ids"], batch["attention_mask"], pooling, layer)

    return _timed(forward, features, tokenizer.pad_token_id, device, batch_size)
