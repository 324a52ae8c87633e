"""A training phase stopped after any update and resumed from its checkpoint ends bit-identical to one that ran
straight through, for every recipe that trains (the lp-ft probe runs again on resume, and may not change the
outcome)."""

from __future__ import annotations

import pytest
import torch

from xstilts.config.schema import EvalConfig, TrainConfig
from xstilts.models.backbone import load_backbone
from xstilts.train.loop import Checkpoints
from xstilts.train.phase import PhaseTask, train_phase


class _Stop(Exception):
    pass


@pytest.mark.parametrize(
    "recipe, grad_accum", [("full", 1), ("lp-ft", 1), ("lp-ft", 2)], ids=["full", "lp-ft", "lp-ft-accum"]
)
def test_a_resumed_phase_ends_bit_identical(recipe, grad_accum, tiny_model, tiny_catalog, tmp_path, monkeypatch):
    monkeypatch.setenv("XSTILTS_FEATURE_CACHE", str(tmp_path / "features"))
    task = tiny_catalog.get("t-answer")
    phase = [PhaseTask(task, task.source.load("train", "en"), task.source.load("dev", "en"))]
    cfg = TrainConfig(recipe=recipe, lr=1e-3, batch_size=8 // grad_accum, grad_accum=grad_accum, max_steps=12)

    def run(checkpoints: Checkpoints | None = None, stop_at: int | None = None):
        backbone, tokenizer = load_backbone(tiny_model)

        def progress(label: str, step: int, total: int) -> None:  # called after each update, before its save
            if step == stop_at and " loss " in label:
                raise _Stop

        model, stats = train_phase(backbone, tokenizer, phase, cfg, EvalConfig(), 2, "mean", progress, "t", checkpoints)
        return model.state_dict(), stats

    straight, stats = run()
    for stop_at in (2, 5, 11):
        checkpoints = Checkpoints(tmp_path / f"state-{stop_at}", every=0)
        with pytest.raises(_Stop):
            run(checkpoints, stop_at)
        resumed, resumed_stats = run(checkpoints)
        assert resumed_stats["resumed_from_update"] == stop_at - 1
        assert resumed_stats["final_loss"] == stats["final_loss"]
        assert [n for n, v in resumed.items() if not torch.equal(v, straight[n])] == []
