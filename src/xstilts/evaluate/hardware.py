"""What a job's hardware delivered: peak FLOP/s of the device, the job's peak memory, the non-embedding parameter
count MFU is reckoned on, the tokens an encoder was fed, and the ``meters`` block of a result built from them.

MFU (model FLOPs utilisation) follows the dense-transformer rule: 6·N FLOPs per trained token, 2·N per inferred
token, N the parameters without the input embedding tables, over the device's peak FLOP/s: a datasheet figure
(dense bf16/fp16 tensor cores) for a known CUDA device, on CPU a fp32 matmul probe measured once per machine and
cached. torch is imported where it is used, so that ``METER_KEYS`` reads cheaply (the results index).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from xstilts.cache import atomic_write_json, cache_dir

if TYPE_CHECKING:
    import torch
    from torch import nn

# The keys of a result's ``meters`` block, in order; each is one column of ``xstilts results``. A job has those
# of what it did: training meters where a training loop ran, evaluation and inference meters always.
METER_KEYS: tuple[str, ...] = (
    "train_tokens_per_second",  # non-padding tokens seen per second of the training loop (all processes)
    "train_examples_per_second",
    "train_mfu",  # 6·N·tokens / train seconds / (peak_flops · processes)
    "eval_tokens",  # non-padding tokens fed to the encoder by the English dev and zero-shot evaluation
    "eval_seconds",  # wall seconds of that evaluation (featurizing, forward passes, scoring)
    "eval_tokens_per_second",
    "eval_mfu",  # 2·N·eval_tokens / eval_seconds / peak_flops
    "latency_ms_p50",  # one example at a time, after a warm-up
    "latency_ms_p95",
    "latency_examples",
    "throughput_examples_per_second",  # batches of throughput_batch, each padded to its longest
    "throughput_batch",
    "throughput_examples",
    "peak_memory_mb",  # the job's peak: see peak_memory_source
    "peak_memory_source",
    "params_non_embedding",  # N: the parameters the evaluation ran, without embedding tables
    "peak_flops",  # the device's peak FLOP/s the MFU figures divide by
    "peak_source",  # "datasheet" (CUDA, dense bf16/fp16) or "matmul probe" (CPU, fp32)
)

# --- Peak FLOP/s ---------------------------------------------------------------------------------------------------
# Accelerators: datasheet peak dense TFLOP/s (bf16/fp16 tensor cores unless the name says fp32), also the table of
# ``xstilts plan --accelerator``.
ACCELERATORS: dict[str, float] = {
    "a100": 312.0,
    "h100": 989.0,
    "h200": 989.0,
    "l4": 121.0,
    "v100": 125.0,
    "a100-fp32": 19.5,
}
# Their memory per GPU (GiB, datasheet), for ``xstilts plan``'s memory check; cpu: this machine's RAM.
ACCELERATOR_MEMORY_GIB: dict[str, float] = {"a100": 80, "h100": 80, "h200": 141, "l4": 24, "v100": 32, "a100-fp32": 80}
PROBE_SIZE = 2048  # the CPU probe multiplies PROBE_SIZE² fp32 matrices
PROBE_REPEATS = 5
_PROBE_FILE = "hardware/peak-flops.json"


def datasheet_tflops(device_name: str) -> float | None:
    """Dense bf16/fp16 TFLOP/s of a CUDA device by its name (``NVIDIA H100 80GB HBM3``), None when not in the
    table; matched on whole words of the name, so that an L40S is not taken for an L4."""
    words = set(re.split(r"[^a-z0-9]+", device_name.lower()))
    return next((tflops for name, tflops in ACCELERATORS.items() if "-" not in name and name in words), None)


def matmul_flops(size: int = PROBE_SIZE, repeats: int = PROBE_REPEATS) -> float:
    """Measured fp32 FLOP/s of this CPU: the best of ``repeats`` timed ``size``² matmuls (after one untimed)."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b  # warm-up
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / max(best, 1e-9)


def cpu_model() -> str:
    """The CPU's ``model name`` in /proc/cpuinfo, else what the platform module says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


def probe_key() -> str:
    """What the CPU probe's figure depends on: the CPU model, torch's thread count and the torch version."""
    import torch

    return f"{cpu_model()} | {torch.get_num_threads()} threads | torch {torch.__version__}"


def probe_path() -> Path:
    """The JSON file of measured CPU peaks, one entry per :func:`probe_key`, in the xstilts cache."""
    return cache_dir() / _PROBE_FILE


def _read_probes(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def cpu_peak_flops() -> float:
    """This machine's fp32 peak FLOP/s from the matmul probe: read from the cache file when it holds an entry for
    :func:`probe_key`, else measured (a second or two) and added to it."""
    key, path = probe_key(), probe_path()
    entry = _read_probes(path).get(key)
    if isinstance(entry, dict) and isinstance(entry.get("flops"), (int, float)) and entry["flops"] > 0:
        return float(entry["flops"])
    flops = matmul_flops()
    probes = _read_probes(path)  # again: another process may have added its entry meanwhile
    probes[key] = {
        "flops": flops,
        "size": PROBE_SIZE,
        "repeats": PROBE_REPEATS,
        "measured": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    atomic_write_json(path, probes)
    return flops


def peak_flops(device: torch.device | str) -> tuple[float | None, str]:
    """(peak FLOP/s, where it comes from) of ``device``: the datasheet table for CUDA (None for a device not in
    it), the cached matmul probe for the CPU."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        tflops = datasheet_tflops(torch.cuda.get_device_name(device))
        return (tflops * 1e12 if tflops else None), "datasheet"
    return cpu_peak_flops(), "matmul probe"


# --- Parameters ----------------------------------------------------------------------------------------------------


def non_embedding_params(model: nn.Module) -> int:
    """Parameters of ``model`` without its embedding tables (word, position, token-type: every ``nn.Embedding``
    and the input embeddings); a weight shared with a table (a tied LM decoder) counts as the table."""
    from torch import nn

    tables = {id(p) for m in model.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    for m in model.modules():
        get = getattr(m, "get_input_embeddings", None)
        if callable(get) and isinstance(emb := _input_embeddings(get), nn.Module):
            tables |= {id(p) for p in emb.parameters()}
    return int(sum(p.numel() for p in model.parameters() if id(p) not in tables))


def _input_embeddings(get) -> Any:
    try:
        return get()
    except (NotImplementedError, AttributeError):
        return None


# --- Peak memory ---------------------------------------------------------------------------------------------------

_STATM = Path("/proc/self/statm")


def resident_mb() -> float | None:
    """This process's resident memory now (MB), from /proc/self/statm; None where there is no /proc."""
    try:
        pages = int(_STATM.read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _ru_maxrss_mb() -> float:
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB elsewhere


class PeakMemory:
    """The peak memory of what runs inside the ``with`` block: on CUDA ``max_memory_allocated`` after
    ``reset_peak_memory_stats`` at the start; on CPU the resident set size sampled every ``interval`` seconds by
    a daemon thread reading /proc/self/statm (the process may run several jobs one after another), or, without
    /proc, ``ru_maxrss``: the peak of the whole process so far."""

    def __init__(self, device: torch.device | str = "cpu", interval: float = 0.02):
        import torch

        self.device, self.interval = torch.device(device), interval
        self.peak: float | None = None  # MB, once the block ends
        self.source = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Self:
        import torch

        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.source = "cuda max_memory_allocated"
        elif (now := resident_mb()) is not None:
            self.peak, self.source = now, "rss sampled from /proc/self/statm"
            self._thread = threading.Thread(target=self._sample, name="xstilts-peak-memory", daemon=True)
            self._thread.start()
        else:
            self.source = "ru_maxrss (process peak so far)"
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._take()

    def _take(self) -> None:
        now = resident_mb()
        if now is not None and (self.peak is None or now > self.peak):
            self.peak = now

    def __exit__(self, *exc) -> None:
        import torch

        if self.device.type == "cuda":
            self.peak = torch.cuda.max_memory_allocated(self.device) / 2**20
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._take()
        else:
            self.peak = _ru_maxrss_mb()

    def meters(self) -> dict[str, Any]:
        return {
            "peak_memory_mb": round(self.peak, 1) if self.peak is not None else None,
            "peak_memory_source": self.source,
        }


# --- Tokens and MFU ------------------------------------------------------------------------------------------------


class TokenMeter:
    """Non-padding tokens fed to ``encoder`` while the ``with`` block runs, counted by a forward pre-hook from
    the ``attention_mask`` of each call (every input id without one), and the block's wall seconds."""

    def __init__(self, encoder: nn.Module):
        self.encoder = encoder
        self.tokens = 0
        self.seconds = 0.0
        self._counts: list = []

    def _count(self, module, args: tuple, kwargs: dict) -> None:
        mask = kwargs.get("attention_mask")
        if mask is not None:
            self._counts.append(mask.sum())  # a device tensor: no synchronisation per batch
        else:
            ids = kwargs.get("input_ids", args[0] if args else None)
            self._counts.append(int(ids.numel()) if ids is not None else 0)

    def __enter__(self) -> Self:
        self._handle = self.encoder.register_forward_pre_hook(self._count, with_kwargs=True)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        import torch

        device = next(self.encoder.parameters()).device
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        self.seconds = time.perf_counter() - self._start
        self._handle.remove()
        self.tokens = int(sum(int(c) for c in self._counts))
        self._counts = []


def mfu(flops: float, seconds: float, peak: float | None, devices: int = 1) -> float | None:
    """Achieved over peak FLOP/s; None without a peak or a duration."""
    if not peak or not seconds:
        return None
    return flops / seconds / (peak * devices)


def _figure(x: float | None) -> float | None:
    return None if x is None else float(f"{x:.4g}")


def meters(
    params: int,
    peak: tuple[float | None, str],
    evaluation: TokenMeter,
    inference: dict[str, Any],
    train: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A result's ``meters`` but peak memory (see :func:`ordered`): training throughput and MFU from the loop's
    summary ``train`` (when a loop ran), evaluation throughput and MFU, the inference speed measured by
    ``xstilts.evaluate.latency``, N and the peak FLOP/s."""
    flops, source = peak
    out: dict[str, Any] = {"params_non_embedding": params, "peak_flops": _figure(flops), "peak_source": source}
    if train and train.get("train_seconds"):
        seconds, tokens = train["train_seconds"], train["tokens_seen"]
        out |= {
            "train_tokens_per_second": round(tokens / seconds, 2),
            "train_examples_per_second": round(sum(train["examples_seen"].values()) / seconds, 2),
            "train_mfu": _figure(mfu(6 * params * tokens, seconds, flops, train.get("processes", 1))),
        }
    if evaluation.seconds:
        out |= {
            "eval_tokens": evaluation.tokens,
            "eval_seconds": round(evaluation.seconds, 3),
            "eval_tokens_per_second": round(evaluation.tokens / evaluation.seconds, 2),
            "eval_mfu": _figure(mfu(2 * params * evaluation.tokens, evaluation.seconds, flops)),
        }
    out |= {k: v for k, v in inference.items() if k in METER_KEYS}
    return ordered(out)


def ordered(meters: dict[str, Any]) -> dict[str, Any]:
    """Meters in ``METER_KEYS`` order, those without a value left out."""
    return {k: meters[k] for k in METER_KEYS if meters.get(k) is not None}
