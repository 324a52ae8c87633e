"""A SQLite index over finished jobs (``OUT/index.sqlite``), job status, and result export.

The result files ``OUT/jobs/<id>/result.json`` stay the source of truth; ``OUT/index.sqlite`` is a cache
of them that :func:`refresh` brings up to date (new, changed or deleted result files only) and that can be
deleted at any time. The database runs in WAL mode so readers (``status``, ``results``) don't block a
refresh.

A job is ``running`` while a live worker holds its lease (``OUT/queue.sqlite``, see experiments/queue),
and ``failed`` while ``OUT/jobs/<id>/FAILED`` exists: the runner writes the job's one-line error there
and removes it when the job starts again. A job with a ``result.json`` is done whatever else exists.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from xstilts.config import NONE_SETTING
from xstilts.errors import UserError
from xstilts.experiments.queue import Queue
from xstilts.experiments.store import ROW_COLUMNS

INDEX_NAME = "index.sqlite"
FAILED = "FAILED"
STATES = ("done", "running", "failed", "pending")
SCHEMA_VERSION = 2

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY, kind TEXT, model TEXT, intermediate TEXT, recipe TEXT, target TEXT, seed,
    seconds, finished TEXT, result_mtime_ns INTEGER, result_size INTEGER);
CREATE TABLE IF NOT EXISTS metrics (
    job_id TEXT NOT NULL, task TEXT, split TEXT, language TEXT, metric TEXT, value, n);  -- untyped: values come back as written
CREATE INDEX IF NOT EXISTS metrics_job ON metrics(job_id);
"""


def index_path(out: Path) -> Path:
    return Path(out) / INDEX_NAME


def _connect(path: Path) -> sqlite3.Connection:
    con = sqlite3.connect(path, isolation_level=None, timeout=30)  # transactions are explicit
    con.execute("PRAGMA journal_mode=WAL")
    if con.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
        con.executescript("DROP TABLE IF EXISTS metrics; DROP TABLE IF EXISTS jobs;")
        con.executescript(_SCHEMA)
        con.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    return con


def open_index(out: Path) -> sqlite3.Connection:
    """The index database ``OUT/index.sqlite`` (created empty if missing; rebuilt if unreadable)."""
    out = Path(out)
    if not out.is_dir():
        raise UserError(f"{out}: no such experiment output directory")
    path = index_path(out)
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
        job = (r["job_id"], r["kind"], r["model"], r["intermediate"], (r.get("train") or {}).get("recipe"),
               r["target"], r["seed"],
               r.get("seconds"), r["finished"])
        metrics = [(r["job_id"], m["task"], m["split"], m["language"], m["metric"], m["value"], m["n"])
                   for m in r["metrics"]]
    except KeyError as e:
        raise UserError(f"{path}:1: malformed result JSON (missing field {e.args[0]!r})") from None
    except TypeError:
        raise UserError(f"{path}:1: malformed result JSON (unexpected structure)") from None
    return job, metrics


def refresh(out: Path) -> sqlite3.Connection:
    """Bring the index up to date with ``OUT/jobs/*/result.json`` in one transaction; returns it open.

    A result file whose (mtime_ns, size) differs from the indexed one is re-read, one that is gone is
    dropped, one that is new is added; rows of untouched jobs are left as they are.
    """
    out = Path(out)
    con = open_index(out)
    on_disk: dict[str, tuple[Path, int, int]] = {}
    jobs_dir = out / "jobs"
    if jobs_dir.is_dir():
        for path in sorted(jobs_dir.glob("*/result.json")):
            try:
                st = path.stat()
            except FileNotFoundError:  # removed while we looked
                continue
            on_disk[path.parent.name] = (path, st.st_mtime_ns, st.st_size)
    try:
        con.execute("BEGIN IMMEDIATE")
        indexed = {row[0]: (row[1], row[2]) for row in
                   con.execute("SELECT job_id, result_mtime_ns, result_size FROM jobs")}
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
            con.execute("INSERT INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?)", (*job, mtime_ns, size))
            con.executemany("INSERT INTO metrics VALUES (?,?,?,?,?,?,?)", metrics)
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        con.close()
        raise
    return con


# ---------------------------------------------------------------- status

def _read_plan(out: Path) -> list[dict]:
    path = Path(out) / "plan.json"
    if not path.is_file():
        raise UserError(f"{path}: no plan here (run the experiment first)")
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{e.lineno}: malformed plan JSON ({e.msg})") from None
    if not isinstance(plan, list) or not all(isinstance(j, dict) and "id" in j for j in plan):
        raise UserError(f"{path}:1: malformed plan JSON (expected a list of jobs with an 'id')")
    return plan


def status(out: Path) -> dict:
    """Counts per state and one entry per planned job: ``{id, kind, setting, target, state, error}``."""
    out = Path(out)
    plan = _read_plan(out)
    con = refresh(out)
    try:
        done = {row[0] for row in con.execute("SELECT job_id FROM jobs")}
    finally:
        con.close()
    running = Queue(out).running()
    counts = dict.fromkeys(STATES, 0)
    jobs = []
    for j in plan:
        spec = j.get("spec") or {}
        job_dir = out / "jobs" / j["id"]
        error = None
        if j["id"] in done:
            state = "done"
        elif j["id"] in running:
            state = "running"
        elif (job_dir / FAILED).is_file():
            state = "failed"
            lines = (job_dir / FAILED).read_text(encoding="utf-8", errors="replace").strip().splitlines()
            error = lines[0] if lines else ""
        else:
            state = "pending"
        counts[state] += 1
        jobs.append({"id": j["id"], "kind": j.get("kind"), "setting": "+".join(spec.get("intermediate") or [])
                     or NONE_SETTING, "target": spec.get("target"), "state": state, "error": error})
    return {**counts, "jobs": jobs}


def format_status(st: dict) -> str:
    """A summary line, then one aligned line per job (with the error of a failed one)."""
    total = len(st["jobs"])
    lines = [f"{total} jobs: " + ", ".join(f"{st[s]} {s}" for s in STATES)]
    rows = [(j["state"], j["kind"] or "", j["setting"], j["target"] or "-", j["id"]) for j in st["jobs"]]
    widths = [max((len(r[i]) for r in rows), default=0) for i in range(5)]
    for r, j in zip(rows, st["jobs"]):
        line = "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
        if j.get("error"):
            line += f"  ({j['error']})"
        lines.append(line)
    return "\n".join(lines)


# ---------------------------------------------------------------- export

def _grid_values(out: Path) -> tuple[list[str], dict[str, dict]]:
    """(grid keys in plan order, job id -> its ``grid``) from ``OUT/plan.json``; empty without a plan."""
    plan = _read_plan(out) if (Path(out) / "plan.json").is_file() else []
    grids = {j["id"]: j.get("grid") or {} for j in plan}
    return list(dict.fromkeys(k for g in grids.values() for k in g if k not in ROW_COLUMNS)), grids


def _scalar(v: Any) -> Any:
    """A grid value as a table cell: a list or mapping as compact JSON text."""
    return json.dumps(v, separators=(",", ":")) if isinstance(v, (list, dict)) else v


def _mixed(values: Iterable) -> bool:
    """Whether a column holds values of more than one kind (numbers count as one kind)."""
    return len({"number" if isinstance(v, (int, float)) and not isinstance(v, bool) else type(v)
                for v in values if v is not None}) > 1


def rows(out: Path) -> list[dict]:
    """The metric rows of every indexed job, as ``store.metric_rows(store.load_results(out))`` gives them, plus
    one column per grid key of ``OUT/plan.json`` (after ``ROW_COLUMNS``, which hold ``model`` already; None
    where the plan has no value for the job)."""
    out = Path(out)
    if not (out / "jobs").is_dir():
        raise UserError(f"{out}: no results here (expected {out / 'jobs'}/<job-id>/result.json)")
    keys, grids = _grid_values(out)
    con = refresh(out)
    try:
        cur = con.execute(
            "SELECT j.job_id, j.kind, j.model, j.intermediate, j.recipe, j.target, m.task, m.split, m.language, m.metric,"
            " m.value, m.n, j.seed FROM metrics m JOIN jobs j USING (job_id)"
            " ORDER BY j.finished, j.job_id, m.rowid")
        result = [dict(zip(ROW_COLUMNS, r)) for r in cur]
    finally:
        con.close()
    for r in result:
        r["target"] = r["target"] or ""
        grid = grids.get(r["job_id"], {})
        r.update({k: _scalar(grid.get(k)) for k in keys})
    return result


def export(out: Path, fmt: str, dest: Path | None = None) -> str | bytes | None:
    """Metric rows as ``csv`` / ``json`` text or ``parquet`` bytes; written to ``dest`` instead when given."""
    if fmt not in ("csv", "json", "parquet"):
        raise UserError(f"unknown export format {fmt!r} (use csv, json or parquet)")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise UserError("parquet export needs pyarrow: pip install pyarrow") from None
    data = rows(out)
    columns = list(data[0]) if data else ROW_COLUMNS
    if fmt == "json":
        payload: str | bytes = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    elif fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(data)
        payload = buf.getvalue()
    else:
        import pandas as pd

        frame = pd.DataFrame(data, columns=columns)
        for col in columns[len(ROW_COLUMNS):]:
            if _mixed(frame[col]):  # parquet columns have one type
                frame[col] = [None if v is None else str(v) for v in frame[col]]
        if dest is not None:
            frame.to_parquet(dest, engine="pyarrow", index=False)
            return None
        return frame.to_parquet(None, engine="pyarrow", index=False)
    if dest is None:
        return payload
    Path(dest).write_text(payload, encoding="utf-8")
    return None
