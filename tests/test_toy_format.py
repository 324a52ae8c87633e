"""A format defined here alone (scalar regression, scored by Pearson r) runs a whole experiment: registered
with one call, it trains (probe, then fine-tuning), evaluates zero-shot and reports, with no change to src/."""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from conftest import LANGS, TOPICS, WORDS
from rich.console import Console
from scipy.stats import pearsonr
from torch import nn

from xstilts.analysis.study import report_markdown
from xstilts.config.schema import ExperimentConfig
from xstilts.data.sources import JsonlDirSource
from xstilts.experiments.export import rows
from xstilts.experiments.rundir import RunDir
from xstilts.experiments.runner import run_experiment
from xstilts.formats.base import CostHint, HeadFormat, TaskInfo
from xstilts.formats.heads import head_dropout
from xstilts.formats.pooling import encode
from xstilts.formats.registry import get_format, register_format
from xstilts.tasks.definition import TaskDef


class Regression(HeadFormat):
    """Examples {"id", "text", "value"}: one number per text; a linear head on the pooled vector, MSE loss."""

    name = "toy_regression"
    metrics = ("pearson",)
    cost = CostHint(12)

    def headline(self, metric: str) -> str:
        return "pearson"

    def featurize(self, task: TaskInfo, examples: list[dict], tokenizer: Any, max_length: int) -> list[dict]:
        ids = tokenizer([ex["text"] for ex in examples], truncation=True, max_length=max_length)["input_ids"]
        return [{"input_ids": i, "target": ex["value"]} for i, ex in zip(ids, examples)]

    def make_head(self, task: TaskInfo, config, kind: str = "linear") -> nn.Module:
        return nn.Sequential(nn.Dropout(head_dropout(config)), nn.Linear(config.hidden_size, 1))

    def represent(self, backbone: nn.Module, batch: dict, pooling: str) -> torch.Tensor:
        return encode(backbone, batch["input_ids"], batch["attention_mask"], pooling)

    def head_logits(self, head: nn.Module, reps: torch.Tensor, batch: dict) -> torch.Tensor:
        return head(reps).squeeze(-1)

    def loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        return F.mse_loss(logits, batch["target"].to(logits.dtype))

    def predict(self, outputs: list[np.ndarray], features: list[dict], examples: list[dict], task: TaskInfo) -> list:
        return [float(o) for o in outputs]

    def score(self, predictions: list, examples: list[dict], task: TaskInfo, language: str) -> dict[str, float]:
        gold = [ex["value"] for ex in examples]
        if len(gold) < 2 or len(set(gold)) < 2 or len(set(predictions)) < 2:
            return {"mae": float(np.mean(np.abs(np.subtract(predictions, gold))))}
        return {
            "pearson": 100 * float(pearsonr(predictions, gold).statistic),
            "mae": float(np.mean(np.abs(np.subtract(predictions, gold)))),
        }


REGRESSION = Regression()


def _write(path, rows_) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows_), encoding="utf-8")


def _food_count_data(folder) -> None:
    """Texts whose value is how many food words they hold: learnable from the tiny vocabulary."""
    rng = random.Random(1)
    filler = [w for w in WORDS if w not in TOPICS["food"]]
    for split, langs, n in (("train", ["en"], 80), ("dev", ["en"], 24), ("test", LANGS, 24)):
        for lang in langs:
            examples = []
            for i in range(n):
                k = rng.randint(0, 4)
                words = [rng.choice(TOPICS["food"]) for _ in range(k)] + [rng.choice(filler) for _ in range(6 - k)]
                rng.shuffle(words)
                examples.append({"id": f"{lang}{i}", "text": " ".join(words), "value": float(k)})
            _write(folder / f"{split}-{lang}.jsonl", examples)


def test_a_format_defined_outside_src_runs_a_whole_experiment(tiny_model, tiny_catalog, tmp_path):
    register_format(REGRESSION)
    assert get_format("toy_regression") is REGRESSION
    data = tmp_path / "data"
    data.mkdir()
    _food_count_data(data)
    task = TaskDef("t-count", "toy_regression", "target", "pearson", JsonlDirSource(data))
    assert task.format is REGRESSION and task.headline == "pearson"
    catalog = tiny_catalog.with_tasks(task)
    budget = {"batch_size": 8, "lr": 5e-4, "max_length": 16, "epochs": 4}
    cfg = ExperimentConfig.model_validate(
        {
            "name": "toy",
            "model": tiny_model,
            "seeds": [0],
            "head_pooling": "mean",
            "intermediate": {"settings": ["t-sametopic"], "train": {**budget, "epochs": 1}},
            "targets": [{"task": "t-count", "train": budget}],
        }
    )
    summary = run_experiment(cfg, catalog, "", tmp_path / "out", Console(quiet=True))
    assert summary["ran"] == summary["jobs"] == 5  # intermediate, two targets, the two frozen probes

    run = RunDir(tmp_path / "out")
    table = [r for r in rows(run) if r["target"] == "t-count" and r["split"] == "test"]
    assert {(r["intermediate"], r["recipe"]) for r in table} == {
        ("none", "lp-ft"),
        ("t-sametopic", "lp-ft"),
        ("none", "probe"),
    }
    headline = [r for r in table if r["headline"]]
    assert {r["metric"] for r in headline} == {"pearson"} and {r["language"] for r in headline} == set(LANGS)
    # the probe, then fine-tuning, learned the count: strong correlation in every language
    assert all(r["value"] > 80.0 for r in headline)
    probe = next(r for r in run.load_results() if r["train"] and r["train"]["recipe"] == "probe")
    assert probe["train"]["probe"]["heads"]["t-count"]["l2"] in cfg.targets[0].train.probe_l2
    report = report_markdown(run, cfg.intermediate.settings, "toy")
    assert "## t-count (pearson, 3 languages, seeds: 0)" in report
