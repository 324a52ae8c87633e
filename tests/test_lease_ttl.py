"""The lease TTL: a job leased by a worker on another host is taken over once its lease has not been renewed for
``ttl`` seconds (``xstilts run --lease-ttl``), and not before."""

from __future__ import annotations

import time

from typer.testing import CliRunner

from xstilts.cli import app
from xstilts.experiments.queue import Queue
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
