"""One XTREME task of every format through ``xstilts run`` on official-layout fixtures and a tiny random model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from xstilts.config.schema import ExperimentConfig
from xstilts.evaluate.official_files import suite_task
from xstilts.evaluate.scoring import score_language
from xstilts.experiments import export
from xstilts.experiments.rundir import RunDir
from xstilts.experiments.runner import run_experiment
from xstilts.tasks.catalog import TaskCatalog

FIXTURES = Path(__file__).parent / "fixtures"
TINY = {"batch_size": 4, "lr": 1e-3, "max_length": 64, "max_steps": 3}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """Both fixture trees as one download folder, as the official scripts leave it."""
    root = tmp_path_factory.mktemp("download")
    for tree in ("official_intermediate", "official_retrieval", "official"):  # official MNLI/squad win
        shutil.copytree(FIXTURES / tree, root, dirs_exist_ok=True)
    return root


@pytest.fixture(scope="module")
def run(tiny_model, data_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("xtreme-run")
    targets = [
        ("xnli", ["en", "de"]),
        ("udpos", ["en", "de", "hi"]),
        ("xquad", ["en", "de", "zh"]),
        ("xcopa", ["zh"]),
        ("tatoeba", ["de"]),
        ("bucc2018", ["de"]),
    ]
    cfg = ExperimentConfig.model_validate(
        {
            "name": "xtreme-formats",
            "model": tiny_model,
            "seeds": [1],
            "data_dir": str(data_dir),
            "intermediate": {"settings": ["none", "mnli"], "train": TINY},
            "targets": [
                {
                    "task": t,
                    "train": TINY,
                    "eval": {"languages": langs, "max_length": 64, "layer": 1}
                    if t in ("tatoeba", "bucc2018")
                    else {"languages": langs, "max_length": 64},
                }
                for t, langs in targets
            ],
        }
    )
    run_experiment(cfg, TaskCatalog.builtin(), "", out, Console(quiet=True))
    return out


def test_every_format_gets_per_language_results(run):
    rows = [r for r in export.rows(RunDir(run)) if r["split"] == "test"]
    got = {(r["target"], r["language"], r["intermediate"]) for r in rows}
    for task, langs in (
        ("xnli", "en de"),
        ("udpos", "en de hi"),
        ("xquad", "en de zh"),
        ("xcopa", "zh"),
        ("tatoeba", "de"),
        ("bucc2018", "de"),
    ):
        for lang in langs.split():
            assert {(task, lang, "none"), (task, lang, "mnli")} <= got, (task, lang)
    metrics = {(r["target"], r["metric"]) for r in rows}
    assert {
        ("xnli", "accuracy"),
        ("udpos", "f1"),
        ("xquad", "exact_match"),
        ("xquad", "f1"),
        ("xcopa", "accuracy"),
        ("tatoeba", "accuracy"),
        ("bucc2018", "dev_f1"),
    } <= metrics  # no public test gold
    assert all(0 <= r["value"] <= 100 for r in rows if r["metric"] != "threshold")


def test_protocol_defaults_apply_under_config_overrides(run):
    spec = next(
        r["spec"] for r in RunDir(run).load_results() if r["target"] == "xquad" and r["train"]["recipe"] != "probe"
    )
    assert spec["train"]["warmup_ratio"] == 0.1 and spec["train"]["batch_size"] == 4  # protocol, then config
    assert spec["eval"]["max_length"] == 64


def test_official_layout_predictions_rescore_to_the_run_metrics(run):
    """Every target job wrote predictions and labels in the evaluator's layout; scoring them gives its numbers."""
    for result in RunDir(run).load_results():
        if result["kind"] == "intermediate":
            continue
        job = run / "jobs" / result["job_id"]
        task = suite_task(result["target"])
        for m in (m for m in result["metrics"] if m["split"] == "test"):
            name = f"{task.name}/test-{m['language']}.{task.ext}"
            assert (job / "predictions" / name).is_file(), name
            scores = score_language(task, m["language"], job / "predictions" / name, job / "labels" / name)
            if m["metric"] in scores:
                assert scores[m["metric"]] == pytest.approx(m["value"]), (name, m["metric"])


def test_predictions_file_formats(run):
    result = next(r for r in RunDir(run).load_results() if r["target"] == "xquad" and r["intermediate"] == "none")
    answers = json.loads((run / "jobs" / result["job_id"] / "predictions" / "xquad" / "test-de.json").read_text())
    assert answers and all(isinstance(v, str) for v in answers.values())
    udpos = next(r for r in RunDir(run).load_results() if r["target"] == "udpos" and r["intermediate"] == "none")
    text = (run / "jobs" / udpos["job_id"] / "predictions" / "udpos" / "test-de.tsv").read_text()
    assert "\n\n" in text and set(text.split()) <= set(
        "ADJ ADP ADV AUX CCONJ DET INTJ NOUN NUM PART PRON PROPN PUNCT SCONJ SYM VERB X".split()
    )


def test_multitask_intermediate_hands_its_backbone_to_a_target(tiny_model, data_dir, tmp_path):
    """mnli + squad_v1 + hellaswag (three formats) train one backbone, which xnli then fine-tunes and evaluates."""
    cfg = ExperimentConfig.model_validate(
        {
            "model": tiny_model,
            "seeds": [1],
            "data_dir": str(data_dir),
            "intermediate": {"settings": ["mnli+squad_v1+hellaswag"], "train": {**TINY, "max_steps": 6}},
            "targets": [{"task": "xnli", "train": TINY, "eval": {"languages": ["de"], "max_length": 64}}],
        }
    )
    run_experiment(cfg, TaskCatalog.builtin(), "", tmp_path, Console(quiet=True))
    results = RunDir(tmp_path).load_results()
    inter = next(r for r in results if r["kind"] == "intermediate")
    assert set(inter["train"]["sampling_probabilities"]) == {"mnli", "squad_v1", "hellaswag"}
    assert {(m["task"], m["split"], m["language"]) for m in inter["metrics"]} >= {
        ("mnli", "dev", "en"),
        ("squad_v1", "dev", "en"),
        ("hellaswag", "dev", "en"),
    }
    target = next(r for r in results if r["kind"] == "target" and r["intermediate"] == "mnli+squad_v1+hellaswag")
    assert target["upstream"] == inter["job_id"]
    assert any(m["split"] == "test" and m["language"] == "de" and m["metric"] == "accuracy" for m in target["metrics"])
