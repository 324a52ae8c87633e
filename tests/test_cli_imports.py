"""The commands that only read configs and results answer at once: each runs in a fresh process and must not
load the training stack (torch, transformers, accelerate, datasets, peft)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "tests" / "fixtures" / "study"  # a finished mini experiment (its OUT, without checkpoints)
HEAVY = ("torch", "transformers", "accelerate", "datasets", "peft")

# run in a fresh process: argv[1] the command's arguments, argv[2] the modules to look for; prints the exit code
# and those of the modules that were loaded, as the last line of stdout
SCRIPT = """
import json, sys
args, modules = json.loads(sys.argv[1]), json.loads(sys.argv[2])
sys.argv = ["xstilts", *args]
from xstilts.cli import main
try:
    main()
    code = 0
except SystemExit as e:
    code = e.code if isinstance(e.code, int) else (e.code is not None)
print("\\n" + json.dumps({"code": code, "loaded": [m for m in modules if m in sys.modules]}))
"""


def _run(args: list[str]) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(args), json.dumps(HEAVY)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1]) | {"stderr": proc.stderr[-2000:]}


@pytest.fixture(scope="module", autouse=True)
def converted_models():
    """The cache holds the models the configs name, as after ``make setup``: planning fingerprints them, and
    converting one on first use needs transformers (a one-off that is not what these tests time)."""
    from xstilts.models.registry import resolve_model

    for ref in ("me5-small", "me5-small@L3", "me5-small@L6"):
        resolve_model(ref)


@pytest.fixture
def out(tmp_path) -> Path:
    shutil.copytree(STUDY, tmp_path / "out")
    return tmp_path / "out"


@pytest.mark.parametrize(
    "args",
    [["--help"], ["plan", "configs/demo.yaml"], ["tasks", "list"], ["status", "{out}"], ["results", "{out}"]],
    ids=["help", "plan", "tasks-list", "status", "results"],
)
def test_reading_commands_leave_the_training_stack_unloaded(args, out):
    result = _run([a.format(out=out) for a in args])
    assert result["code"] == 0, result["stderr"]
    assert result["loaded"] == [], result["loaded"]


def test_run_of_a_finished_experiment_leaves_the_training_stack_unloaded(out):
    """Nothing is pending, so nothing is trained: the run only writes its report (pandas, matplotlib)."""
    jobs = sorted(p.name for p in (out / "jobs").iterdir())
    result = _run(["run", str(STUDY / "experiment.yaml"), "--out", str(out)])  # its tasks_dir is relative to it
    assert result["code"] == 0, result["stderr"]
    assert result["loaded"] == [], result["loaded"]
    assert sorted(p.name for p in (out / "jobs").iterdir()) == jobs
    assert (out / "report.md").is_file()
