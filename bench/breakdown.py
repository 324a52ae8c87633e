"""Where a training update's time goes: forward, backward, gradient clipping, the AdamW step and zero_grad,
timed one by one on pocket-topic batches (me5-small, batch 32), with the embedding table's gradient dense (plain
backward), sparse (xstilts' SparseEmbeddingGrad) and frozen; then torch.profiler's top operators.

    .venv/bin/python bench/breakdown.py [--updates 12]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from xstilts.config.schema import TrainConfig
from xstilts.formats.base import collate, feature_length
from xstilts.models.backbone import freeze, load_backbone
from xstilts.models.multitask import build_multitask
from xstilts.tasks.catalog import TaskCatalog
from xstilts.tasks.features import task_features
from xstilts.train.loop import SparseEmbeddingGrad, _param_groups, length_grouped_batches

PHASES = ("forward", "backward", "densify", "clip", "step", "zero_grad")


def updates(mode: str, n: int, profiler=None) -> dict[str, float]:
    """Median seconds of each phase over ``n`` updates (after one untimed update)."""
    task = TaskCatalog.builtin().get("pocket-topic")
    backbone, tokenizer = load_backbone("me5-small")
    features = task_features(task, "train", task.source.load("train", "en"), tokenizer, 128)
    model = build_multitask(backbone, [task], "linear", "mean")
    if mode == "frozen":
        freeze(backbone, ["embeddings"])
    sparse = SparseEmbeddingGrad.attach(backbone, 1) if mode == "sparse" else None
    optimizer = torch.optim.AdamW(_param_groups(model, TrainConfig(lr=2e-4)), lr=2e-4, fused=True)
    rng = np.random.default_rng(0)
    batches = length_grouped_batches([feature_length(f) for f in features], 32, rng)[: n + 1]
    times: dict[str, list[float]] = {p: [] for p in PHASES}
    model.train()
    for i, idx in enumerate(batches):
        batch = collate([features[j] for j in idx], tokenizer.pad_token_id)
        marks = [time.perf_counter()]
        loss = model(task.name, batch)
        marks.append(time.perf_counter())
        loss.backward()
        marks.append(time.perf_counter())
        if sparse:
            sparse.densify()
        marks.append(time.perf_counter())
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        marks.append(time.perf_counter())
        optimizer.step()
        marks.append(time.perf_counter())
        optimizer.zero_grad()
        marks.append(time.perf_counter())
        if profiler is not None:
            profiler.step()
        if i:
            for phase, a, b in zip(PHASES, marks, marks[1:]):
                times[phase].append(b - a)
    return {p: statistics.median(v) for p, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=12)
    n = parser.parse_args().updates
    rows = {mode: updates(mode, n) for mode in ("dense", "sparse", "frozen")}
    print(f"{'embedding gradient':<20}" + "".join(f"{p:>11}" for p in PHASES) + f"{'update':>11}")
    for mode, row in rows.items():
        cells = "".join(f"{row[p] * 1000:>9.0f}ms" for p in PHASES)
        print(f"{mode:<20}{cells}{sum(row.values()) * 1000:>9.0f}ms")
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        updates("sparse", 4, prof)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


if __name__ == "__main__":
    main()
