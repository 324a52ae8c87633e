"""The named protocol xstilts-2020: the authors' values as defaults, dev checks every N updates on a subset,
patience counted in checks, and unchanged job ids for configs that do not name it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from xstilts.config.load import load_config
from xstilts.config.schema import ExperimentConfig
from xstilts.experiments.plan import plan
from xstilts.experiments.rundir import RunDir
from xstilts.experiments.runner import run_experiment
from xstilts.tasks.catalog import TaskCatalog

ROOT = Path(__file__).resolve().parents[1]


def test_a_tiny_job_checks_dev_every_n_updates_on_the_subset_and_stops_on_patience(tiny_model, tiny_catalog, tmp_path):
    train = {
        "eval_every_steps": 3,
        "eval_subset": 7,
        "early_stopping_patience": 2,
        "max_steps": 90,
        "batch_size": 8,
        "lr": 1e-3,
        "max_length": 32,
    }
    cfg = ExperimentConfig.model_validate(
        {
            "model": tiny_model,
            "protocol": "xstilts-2020",
            "targets": [{"task": "t-topic", "train": train, "probe_reference": False}],
        }
    )
    assert cfg.head_pooling == "cls"  # the protocol's, as the config leaves it unset
    run_experiment(cfg, tiny_catalog, "", tmp_path, Console(quiet=True))
    (result,) = RunDir(tmp_path).load_results()
    spec, stats = result["spec"]["train"], result["train"]
    assert (spec["recipe"], spec["head"], spec["select_on_dev"], spec["lr"]) == ("full", "mlp", True, 1e-3)
    steps = [step for step, _ in stats["dev_curve"]]
    assert steps == list(range(3, 3 * len(steps) + 1, 3))  # every 3 updates
    assert stats["dev_check_examples"] == {"t-topic": 7}
    assert all(abs(score * 7 / 100 - round(score * 7 / 100)) < 1e-9 for _, score in stats["dev_curve"])  # of 7
    scores = [score for _, score in stats["dev_curve"]]
    best = scores.index(max(scores))
    assert stats["stopped_by"] == "early_stopping" and stats["updates"] < 90
    assert len(scores) - 1 - best == 2 and max(scores[best + 1 :]) <= scores[best]  # two checks without a gain
    assert stats["selected_update"] == steps[best]
    dev = [m for m in result["metrics"] if m["split"] == "dev"]
    assert dev[0]["n"] == 20  # the reported dev metric reads the whole dev set


def test_the_paper_config_gets_the_protocol_and_a_set_field_still_wins():
    cfg = load_config(ROOT / "configs" / "paper" / "xstilts-xlmr-large.yaml").cfg
    assert cfg.protocol == "xstilts-2020" and cfg.head_pooling == "cls"
    jobs = plan(cfg, TaskCatalog.builtin()).jobs
    inter = next(j.spec.as_dict()["train"] for j in jobs if j.kind == "intermediate")
    assert {
        k: inter[k]
        for k in (
            "recipe",
            "head",
            "lr",
            "batch_size",
            "grad_accum",
            "epochs",
            "max_length",
            "warmup_ratio",
            "select_on_dev",
        )
    } == {
        "recipe": "full",
        "head": "mlp",
        "lr": 1e-5,
        "batch_size": 4,
        "grad_accum": 1,
        "epochs": 3,
        "max_length": 256,
        "warmup_ratio": 0.1,
        "select_on_dev": False,
    }
    xnli = next(j.spec.as_dict()["train"] for j in jobs if j.target == "xnli" and j.spec.seed is not None)
    assert {
        k: xnli[k]
        for k in (
            "eval_every_steps",
            "eval_subset",
            "early_stopping_patience",
            "epochs",
            "batch_size",
            "max_length",
            "select_on_dev",
        )
    } == {
        "eval_every_steps": 1000,
        "eval_subset": 500,
        "early_stopping_patience": 30,
        "epochs": 2,
        "batch_size": 32,
        "max_length": 256,
        "select_on_dev": True,
    }
    qa = next(j.spec.as_dict()["train"] for j in jobs if j.target == "xquad" and j.spec.seed is not None)
    assert (qa["batch_size"], qa["max_length"], qa["eval_every_steps"]) == (16, 384, 1000)
    mine = ExperimentConfig.model_validate(
        {
            "model": "FacebookAI/xlm-roberta-large",
            "protocol": "xstilts-2020",
            "head_pooling": "mean",
            "intermediate": {"train": {"batch_size": 8}},
            "targets": [{"task": "xnli", "train": {"eval_every_steps": 50}}],
        }
    )
    assert (mine.head_pooling, mine.intermediate.train.batch_size, mine.intermediate.train.epochs) == ("mean", 8, 3)
    assert (mine.targets[0].train.eval_every_steps, mine.targets[0].train.eval_subset) == (50, 500)


def test_configs_that_do_not_name_the_protocol_keep_their_job_ids(tiny_model, tiny_catalog):
    """The dev-check fields stay out of specs while unset; the demo's ids are those of the release before, plus its
    L2-normalised reference probe."""
    cfg = ExperimentConfig.model_validate({"model": tiny_model, "targets": [{"task": "t-topic"}]})
    specs = [j.spec.as_dict() for j in plan(cfg, tiny_catalog).jobs]
    assert specs and all("eval_every_steps" not in s["train"] and "eval_subset" not in s["train"] for s in specs)
    demo = plan(load_config(ROOT / "configs" / "demo.yaml").cfg, TaskCatalog.builtin()).jobs
    assert sorted(j.id for j in demo) == json.loads((ROOT / "tests" / "fixtures" / "demo-job-ids.json").read_text())


@pytest.mark.parametrize("field", ["eval_every_steps", "eval_subset"])
def test_dev_check_fields_need_select_on_dev(field):
    from pydantic import ValidationError

    from xstilts.config.schema import TrainConfig

    with pytest.raises(ValidationError, match=f"{field} needs select_on_dev: true"):
        TrainConfig(**{field: 10})


def test_the_readme_protocol_table_lists_every_value_and_its_source():
    from xstilts.config.protocols import XSTILTS_2020, XSTILTS_2020_PER_TASK

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for _, field, value, source in XSTILTS_2020:
        assert f"| `{field}` | `{value}` | {source} |" in readme, field
    for field, value, source in XSTILTS_2020_PER_TASK:
        assert f"| {field} | {value} | {source} |" in readme, field
