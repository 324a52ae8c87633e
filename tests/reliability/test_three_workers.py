"""Three `xstilts run` processes share one OUT with a 10-job grid; one of them hangs mid-training (SIGSTOP: alive,
but silent) and wakes up (SIGCONT) once the others are done. Its job is taken over only once its lease has
expired, every job ends once (the woken worker's result is fenced off), no result is lost, and the results equal
those of one worker alone."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

import yaml
from cli_runs import XSTILTS, job_losses, job_metrics

from xstilts.experiments.queue import Queue
from xstilts.experiments.rundir import RunDir

TTL = 5.0  # --lease-ttl: the heartbeat renews every TTL/3 seconds


def _config(path: Path, model: str, task_files: Path) -> Path:
    budget = {"batch_size": 8, "lr": 1e-3, "max_length": 32}
    config = {
        "name": "three-workers",
        "model": model,
        "seeds": [1, 2],
        "tasks_dir": str(task_files),
        "intermediate": {"settings": ["u-answer", "u-sametopic"], "train": {**budget, "max_steps": 20}},
        "targets": [{"task": "u-topic", "train": {**budget, "epochs": 1}, "probe_reference": False}],
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _start(config: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [XSTILTS, "run", str(config), "--out", str(out), "--lease-ttl", str(TTL), "--checkpoint-every", "0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _training_lease(out: Path, procs: list[subprocess.Popen]) -> tuple[str, subprocess.Popen]:
    """The first job one of ``procs`` holds while it trains (its training state exists), and that process."""
    by_pid = {p.pid: p for p in procs}
    deadline = time.time() + 300
    while time.time() < deadline:
        if (out / "queue.sqlite").is_file():
            with sqlite3.connect(out / "queue.sqlite", timeout=60) as con:
                leases = con.execute("SELECT job_id, pid FROM leases").fetchall()
            con.close()
            for job_id, pid in leases:
                if pid in by_pid and RunDir(out).train_state(job_id).is_dir():
                    return job_id, by_pid[pid]
        time.sleep(0.05)
    raise AssertionError("no worker started training")


def _hang(proc: subprocess.Popen, out: Path) -> float:
    """SIGSTOP ``proc`` at a moment it holds no lock on the queue (so the others can go on); returns when."""
    while True:
        os.kill(proc.pid, signal.SIGSTOP)
        con = sqlite3.connect(out / "queue.sqlite", timeout=1.0, isolation_level=None)
        try:
            con.execute("BEGIN IMMEDIATE")
            con.execute("ROLLBACK")
            return time.time()
        except sqlite3.OperationalError:  # stopped inside a queue transaction: let it finish first
            os.kill(proc.pid, signal.SIGCONT)
            time.sleep(0.02)
        finally:
            con.close()


def test_three_workers_with_one_hung_run_every_job_once(tiny_model, tiny_task_files, tmp_path):
    config = _config(tmp_path / "grid.yaml", tiny_model, tiny_task_files)
    alone = subprocess.run(
        [XSTILTS, "run", str(config), "--out", str(tmp_path / "alone")], check=False, capture_output=True, text=True
    )
    assert alone.returncode == 0, alone.stderr[-3000:]

    out = tmp_path / "shared"
    procs = [_start(config, out) for _ in range(3)]
    job_id, hung = _training_lease(out, procs)
    stopped = _hang(hung, out)
    for proc in procs:
        if proc is not hung:
            _, err = proc.communicate(timeout=600)
            assert proc.returncode == 0, err[-3000:]
    run = RunDir(out)
    taken_over = run.result_path(job_id).read_bytes()
    os.kill(hung.pid, signal.SIGCONT)  # the hung worker wakes up, finishes its job, and may not write it
    _, err = hung.communicate(timeout=600)
    assert hung.returncode == 0, err[-3000:]
    assert run.result_path(job_id).read_bytes() == taken_over
    assert not run.train_state(job_id).exists()

    planned = {j["id"] for j in run.read_plan()}
    assert len(planned) == 10 and all(run.is_done(i) for i in planned)
    assert job_metrics(out) == job_metrics(tmp_path / "alone")
    assert job_losses(out) == job_losses(tmp_path / "alone")  # the resumed job trained bit-identically
    log = Queue(run).log()
    assert Counter(e["job_id"] for e in log if e["event"] == "done") == dict.fromkeys(planned, 1)
    runs = Counter(e["job_id"] for e in log if e["event"] in ("start", "resume"))
    assert runs == {i: 2 if i == job_id else 1 for i in planned}  # only the hung worker's job ran again
    (expired,) = [e for e in log if e["event"] == "expired"]
    owners = {e["owner"] for e in log}
    assert len(owners) == 3 and expired["job_id"] == job_id and expired["detail"].split(":")[1] == str(hung.pid)
    # taken over only after the lease ran out: renewed at most TTL/3 before the stop, so TTL*2/3 after it at least
    assert expired["time"] >= stopped + TTL * 2 / 3 - 0.05
    takeover = [e["event"] for e in log if e["job_id"] == job_id]
    # resumed from the hung worker's last training state; the hung worker's own result was fenced off
    assert takeover == ["start", "expired", "resume", "done", "superseded"]
    (superseded,) = [e for e in log if e["event"] == "superseded"]
    assert superseded["owner"] == expired["detail"] and "stalled" in superseded["detail"]
