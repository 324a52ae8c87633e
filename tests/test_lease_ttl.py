"""The lease TTL: a job leased by a worker on another host is taken over once its lease has not been renewed for
``ttl`` seconds (``xstilts run --lease-ttl``), and not before; a worker that wakes up after the takeover cannot
write its result (the fence)."""

from __future__ import annotations

import pickle
import sqlite3
import time
from functools import partial

import pytest
from typer.testing import CliRunner

from xstilts.cli import app
from xstilts.experiments.queue import LeaseLost, Queue
from xstilts.experiments.rundir import RunDir


def test_a_silent_remote_lease_expires_after_the_ttl(tmp_path):
    remote, here = Queue(RunDir(tmp_path), ttl=1.0), Queue(RunDir(tmp_path), ttl=1.0)
    remote.host = "another-host"  # its pid cannot be checked from here: only the TTL frees the job
    assert remote.claim("job")
    assert not here.claim("job")
    time.sleep(1.3)
    assert here.claim("job")


def test_run_takes_the_ttl_as_an_option():
    out = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"})
    assert "--lease-ttl" in out.output


def test_a_worker_that_stalled_past_its_ttl_cannot_write_its_result(tmp_path):
    run = RunDir(tmp_path)
    stalled, other = Queue(run, ttl=0.5), Queue(run, ttl=0.5)
    stalled.host = "another-host"
    assert stalled.claim("job")
    with stalled.fence("job"):  # while the lease is its own, the result goes through
        pass
    time.sleep(0.7)
    assert other.claim("job")  # taken over
    written = []
    with pytest.raises(LeaseLost, match="taken over by"), stalled.fence("job"):
        written.append("stale result")
    with other.fence("job"):
        run.write_result("job", {"job_id": "job"})
    other.release("job", "done")
    # the lease is gone now, but the job is done: the stalled worker still cannot write
    fence = partial(pickle.loads(pickle.dumps(stalled)).fence, "job")  # as a launched process gets it
    with pytest.raises(LeaseLost, match="finished it"), fence():
        written.append("stale result")
    assert written == [] and run.read_result("job") == {"job_id": "job"}


def test_a_fence_holds_the_queue_lock(tmp_path):
    """While one worker writes its result inside the fence, no other can take the lease over."""
    run = RunDir(tmp_path)
    owner, other = Queue(run, ttl=0.01), Queue(run, ttl=0.01)
    other.host = "another-host"
    assert owner.claim("job")
    time.sleep(0.05)  # expired: free to take over, but not while the fence is held
    with owner.fence("job"):
        con = sqlite3.connect(run.queue_path, timeout=0.2, isolation_level=None)
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            con.execute("BEGIN IMMEDIATE")
        con.close()
    assert other.claim("job")


def test_the_heartbeat_tells_a_stalled_worker_it_lost_its_lease(tmp_path):
    run = RunDir(tmp_path)
    stalled, other = Queue(run, ttl=0.3), Queue(run, ttl=0.3)
    stalled.host = "another-host"
    assert stalled.claim("job")
    with stalled.heartbeat() as lost:
        time.sleep(0.5)  # renewed: still its own
        assert not lost() and not other.claim("job")
    time.sleep(0.4)  # silent past its TTL
    assert other.claim("job")
    with stalled.heartbeat() as lost:
        time.sleep(0.2)  # the first renewal finds the lease gone
        assert lost()
