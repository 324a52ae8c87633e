"""Compute-cost estimate: hand-computed FLOPs, the CPU probe, and the paper config."""

import math
from pathlib import Path

import pytest

from xstilts.config.load import load_config
from xstilts.config.schema import EvalConfig, TrainConfig
from xstilts.experiments.cost import cpu_tflops, estimate, format_estimate, model_params
from xstilts.experiments.plan import plan
from xstilts.experiments.specs import IntermediateSpec, Job, ModelSpec, RetrievalSpec, TargetSpec
from xstilts.tasks.catalog import TaskCatalog

N = 1000
ROOT = Path(__file__).resolve().parents[1]
CATALOG = TaskCatalog.builtin()


def _train(**kw) -> TrainConfig:
    base = {
        "recipe": "full",
        "epochs": 1.0,
        "batch_size": 32,
        "grad_accum": 1,
        "max_length": 128,
        "max_steps": None,
        "max_examples": None,
        "max_train_examples": None,
        "select_on_dev": False,
    }
    return TrainConfig(**{**base, **kw})


def _jobs() -> list[Job]:
    model = ModelSpec("m", "m", "mean", None)
    inter = Job(IntermediateSpec(model, ("mnli",), 1, None, {"mnli": "-"}, _train(max_train_examples=1000)))
    target = Job(
        TargetSpec(
            model,
            ("mnli",),
            1,
            inter.id,
            "xnli",
            "-",
            EvalConfig(max_length=32, languages=["en", "de"], max_examples_per_language=100),
            _train(max_steps=10, batch_size=4, grad_accum=2, epochs=2, select_on_dev=True),
        )
    )
    retrieval = Job(RetrievalSpec(model, (), None, None, "tatoeba", "-", EvalConfig(max_length=512, languages=["de"])))
    return [inter, target, retrieval]


def test_hand_computed_flops():
    inter, target, retrieval = _jobs()
    est = estimate([inter, target, retrieval], CATALOG, N, "a100", 0.5, is_done=lambda job_id: job_id == inter.id)
    by_id = {row["id"]: row["flops"] for row in est["jobs"]}
    assert len(by_id) == 3
    flops = {name: by_id[job.id] for name, job in (("i1", inter), ("t1", target), ("r1", retrieval))}
    # intermediate: 1000 capped MNLI examples x 60 tokens trained, MNLI dev (9815 x 60) inferred once
    assert flops["i1"] == pytest.approx(6 * N * 1000 * 60 + 2 * N * 9815 * 60)
    # target: 10 steps x 4 x 2 = 80 MNLI examples trained; dev twice (2 epochs, select_on_dev); 2 langs x 100 x 32
    assert flops["t1"] == pytest.approx(6 * N * 80 * 60 + 2 * N * (2 * 9815 * 60 + 2 * 100 * 32))
    # retrieval: Tatoeba de, 1000 pairs x 2 sides x 20 tokens, inference only
    assert flops["r1"] == pytest.approx(2 * N * 1000 * 2 * 20)
    rate = 312e12 * 0.5 * 3600
    assert est["total_flops"] == pytest.approx(sum(flops.values()))
    assert est["total_hours"] == pytest.approx(est["total_flops"] / rate)
    assert est["pending_hours"] == pytest.approx((flops["t1"] + flops["r1"]) / rate)
    assert est["model_params"] == N and est["assumptions"]
    assert "total" in format_estimate(est)


def test_model_params_exclude_input_embeddings(tiny_model):
    def block(hidden: int, ffn: int) -> int:  # BERT-style: q, k, v, o and two FFN linears with biases, 2 LayerNorms
        return 4 * (hidden * hidden + hidden) + (hidden * ffn + ffn) + (ffn * hidden + hidden) + 4 * hidden

    assert model_params("FacebookAI/xlm-roberta-large") == 24 * block(1024, 4096) == 302_309_376
    assert model_params("me5-small@L6") == 6 * block(384, 1536)
    # Llama 3 8B: grouped-query attention (8 of 32 heads for k and v), SwiGLU, 2 RMSNorms a block, a final one
    llama = 2 * 4096 * 4096 + 2 * 4096 * 1024 + 3 * 4096 * 14336 + 2 * 4096
    assert model_params("meta-llama/Meta-Llama-3-8B") == 32 * llama + 4096
    assert model_params("no-such/model") is None
    assert model_params(tiny_model) == 2 * block(32, 64)  # a local directory: its config.json


def test_cpu_probe_positive():
    tflops = cpu_tflops(size=256, repeats=2)
    assert tflops > 0 and math.isfinite(tflops)
    assert estimate(_jobs()[2:], CATALOG, N, "cpu", 0.4)["peak_tflops"] > 0


def test_paper_config_a100_hours():
    jobs = plan(load_config(ROOT / "configs/paper/xstilts-xlmr-large.yaml").cfg, CATALOG).jobs
    est = estimate(jobs, CATALOG, None, "a100", 0.4)
    print(format_estimate(est))
    assert est["model_params"] == 302_309_376
    assert math.isfinite(est["total_hours"]) and est["total_hours"] > 0
    assert all(row["flops"] > 0 for row in est["jobs"])
    assert estimate(jobs, CATALOG, None, "h100", 0.4)["total_hours"] < est["total_hours"]


def test_utilisation_measured_from_finished_training_jobs(tiny_model, tiny_catalog, tmp_path):
    from rich.console import Console

    from xstilts.config.schema import ExperimentConfig
    from xstilts.errors import UserError
    from xstilts.experiments.cost import achieved, runs_on
    from xstilts.experiments.rundir import RunDir
    from xstilts.experiments.runner import run_experiment

    budget = {"batch_size": 8, "max_steps": 10, "max_length": 32}
    cfg = ExperimentConfig.model_validate(
        {
            "model": tiny_model,
            "intermediate": {"settings": ["t-sametopic"], "train": budget},
            "targets": [{"task": "t-topic", "train": budget}],
        }
    )
    run_experiment(cfg, tiny_catalog, "", tmp_path, Console(quiet=True))
    results = RunDir(tmp_path).load_results()
    measured = achieved(results, "cpu")
    trained = [r for r in results if r.get("train", {}).get("train_seconds")]  # not the probe
    assert len(trained) == 3 and all(r["device"] == "cpu" for r in results)
    flops_per_second = sum(6 * model_params(tiny_model) * r["train"]["tokens_seen"] for r in trained) / sum(
        r["train"]["train_seconds"] for r in trained
    )
    assert measured.tflops * 1e12 == pytest.approx(flops_per_second) and measured.jobs == 3
    est = estimate(plan(cfg, tiny_catalog).jobs, tiny_catalog, accelerator="cpu", utilisation=measured)
    share = est["utilisation"]
    assert share == pytest.approx(measured.tflops / est["peak_tflops"])  # a share of the peak the hours use
    assert 0 < share < 1 and any("from 3 finished training jobs" in a for a in est["assumptions"])
    with pytest.raises(UserError, match="no finished training job here ran on a100"):
        achieved(results, "a100")
    assert runs_on("NVIDIA A100-SXM4-80GB", "a100") and not runs_on("NVIDIA H100 80GB HBM3", "a100")
    assert runs_on("cpu", "cpu") and not runs_on("NVIDIA A100-SXM4-80GB", "a100-fp32")
