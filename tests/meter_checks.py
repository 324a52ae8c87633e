"""The check every end-to-end test makes of a finished job's ``meters``."""

from __future__ import annotations

from xstilts.evaluate.hardware import METER_KEYS

COMMON = {
    "eval_tokens",
    "eval_seconds",
    "eval_tokens_per_second",
    "eval_mfu",
    "latency_ms_p50",
    "latency_ms_p95",
    "latency_examples",
    "throughput_examples_per_second",
    "throughput_batch",
    "throughput_examples",
    "peak_memory_mb",
    "peak_memory_source",
    "params_non_embedding",
    "peak_flops",
    "peak_source",
}
TRAINING = {"train_tokens_per_second", "train_examples_per_second", "train_mfu"}


def check_meters(result: dict) -> dict:
    """A result's meters: the keys of its kind (training ones where a training loop ran), positive numbers,
    CPU measuring sources; returns them."""
    meters = result["meters"]
    trained = bool((result.get("train") or {}).get("train_seconds"))
    assert set(meters) == COMMON | (TRAINING if trained else set()), (result["job_id"], sorted(meters))
    assert list(meters) == [k for k in METER_KEYS if k in meters]
    numbers = {k: v for k, v in meters.items() if not k.endswith("_source")}
    assert all(isinstance(v, (int, float)) and v > 0 for v in numbers.values()), numbers
    assert meters["latency_ms_p50"] <= meters["latency_ms_p95"]
    assert meters["train_mfu" if trained else "eval_mfu"] < 1
    if result["device"] == "cpu":
        assert meters["peak_source"] == "matmul probe"
        assert meters["peak_memory_source"] == "rss sampled from /proc/self/statm"
    assert "inference" not in result  # the speed lives in the meters only
    return meters
