"""The SQLite results index: build, staleness, job status, export."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import sqlite3
import time
from pathlib import Path

import pytest

from xstilts.errors import UserError
from xstilts.evaluate.hardware import METER_KEYS
from xstilts.experiments import export, index
from xstilts.experiments.export import ROW_COLUMNS
from xstilts.experiments.queue import Queue
from xstilts.experiments.rundir import RunDir
from xstilts.experiments.status import format_status, status


def _result(
    job_id: str,
    *,
    target: str | None = "xnli",
    setting: str = "none",
    seed: int = 1,
    finished: str = "2026-01-01T00:00:00+00:00",
    values=(0.5, 0.25),
    **extra,
) -> dict:
    kind = "intermediate" if target is None else "target"
    metrics = [
        {
            "task": target or setting,
            "split": "test",
            "language": lang,
            "metric": "accuracy",
            "value": v,
            "n": 10,
            "headline": True,
        }
        for lang, v in zip(("en", "de"), values)
    ]
    return {
        "job_id": job_id,
        "kind": kind,
        "model": "tiny",
        "intermediate": setting,
        "target": target,
        "seed": seed,
        "upstream": None,
        "metrics": metrics,
        "train": {"steps": 3},
        "seconds": 1.5,
        "spec": {"intermediate": [] if setting == "none" else setting.split("+"), "target": target, "seed": seed},
        "versions": {},
        "finished": finished,
        **extra,
    }


def _write(out: Path, result: dict) -> Path:
    path = out / "jobs" / result["job_id"] / "result.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1), encoding="utf-8")
    return path


METERS = {
    "train_mfu": 0.25,
    "latency_ms_p50": 1.5,
    "peak_memory_mb": 512.0,
    "peak_memory_source": "rss",
    "eval_tokens": 9,
}
LEGACY_SPEED = {"latency_ms_p50": 2.5, "latency_ms_p95": 3.0, "throughput_examples_per_second": 40.0, "threads": 2}


@pytest.fixture
def out(tmp_path: Path) -> Path:
    _write(tmp_path, _result("a", finished="2026-01-01T00:00:03+00:00", meters=METERS))
    _write(tmp_path, _result("b", target=None, setting="squad", finished="2026-01-01T00:00:01+00:00"))
    # written before results had meters: the speed under "inference"
    _write(
        tmp_path,
        _result(
            "c", setting="squad", seed=2, finished="2026-01-01T00:00:02+00:00", values=(1, 0.0), inference=LEGACY_SPEED
        ),
    )
    return tmp_path


def _rowids(con: sqlite3.Connection, job_id: str) -> list[int]:
    return [r[0] for r in con.execute("SELECT rowid FROM metrics WHERE job_id = ? ORDER BY rowid", (job_id,))]


def test_builds_a_wal_sqlite_index(out):
    con = index.refresh(RunDir(out))
    try:
        assert (out / "index.sqlite").is_file()
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert {r[0] for r in con.execute("SELECT job_id FROM jobs")} == {"a", "b", "c"}
        assert con.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == 6
        indexes = {r[1] for r in con.execute("PRAGMA index_list(metrics)")}
        assert indexes
    finally:
        con.close()
    # a fresh connection to the real file sees the same rows
    raw = sqlite3.connect(out / "index.sqlite")
    assert raw.execute("SELECT target, seed FROM jobs WHERE job_id = 'b'").fetchone() == (None, 1)
    raw.close()


def test_refresh_reads_only_new_changed_and_deleted_files(out):
    index.refresh(RunDir(out)).close()
    con = index.refresh(RunDir(out))
    before_a, before_b = _rowids(con, "a"), _rowids(con, "b")
    con.close()

    path_c = _write(out, _result("c", setting="squad", seed=2, values=(0.75, 0.125, 0.3)[:2]))
    os.utime(path_c, ns=(1, 1))  # a different mtime even on coarse-clock filesystems
    (out / "jobs" / "b" / "result.json").unlink()
    _write(out, _result("d"))
    con = index.refresh(RunDir(out))
    try:
        assert {r[0] for r in con.execute("SELECT job_id FROM jobs")} == {"a", "c", "d"}
        assert _rowids(con, "b") == []
        assert _rowids(con, "a") == before_a  # untouched rows kept
        assert before_b  # (b had rows before)
        values = [r[0] for r in con.execute("SELECT value FROM metrics WHERE job_id = 'c' ORDER BY rowid")]
        assert values == [0.75, 0.125]
        assert con.execute("SELECT result_mtime_ns FROM jobs WHERE job_id = 'c'").fetchone()[0] == 1
    finally:
        con.close()


def test_corrupt_result_is_a_one_line_error_with_file_and_line(out):
    index.refresh(RunDir(out)).close()
    bad = out / "jobs" / "a" / "result.json"
    bad.write_text('{\n "job_id": "a",\n "kind": oops\n}\n', encoding="utf-8")
    with pytest.raises(UserError) as e:
        index.refresh(RunDir(out))
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{bad}:3:")
    # the failed refresh changed nothing
    raw = sqlite3.connect(out / "index.sqlite")
    assert raw.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 3
    raw.close()

    bad.write_text(json.dumps({"job_id": "a"}), encoding="utf-8")
    with pytest.raises(UserError, match=r"result\.json:1: .*missing field 'kind'"):
        index.refresh(RunDir(out))


def test_unreadable_index_is_rebuilt(out):
    (out / "index.sqlite").write_bytes(b"not a database at all" * 100)
    con = index.refresh(RunDir(out))
    assert con.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] == 3
    con.close()


def _plan(out: Path, ids: list[str]) -> None:
    plan = [
        {
            "id": i,
            "kind": "target",
            "upstream": None,
            "spec": {"intermediate": ["squad"] if i == "c" else [], "target": "xnli", "seed": 1},
        }
        for i in ids
    ]
    (out / "plan.json").write_text(json.dumps(plan), encoding="utf-8")


def test_status_states(out):
    _plan(out, ["a", "c", "run", "dead", "fail", "todo"])
    host = socket.gethostname()
    for job_id in ("run", "dead", "fail"):
        (out / "jobs" / job_id).mkdir(parents=True)
    assert Queue(RunDir(out)).claim("run")  # held by this live process
    with sqlite3.connect(out / "queue.sqlite") as con:  # held by a dead one
        con.execute("INSERT INTO leases VALUES ('dead', 'x', ?, 999999999, ?)", (host, time.time() + 60))
    (out / "jobs" / "fail" / "FAILED").write_text("RuntimeError: CUDA out of memory\n")
    st = status(RunDir(out))
    assert {k: st[k] for k in ("done", "running", "failed", "pending")} == {
        "done": 2,
        "running": 1,
        "failed": 1,
        "pending": 2,
    }
    states = {j["id"]: j["state"] for j in st["jobs"]}
    assert states == {
        "a": "done",
        "c": "done",
        "run": "running",
        "dead": "pending",
        "fail": "failed",
        "todo": "pending",
    }
    by_id = {j["id"]: j for j in st["jobs"]}
    assert by_id["c"]["setting"] == "squad" and by_id["a"]["setting"] == "none"
    assert by_id["fail"]["error"] == "RuntimeError: CUDA out of memory"
    text = format_status(st)
    assert text.splitlines()[0] == "6 jobs: 2 done, 1 running, 1 failed, 2 pending"
    assert "CUDA out of memory" in text and len(text.splitlines()) == 7


def test_status_without_plan_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="plan.json"):
        status(RunDir(tmp_path))


def _result_file_rows(out: Path) -> list[dict]:
    """What the result files hold, as export rows: one per metric entry, oldest job first, with the job's meters
    (or the speed an older result kept under ``inference``)."""
    results = [json.loads(p.read_text(encoding="utf-8")) for p in (out / "jobs").glob("*/result.json")]
    return [
        {
            "job_id": r["job_id"],
            "kind": r["kind"],
            "model": r["model"],
            "intermediate": r["intermediate"],
            "recipe": (r.get("train") or {}).get("recipe"),
            "probe_input": None,  # none of these jobs fit a probe
            "target": r["target"] or "",
            "task": m["task"],
            "split": m["split"],
            "language": m["language"],
            "metric": m["metric"],
            "value": m["value"],
            "n": m["n"],
            "headline": m["headline"],
            "seed": r["seed"],
            **{k: r.get("meters", r.get("inference", {})).get(k) for k in METER_KEYS},
        }
        for r in sorted(results, key=lambda r: r["finished"])
        for m in r["metrics"]
    ]


def test_export_matches_result_files(out):
    expected = _result_file_rows(out)
    assert len(expected) == 6 and all(list(r) == ROW_COLUMNS + list(METER_KEYS) for r in expected)
    run = RunDir(out)
    assert export.rows(run) == expected
    by_job = {r["job_id"]: r for r in expected}
    assert by_job["a"]["train_mfu"] == 0.25 and by_job["a"]["peak_memory_source"] == "rss"
    assert by_job["c"]["latency_ms_p50"] == 2.5 and by_job["c"]["train_mfu"] is None  # legacy "inference"
    assert all(v is None for k, v in by_job["b"].items() if k in METER_KEYS)
    assert json.loads(export.export(run, "json")) == expected
    text = export.export(run, "csv")
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert list(parsed[0]) == ROW_COLUMNS + list(METER_KEYS)
    assert parsed == [{k: "" if v is None else str(v) for k, v in r.items()} for r in expected]
    dest = out / "rows.csv"
    export.export(run, "csv", dest)
    assert dest.read_text(encoding="utf-8") == text


def test_export_parquet(out, tmp_path):
    pytest.importorskip("pyarrow")
    import pandas as pd

    dest = tmp_path / "rows.parquet"
    export.export(RunDir(out), "parquet", dest)
    frame = pd.read_parquet(dest)
    assert list(frame.columns) == ROW_COLUMNS + list(METER_KEYS)
    frame = frame.astype(object).where(frame.notna(), None)  # a number column's missing cells read back as NaN
    assert frame.to_dict("records") == _result_file_rows(out)


def test_an_index_of_an_older_schema_is_rebuilt_with_the_meter_columns(out):
    run = RunDir(out)
    raw = sqlite3.connect(out / "index.sqlite")  # as the schema before meters left it
    raw.executescript(
        "CREATE TABLE jobs (job_id TEXT PRIMARY KEY, kind TEXT, model TEXT, intermediate TEXT, recipe TEXT,"
        " target TEXT, seed, seconds, finished TEXT, result_mtime_ns INTEGER, result_size INTEGER);"
        " CREATE TABLE metrics (job_id TEXT NOT NULL, task TEXT, split TEXT, language TEXT, metric TEXT, value, n,"
        " headline INTEGER); PRAGMA user_version=3;"
    )
    for path in run.result_files():  # rows indexed as up to date: only the version tells them apart
        st = path.stat()
        raw.execute(
            "INSERT INTO jobs VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (path.parent.name, "target", "tiny", "none", None, "xnli", 1, 1.5, "x", st.st_mtime_ns, st.st_size),
        )
    raw.commit()
    raw.close()
    con = index.refresh(run)
    try:
        assert con.execute("PRAGMA user_version").fetchone()[0] == index.SCHEMA_VERSION == 5
        assert con.execute("SELECT train_mfu, latency_ms_p50 FROM jobs WHERE job_id = 'a'").fetchone() == (0.25, 1.5)
        assert con.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == 6
    finally:
        con.close()
    assert export.rows(run) == _result_file_rows(out)


def test_export_parquet_without_pyarrow(out, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow -> ImportError
    with pytest.raises(UserError, match="pip install pyarrow") as e:
        export.export(RunDir(out), "parquet")
    assert "\n" not in str(e.value)
