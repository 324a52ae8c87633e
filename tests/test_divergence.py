"""A non-finite loss stops training at the update that produced it, before anything of it is applied, and
leaves the last training checkpoint in place."""

from __future__ import annotations

import pytest
import torch

from xstilts.config.schema import TrainConfig
from xstilts.models.backbone import load_backbone
from xstilts.models.multitask import build_multitask
from xstilts.tasks.features import task_features
from xstilts.train.loop import Checkpoints, TrainingDiverged, TrainTask, train


def test_nan_loss_stops_at_its_update_and_keeps_the_checkpoint(tiny_model, tiny_catalog, tmp_path, monkeypatch):
    monkeypatch.setenv("XSTILTS_FEATURE_CACHE", str(tmp_path / "features"))
    task = tiny_catalog.get("t-topic")
    backbone, tok = load_backbone(tiny_model)
    features = task_features(task, "train", task.source.load("train", "en"), tok, 32)
    model = build_multitask(backbone, [task], "linear", "mean")
    calls = []

    def poison(module, args, output):  # from the third forward pass on, the head's outputs are NaN
        calls.append(1)
        return output * float("nan") if len(calls) >= 3 else output

    model.heads[task.name].register_forward_hook(poison)
    checkpoints = Checkpoints(tmp_path / "train_state", every=0)
    cfg = TrainConfig(recipe="full", lr=1e-3, batch_size=8, max_steps=5)
    with pytest.raises(TrainingDiverged, match=r"loss nan on task t-topic at update 3;"):
        train(model, [TrainTask(task.name, features)], cfg, 0, tok.pad_token_id, checkpoints=checkpoints)
    assert checkpoints.dir.is_dir() and not checkpoints.partial.exists()  # updates 1-2, saved whole
    assert all(torch.isfinite(p).all() for p in model.parameters())  # the poisoned update never applied
