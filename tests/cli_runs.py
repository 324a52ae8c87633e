"""Helpers of the tests that run the `xstilts` command in separate processes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

XSTILTS = str(Path(sys.executable).parent / "xstilts")


def job_results(out: Path) -> dict[str, dict]:
    """Every finished job's result in ``out``, by job id."""
    return {r["job_id"]: r for r in (json.loads(p.read_text()) for p in (out / "jobs").glob("*/result.json"))}


def job_metrics(out: Path) -> dict[tuple, float]:
    """Every metric of every finished job, keyed by job id and metric row."""
    return {
        (job_id, m["task"], m["split"], m["language"], m["metric"]): m["value"]
        for job_id, r in job_results(out).items()
        for m in r["metrics"]
    }


def job_losses(out: Path) -> dict[str, float | None]:
    """Every finished job's final training loss, by job id: unequal after a resume that was not bit-exact, even
    where the metrics agree."""
    return {job_id: r.get("train", {}).get("final_loss") for job_id, r in job_results(out).items()}
