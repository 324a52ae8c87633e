"""The probe's input (standardised or L2-normalised), the function lp-ft starts from, and both reference probes in
plans and exported rows."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from conftest import WORDS
from rich.console import Console
from sklearn.linear_model import LogisticRegression

from xstilts.config.schema import EvalConfig, ExperimentConfig, TrainConfig
from xstilts.data.sources import JsonlDirSource
from xstilts.evaluate.predict import predict_logits
from xstilts.evaluate.zero_shot import headline_score
from xstilts.experiments.export import rows
from xstilts.experiments.plan import plan
from xstilts.experiments.rundir import RunDir
from xstilts.experiments.runner import run_experiment
from xstilts.formats.base import collate
from xstilts.formats.pooling import encode
from xstilts.models.backbone import load_backbone
from xstilts.models.multitask import build_multitask
from xstilts.tasks.definition import TaskDef
from xstilts.tasks.features import task_features
from xstilts.train.phase import PhaseTask, train_phase
from xstilts.train.probe import ProbeTask, fit_probe

BUDGET = {"batch_size": 8, "lr": 1e-3, "max_steps": 4, "max_length": 32}
L2 = 1e-2


def _phase(model_dir: str, catalog, **train):
    backbone, tok = load_backbone(model_dir)
    t = catalog.get("t-topic")
    source = catalog.training_source(t)
    phase = PhaseTask(t, source.load("train", "en"), source.load("dev", "en"))
    cfg = TrainConfig(**{**BUDGET, **train})
    model, stats = train_phase(backbone, tok, [phase], cfg, EvalConfig(), 1, "mean", lambda *a: None, "test")
    return model, stats, tok, phase


def _features(tok, phase: PhaseTask):
    t = phase.task
    return task_features(t, "train", phase.train, tok, 32), task_features(t, "dev", phase.dev, tok, 32)


@torch.no_grad()
def _pooled(model_dir: str, features: list[dict], pad_id: int) -> np.ndarray:
    """Mean-pooled vectors of the untouched pretrained encoder, computed apart from any probe code."""
    backbone, _ = load_backbone(model_dir)
    backbone.eval()
    batch = collate(features, pad_id)
    return encode(backbone, batch["input_ids"], batch["attention_mask"], "mean").numpy().astype(np.float64)


def _probabilities(logits: list[np.ndarray]) -> np.ndarray:
    return torch.softmax(torch.tensor(np.stack(logits)), -1).numpy()


@pytest.mark.parametrize("probe_input", ["standardised", "normalised"])
def test_the_probe_is_a_logistic_regression_on_its_input(tiny_model, tiny_catalog, probe_input):
    """scikit-learn's logistic regression, fit on vectors pooled here and standardised or L2-normalised here, with
    the probe's L2 (sklearn: C * sum of losses + |W|^2 / 2; the probe: mean loss + L2 / 2 * |W|^2 on its input,
    which for normalised vectors is scaled by sqrt(hidden size)), predicts what the probe predicts."""
    model, stats, tok, phase = _phase(tiny_model, tiny_catalog, recipe="probe", probe_l2=[L2], probe_input=probe_input)
    assert stats["probe"]["input"] == probe_input
    train, dev = _features(tok, phase)
    x_train, x_dev = (_pooled(tiny_model, f, tok.pad_token_id) for f in (train, dev))
    n, dim = x_train.shape
    if probe_input == "standardised":
        mean, std = x_train.mean(0), x_train.std(0, ddof=1)
        std = np.maximum(std, 1e-2 * std.mean())
        inputs, c = [(x - mean) / std for x in (x_train, x_dev)], 1 / (L2 * n)
    else:
        inputs, c = [x / np.linalg.norm(x, axis=1, keepdims=True) for x in (x_train, x_dev)], dim / (L2 * n)
    reference = LogisticRegression(C=c, tol=1e-10, max_iter=10_000).fit(inputs[0], [f["label"] for f in train])
    got = _probabilities(predict_logits(model, "t-topic", dev, 16, tok.pad_token_id))
    np.testing.assert_allclose(got, reference.predict_proba(inputs[1]), atol=2e-3)


@pytest.mark.parametrize("probe_input", ["standardised", "normalised"])
def test_lp_ft_starts_from_the_probes_exact_function(tiny_model, tiny_catalog, probe_input):
    """One fine-tuning update at a negligible rate leaves lp-ft's model reading what the probe selected: the same
    head weights and the same outputs on raw inputs, which score the probe's chosen dev score."""
    probe, stats, tok, phase = _phase(tiny_model, tiny_catalog, recipe="probe", probe_input=probe_input)
    start, lp_ft, _, _ = _phase(
        tiny_model, tiny_catalog, recipe="lp-ft", probe_input=probe_input, max_steps=1, lr=1e-12, head_lr=1e-12
    )
    ((name, fit),) = stats["probe"]["heads"].items()
    assert lp_ft["probe"]["heads"][name] == fit and lp_ft["heads_at_start"][name] == fit["head"]
    _, dev = _features(tok, phase)
    probed = predict_logits(probe, "t-topic", dev, 16, tok.pad_token_id)
    np.testing.assert_allclose(
        np.stack(predict_logits(start, "t-topic", dev, 16, tok.pad_token_id)), np.stack(probed), atol=1e-5
    )
    score = 100 * np.mean([o.argmax() == f["label"] for o, f in zip(probed, dev)])
    assert score == pytest.approx(dict(map(tuple, fit["dev_curve"]))[fit["l2"]])


TARGET_BUDGET = {"batch_size": 8, "epochs": 1, "lr": 1e-3, "max_length": 32}


def _config(model: str, grid: dict | None = None, **target) -> ExperimentConfig:
    target = {"task": "t-topic", "train": TARGET_BUDGET, **target}
    return ExperimentConfig.model_validate({"model": model, "seeds": [1], "targets": [target], "grid": grid or {}})


def test_the_plan_adds_both_reference_probes_and_ids_hold(tiny_model, tiny_catalog):
    jobs = plan(_config(tiny_model), tiny_catalog).jobs
    probes = [j.spec for j in jobs if j.kind == "target" and j.spec.train.recipe == "probe"]
    assert [p.train.probe_input for p in probes] == ["standardised", "normalised"]
    assert all(p.seed is None and p.train.head == "linear" for p in probes)
    # standardised, the input of every earlier version, stays out of specs (ids hold); normalised is in
    assert ["probe_input" in p.as_dict()["train"] for p in probes] == [False, True]
    assert not [j for j in plan(_config(tiny_model, probe_reference=False), tiny_catalog).jobs if j.spec.seed is None]

    def ids(**train) -> set[str]:
        cfg = _config(tiny_model, train={**TARGET_BUDGET, **train})
        return {j.id for j in plan(cfg, tiny_catalog).jobs}

    default = TrainConfig().probe_input
    assert ids(probe_input=default) == ids()
    other = "standardised" if default == "normalised" else "normalised"
    assert len(ids(probe_input=other) - ids()) == 1  # the fine-tuned job; the reference probes are shared
    assert ids(recipe="full", probe_input="normalised") == ids(recipe="full", probe_input="standardised")


def test_rows_name_the_probe_input_of_jobs_that_fit_a_probe(tiny_model, tiny_catalog, tmp_path):
    cfg = _config(tiny_model, grid={"targets.t-topic.train.recipe": ["lp-ft", "full"]})
    run_experiment(cfg, tiny_catalog, "yaml", tmp_path, Console(quiet=True))
    seen = {(r["recipe"], r["probe_input"]) for r in rows(RunDir(tmp_path))}
    default = TrainConfig().probe_input
    assert seen == {("lp-ft", default), ("full", None), ("probe", "standardised"), ("probe", "normalised")}
    # results written before the probe recorded its input had the standardised one
    path = next(
        p for p in RunDir(tmp_path).result_files() if json.loads(p.read_text())["train"].get("recipe") == "lp-ft"
    )
    result = json.loads(path.read_text())
    del result["train"]["probe"]["input"]
    path.write_text(json.dumps(result), encoding="utf-8")
    assert {r["probe_input"] for r in rows(RunDir(tmp_path)) if r["job_id"] == result["job_id"]} == {"standardised"}


def test_token_level_heads_read_each_token_normalised(tiny_model):
    """Span QA (and tagging alike) normalise every token's state: the fitted probe's outputs do not change when
    each token's state is rescaled."""
    rng = random.Random(0)
    examples = []
    for i in range(16):
        words = [rng.choice(WORDS[:-6]) for _ in range(rng.randint(6, 14))]
        words.insert(rng.randrange(len(words)), "pizza")
        context = " ".join(words)
        answers = {"text": ["pizza"], "answer_start": [context.index("pizza")]}
        examples.append({"id": str(i), "question": "what food", "context": context, "answers": answers})
    task = TaskDef("t-qa", "span_qa", "target", "squad", JsonlDirSource("."))
    backbone, tok = load_backbone(tiny_model)
    features = task.format.featurize(task, examples, tok, 32)
    model = build_multitask(backbone, [task], "linear", "mean", normalised=True)
    probe = ProbeTask(task.name, features, features, headline_score(task, examples, features))
    report = fit_probe(model, [probe], [1e-3], 16, tok.pad_token_id, 0, "normalised")
    assert report["input"] == "normalised" and report["heads"]["t-qa"]["dev_curve"][0][1] > 0
    batch = collate(features[:8], tok.pad_token_id)
    with torch.no_grad():
        reps = task.format.represent(model.backbone, batch, "mean")
        scale = torch.rand(*reps.shape[:-1], 1, generator=torch.Generator().manual_seed(0)) * 10 + 0.1
        head = model.heads["t-qa"]
        torch.testing.assert_close(
            task.format.head_logits(head, reps * scale, batch), task.format.head_logits(head, reps, batch)
        )
