"""What a killed process leaves behind, and how the next run clears it: temporary files of dead writers, a
directory replace cut between its renames, the state of finished jobs, and dead workers' leases."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time

from xstilts.cache import atomic_dir, finish_replace, replace_dir, sweep_temp
from xstilts.experiments.queue import Queue
from xstilts.experiments.rundir import RunDir


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True, capture_output=True)
    return int(done.stdout)


def test_sweep_removes_only_the_temporary_files_of_dead_writers_here(tmp_path):
    host, dead = socket.gethostname(), _dead_pid()
    (tmp_path / "jobs" / "a").mkdir(parents=True)
    gone = [
        tmp_path / "jobs" / "a" / f".result.json.{dead}@{host}.abcd1234.tmp",
        tmp_path / f".checkpoint.{dead}@{host}.x_y9z0ab.tmp",  # a directory, with its aside
        tmp_path / f".checkpoint.{dead}@{host}.x_y9z0ab.tmp.old",
    ]
    kept = [
        tmp_path / f".plan.json.{os.getpid()}@{host}.abcd1234.tmp",  # a live writer's
        tmp_path / f".plan.json.{dead}@elsewhere.example.org.abcd1234.tmp",  # another host's: its pid says nothing here
        tmp_path / "jobs" / "a" / "result.json",
        tmp_path / ".hidden.tmp",  # not one of ours
    ]
    gone[0].write_text("half")
    for d in gone[1:]:
        d.mkdir()
        (d / "model.safetensors").write_text("half")
    for f in kept:
        f.write_text("x")
    assert sorted(sweep_temp(tmp_path)) == sorted(gone)
    assert not any(p.exists() for p in gone) and all(p.exists() for p in kept)


def test_temporary_names_carry_their_writer_and_survive_a_sweep_while_it_lives(tmp_path):
    with atomic_dir(tmp_path / "checkpoint") as tmp:
        assert tmp.name.startswith(f".checkpoint.{os.getpid()}@{socket.gethostname()}.") and tmp.name.endswith(".tmp")
        assert sweep_temp(tmp_path) == [] and tmp.is_dir()
    assert (tmp_path / "checkpoint").is_dir() and list(tmp_path.iterdir()) == [tmp_path / "checkpoint"]


def test_a_replace_cut_between_its_renames_is_finished(tmp_path):
    path, new, aside = tmp_path / "train_state", tmp_path / "train_state.partial", tmp_path / "train_state.partial.old"
    for d, text in ((new, "update 7"), (aside, "update 6")):  # killed after moving the old state aside
        d.mkdir()
        (d / "state").write_text(text)
    finish_replace(new, path)
    assert (path / "state").read_text() == "update 7" and not new.exists() and not aside.exists()
    # cut after the second rename, while removing the aside: the new state is in place already
    aside.mkdir()
    finish_replace(new, path)
    assert (path / "state").read_text() == "update 7" and not aside.exists()
    new.mkdir()
    (new / "state").write_text("update 8")
    replace_dir(new, path)
    assert (path / "state").read_text() == "update 8" and not aside.exists()


def test_run_sweep_clears_finished_jobs_only(tmp_path):
    run = RunDir(tmp_path)
    for job in ("done", "running"):
        for path in (run.train_state(job), run.train_state(job).with_name("train_state.partial")):
            path.mkdir(parents=True)
        run.micro_batch_split(job).write_text("2")
    run.write_result("done", {"job_id": "done"})
    removed = run.sweep()
    assert {p.name for p in removed} == {"train_state", "train_state.partial", "micro_batch_split"}
    assert not [p.name for p in run.job("done").iterdir() if p.name != "result.json"]
    assert run.train_state("running").is_dir() and run.micro_batch_split("running").is_file()


def test_queue_sweep_drops_dead_and_expired_leases_only(tmp_path):
    queue = Queue(RunDir(tmp_path), ttl=30)
    assert queue.claim("mine")
    con = sqlite3.connect(tmp_path / "queue.sqlite")
    with con:
        rows = [
            ("dead", "here:1:x", socket.gethostname(), _dead_pid(), time.time() + 30),
            ("silent", "far:2:y", "elsewhere", 2, time.time() - 1),
            ("alive", "far:3:z", "elsewhere", 3, time.time() + 30),
        ]
        con.executemany("INSERT INTO leases VALUES (?,?,?,?,?)", rows)
    assert sorted(queue.sweep()) == ["dead", "silent"]
    assert sorted(j for (j,) in con.execute("SELECT job_id FROM leases")) == ["alive", "mine"]
    con.close()
    assert [(e["job_id"], e["detail"]) for e in queue.log() if e["event"] == "expired"] == [
        ("dead", "here:1:x"),
        ("silent", "far:2:y"),
    ]
