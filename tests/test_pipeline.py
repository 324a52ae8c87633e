"""The three phases end to end on a tiny random model and tiny tasks (seconds on CPU)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rich.console import Console

from xstilts.config import ExperimentConfig
from xstilts.evaluate import per_example
from xstilts.experiments.plan import plan
from xstilts.experiments.runner import run_experiment
from xstilts.experiments.store import load_results, metric_rows


def _config(model: str, seeds=(1,), **train) -> ExperimentConfig:
    budget = {"batch_size": 8, "epochs": 1, "lr": 1e-3, "max_length": 32, **train}
    return ExperimentConfig.model_validate({
        "name": "tiny", "model": model, "seeds": list(seeds),
        "intermediate": {"settings": ["t-answer", "t-sametopic", "t-answer+t-sametopic"], "train": budget},
        "targets": [{"task": "t-topic", "train": budget}, {"task": "t-retrieval", "eval": {"layer": 1}}],
    })


def test_plan_shares_and_dedupes(tiny_model, tiny_tasks):
    jobs = plan(_config(tiny_model, seeds=(1, 2)))
    kinds = [j.kind for j in jobs]
    assert kinds.count("intermediate") == 3 * 2
    assert kinds.count("target") == 4 * 2 + 1  # and the frozen-encoder probe, one for every seed
    assert [j.spec["train"]["recipe"] for j in jobs if j.spec["seed"] is None and j.kind == "target"] == ["probe"]
    # the baseline retrieval has no training, so one job serves every seed
    assert kinds.count("retrieval") == 3 * 2 + 1
    assert len({j.id for j in jobs}) == len(jobs)
    ids = {j.id for j in jobs}
    assert all(j.upstream is None or j.upstream in ids for j in jobs)
    order = [j.id for j in jobs]
    assert all(order.index(j.upstream) < order.index(j.id) for j in jobs if j.upstream)
    assert [j.id for j in plan(_config(tiny_model, seeds=(1, 2)))] == order  # ids are stable


def test_run_end_to_end_then_skip(tiny_model, tiny_tasks, tmp_path):
    cfg = _config(tiny_model)
    first = run_experiment(cfg, "yaml", tmp_path, Console(quiet=True))
    assert first == {**first, "jobs": 12, "ran": 12, "skipped": 0}
    results = load_results(tmp_path)
    rows = metric_rows(results)
    topic = [r for r in rows if r["target"] == "t-topic" and r["split"] == "test"]
    assert {r["language"] for r in topic} == {"en", "xx", "yy"}
    assert {r["intermediate"] for r in topic} == {"none", "t-answer", "t-sametopic", "t-answer+t-sametopic"}
    assert {r["recipe"] for r in topic if r["intermediate"] == "none"} == {"lp-ft", "probe"}
    # every test metric keeps per-example statistics that reproduce it (bootstrap confidence intervals)
    for r in topic + [r for r in rows if r["target"] == "t-retrieval"]:
        stats = per_example.read(tmp_path / "jobs" / r["job_id"] / per_example.FILE)
        assert per_example.metric_value(stats[per_example.key(r["task"], "test", r["language"], r["metric"])]) \
            == pytest.approx(r["value"], abs=1e-9)
    retrieval = [r for r in rows if r["target"] == "t-retrieval"]
    assert {r["language"] for r in retrieval} == {"xx", "yy"}
    assert all(0 <= r["value"] <= 100 for r in rows)
    # the multi-task job trained on both tasks, in proportion to their sizes
    multi = next(r for r in results if r["kind"] == "intermediate" and r["intermediate"] == "t-answer+t-sametopic")
    assert multi["train"]["sampling_probabilities"] == pytest.approx({"t-answer": 0.5, "t-sametopic": 0.5})
    assert set(multi["train"]["examples_seen"]) == {"t-answer", "t-sametopic"}
    assert {m["task"] for m in multi["metrics"]} == {"t-answer", "t-sametopic"}
    moved = multi["train"]["movement"]  # the meter: how far intermediate training moved the encoder
    assert 0 < moved["relative_change"] < 1 and 0 < moved["cka_english_dev"] <= 1 + 1e-9
    # the target job read its backbone from the intermediate checkpoint
    target = next(r for r in results if r["kind"] == "target" and r["intermediate"] == "t-answer+t-sametopic")
    assert target["upstream"] == multi["job_id"]
    assert (tmp_path / "jobs" / multi["job_id"] / "checkpoint" / "model.safetensors").is_file()
    assert target["spec"]["data"] and target["versions"]["torch"]
    # a second run finds everything done
    second = run_experiment(cfg, "yaml", tmp_path, Console(quiet=True))
    assert second["ran"] == 0 and second["skipped"] == 12


def test_same_seed_same_numbers(tiny_model, tiny_tasks, tmp_path):
    cfg = ExperimentConfig.model_validate({
        "model": tiny_model, "seeds": [3],
        "intermediate": {"settings": ["t-answer"], "train": {"batch_size": 8, "lr": 1e-3, "max_length": 32}},
        "targets": [{"task": "t-topic", "train": {"batch_size": 8, "lr": 1e-3, "max_length": 32}}]})
    for out in ("a", "b"):
        run_experiment(cfg, "", tmp_path / out, Console(quiet=True))

    def numbers(out):
        return sorted((r["job_id"], r["language"], r["task"], r["value"])
                      for r in metric_rows(load_results(tmp_path / out)))

    assert numbers("a") == numbers("b")
    losses = [sorted(json.loads(p.read_text())["train"].get("final_loss", -1)
                     for p in (tmp_path / out / "jobs").glob("*/result.json")) for out in ("a", "b")]
    assert losses[0] == losses[1]


def test_select_on_dev_keeps_the_best_epoch(tiny_model, tiny_tasks, tmp_path):
    """With select_on_dev, English dev is scored every epoch and the best epoch's weights are the result."""
    train = {"batch_size": 8, "lr": 1e-3, "max_length": 32, "epochs": 3, "select_on_dev": True}
    cfg = ExperimentConfig.model_validate({"model": tiny_model, "targets": [{"task": "t-topic", "train": train}]})
    run_experiment(cfg, "", tmp_path, Console(quiet=True))
    result = next(r for r in load_results(tmp_path) if r["kind"] == "target" and r["train"]["recipe"] != "probe")
    curve = result["train"]["dev_curve"]
    assert [u for u, _ in curve] == [8, 16, 23]  # ceil(60 / 8) = 8 updates an epoch; ceil(3 * 60 / 8) = 23 in all
    best = max(curve, key=lambda c: c[1])
    assert result["train"]["selected_update"] == best[0]
    dev = next(m["value"] for m in result["metrics"] if m["split"] == "dev")
    assert dev == pytest.approx(best[1])  # the kept weights are the ones that scored best


def test_tasks_share_a_head_by_name(tiny_model, tiny_tasks, monkeypatch):
    """Two datasets naming one head train a single head; a head shared across formats is refused."""
    import dataclasses

    from xstilts.config import EvalConfig, TrainConfig
    from xstilts.errors import UserError
    from xstilts.experiments.execute import _train_model
    from xstilts.models.backbone import load_backbone
    from xstilts.tasks import registry

    topic = registry.get_task("t-topic")
    twin = dataclasses.replace(topic, name="t-topic-twin", head="topics")
    monkeypatch.setitem(registry._TASKS, "t-topic-twin", twin)
    tasks = [dataclasses.replace(topic, head="topics"), twin]
    spec = {"seed": 1, "head_pooling": "mean", "data_dir": None}
    cfg = TrainConfig(batch_size=8, max_steps=4, loss_weights={"t-topic-twin": 0.5})
    backbone, tok = load_backbone(tiny_model)
    model, stats = _train_model(backbone, tok, tasks, cfg, EvalConfig(), spec, lambda *a: None, "x")
    assert list(model.heads) == ["topics"] and model.head_of == {"t-topic": "topics", "t-topic-twin": "topics"}
    assert stats["updates"] == 4 and stats["stopped_by"] == "budget"
    odd = dataclasses.replace(registry.get_task("t-sametopic"), head="topics")
    with pytest.raises(UserError, match="share head 'topics'"):
        _train_model(backbone, tok, [tasks[0], odd], cfg, EvalConfig(), spec, lambda *a: None, "x")


def test_early_stopping_and_wall_clock_budget_are_recorded(tiny_model, tiny_tasks):
    from xstilts.config import EvalConfig, TrainConfig
    from xstilts.experiments.execute import _train_model
    from xstilts.models.backbone import load_backbone
    from xstilts.tasks.registry import get_task

    spec = {"seed": 1, "head_pooling": "mean", "data_dir": None}
    backbone, tok = load_backbone(tiny_model)
    cfg = TrainConfig(batch_size=8, lr=0.0 + 1e-12, epochs=20, select_on_dev=True, early_stopping_patience=2)
    _, stats = _train_model(backbone, tok, [get_task("t-topic")], cfg, EvalConfig(), spec, lambda *a: None, "x")
    # a learning rate of ~0 never improves dev: the first score stays best and two more end training
    assert stats["stopped_by"] == "early_stopping" and len(stats["dev_curve"]) == 3
    assert stats["updates"] == 3 * 8 < stats["planned_updates"] and stats["selected_update"] == 8
    cfg = TrainConfig(batch_size=8, epochs=50, max_seconds=0.5)
    _, stats = _train_model(backbone, tok, [get_task("t-topic")], cfg, EvalConfig(), spec, lambda *a: None, "x")
    assert stats["stopped_by"] == "max_seconds" and stats["updates"] < stats["planned_updates"]


def test_select_top_k_by_english_dev(tiny_model, tiny_tasks, tmp_path, monkeypatch):
    """select top_k 2 of 3 candidates: 3 intermediate jobs, and only the 2 best (alone and together) reach targets."""
    import dataclasses

    from xstilts.tasks import registry

    twin = dataclasses.replace(registry.get_task("t-sametopic"), name="t-twin")
    monkeypatch.setitem(registry._TASKS, "t-twin", twin)
    budget = {"batch_size": 8, "lr": 1e-3, "max_length": 32, "max_steps": 3}
    cfg = ExperimentConfig.model_validate({
        "model": tiny_model, "seeds": [1],
        "intermediate": {"settings": ["none", "t-answer", "t-sametopic", "t-twin"], "train": budget,
                         "select": {"top_k": 2, "by": "english_dev"}},
        "targets": [{"task": "t-topic", "train": budget}]})
    # before selection: the baseline and its probe only
    assert [j.kind for j in plan(cfg)] == ["intermediate"] * 3 + ["target"] * 2
    run_experiment(cfg, "", tmp_path, Console(quiet=True))
    results = load_results(tmp_path)
    dev = {r["intermediate"]: r["metrics"][0]["value"] for r in results if r["kind"] == "intermediate"}
    candidates = {s: v for s, v in dev.items() if "+" not in s}
    assert len(candidates) == 3
    best = sorted(candidates, key=lambda s: (-candidates[s], s))[:2]
    assert set(dev) == {*candidates, "+".join(best)}  # plus the union of the two best
    targets = {r["intermediate"] for r in results if r["kind"] == "target" and r["train"]["recipe"] != "probe"}
    assert targets == {"none", *best, "+".join(best)}
    import pandas as pd

    from xstilts.analysis.report import build_report, selection_table
    table, rho = selection_table(pd.DataFrame(metric_rows(results)), ["t-topic"])
    assert list(table.index[:2]) == best and table.loc[best[0], "rank"] == 1

    def zero_shot(setting):
        return np.mean([m["value"] for r in results if r["kind"] == "target" and r["intermediate"] == setting
                        and r["train"]["recipe"] != "probe"
                        for m in r["metrics"] if m["split"] == "test" and m["language"] != "en"])

    assert table.loc[best[0], "gain t-topic"] == pytest.approx(zero_shot(best[0]) - zero_shot("none"))
    assert np.isnan(table.loc[next(s for s in candidates if s not in best), "gain t-topic"])  # never sent to targets
    assert rho == {"t-topic": None}  # 2 tasks with gains: too few for a correlation
    report = build_report(metric_rows(results), cfg.intermediate.settings, "selection")
    assert "English dev rank and zero-shot gain" in report and "t-topic gain: n/a" in report
