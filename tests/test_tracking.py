"""Trackers through Accelerate: TensorBoard event files written during training and read back."""

from __future__ import annotations

import pytest
from rich.console import Console
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from xstilts.config.schema import ExperimentConfig
from xstilts.experiments.options import RunOptions
from xstilts.experiments.rundir import RunDir
from xstilts.experiments.runner import run_experiment


def test_tensorboard_logs_loss_lr_throughput_and_dev_scores(tiny_model, tiny_catalog, tmp_path):
    budget = {"batch_size": 8, "lr": 1e-3, "max_length": 32, "epochs": 2, "select_on_dev": True}
    cfg = ExperimentConfig.model_validate(
        {
            "model": tiny_model,
            "intermediate": {"settings": ["t-sametopic"], "train": budget},
            "targets": [{"task": "t-topic", "train": budget, "probe_reference": False}],
            "trackers": ["tensorboard"],
        }
    )
    run_experiment(cfg, tiny_catalog, "", tmp_path, Console(quiet=True), options=RunOptions(trackers=cfg.trackers))
    results = [r for r in RunDir(tmp_path).load_results() if r["kind"] != "retrieval"]
    assert len(results) == 3
    for r in results:
        events = EventAccumulator(str(tmp_path / "tracking" / r["job_id"]))
        events.Reload()
        assert {"train/loss", "train/lr", "train/examples_per_second", "dev/score"} <= set(events.Tags()["scalars"])
        loss = events.Scalars("train/loss")
        assert [e.step for e in loss] == list(range(1, r["train"]["updates"] + 1))
        dev = events.Scalars("dev/score")
        assert [(e.step, pytest.approx(e.value)) for e in dev] == [tuple(c) for c in r["train"]["dev_curve"]]
        lr = [e.value for e in events.Scalars("train/lr")]
        assert lr[-1] == pytest.approx(0, abs=1e-9) and max(lr) == pytest.approx(1e-3, rel=1e-6)  # warm-up, decay


def test_an_uninstalled_tracker_is_a_config_error(tiny_model):
    with pytest.raises(ValueError, match="tracker 'wandb' needs the wandb package"):
        ExperimentConfig.model_validate({"model": tiny_model, "targets": [{"task": "t-topic"}], "trackers": ["wandb"]})
