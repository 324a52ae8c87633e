"""Reading finished jobs back: ``OUT/jobs/<id>/result.json`` files and their metric rows."""

from __future__ import annotations

import json
from pathlib import Path

from xstilts.errors import UserError

ROW_COLUMNS = ["job_id", "kind", "model", "intermediate", "recipe", "target", "task", "split", "language", "metric",
               "value", "n", "seed"]


def result_path(out: Path, job_id: str) -> Path:
    return Path(out) / "jobs" / job_id / "result.json"


def is_done(out: Path, job_id: str) -> bool:
    return result_path(out, job_id).is_file()


def read_result(out: Path, job_id: str) -> dict | None:
    """A finished job's result, or None."""
    path = result_path(out, job_id)
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def load_results(out: Path) -> list[dict]:
    """Every finished job's result in ``out``, oldest first."""
    out = Path(out)
    if not (out / "jobs").is_dir():
        raise UserError(f"{out}: no results here (expected {out / 'jobs'}/<job-id>/result.json)")
    results = []
    for path in sorted((out / "jobs").glob("*/result.json")):
        try:
            results.append(json.loads(path.read_text(encoding="utf-8")))
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{e.lineno}: malformed result JSON ({e.msg})") from None
    return sorted(results, key=lambda r: r["finished"])


def metric_rows(results: list[dict]) -> list[dict]:
    """One row per (job, task, split, language, metric)."""
    rows = []
    for r in results:
        for m in r["metrics"]:
            rows.append({"job_id": r["job_id"], "kind": r["kind"], "model": r["model"],
                         "intermediate": r["intermediate"], "recipe": (r.get("train") or {}).get("recipe"),
                         "target": r["target"] or "", "task": m["task"],
                         "split": m["split"], "language": m["language"], "metric": m["metric"],
                         "value": m["value"], "n": m["n"], "seed": r["seed"]})
    return rows
