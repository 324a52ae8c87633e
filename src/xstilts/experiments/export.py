"""Exporting every metric of an experiment (from the SQLite index) as CSV, JSON or Parquet rows."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from xstilts.errors import UserError
from xstilts.evaluate.hardware import METER_KEYS
from xstilts.experiments.index import refresh
from xstilts.experiments.rundir import RunDir

ROW_COLUMNS = [
    "job_id",
    "kind",
    "model",
    "intermediate",
    "recipe",
    "probe_input",
    "target",
    "task",
    "split",
    "language",
    "metric",
    "value",
    "n",
    "headline",
    "seed",
]
METER_COLUMNS = list(METER_KEYS)  # the job's meters, after the grid keys: measurements, not grid values


def _grid_values(run: RunDir) -> tuple[list[str], dict[str, dict]]:
    """(grid keys in plan order, job id -> its ``grid``) from ``OUT/plan.json``; empty without a plan."""
    plan = run.read_plan() if run.plan_path.is_file() else []
    grids = {j["id"]: j.get("grid") or {} for j in plan}
    taken = {*ROW_COLUMNS, *METER_COLUMNS}
    return list(dict.fromkeys(k for g in grids.values() for k in g if k not in taken)), grids


def _scalar(v: Any) -> Any:
    """A grid value as a table cell: a list or mapping as compact JSON text."""
    return json.dumps(v, separators=(",", ":")) if isinstance(v, (list, dict)) else v


def _mixed(values: Iterable) -> bool:
    """Whether a column holds values of more than one kind (numbers count as one kind)."""
    return (
        len(
            {
                "number" if isinstance(v, (int, float)) and not isinstance(v, bool) else type(v)
                for v in values
                if v is not None
            }
        )
        > 1
    )


def rows(run: RunDir) -> list[dict]:
    """One row per (job, task, split, language, metric) of every finished job, oldest job first, plus one column
    per grid key of ``OUT/plan.json`` (after ``ROW_COLUMNS``, which hold ``model`` already; None where the plan
    has no value for the job), then ``METER_COLUMNS``: the job's meters, on every row of the job (None where
    its kind has no such meter)."""
    if not run.jobs_dir.is_dir():
        raise UserError(f"{run.root}: no results here (expected {run.jobs_dir}/<job-id>/result.json)")
    keys, grids = _grid_values(run)
    con = refresh(run)
    try:
        cur = con.execute(
            "SELECT j.job_id, j.kind, j.model, j.intermediate, j.recipe, j.probe_input, j.target, m.task, m.split, m.language, m.metric,"
            " m.value, m.n, m.headline, j.seed, " + ", ".join(f"j.{k}" for k in METER_COLUMNS) + " FROM metrics m"
            " JOIN jobs j USING (job_id) ORDER BY j.finished, j.job_id, m.rowid"
        )
        result = [(dict(zip(ROW_COLUMNS, r)), dict(zip(METER_COLUMNS, r[len(ROW_COLUMNS) :]))) for r in cur]
    finally:
        con.close()
    out = []
    for r, meters in result:
        r["target"] = r["target"] or ""
        r["headline"] = bool(r["headline"])
        grid = grids.get(r["job_id"], {})
        r.update({k: _scalar(grid.get(k)) for k in keys})
        out.append(r | meters)
    return out


def export(run: RunDir, fmt: str, dest: Path | None = None) -> str | bytes | None:
    """Metric rows as ``csv`` / ``json`` text or ``parquet`` bytes; written to ``dest`` instead when given."""
    if fmt not in ("csv", "json", "parquet"):
        raise UserError(f"unknown export format {fmt!r} (use csv, json or parquet)")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise UserError("parquet export needs pyarrow: pip install pyarrow") from None
    data = rows(run)
    columns = list(data[0]) if data else [*ROW_COLUMNS, *METER_COLUMNS]
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
        for col in columns[len(ROW_COLUMNS) :]:  # read from the rows: the frame holds NaN for None
            if _mixed(r[col] for r in data):  # parquet columns have one type
                frame[col] = [None if r[col] is None else str(r[col]) for r in data]
        if dest is not None:
            frame.to_parquet(dest, engine="pyarrow", index=False)
            return None
        return frame.to_parquet(None, engine="pyarrow", index=False)
    if dest is None:
        return payload
    Path(dest).write_text(payload, encoding="utf-8")
    return None
