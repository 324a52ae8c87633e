"""Runs that survive SIGKILL and share an output folder: real `xstilts run` processes on a tiny model."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from cli_runs import XSTILTS, job_losses, job_metrics
from rich.console import Console

from xstilts.config.schema import ExperimentConfig
from xstilts.data.sources import JsonlDirSource
from xstilts.errors import JobsFailed
from xstilts.experiments.plan import plan
from xstilts.experiments.queue import Queue
from xstilts.experiments.rundir import RunDir
from xstilts.experiments.runner import run_experiment


def _config(path: Path, model: str, task_files: Path, steps: int = 40, **extra) -> Path:
    budget = {"batch_size": 8, "lr": 1e-3, "max_length": 32}
    path.write_text(
        yaml.safe_dump(
            {
                "name": "tiny",
                "model": model,
                "seeds": [1],
                "tasks_dir": str(task_files),
                "intermediate": {"settings": ["u-answer", "u-sametopic"], "train": {**budget, "max_steps": steps}},
                "targets": [{"task": "u-topic", "train": {**budget, "epochs": 1}, "probe_reference": False}],
                **extra,
            }
        ),
        encoding="utf-8",
    )
    return path


def _run(config: Path, out: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [XSTILTS, "run", str(config), "--out", str(out), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_for_a_training_checkpoint(proc: subprocess.Popen, out: Path) -> None:
    deadline = time.time() + 300
    while not list(out.glob("jobs/*/train_state")) and time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)


def _finish(proc: subprocess.Popen) -> None:
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err


def test_sigkill_during_intermediate_training_then_resume_gives_the_same_results(tiny_model, tiny_task_files, tmp_path):
    config = _config(tmp_path / "tiny.yaml", tiny_model, tiny_task_files, steps=200)
    _finish(_run(config, tmp_path / "straight"))
    expected = job_metrics(tmp_path / "straight"), job_losses(tmp_path / "straight")

    out = tmp_path / "killed"
    proc = _run(config, out, "--checkpoint-every", "0")
    _wait_for_a_training_checkpoint(proc, out)
    time.sleep(0.5)  # a few more checkpoints: killed mid-training, possibly mid-save
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    interrupted = [p.parent for p in out.glob("jobs/*/train_state")]
    assert interrupted and not (interrupted[0] / "result.json").exists()

    _finish(_run(config, out, "--checkpoint-every", "0"))
    assert (job_metrics(out), job_losses(out)) == expected
    job_id = interrupted[0].name
    events = [e["event"] for e in Queue(RunDir(out)).log() if e["job_id"] == job_id]
    assert events == ["start", "expired", "resume", "done"]  # the dead worker's lease was taken over
    result = json.loads((interrupted[0] / "result.json").read_text())
    assert 0 < result["train"]["resumed_from_update"] < result["train"]["updates"] == 200
    assert not list(out.glob("jobs/*/train_state"))  # removed once the job is done


def test_sigterm_releases_the_lease_and_the_next_run_resumes(tiny_model, tiny_task_files, tmp_path):
    config = _config(tmp_path / "tiny.yaml", tiny_model, tiny_task_files, steps=200)
    out = tmp_path / "out"
    proc = _run(config, out, "--checkpoint-every", "0")
    _wait_for_a_training_checkpoint(proc, out)
    proc.send_signal(signal.SIGTERM)  # as a scheduler pre-empting the node would
    proc.communicate(timeout=120)
    assert proc.returncode != 0
    (job_dir,) = [p.parent for p in out.glob("jobs/*/train_state")]
    queue = Queue(RunDir(out))
    assert [e["event"] for e in queue.log() if e["job_id"] == job_dir.name] == ["start", "interrupted"]
    assert not queue.running() and not (job_dir / "FAILED").exists()
    _finish(_run(config, out))
    assert [e["event"] for e in queue.log() if e["job_id"] == job_dir.name] == [
        "start",
        "interrupted",
        "resume",
        "done",
    ]


def test_two_processes_on_one_output_folder_run_each_job_once(tiny_model, tiny_task_files, tmp_path):
    config = _config(tmp_path / "tiny.yaml", tiny_model, tiny_task_files)
    out = tmp_path / "shared"
    procs = [_run(config, out, "--workers", "1") for _ in range(2)]
    for proc in procs:
        _finish(proc)
    planned = {j["id"] for j in json.loads((out / "plan.json").read_text())}
    assert len(planned) == 2 + 3 and all((out / "jobs" / i / "result.json").is_file() for i in planned)
    log = Queue(RunDir(out)).log()
    assert Counter(e["job_id"] for e in log if e["event"] == "start") == dict.fromkeys(planned, 1)
    assert Counter(e["job_id"] for e in log if e["event"] == "done") == dict.fromkeys(planned, 1)
    assert {e["event"] for e in log} == {"start", "done"}


def test_workers_option_runs_every_job_with_the_results_of_one_worker(tiny_model, tiny_task_files, tmp_path):
    config = _config(tmp_path / "tiny.yaml", tiny_model, tiny_task_files)
    _finish(_run(config, tmp_path / "one"))
    _finish(_run(config, tmp_path / "two", "--workers", "2"))
    assert job_metrics(tmp_path / "two") == job_metrics(tmp_path / "one")
    owners = {e["owner"] for e in Queue(RunDir(tmp_path / "two")).log()}
    assert len(owners) == 2  # both workers took part


def test_leases_block_live_owners_and_expire(tmp_path):
    first, second = Queue(RunDir(tmp_path), ttl=30), Queue(RunDir(tmp_path), ttl=30)
    assert first.claim("a") and not second.claim("a") and first.claim("a")  # re-claiming one's own is fine
    first.release("a", "done")
    assert second.claim("a")
    con = sqlite3.connect(tmp_path / "queue.sqlite")
    with con:  # a lease held on another machine, and one held by a dead process here
        con.execute("INSERT INTO leases VALUES ('b', 'far:1:x', 'elsewhere', 1, ?)", (time.time() + 30,))
        dead = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpid())"], check=False, capture_output=True, text=True
        )
        con.execute(
            "INSERT INTO leases VALUES ('c', 'near:x', ?, ?, ?)",
            (socket.gethostname(), int(dead.stdout), time.time() + 30),
        )
    assert not first.claim("b")  # a live lease on another host
    assert first.claim("c")  # its owner is dead: taken over at once
    with con:
        con.execute("UPDATE leases SET expires = ? WHERE job_id = 'b'", (time.time() - 1,))
    assert first.claim("b")  # expired
    con.close()
    assert [(e["job_id"], e["event"], e["detail"]) for e in first.log() if e["event"] == "expired"] == [
        ("c", "expired", "near:x"),
        ("b", "expired", "far:1:x"),
    ]


class _BrokenTrain(JsonlDirSource):
    """Fault injection: the training split cannot be read (checksums still can, so the plan stands)."""

    def load(self, split: str, language: str) -> list[dict]:
        if split == "train":
            raise OSError("disk gone")
        return super().load(split, language)


def test_a_failed_job_stops_its_dependents_but_not_the_others(tiny_model, tiny_catalog, tmp_path):
    answer = tiny_catalog.get("t-answer")
    broken_catalog = tiny_catalog.with_tasks(dataclasses.replace(answer, source=_BrokenTrain(answer.source.dir)))
    budget = {"batch_size": 8, "lr": 1e-3, "max_length": 32, "max_steps": 5}
    cfg = ExperimentConfig.model_validate(
        {
            "model": tiny_model,
            "intermediate": {"settings": ["t-answer", "t-sametopic"], "train": budget},
            "targets": [{"task": "t-topic", "train": budget, "probe_reference": False}],
        }
    )
    with pytest.raises(JobsFailed) as failure:
        run_experiment(cfg, broken_catalog, "", tmp_path, Console(quiet=True))
    jobs = {(j.kind, j.setting): j.id for j in plan(cfg, broken_catalog).jobs}
    assert jobs == {(j.kind, j.setting): j.id for j in plan(cfg, tiny_catalog).jobs}  # the same data checksums
    broken = jobs[("intermediate", "t-answer")]
    assert failure.value.failed == {broken: "OSError: disk gone"}
    assert (tmp_path / "jobs" / broken / "FAILED").read_text() == "OSError: disk gone"
    done = {k for k, i in jobs.items() if (tmp_path / "jobs" / i / "result.json").is_file()}
    assert done == {("intermediate", "t-sametopic"), ("target", "t-sametopic"), ("target", "none")}

    # fixed: a new run does the rest
    summary = run_experiment(cfg, tiny_catalog, "", tmp_path, Console(quiet=True))
    assert summary == {**summary, "ran": 2, "skipped": 3}
    assert not (tmp_path / "jobs" / broken / "FAILED").exists()
