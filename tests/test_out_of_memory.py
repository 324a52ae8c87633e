"""An out-of-memory error in training halves the micro-batch and doubles the accumulation (the effective batch
stays), the job runs to the end, and its result records the split. The error is injected: a forward pass over
more than 4 rows raises torch.OutOfMemoryError, as a too-large micro-batch would on a GPU."""

from __future__ import annotations

import json

import pytest
import torch
from rich.console import Console

from xstilts.config.schema import ExperimentConfig
from xstilts.experiments.runner import run_experiment
from xstilts.models.multitask import MultiHeadModel


def test_oom_halves_the_micro_batch_and_keeps_the_effective_batch(tiny_model, tiny_catalog, tmp_path, monkeypatch):
    forward = MultiHeadModel.forward
    seen: list[int] = []

    def limited(self, task, batch):
        seen.append(len(batch["input_ids"]))
        if len(batch["input_ids"]) > 4:
            raise torch.OutOfMemoryError("injected: CUDA out of memory")
        return forward(self, task, batch)

    monkeypatch.setattr(MultiHeadModel, "forward", limited)
    budget = {"batch_size": 8, "epochs": 1, "lr": 1e-3, "max_length": 32}
    cfg = ExperimentConfig.model_validate(
        {
            "model": tiny_model,
            "seeds": [1],
            "intermediate": {"settings": ["t-sametopic"], "train": budget},
            "targets": [{"task": "t-topic", "train": budget}],
        }
    )
    run_experiment(cfg, tiny_catalog, "", tmp_path, Console(quiet=True))
    results = [json.loads(p.read_text()) for p in (tmp_path / "jobs").glob("*/result.json")]
    trained = [r for r in results if r.get("train", {}).get("updates")]  # not the frozen probe's job
    assert len(trained) == 3  # baseline target, intermediate, target after it
    for r in trained:
        assert r["micro_batches"] == {"batch_size": 4, "grad_accum": 2, "split_after_out_of_memory": 2}
        examples = sum(r["train"]["examples_seen"].values())
        assert r["train"]["updates"] == pytest.approx(examples / 8, abs=1)  # 8 examples per update, as planned
    assert max(seen) == 8 and not list(tmp_path.glob("jobs/*/micro_batch_split"))
