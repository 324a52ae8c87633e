"""configs/quick.yaml end to end on the real converted model, through the installed command."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_runs import job_results
from meter_checks import check_meters

from xstilts.config.schema import EvalConfig
from xstilts.evaluate.hardware import METER_KEYS
from xstilts.evaluate.zero_shot import fixed_subset
from xstilts.formats.retrieval import embed
from xstilts.models.backbone import load_backbone
from xstilts.tasks.catalog import TaskCatalog

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = {"none", "pocket-answer", "pocket-sametopic", "pocket-answer+pocket-sametopic"}


def _xstilts(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "xstilts", *args], check=False, capture_output=True, text=True, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def quick_out(quick_run) -> Path:
    """OUT of the session's clean quick.yaml run (conftest)."""
    return quick_run.out


def test_quick_results_cover_languages_and_settings(quick_out):
    rows = list(csv.DictReader(io.StringIO(_xstilts("results", str(quick_out), "--format", "csv").stdout)))
    assert {"job_id", "model", "intermediate", "target", "language", "metric", "value", "headline", "seed"} <= set(
        rows[0]
    )
    for target, min_langs in (("pocket-topic", 10), ("pocket-retrieval", 50)):
        test_rows = [r for r in rows if r["target"] == target and r["split"] == "test"]
        for setting in SETTINGS:
            langs = {r["language"] for r in test_rows if r["intermediate"] == setting}
            assert len(langs - {"en"}) >= min_langs, (target, setting, len(langs))
    topic = [r for r in rows if r["target"] == "pocket-topic" and r["intermediate"] == "none"]
    assert {r["recipe"] for r in topic} == {"lp-ft", "probe"}  # the default recipe and the frozen-encoder probe
    # every job's meters, in its result and as the export's last columns (empty where the job did not train)
    results = job_results(quick_out)
    meters = {job_id: check_meters(r) for job_id, r in results.items()}
    for job_id, r in results.items():  # prediction and gold files of every test language, pocket tasks too
        tested = {m["language"] for m in r["metrics"] if m["split"] == "test"}
        for kind in ("predictions", "labels"):
            files = (quick_out / "jobs" / job_id / kind / str(r["target"])).glob("test-*.tsv")
            assert {f.stem.removeprefix("test-") for f in files} == tested, (job_id, kind)
    assert list(rows[0])[-len(METER_KEYS) :] == list(METER_KEYS)
    for r in rows:
        assert {k: r[k] for k in METER_KEYS} == {k: str(meters[r["job_id"]].get(k, "")) for k in METER_KEYS}
    trained = {r["job_id"] for r in rows if r["train_mfu"]}
    assert trained == {j for j, r in results.items() if r["kind"] != "retrieval" and r["train"]["recipe"] != "probe"}
    report = (quick_out / "report.md").read_text()
    assert "## pocket-topic" in report and "gain vs none" in report
    # the probes' columns, and the intervals of every setting and gain
    assert (
        "| probe (frozen, standardised) | probe (frozen, L2-normalised) |" in report
        and "| setting | runs | zero-shot avg | gain vs none | p | MDE | significant |" in report
        and "Gain over none per language, 95% interval (* excludes 0, † after Holm)." in report
    )


def test_rerun_runs_nothing(quick_out):
    proc = _xstilts("run", "configs/quick.yaml", "--out", str(quick_out))
    assert "0 jobs run" in proc.stderr


def test_baseline_retrieval_equals_numpy_nearest_neighbour(quick_out):
    """The pipeline's accuracy@1 equals a plain numpy cosine argmax over the same embeddings."""
    result = next(
        json.loads(p.read_text())
        for p in (quick_out / "jobs").glob("*/result.json")
        if json.loads(p.read_text())["kind"] == "retrieval" and json.loads(p.read_text())["intermediate"] == "none"
    )
    cfg = EvalConfig(**result["spec"]["eval"])
    task = TaskCatalog.builtin().get("pocket-retrieval")
    backbone, tokenizer = load_backbone(result["model"])
    reported = {m["language"]: m["value"] for m in result["metrics"]}
    for lang in ("de", "ru", "zh-Hans", "hi"):
        pairs = fixed_subset(task.source.load("test", lang), cfg.max_examples_per_language, "target")
        x, en = (
            embed(backbone, tokenizer, [p[f] for p in pairs], result["layer"], cfg.pooling, cfg.max_length, 7)
            for f in ("source", "target")
        )
        sims = (x / np.linalg.norm(x, axis=1, keepdims=True)) @ (en / np.linalg.norm(en, axis=1, keepdims=True)).T
        assert reported[lang] == pytest.approx(100 * float(np.mean(sims.argmax(1) == np.arange(len(pairs)))), abs=1e-9)


def test_readme_user_task_example_runs_as_written(tmp_path):
    """The README's worked example: a JSONL task defined in YAML, shipped in examples/, run through the command."""
    out = tmp_path / "user-task"
    _xstilts("run", "examples/user-task/config.yaml", "--out", str(out))
    rows = list(csv.DictReader(io.StringIO(_xstilts("results", str(out), "--format", "csv").stdout)))
    dev = [r for r in rows if r["kind"] == "intermediate"]
    assert {(r["task"], r["split"], r["language"]) for r in dev} == {("support-intent", "dev", "en")}
    assert {r["intermediate"] for r in rows if r["target"] == "pocket-topic"} == {"none", "support-intent"}


def test_plan_status_and_parquet_after_a_run(quick_out, tmp_path):
    """``plan`` marks every job of the finished run done with no pending hours; ``status`` agrees; parquet
    export holds the same rows as csv."""
    import pandas as pd

    planned = json.loads(_xstilts("plan", "configs/quick.yaml", "--out", str(quick_out), "--format", "json").stdout)
    assert len(planned["jobs"]) == 13 and {j["status"] for j in planned["jobs"]} == {"done"}
    assert {j["kind"] for j in planned["jobs"]} == {"intermediate", "target", "retrieval"}
    assert planned["estimate"]["pending_hours"] == 0 and planned["estimate"]["total_flops"] > 0
    assert _xstilts("status", str(quick_out)).stdout.startswith("13 jobs: 13 done, 0 running, 0 failed, 0 pending")
    path = tmp_path / "rows.parquet"
    _xstilts("results", str(quick_out), "--format", "parquet", "--output", str(path))
    table = pd.read_parquet(path)
    rows = list(csv.DictReader(io.StringIO(_xstilts("results", str(quick_out), "--format", "csv").stdout)))
    assert len(table) == len(rows) and list(table.columns) == list(rows[0])
