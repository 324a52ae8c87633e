"""The three phases end to end on a tiny random model and tiny tasks (seconds on CPU)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from meter_checks import check_meters
from rich.console import Console

from xstilts.config.schema import EvalConfig, ExperimentConfig
from xstilts.evaluate.hardware import METER_KEYS
from xstilts.experiments.export import rows
from xstilts.experiments.plan import plan
from xstilts.experiments.rundir import RunDir
from xstilts.experiments.runner import run_experiment
from xstilts.formats.base import feature_length
from xstilts.metrics import per_example
from xstilts.models.backbone import load_backbone


def _config(model: str, seeds=(1,), **train) -> ExperimentConfig:
    budget = {"batch_size": 8, "epochs": 1, "lr": 1e-3, "max_length": 32, **train}
    return ExperimentConfig.model_validate(
        {
            "name": "tiny",
            "model": model,
            "seeds": list(seeds),
            "intermediate": {"settings": ["t-answer", "t-sametopic", "t-answer+t-sametopic"], "train": budget},
            "targets": [{"task": "t-topic", "train": budget}, {"task": "t-retrieval", "eval": {"layer": 1}}],
        }
    )


def test_plan_shares_and_dedupes(tiny_model, tiny_catalog):
    jobs = plan(_config(tiny_model, seeds=(1, 2)), tiny_catalog).jobs
    kinds = [j.kind for j in jobs]
    assert kinds.count("intermediate") == 3 * 2
    assert kinds.count("target") == 4 * 2 + 2  # and the two frozen-encoder probes, one for every seed
    probes = [j.spec.train for j in jobs if j.spec.seed is None and j.kind == "target"]
    assert [(p.recipe, p.probe_input) for p in probes] == [("probe", "standardised"), ("probe", "normalised")]
    # the baseline retrieval has no training, so one job serves every seed
    assert kinds.count("retrieval") == 3 * 2 + 1
    assert len({j.id for j in jobs}) == len(jobs)
    ids = {j.id for j in jobs}
    assert all(j.upstream is None or j.upstream in ids for j in jobs)
    order = [j.id for j in jobs]
    assert all(order.index(j.upstream) < order.index(j.id) for j in jobs if j.upstream)
    assert [j.id for j in plan(_config(tiny_model, seeds=(1, 2)), tiny_catalog).jobs] == order  # ids are stable


def test_run_end_to_end_then_skip(tiny_model, tiny_catalog, tmp_path):
    cfg = _config(tiny_model)
    first = run_experiment(cfg, tiny_catalog, "yaml", tmp_path, Console(quiet=True))
    assert first == {**first, "jobs": 13, "ran": 13, "skipped": 0}
    results = RunDir(tmp_path).load_results()
    table = rows(RunDir(tmp_path))
    topic = [r for r in table if r["target"] == "t-topic" and r["split"] == "test"]
    assert {r["language"] for r in topic} == {"en", "xx", "yy"}
    assert {r["intermediate"] for r in topic} == {"none", "t-answer", "t-sametopic", "t-answer+t-sametopic"}
    assert {r["recipe"] for r in topic if r["intermediate"] == "none"} == {"lp-ft", "probe"}
    # every test metric keeps per-example statistics that reproduce it (bootstrap confidence intervals)
    for r in [r for r in topic + [r for r in table if r["target"] == "t-retrieval"] if r["headline"]]:
        stats = per_example.read(RunDir(tmp_path).per_example(r["job_id"]))
        assert per_example.metric_value(
            stats[per_example.key(r["task"], "test", r["language"], r["metric"])]
        ) == pytest.approx(r["value"], abs=1e-9)
    retrieval = [r for r in table if r["target"] == "t-retrieval"]
    assert {r["language"] for r in retrieval} == {"xx", "yy"}
    assert all(0 <= r["value"] <= 100 for r in table)
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
    speed = target["meters"]  # measured on English dev: latency one example at a time, batch throughput
    assert 0 < speed["latency_ms_p50"] <= speed["latency_ms_p95"]
    assert 0 < speed["latency_examples"] <= 20 - 4  # after 4 untimed; fewer only when the meter's 2 s cap ran out
    assert speed["throughput_examples_per_second"] > 0 and speed["throughput_examples"] == 20
    # every job measured its meters; the export carries them on each of the job's rows
    meters = {r["job_id"]: check_meters(r) for r in results}
    assert {r["kind"] for r in results if "train_mfu" in r["meters"]} == {"intermediate", "target"}
    assert all(list(row)[-len(METER_KEYS) :] == list(METER_KEYS) for row in table)
    assert all(row[k] == meters[row["job_id"]].get(k) for row in table for k in METER_KEYS)
    # the evaluation fed the encoder the non-padding tokens of English dev and the three test sets
    task, (backbone, tokenizer) = tiny_catalog.get("t-topic"), load_backbone(tiny_model)
    examples = task.source.load("dev", "en") + [
        ex for lang in ("en", "xx", "yy") for ex in task.source.load("test", lang)
    ]
    features = task.format.featurize(task, examples, tokenizer, EvalConfig().max_length)
    assert target["meters"]["eval_tokens"] == sum(feature_length(f) for f in features)
    # the retrieval job reads layer 1 of 2: N counts the one block that ran
    retrieval = next(r for r in results if r["kind"] == "retrieval")
    block = sum(p.numel() for p in backbone.encoder.layer[1].parameters())
    full = sum(p.numel() for n, p in backbone.named_parameters() if not n.startswith("embeddings.")) + 2 * 32
    assert retrieval["meters"]["params_non_embedding"] == full - block
    # a second run finds everything done
    second = run_experiment(cfg, tiny_catalog, "yaml", tmp_path, Console(quiet=True))
    assert second["ran"] == 0 and second["skipped"] == 13


def test_same_seed_same_numbers(tiny_model, tiny_catalog, tmp_path):
    cfg = ExperimentConfig.model_validate(
        {
            "model": tiny_model,
            "seeds": [3],
            "intermediate": {"settings": ["t-answer"], "train": {"batch_size": 8, "lr": 1e-3, "max_length": 32}},
            "targets": [{"task": "t-topic", "train": {"batch_size": 8, "lr": 1e-3, "max_length": 32}}],
        }
    )
    for out in ("a", "b"):
        run_experiment(cfg, tiny_catalog, "", tmp_path / out, Console(quiet=True))

    def numbers(out):
        return sorted((r["job_id"], r["language"], r["task"], r["value"]) for r in rows(RunDir(tmp_path / out)))

    assert numbers("a") == numbers("b")
    losses = [
        sorted(
            json.loads(p.read_text())["train"].get("final_loss", -1)
            for p in (tmp_path / out / "jobs").glob("*/result.json")
        )
        for out in ("a", "b")
    ]
    assert losses[0] == losses[1]


def test_select_on_dev_keeps_the_best_epoch(tiny_model, tiny_catalog, tmp_path):
    """With select_on_dev, English dev is scored every epoch and the best epoch's weights are the result."""
    train = {"batch_size": 8, "lr": 1e-3, "max_length": 32, "epochs": 3, "select_on_dev": True}
    cfg = ExperimentConfig.model_validate({"model": tiny_model, "targets": [{"task": "t-topic", "train": train}]})
    run_experiment(cfg, tiny_catalog, "", tmp_path, Console(quiet=True))
    result = next(
        r for r in RunDir(tmp_path).load_results() if r["kind"] == "target" and r["train"]["recipe"] != "probe"
    )
    curve = result["train"]["dev_curve"]
    assert [u for u, _ in curve] == [8, 16, 23]  # ceil(60 / 8) = 8 updates an epoch; ceil(3 * 60 / 8) = 23 in all
    best = max(curve, key=lambda c: c[1])
    assert result["train"]["selected_update"] == best[0]
    dev = next(m["value"] for m in result["metrics"] if m["split"] == "dev")
    assert dev == pytest.approx(best[1])  # the kept weights are the ones that scored best


def _phase(catalog, *tasks):
    from xstilts.train.phase import PhaseTask

    return [PhaseTask(t, t.source.load("train", "en"), t.source.load("dev", "en")) for t in tasks]


def test_tasks_share_a_head_by_name(tiny_model, tiny_catalog):
    """Two datasets naming one head train a single head; a head shared across formats is refused at plan time."""
    import dataclasses

    from xstilts.config.schema import EvalConfig, TrainConfig
    from xstilts.errors import UserError
    from xstilts.experiments.resolve import shared_heads
    from xstilts.models.backbone import load_backbone
    from xstilts.train.phase import train_phase

    topic = tiny_catalog.get("t-topic")
    twin = dataclasses.replace(topic, name="t-topic-twin", head="topics")
    tasks = [dataclasses.replace(topic, head="topics"), twin]
    cfg = TrainConfig(batch_size=8, max_steps=4, loss_weights={"t-topic-twin": 0.5})
    backbone, tok = load_backbone(tiny_model)
    model, stats = train_phase(
        backbone, tok, _phase(tiny_catalog, *tasks), cfg, EvalConfig(), 1, "mean", lambda *a: None, "x"
    )
    assert list(model.heads) == ["topics"] and model.head_of == {"t-topic": "topics", "t-topic-twin": "topics"}
    assert stats["updates"] == 4 and stats["stopped_by"] == "budget"
    shared_heads(tasks)
    odd = dataclasses.replace(tiny_catalog.get("t-sametopic"), head="topics")
    with pytest.raises(UserError, match="share head 'topics'"):
        shared_heads([tasks[0], odd])


def test_early_stopping_and_wall_clock_budget_are_recorded(tiny_model, tiny_catalog):
    from xstilts.config.schema import EvalConfig, TrainConfig
    from xstilts.models.backbone import load_backbone
    from xstilts.train.phase import train_phase

    backbone, tok = load_backbone(tiny_model)
    phase = _phase(tiny_catalog, tiny_catalog.get("t-topic"))
    cfg = TrainConfig(batch_size=8, lr=0.0 + 1e-12, epochs=20, select_on_dev=True, early_stopping_patience=2)
    _, stats = train_phase(backbone, tok, phase, cfg, EvalConfig(), 1, "mean", lambda *a: None, "x")
    # a learning rate of ~0 never improves dev: the first score stays best and two more end training
    assert stats["stopped_by"] == "early_stopping" and len(stats["dev_curve"]) == 3
    assert stats["updates"] == 3 * 8 < stats["planned_updates"] and stats["selected_update"] == 8
    cfg = TrainConfig(batch_size=8, epochs=50, max_seconds=0.5)
    _, stats = train_phase(backbone, tok, phase, cfg, EvalConfig(), 1, "mean", lambda *a: None, "x")
    assert stats["stopped_by"] == "max_seconds" and stats["updates"] < stats["planned_updates"]


def test_select_top_k_by_english_dev(tiny_model, tiny_catalog, tmp_path):
    """select top_k 2 of 3 candidates: 3 intermediate jobs, and only the 2 best (alone and together) reach targets."""
    import dataclasses

    catalog = tiny_catalog.with_tasks(dataclasses.replace(tiny_catalog.get("t-sametopic"), name="t-twin"))
    budget = {"batch_size": 8, "lr": 1e-3, "max_length": 32, "max_steps": 3}
    cfg = ExperimentConfig.model_validate(
        {
            "model": tiny_model,
            "seeds": [1],
            "intermediate": {
                "settings": ["none", "t-answer", "t-sametopic", "t-twin"],
                "train": budget,
                "select": {"top_k": 2, "by": "english_dev"},
            },
            "targets": [{"task": "t-topic", "train": budget}],
        }
    )
    # before selection: the baseline and its two probes only
    first = plan(cfg, catalog)
    assert [j.kind for j in first.jobs] == ["intermediate"] * 3 + ["target"] * 3
    assert first.awaiting == {j.id for j in first.jobs if j.kind == "intermediate"}  # re-planned when they finish
    run_experiment(cfg, catalog, "", tmp_path, Console(quiet=True))
    results = RunDir(tmp_path).load_results()
    dev = {r["intermediate"]: r["metrics"][0]["value"] for r in results if r["kind"] == "intermediate"}
    candidates = {s: v for s, v in dev.items() if "+" not in s}
    assert len(candidates) == 3
    best = sorted(candidates, key=lambda s: (-candidates[s], s))[:2]
    assert set(dev) == {*candidates, "+".join(best)}  # plus the union of the two best
    targets = {r["intermediate"] for r in results if r["kind"] == "target" and r["train"]["recipe"] != "probe"}
    assert targets == {"none", *best, "+".join(best)}

    from xstilts.analysis.study import load_study, report_markdown, selection_table

    table, rho = selection_table(load_study(RunDir(tmp_path), cfg.intermediate.settings), "t-topic", "")
    assert list(table.index[:2]) == best and table.loc[best[0], "rank"] == 1

    def zero_shot(setting):
        return np.mean(
            [
                m["value"]
                for r in results
                if r["kind"] == "target" and r["intermediate"] == setting and r["train"]["recipe"] != "probe"
                for m in r["metrics"]
                if m["split"] == "test" and m["language"] != "en"
            ]
        )

    assert table.loc[best[0], "gain"] == pytest.approx(zero_shot(best[0]) - zero_shot("none"))
    assert np.isnan(table.loc[next(s for s in candidates if s not in best), "gain"])  # never sent to targets
    assert rho is None  # 2 tasks with gains: too few for a correlation
    report = report_markdown(RunDir(tmp_path), cfg.intermediate.settings, "selection")
    assert "English dev rank and zero-shot gain" in report and "t-topic gain: n/a" in report
