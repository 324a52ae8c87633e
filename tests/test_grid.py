"""The ``grid:`` block and ``subsets_of`` settings: planning through the command, bad grids, an end-to-end run."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from xstilts.analysis.study import report_markdown
from xstilts.cache import atomic_write_json
from xstilts.config.grid import variants
from xstilts.config.schema import ExperimentConfig
from xstilts.experiments import export
from xstilts.experiments.export import METER_COLUMNS, ROW_COLUMNS
from xstilts.experiments.plan import plan
from xstilts.experiments.rundir import RunDir
from xstilts.experiments.runner import run_experiment
from xstilts.tasks.catalog import TaskCatalog

FIXTURES = Path(__file__).parent / "fixtures"
BUDGET = {"batch_size": 4, "lr": 1.0e-3, "max_length": 32, "max_steps": 2}
LR = "intermediate.train.lr"
CATALOG = TaskCatalog.builtin()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """The official-layout fixture trees as one download folder."""
    root = tmp_path_factory.mktemp("download")
    for tree in ("official_intermediate", "official"):  # official MNLI wins
        shutil.copytree(FIXTURES / tree, root, dirs_exist_ok=True)
    return root


def _experiment(model: str, data_dir: Path, **extra) -> dict:
    """3 intermediate tasks (and the baseline) x 2 fine-tuned targets x 2 seeds."""
    target = {"train": BUDGET, "eval": {"languages": ["en", "de"], "max_length": 32}}
    return {
        "name": "grid",
        "model": model,
        "seeds": [1, 2],
        "data_dir": str(data_dir),
        "intermediate": {"settings": ["none", "mnli", "qqp", "sst2"], "train": BUDGET},
        "targets": [{"task": "xnli", **target}, {"task": "pawsx", **target}],
        **extra,
    }


def _plan_json(config: Path) -> list[dict]:
    proc = subprocess.run(
        [sys.executable, "-m", "xstilts", "plan", str(config), "--out", str(config.parent / "out"), "--format", "json"],
        check=False,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["jobs"]


def test_plan_command_counts_jobs_of_tasks_targets_seeds_and_grid(tiny_model, data_dir, tmp_path):
    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump(_experiment(tiny_model, data_dir)))
    jobs = _plan_json(config)
    kinds = [j["kind"] for j in jobs]
    # per target: 3 settings + the baseline, for each seed, and two seed-free frozen-encoder probes
    assert kinds.count("intermediate") == 3 * 2 and kinds.count("target") == 2 * (3 + 1) * 2 + 4 == len(jobs) - 6
    assert len({j["id"] for j in jobs}) == len(jobs) and all(j["grid"] == {} for j in jobs)
    assert {(j["setting"], j["seed"]) for j in jobs if j["kind"] == "intermediate"} == {
        (s, seed) for s in ("mnli", "qqp", "sst2") for seed in (1, 2)
    }

    # two learning rates double every job that depends on the intermediate training, not the baselines
    config.write_text(yaml.safe_dump(_experiment(tiny_model, data_dir, grid={LR: [1.0e-3, 2.0e-3]})))
    grid = _plan_json(config)
    targets = [j for j in grid if j["kind"] == "target"]
    baseline = [j for j in targets if j["setting"] == "none"]
    assert [j["kind"] for j in grid].count("intermediate") == 12 and len(targets) == 24 + 4 + 4 == len(grid) - 12
    assert len(baseline) == 4 + 4 and all(j["grid"] == {LR: None} for j in baseline)
    assert len({j["id"] for j in grid}) == len(grid)
    assert sorted(j["grid"][LR] for j in grid if j["setting"] != "none") == [1.0e-3] * 18 + [2.0e-3] * 18
    assert {j["id"] for j in baseline} == {j["id"] for j in jobs if j["setting"] == "none"}  # the same jobs
    by_id = {j["id"]: j for j in grid}
    assert all(by_id[j["upstream"]]["grid"] == j["grid"] for j in targets if j["upstream"])


def test_grid_points_are_the_configs_they_stand_for(tiny_model, data_dir):
    """Each point plans the jobs of the config with its values written in; ``targets.<task>`` varies one target;
    missing mappings are created."""
    base = _experiment(tiny_model, data_dir)
    xnli_lr = "targets.xnli.train.lr"
    cfg = ExperimentConfig.model_validate(
        {**base, "grid": {xnli_lr: [1.0e-4, 2.0e-4], "head_pooling": ["cls", "mean"]}}
    )
    points = variants(cfg)
    assert [p for p, _ in points] == [
        {xnli_lr: lr, "head_pooling": pool} for lr in (1.0e-4, 2.0e-4) for pool in ("cls", "mean")
    ]
    jobs = plan(cfg, CATALOG).jobs
    for point, variant in points:
        written = {
            **base,
            "head_pooling": point["head_pooling"],
            "targets": [{**base["targets"][0], "train": {**BUDGET, "lr": point[xnli_lr]}}, base["targets"][1]],
        }
        assert variant == ExperimentConfig.model_validate(written)
        assert {j.id for j in plan(variant, CATALOG).jobs} <= {j.id for j in jobs}
    pawsx = [j for j in jobs if j.target == "pawsx"]
    assert len(pawsx) == 2 * 8 + 2 * 2 and all(
        j.grid == {xnli_lr: None, "head_pooling": j.spec.model.head_pooling} for j in pawsx
    )
    # intermediate and pawsx jobs x pooling, xnli jobs x lr x pooling; two probes per target and pooling (no lr)
    assert len(jobs) == 2 * 6 + 2 * 8 + 2 * 2 * 8 + 2 * 2 * 2

    bare = {"model": tiny_model, "targets": [{"task": "xnli"}]}
    ((_, variant),) = variants(ExperimentConfig.model_validate({**bare, "grid": {LR: [1.0e-4]}}))
    assert variant.intermediate.train.lr == 1.0e-4 and variant.grid == {} and variants(variant) == [({}, variant)]
    ((_, variant),) = variants(
        ExperimentConfig.model_validate(
            {**bare, "intermediate": {"settings": ["mnli", "qqp"]}, "grid": {"intermediate.select.top_k": [1]}}
        )
    )
    assert variant.intermediate.select.top_k == 1


def test_select_ranks_within_each_grid_point(tiny_model, data_dir):
    """select top_k 1 with two intermediate learning rates: each point sends its own best task to the targets."""
    base = _experiment(tiny_model, data_dir, grid={LR: [1.0e-3, 2.0e-3]})
    cfg = ExperimentConfig.model_validate(
        {**base, "targets": base["targets"][:1], "intermediate": {**base["intermediate"], "select": {"top_k": 1}}}
    )
    before = plan(cfg, CATALOG).jobs
    assert {j.setting for j in before if j.kind == "target"} == {"none"}  # nothing ranked yet
    best = {1.0e-3: "mnli", 2.0e-3: "sst2"}
    dev = {j.id: 90.0 if j.setting == best[j.grid[LR]] else 50.0 for j in before if j.kind == "intermediate"}
    setting = {j.id: j.setting for j in before if j.kind == "intermediate"}
    jobs = plan(
        cfg,
        CATALOG,
        lambda job_id: (
            {"metrics": [{"task": setting[job_id], "metric": "accuracy", "value": dev[job_id]}]}
            if job_id in dev
            else None
        ),
    ).jobs
    assert {(j.grid[LR], j.setting) for j in jobs if j.kind == "target"} == {
        (None, "none"),
        (1.0e-3, "mnli"),
        (2.0e-3, "sst2"),
    }


def test_cost_of_a_grid_over_models(data_dir):
    """Each job's FLOPs use its own model's parameter count."""
    from xstilts.experiments.cost import estimate, format_estimate

    base, large = "FacebookAI/xlm-roberta-base", "FacebookAI/xlm-roberta-large"
    cfg = ExperimentConfig.model_validate(_experiment(base, data_dir, grid={"model": [base, large]}))
    jobs = plan(cfg, CATALOG).jobs
    est = estimate(jobs, CATALOG)
    assert est["model_params"] is None and est["models"] == {base: 85_054_464, large: 302_309_376}
    flops = {j.id: row["flops"] for j, row in zip(jobs, est["jobs"])}
    by_model = {m: sum(flops[j.id] for j in jobs if j.spec.model.model == m) for m in (base, large)}
    assert by_model[large] == pytest.approx(by_model[base] * 302_309_376 / 85_054_464)
    assert f"models {base} 85M, {large} 302M params" in format_estimate(est)


def test_subsets_of_all_and_sampled(tiny_model):
    tasks = ["mnli", "qqp", "sst2", "hellaswag", "cosmosqa"]

    def settings(*listed: str, **entry) -> list[str]:
        return ExperimentConfig.model_validate(
            {
                "model": tiny_model,
                "targets": [{"task": "xnli"}],
                "intermediate": {"settings": [*listed, {"subsets_of": tasks, **entry}]},
            }
        ).intermediate.settings

    every = settings("qqp", sizes=[0, 1, 2, 5])
    assert len(every) == 1 + 5 + 10 + 1  # the listed qqp is one of the singles
    assert every[:3] == ["qqp", "none", "mnli"] and "mnli+qqp" in every and "qqp+mnli" not in every
    assert every[-1] == "+".join(tasks)
    sampled = settings(sizes=[1, 2, 3], max_per_size=4)
    assert sampled[0] == "none" and [s.count("+") for s in sampled[1:]] == [0] * 4 + [1] * 4 + [2] * 4
    assert all(s.split("+") == sorted(s.split("+"), key=tasks.index) for s in sampled[1:])  # listed order
    assert sampled == settings(sizes=[1, 2, 3], max_per_size=4)  # deterministic
    assert sampled != settings(sizes=[1, 2, 3], max_per_size=4, seed=1)
    assert sampled[5:9] == settings(sizes=[2], max_per_size=4)[1:]  # a size's sample ignores the other sizes
    assert settings(sizes=[2], max_per_size=10) == ["none"] + [s for s in every if s.count("+") == 1]


GOOD = """\
name: bad
model: me5-small
seeds: [1, 2]
intermediate:
  settings: [none, pocket-answer, pocket-sametopic]
targets:
  - task: pocket-topic
grid:
  intermediate.train.lr: [1.0e-5, 2.0e-5]
"""


@pytest.mark.parametrize(
    "old,new,expect",
    [
        (
            "intermediate.train.lr:",
            "intermediate.train.lrr:",
            "bad.yaml:9: grid.intermediate.train.lrr: unknown field 'lrr' in intermediate.train (fields: recipe, head, lr, ",
        ),
        (
            "intermediate.train.lr: [1.0e-5, 2.0e-5]",
            "seeds: [[1], [2]]",
            "bad.yaml:9: grid.seeds: seeds is not a grid axis (seeds already cross",
        ),
        (
            "intermediate.train.lr: [1.0e-5, 2.0e-5]",
            "intermediate.settings: [[none]]",
            "bad.yaml:9: grid.intermediate.settings: intermediate.settings is not a grid axis",
        ),
        (
            "intermediate.train.lr:",
            "targets.xnli.train.lr:",
            "bad.yaml:9: grid.targets.xnli.train.lr: no target 'xnli' (targets: pocket-topic; or * for all)",
        ),
        ("[1.0e-5, 2.0e-5]", "1.0e-5", "bad.yaml:9: grid.intermediate.train.lr: Input should be a valid list"),
        ("[1.0e-5, 2.0e-5]", "[]", "bad.yaml:9: grid.intermediate.train.lr: List should have at least 1 item"),
        (
            "[1.0e-5, 2.0e-5]",
            "\n    - 1.0e-5\n    - -1",
            ("bad.yaml:11: grid.intermediate.train.lr[1]: Input should be greater than 0 (got -1)"),
        ),
        (
            "intermediate.train.lr: [1.0e-5, 2.0e-5]",
            "intermediate.train.sampler: [uniform, capped]",
            "bad.yaml:9: grid.intermediate.train.sampler[1]: intermediate.train: sampler 'capped' needs sampler_cap",
        ),
        (
            "grid:\n",
            "grid:\n  intermediate.train: [{lr: 1.0e-4}]\n",
            "bad.yaml:10: grid.intermediate.train.lr: overlaps grid key 'intermediate.train'",
        ),
        (
            "[none, pocket-answer, pocket-sametopic]",
            "\n    - {subsets_of: [pocket-answer, pocket-anser], sizes: [1]}",
            "bad.yaml:6: intermediate.settings: unknown intermediate task 'pocket-anser' in setting 'pocket-anser'",
        ),
        (
            "[none, pocket-answer, pocket-sametopic]",
            "\n    - none\n    - {subsets_of: [pocket-answer], sizes: [1, 2]}",
            "bad.yaml:7: intermediate.settings[1]: sizes [2] are outside 0..1 (the number of tasks)",
        ),
        (
            "[none, pocket-answer, pocket-sametopic]",
            "[{subsets_of: [pocket-answer], sizes: [1, 1]}]",
            "bad.yaml:5: intermediate.settings[0]: a size is listed twice",
        ),
        (
            "[none, pocket-answer, pocket-sametopic]",
            "[{subsets_of: [pocket-answer], sizes: [1], max_per_size: 0}]",
            "bad.yaml:5: intermediate.settings[0].max_per_size: Input should be greater than or equal to 1",
        ),
    ],
)
def test_bad_grids_and_subsets_are_one_line_errors(tmp_path, monkeypatch, capsys, old, new, expect):
    from xstilts.cli import main

    assert old in GOOD
    (tmp_path / "bad.yaml").write_text(GOOD.replace(old, new))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["xstilts", "plan", "bad.yaml", "--format", "json"])
    with pytest.raises(SystemExit) as e:
        main()
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and err.startswith("error: " + expect), err


def test_grid_run_end_to_end(tiny_model, data_dir, tmp_path):
    """The 6 + 16 jobs (and the 4 probes) run on a tiny model; the index holds a result of each, and the grid columns of the plan."""
    cfg = ExperimentConfig.model_validate(_experiment(tiny_model, data_dir))
    jobs = plan(cfg, CATALOG).jobs
    run_experiment(cfg, CATALOG, "", tmp_path, Console(quiet=True))
    run = RunDir(tmp_path)
    rows = export.rows(run)
    assert {(r["job_id"], r["kind"]) for r in rows} == {(j.id, j.kind) for j in jobs} and len(jobs) == 6 + 16 + 4
    assert {
        (r["target"], r["intermediate"], r["seed"]) for r in rows if r["kind"] == "target" and r["recipe"] != "probe"
    } == {(t, s, seed) for t in ("xnli", "pawsx") for s in ("none", "mnli", "qqp", "sst2") for seed in (1, 2)}

    # plan.json of a grid whose point lr=1e-3 is this run: one column per grid key, after the usual ones
    languages = "targets.*.eval.languages"
    grid = ExperimentConfig.model_validate(
        _experiment(tiny_model, data_dir, grid={LR: [BUDGET["lr"], 5.0e-3], languages: [["en", "de"]]})
    )
    entries = [j.plan_entry() for j in plan(grid, CATALOG).jobs]
    atomic_write_json(tmp_path / "plan.json", entries)
    rows = export.rows(run)
    assert list(rows[0]) == [*ROW_COLUMNS, LR, languages, *METER_COLUMNS]
    assert {(r["intermediate"], r[LR], r[languages]) for r in rows} == {
        (s, None if s == "none" else BUDGET["lr"], '["en","de"]') for s in ("none", "mnli", "qqp", "sst2")
    }
    assert json.loads(export.export(run, "json")) == rows
    assert list(csv.DictReader(io.StringIO(export.export(run, "csv")))) == [
        {k: "" if v is None else str(v) for k, v in r.items()} for r in rows
    ]
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    frame = pd.read_parquet(io.BytesIO(export.export(run, "parquet")))
    assert list(frame.columns) == list(rows[0]) and frame[LR].isna().sum() == sum(r[LR] is None for r in rows)

    # a column of mixed kinds (a grid over eval.layer: [auto, 1]) is text in parquet
    for e in entries:
        e["grid"]["targets.*.eval.layer"] = "auto" if e["spec"]["seed"] == 1 else 1
    atomic_write_json(tmp_path / "plan.json", entries)
    frame = pd.read_parquet(io.BytesIO(export.export(run, "parquet")))
    assert set(frame["targets.*.eval.layer"]) == {"auto", "1"}

    # report.md: intermediate grid values label the setting columns, other grid values split the tables
    for e in entries:
        seed = e["spec"]["seed"]
        if seed is None:  # the probe: shared by every point
            e["grid"] = {LR: None, "targets.*.train.lr": None}
            continue
        e["grid"] = {
            LR: None if e["spec"]["intermediate"] == [] else [1.0e-3, 5.0e-3][seed - 1],
            "targets.*.train.lr": None if e["kind"] == "intermediate" else [1.0e-4, 3.0e-4][seed - 1],
        }
    atomic_write_json(tmp_path / "plan.json", entries)
    report = report_markdown(run, ["none", "mnli", "qqp", "sst2"], "grid", ["gains"])
    headings = [line for line in report.splitlines() if line.startswith("## ") and "(accuracy" in line]
    assert [h.split(" (accuracy")[0] for h in headings] == [
        f"## {t} (targets.*.train.lr={lr})" for t in ("pawsx", "xnli") for lr in (0.0001, 0.0003)
    ]
    table = report.split(headings[0])[1].split("\n## ")[0]
    header = next(line for line in table.splitlines() if line.startswith("| language |"))
    assert header.startswith("| language | none | mnli [intermediate.train.lr=0.001] | ")
    # the shared probes join every table
    assert header.endswith(" | probe (frozen, standardised) | probe (frozen, L2-normalised) |")
    assert "0.005" not in table  # lr 5e-3 ran with seed 2, whose targets used targets.*.train.lr 3e-4
    assert "gain vs none (zero-shot)" in table and "English dev rank" not in report


def test_arms_merge_over_the_config_each_with_its_grid(tmp_path, monkeypatch, capsys):
    """An encoder arm and a decoder arm: mappings merge (the decoder arm's backbone and train lr), other values
    replace (its targets list), each arm has its own grid; the arm names every job's point."""
    cfg = ExperimentConfig.model_validate(
        {
            "model": "me5-small",
            "intermediate": {"settings": ["none", "pocket-answer"], "train": {"lr": 1e-5, "batch_size": 8}},
            "targets": [{"task": "pocket-topic"}],
            "arms": {
                "encoders": {"grid": {"model": ["me5-small@L3", "me5-small@L6"]}},
                "decoders": {
                    "model": "me5-small@L4",
                    "head_pooling": "last",
                    "backbone": {"dtype": "bfloat16", "lora": {"rank": 8}},
                    "intermediate": {"train": {"lr": 2e-4}},
                },
            },
        }
    )
    points = variants(cfg)
    assert [p for p, _ in points] == [
        {"arm": "encoders", "model": "me5-small@L3"},
        {"arm": "encoders", "model": "me5-small@L6"},
        {"arm": "decoders"},
    ]
    decoder = points[-1][1]
    assert (decoder.head_pooling, decoder.backbone.lora.rank, decoder.backbone.dtype) == ("last", 8, "bfloat16")
    assert decoder.intermediate.train.lr == 2e-4 and decoder.intermediate.train.batch_size == 8  # merged
    assert decoder.intermediate.settings == ["none", "pocket-answer"] and points[0][1].backbone.lora is None
    jobs = plan(cfg, CATALOG).jobs
    assert {j.grid["arm"] for j in jobs} == {"encoders", "decoders"}
    lora = [j for j in jobs if j.grid["arm"] == "decoders"]
    assert all(j.spec.model.backbone["lora"]["rank"] == 8 for j in lora)
    assert all("backbone" not in j.spec.as_dict() for j in jobs if j.grid["arm"] == "encoders")  # ids as before

    for arm, expect in (
        (
            "{accelerate: {num_processes: 2}}",
            "bad.yaml:5: arms.x.accelerate: set for the whole experiment, not per arm",
        ),
        (
            "{head_pooling: first}",
            "bad.yaml:5: arms.x.head_pooling: Input should be 'cls', 'mean' or 'last' (got 'first')",
        ),
    ):
        text = "model: me5-small\nintermediate: {settings: [none]}\ntargets: [{task: pocket-topic}]\narms:\n"
        (tmp_path / "bad.yaml").write_text(f"{text}  x: {arm}\n")
        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr(sys, "argv", ["xstilts", "plan", "bad.yaml"])
        from xstilts.cli import main

        with pytest.raises(SystemExit) as e:
            main()
        err = capsys.readouterr().err
        assert e.value.code == 2 and err == f"error: {expect}\n", err
