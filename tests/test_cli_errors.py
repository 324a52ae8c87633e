"""Bad input: one line naming the YAML field (and line), exit code 2, no traceback, nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

GOOD = """\
name: bad
model: me5-small
intermediate:
  settings: [none, pocket-answer]
  train: {batch_size: 8}
targets:
  - task: pocket-topic
"""


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "xstilts", *args], cwd=cwd, check=False, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    "old,new,expect",
    [
        ("pocket-topic", "pocket-topik", "bad.yaml:7: targets[0].task: unknown task 'pocket-topik'"),
        (
            "[none, pocket-answer]",
            "[none, pocket-anser]",
            "bad.yaml:4: intermediate.settings: unknown intermediate task 'pocket-anser'",
        ),
        ("me5-small", "./models/nowhere", "bad.yaml:2: model: model path './models/nowhere' does not exist"),
        (
            "{batch_size: 8}",
            "{batch_size: eight}",
            "bad.yaml:5: intermediate.train.batch_size: Input should be a valid integer",
        ),
        ("name: bad", "name: bad\nepochs: 3", "bad.yaml:2: epochs: unknown field"),
        ("targets:", "targets: 3\nx:", "bad.yaml:"),
    ],
)
def test_config_errors_are_one_line(tmp_path, old, new, expect):
    (tmp_path / "bad.yaml").write_text(GOOD.replace(old, new))
    proc = _run("run", "bad.yaml", "--out", "out", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: " + expect), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_missing_config_and_results_dir(tmp_path):
    for args in (("run", "nope.yaml"), ("results", "nowhere")):
        proc = _run(*args, cwd=tmp_path)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_shipped_configs_validate_and_plan():
    """Every config in configs/ is valid, and the paper config plans offline (hub data is named, not fetched)."""
    from xstilts.experiments.plan import plan
    from xstilts.experiments.resolve import load_experiment

    root = Path(__file__).resolve().parents[1] / "configs"
    paths = sorted(root.rglob("*.yaml"))
    assert paths
    for path in paths:
        load_experiment(path)  # the schema, and every task and model it names
    file, catalog = load_experiment(root / "paper" / "xstilts-xlmr-large.yaml")
    cfg = file.cfg
    kinds = [j.kind for j in plan(cfg, catalog).jobs]
    settings, seeds = len(cfg.intermediate.settings), len(cfg.seeds)  # 'none' included
    assert kinds.count("intermediate") == (settings - 1) * seeds
    assert kinds.count("target") == 7 * settings * seeds + 2 * 7  # all but tatoeba fine-tune, and each has 2 probes
    assert kinds.count("retrieval") == (settings - 1) * seeds + 1  # one baseline serves every seed


def test_tasks_list_suites_through_the_command(tmp_path):
    """9 XTREME tasks over 40 language codes, 10 XTREME-R tasks over 50; the paper's intermediate tasks."""
    import json as _json

    for suite, tasks, langs in (("xtreme", 9, 40), ("xtreme-r", 10, 50)):
        out = _run("tasks", "list", "--suite", suite, "--format", "json", cwd=tmp_path)
        assert out.returncode == 0, out.stderr
        entries = _json.loads(out.stdout)
        assert len(entries) == tasks and len({lang for e in entries for lang in e["languages"]}) == langs
        assert all({"name", "format", "languages", "metric", "kind"} <= set(e) for e in entries)
        parallel = {e["name"] for e in entries if e.get("parallel")}  # translations of the same test items
        assert parallel == {"xnli", "xquad", "mlqa", "tatoeba"} | ({"pawsx"} if suite == "xtreme" else {"xcopa"})
    out = _run("tasks", "list", "--kind", "intermediate", "--format", "json", cwd=tmp_path)
    names = {e["name"] for e in _json.loads(out.stdout)}
    assert {
        "anli_plus",
        "mnli",
        "qqp",
        "squad_v1",
        "squad_v2",
        "hellaswag",
        "commonsenseqa",
        "cosmosqa",
        "ccg",
        "sst2",
    } <= names
