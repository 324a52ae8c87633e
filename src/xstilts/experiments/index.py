"""A SQLite index over finished jobs (``OUT/index.sqlite``), read by ``status`` and ``results``.

The result files ``OUT/jobs/<id>/result.json`` stay the source of truth; ``OUT/index.sqlite`` is a cache
of them that :func:`refresh` brings up to date (new, changed or deleted result files only) and that can be
deleted at any time. The database runs in WAL mode so readers (``status``, ``results``) don't block a
refresh.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from xstilts.errors import UserError
from xstilts.evaluate.hardware import METER_KEYS
from xstilts.experiments.rundir import RunDir

# An index of another version is dropped and rebuilt from the result files (see _connect); 4: meter columns,
# 5: probe_input
SCHEMA_VERSION = 5


def _headline(row: dict, metrics: set[str]) -> bool:
    """Whether a metric row is its task's headline; result files written before rows carried the mark get the
    rule those versions used (accuracy, else F1, else mAP@20)."""
    if "headline" in row:
        return bool(row["headline"])
    return row["metric"] == next((m for m in ("accuracy", "f1", "map@20") if m in metrics), min(metrics))


def _meters(r: dict) -> tuple:
    """A result's ``meters``, one value per ``METER_KEYS`` (None where it has none); results written before the
    block existed give the inference speed they kept under ``inference``."""
    meters = r.get("meters")
    if not isinstance(meters, dict):
        meters = r.get("inference") if isinstance(r.get("inference"), dict) else {}
    return tuple(meters.get(k) for k in METER_KEYS)


def _probe_input(train: dict) -> str | None:
    """What a job's probe fit on (recipes probe and lp-ft), None for a job without a probe; results written
    before the probe recorded its input had the standardised one."""
    probe = train.get("probe")
    return probe.get("input", "standardised") if isinstance(probe, dict) else None


_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY, kind TEXT, model TEXT, intermediate TEXT, recipe TEXT, probe_input TEXT, target TEXT,
    seed, seconds, finished TEXT, {", ".join(METER_KEYS)}, result_mtime_ns INTEGER, result_size INTEGER);
CREATE TABLE IF NOT EXISTS metrics (
    job_id TEXT NOT NULL, task TEXT, split TEXT, language TEXT, metric TEXT, value, n, headline INTEGER);  -- untyped: values come back as written
CREATE INDEX IF NOT EXISTS metrics_job ON metrics(job_id);
"""


def _connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, isolation_level=None, timeout=30)  # transactions are explicit
    con.execute("PRAGMA journal_mode=WAL")
    if con.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
        con.executescript("DROP TABLE IF EXISTS metrics; DROP TABLE IF EXISTS jobs;")
        con.executescript(_SCHEMA)
        con.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    return con


def open_index(run: RunDir) -> sqlite3.Connection:
    """The index database ``OUT/index.sqlite`` (created empty if missing; rebuilt if unreadable)."""
    if not run.root.is_dir():
        raise UserError(f"{run.root}: no such experiment output directory")
    path = run.index_path
    try:
        return _connect(path)
    except sqlite3.DatabaseError:  # not a database / corrupt: it is only a cache, start over
        for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            p.unlink(missing_ok=True)
        return _connect(path)


def _read_result(path: Path) -> tuple[tuple, list[tuple]]:
    """A result file as a ``jobs`` row (without stat columns) and its ``metrics`` rows."""
    try:
        r = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{e.lineno}: malformed result JSON ({e.msg})") from None
    except UnicodeDecodeError as e:
        raise UserError(f"{path}:1: malformed result JSON (not UTF-8: {e.reason})") from None
    try:
        train = r.get("train") or {}
        job = (
            r["job_id"],
            r["kind"],
            r["model"],
            r["intermediate"],
            train.get("recipe"),
            _probe_input(train),
            r["target"],
            r["seed"],
            r.get("seconds"),
            r["finished"],
            *_meters(r),
        )
        names = {}
        for m in r["metrics"]:
            names.setdefault((m["task"], m["split"], m["language"]), set()).add(m["metric"])
        metrics = [
            (
                r["job_id"],
                m["task"],
                m["split"],
                m["language"],
                m["metric"],
                m["value"],
                m["n"],
                _headline(m, names[m["task"], m["split"], m["language"]]),
            )
            for m in r["metrics"]
        ]
    except KeyError as e:
        raise UserError(f"{path}:1: malformed result JSON (missing field {e.args[0]!r})") from None
    except TypeError:
        raise UserError(f"{path}:1: malformed result JSON (unexpected structure)") from None
    return job, metrics


def refresh(run: RunDir) -> sqlite3.Connection:
    """Bring the index up to date with ``OUT/jobs/*/result.json`` in one transaction; returns it open.

    A result file whose (mtime_ns, size) differs from the indexed one is re-read, one that is gone is
    dropped, one that is new is added; rows of untouched jobs are left as they are.
    """
    con = open_index(run)
    on_disk: dict[str, tuple[Path, int, int]] = {}
    for path in run.result_files():
        try:
            st = path.stat()
        except FileNotFoundError:  # removed while we looked
            continue
        on_disk[path.parent.name] = (path, st.st_mtime_ns, st.st_size)
    try:
        con.execute("BEGIN IMMEDIATE")
        indexed = {
            row[0]: (row[1], row[2]) for row in con.execute("SELECT job_id, result_mtime_ns, result_size FROM jobs")
        }
        for job_id in indexed.keys() - on_disk.keys():
            con.execute("DELETE FROM metrics WHERE job_id = ?", (job_id,))
            con.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))
        for job_id, (path, mtime_ns, size) in on_disk.items():
            if indexed.get(job_id) == (mtime_ns, size):
                continue
            job, metrics = _read_result(path)
            if job[0] != job_id:
                raise UserError(f"{path}:1: result is for job {job[0]!r}, but lies in the folder of {job_id!r}")
            con.execute("DELETE FROM metrics WHERE job_id = ?", (job_id,))
            con.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))
            con.execute(f"INSERT INTO jobs VALUES ({','.join('?' * (len(job) + 2))})", (*job, mtime_ns, size))
            con.executemany("INSERT INTO metrics VALUES (?,?,?,?,?,?,?,?)", metrics)
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        con.close()
        raise
    return con
