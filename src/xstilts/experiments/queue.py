"""Job leases and the job log in ``OUT/queue.sqlite``: how concurrent workers share one experiment.

A worker runs a job only while it holds the job's lease. A lease names its owner (``host:pid:nonce``) and
expires ``ttl`` seconds after its last renewal; the owner renews it from a heartbeat thread. A lease whose
owner is dead on this host, or that has expired, is taken over. The ``log`` table has one row per event:
``start`` (or ``resume``, from a training checkpoint), ``expired`` (a lease taken over), ``done``,
``failed`` (with the error), ``interrupted`` and ``superseded``; so the ``start`` rows count how often a job ran.

A worker that stalls past its TTL (a frozen process, a partitioned node) may wake up after another worker took
its job over. Its result is fenced: it is written only inside :meth:`Queue.fence`, a transaction that finds the
lease still this worker's and no result yet; otherwise the job ends ``superseded`` and writes nothing. The
heartbeat also notices the lost lease, so the worker stops at its next training update or evaluated language.

Unlike the results index, this database keeps SQLite's rollback journal instead of WAL: WAL's shared
memory only works among processes of one host, and leases must also hold between machines that share the
output folder (on a filesystem with working POSIX locks).
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator

from xstilts.cache import pid_alive
from xstilts.experiments.rundir import RunDir

_SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    job_id TEXT PRIMARY KEY, owner TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL, expires REAL NOT NULL);
CREATE TABLE IF NOT EXISTS log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, job_id TEXT NOT NULL, owner TEXT NOT NULL,
    event TEXT NOT NULL, detail TEXT);
CREATE INDEX IF NOT EXISTS log_job ON log(job_id);
"""


class LeaseLost(Exception):
    """This worker's lease on a job was taken over, or another worker finished the job, while it ran."""


class Queue:
    """This process's view of ``OUT/queue.sqlite``; one instance per worker. It pickles (to launched processes)."""

    def __init__(self, run: RunDir, ttl: float = 60.0):
        self.run = run
        self.path = run.queue_path
        self.ttl = ttl
        self.host = socket.gethostname()
        self.owner = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.path, timeout=60)
        try:
            con.executescript(_SCHEMA)
        finally:
            con.close()

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        """A short-lived connection; each ``with`` block is one immediate (write-locked) transaction."""
        con = sqlite3.connect(self.path, isolation_level=None, timeout=60)
        try:
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")
        finally:
            con.close()

    def _log(self, con: sqlite3.Connection, job_id: str, event: str, detail: str | None = None) -> None:
        con.execute(
            "INSERT INTO log (time, job_id, owner, event, detail) VALUES (?,?,?,?,?)",
            (time.time(), job_id, self.owner, event, detail),
        )

    def _live(self, host: str, pid: int, expires: float) -> bool:
        return expires > time.time() and (host != self.host or pid_alive(pid))

    def claim(self, job_id: str) -> bool:
        """Take the job's lease unless a live worker holds it."""
        with self._db() as con:
            row = con.execute("SELECT owner, host, pid, expires FROM leases WHERE job_id = ?", (job_id,)).fetchone()
            if row and row[0] != self.owner and self._live(*row[1:]):
                return False
            if row and row[0] != self.owner:
                self._log(con, job_id, "expired", row[0])
            con.execute(
                "INSERT OR REPLACE INTO leases VALUES (?,?,?,?,?)",
                (job_id, self.owner, self.host, os.getpid(), time.time() + self.ttl),
            )
            return True

    def started(self, job_id: str, resumed: bool, where: str | None = None) -> None:
        """Log that the job's work begins (``resume`` when it continues from a training checkpoint), and
        ``where`` when the host and pid in the owner don't say enough (a Ray node)."""
        with self._db() as con:
            self._log(con, job_id, "resume" if resumed else "start", where)

    def release(self, job_id: str, event: str | None, detail: str | None = None) -> None:
        """Drop the lease, logging how the job ended (``done``, or ``failed`` with ``detail``) unless None."""
        with self._db() as con:
            con.execute("DELETE FROM leases WHERE job_id = ? AND owner = ?", (job_id, self.owner))
            if event:
                self._log(con, job_id, event, detail)

    @contextlib.contextmanager
    def fence(self, job_id: str) -> Iterator[None]:
        """Hold the queue's write lock while the block writes the job's result, after checking that no other
        worker holds its lease and none has written a result; else raise :class:`LeaseLost`."""
        with self._db() as con:
            row = con.execute("SELECT owner FROM leases WHERE job_id = ?", (job_id,)).fetchone()
            if row and row[0] != self.owner:
                raise LeaseLost(f"job {job_id}: its lease was taken over by {row[0]} while this worker stalled")
            if self.run.is_done(job_id):
                raise LeaseLost(f"job {job_id}: another worker finished it while this worker stalled")
            yield

    def sweep(self) -> list[str]:
        """Drop the leases no live worker holds (their owners died or went silent), each logged ``expired``;
        returns their jobs. A job whose owner was killed after writing its result is never claimed again, so
        its lease would stay otherwise."""
        with self._db() as con:
            rows = con.execute("SELECT job_id, owner, host, pid, expires FROM leases").fetchall()
            stale = [
                (job_id, owner) for job_id, owner, *lease in rows if owner != self.owner and not self._live(*lease)
            ]
            for job_id, owner in stale:
                con.execute("DELETE FROM leases WHERE job_id = ? AND owner = ?", (job_id, owner))
                self._log(con, job_id, "expired", owner)
        return [job_id for job_id, _ in stale]

    def renew(self) -> bool:
        """Extend this worker's leases; False when it holds none any more (taken over, or swept as expired)."""
        with self._db() as con:
            cur = con.execute("UPDATE leases SET expires = ? WHERE owner = ?", (time.time() + self.ttl, self.owner))
            return cur.rowcount > 0

    @contextlib.contextmanager
    def heartbeat(self) -> Iterator[Callable[[], bool]]:
        """Renew this worker's lease every ttl/3 seconds while the block runs; the block gets a function that
        says whether a renewal found the lease gone (the worker stalled past its TTL), so it can stop early."""
        stop, lost = threading.Event(), threading.Event()

        def beat() -> None:
            while not stop.wait(self.ttl / 3):
                if not self.renew():
                    lost.set()

        thread = threading.Thread(target=beat, daemon=True, name="xstilts-lease-heartbeat")
        thread.start()
        try:
            yield lost.is_set
        finally:
            stop.set()
            thread.join()

    def running(self) -> set[str]:
        """Jobs whose lease a live worker holds."""
        with self._db() as con:
            rows = con.execute("SELECT job_id, host, pid, expires FROM leases").fetchall()
        return {job_id for job_id, *lease in rows if self._live(*lease)}

    def failed_since(self, since: float) -> dict[str, str]:
        """Jobs whose latest event after ``since`` is a failure: {job_id: error}."""
        with self._db() as con:
            rows = con.execute("SELECT job_id, event, detail FROM log WHERE time >= ? ORDER BY seq", (since,))
            last = {job_id: (event, detail) for job_id, event, detail in rows}
        return {job_id: detail or "" for job_id, (event, detail) in last.items() if event == "failed"}

    def log(self) -> list[dict]:
        """Every logged event, oldest first."""
        with self._db() as con:
            rows = con.execute("SELECT seq, time, job_id, owner, event, detail FROM log ORDER BY seq").fetchall()
        return [dict(zip(("seq", "time", "job_id", "owner", "event", "detail"), r)) for r in rows]
