"""Training recipes on the tiny model: probe, lp-ft, freezing, head learning rate and layer-wise decay."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xstilts.config.schema import EvalConfig, TrainConfig
from xstilts.metrics.official import seqeval_scores
from xstilts.metrics.per_example import chunk_counts, metric_value
from xstilts.models.backbone import load_backbone, parameter_depths
from xstilts.train.loop import _param_groups
from xstilts.train.phase import PhaseTask, train_phase
from xstilts.train.probe import head_fingerprint

BUDGET = {"batch_size": 8, "lr": 1e-3, "max_steps": 4, "max_length": 32}


def _trained(model_dir: str, catalog, task: str, **train):
    backbone, tok = load_backbone(model_dir)
    before = {n: p.detach().clone() for n, p in backbone.named_parameters()}
    t = catalog.get(task)
    source = catalog.training_source(t)
    phase = [PhaseTask(t, source.load("train", t.train_language), source.load("dev", t.train_language))]
    model, stats = train_phase(
        backbone, tok, phase, TrainConfig(**{**BUDGET, **train}), EvalConfig(), 1, "mean", lambda *a: None, "test"
    )
    return before, model, stats


@pytest.mark.parametrize("task", ["t-topic", "t-answer"])
def test_probe_changes_only_the_head(tiny_model, tiny_catalog, task):
    before, model, stats = _trained(tiny_model, tiny_catalog, task, recipe="probe")
    assert all(torch.equal(before[n], p) for n, p in model.backbone.named_parameters())
    fresh = _trained(tiny_model, tiny_catalog, task, recipe="full", max_steps=1, lr=1e-12)[2]["heads_at_start"]
    ((name, fit),) = stats["probe"]["heads"].items()
    assert fit["head"] != fresh[name] and head_fingerprint(model.heads[name]) == fit["head"]
    assert stats["updates"] == 0 and len(fit["dev_curve"]) == 4 and fit["l2"] in {1e-2, 1e-3, 1e-4, 1e-5}
    assert stats["movement"]["relative_change"] == 0 and stats["movement"]["cka_english_dev"] == pytest.approx(1)


def test_lp_ft_fine_tunes_from_the_probes_head(tiny_model, tiny_catalog):
    _, model, stats = _trained(tiny_model, tiny_catalog, "t-topic", recipe="lp-ft")
    fresh = _trained(tiny_model, tiny_catalog, "t-topic", recipe="full")[2]
    ((name, fit),) = stats["probe"]["heads"].items()
    assert stats["heads_at_start"][name] == fit["head"] != fresh["heads_at_start"][name]
    assert stats["updates"] == 4 and head_fingerprint(model.heads[name]) != fit["head"]  # then it trained on
    assert stats["movement"]["relative_change"] > 0


def test_freeze_keeps_the_named_parts_bitwise(tiny_model, tiny_catalog):
    before, model, stats = _trained(
        tiny_model, tiny_catalog, "t-topic", recipe="full", freeze=["embeddings", "layers:1"]
    )
    depths = parameter_depths(model.backbone)
    params = dict(model.backbone.named_parameters())
    frozen = [n for n in params if depths[n] <= 1]
    assert stats["frozen"] == len(frozen) and any("word_embeddings" in n for n in frozen)
    assert all(torch.equal(before[n], params[n]) for n in frozen)
    assert not any(torch.equal(before[n], params[n]) for n in params if depths[n] == 2 and params[n].ndim == 2)


def test_freezing_more_layers_than_the_model_has_is_a_clear_error(tiny_model, tiny_catalog):
    from xstilts.errors import UserError

    with pytest.raises(UserError, match="'layers:3', but the model has 2 layers"):
        _trained(tiny_model, tiny_catalog, "t-topic", recipe="full", freeze=["layers:3"])


def test_head_lr_and_layer_decay_set_each_groups_rate(tiny_model, tiny_catalog):
    _, model, _ = _trained(tiny_model, tiny_catalog, "t-topic", recipe="probe")
    cfg = TrainConfig(lr=1e-4, head_lr=1e-2, layer_decay=0.5)
    groups = _param_groups(model, cfg)
    rate = {id(p): g["lr"] for g in groups for p in g["params"]}
    depths = parameter_depths(model.backbone)
    for name, p in model.named_parameters():
        if name.startswith("heads."):
            assert rate[id(p)] == 1e-2
        else:  # 2 blocks: the top block trains at lr, the one below at lr / 2, the embeddings at lr / 8
            assert rate[id(p)] == pytest.approx(1e-4 * 0.5 ** (3 - depths[name.removeprefix("backbone.")]))
    decayed = {id(p) for g in groups if g["weight_decay"] for p in g["params"]}
    assert all((id(p) in decayed) == (p.ndim >= 2 and "LayerNorm" not in n) for n, p in model.named_parameters())


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"freeze": ["embedding"]}, "pattern"),
        ({"recipe": "probe", "freeze": ["embeddings"]}, "trains no encoder"),
        ({"recipe": "lpft"}, "'full', 'probe' or 'lp-ft'"),
        ({"layer_decay": 1.5}, "less than or equal to 1"),
    ],
)
def test_bad_recipe_settings_are_refused(bad, message):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=message):
        TrainConfig(**bad)


def test_chunk_counts_reproduce_seqeval_f1():
    rng = np.random.default_rng(0)
    tags = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    gold = [list(rng.choice(tags, size=rng.integers(1, 12))) for _ in range(200)]
    pred = [[t if rng.random() < 0.7 else str(rng.choice(tags)) for t in s] for s in gold]
    assert metric_value(chunk_counts(gold, pred)) == pytest.approx(seqeval_scores(gold, pred)["f1"], abs=1e-9)
