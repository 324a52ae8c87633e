"""The output folder of an experiment (OUT): every path, marker and read or write under it.

```
OUT/experiment.yaml       the config as run            OUT/plan.json     the current plan (jobs and specs)
OUT/queue.sqlite          leases and the job log       OUT/index.sqlite  a disposable cache of the results
OUT/report.md             the report                   OUT/tracking/     trackers' runs, one per job
OUT/jobs/<id>/result.json a finished job (the done-marker, written last and atomically)
OUT/jobs/<id>/FAILED      the one-line error of a job that failed, until it starts again
OUT/jobs/<id>/checkpoint/ an intermediate job's trained encoder; train_state/ a resumable training state
OUT/jobs/<id>/per_example.npz, predictions/, labels/   test statistics and official prediction files
```
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xstilts.cache import atomic_write_json, atomic_write_text, sweep_temp
from xstilts.errors import UserError

FAILED = "FAILED"
RESULT = "result.json"


@dataclass(frozen=True)
class RunDir:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    # ------------------------------------------------------------ experiment-level files
    @property
    def plan_path(self) -> Path:
        return self.root / "plan.json"

    @property
    def queue_path(self) -> Path:
        return self.root / "queue.sqlite"

    @property
    def index_path(self) -> Path:
        return self.root / "index.sqlite"

    @property
    def tracking_dir(self) -> Path:
        return self.root / "tracking"

    @property
    def jobs_dir(self) -> Path:
        return self.root / "jobs"

    def write_experiment(self, text: str) -> None:
        atomic_write_text(self.root / "experiment.yaml", text)

    def write_plan(self, entries: list[dict]) -> None:
        """plan.json, rewritten only when it changes (several workers write the same plan)."""
        text = json.dumps(entries, indent=2, ensure_ascii=False) + "\n"
        if not self.plan_path.is_file() or self.plan_path.read_text(encoding="utf-8") != text:
            atomic_write_text(self.plan_path, text)

    def read_plan(self) -> list[dict]:
        """plan.json's job entries; a UserError when missing or malformed."""
        if not self.plan_path.is_file():
            raise UserError(f"{self.plan_path}: no plan here (run the experiment first)")
        try:
            plan = json.loads(self.plan_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise UserError(f"{self.plan_path}:{e.lineno}: malformed plan JSON ({e.msg})") from None
        if not isinstance(plan, list) or not all(isinstance(j, dict) and "id" in j for j in plan):
            raise UserError(f"{self.plan_path}:1: malformed plan JSON (expected a list of jobs with an 'id')")
        return plan

    # ------------------------------------------------------------ one job's files
    def job(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    def result_path(self, job_id: str) -> Path:
        return self.job(job_id) / RESULT

    def checkpoint(self, job_id: str) -> Path:
        """The trained encoder an intermediate job hands to its targets."""
        return self.job(job_id) / "checkpoint"

    def train_state(self, job_id: str) -> Path:
        """Resumable mid-training state of a job that has not finished."""
        return self.job(job_id) / "train_state"

    def micro_batch_split(self, job_id: str) -> Path:
        """How many micro-batches an unfinished job splits each batch into after running out of memory."""
        return self.job(job_id) / "micro_batch_split"

    def per_example(self, job_id: str) -> Path:
        return self.job(job_id) / "per_example.npz"

    def handoff(self, job_id: str) -> Path:
        """Where the runner leaves a job for ``accelerate launch`` (removed once the launch returns)."""
        return self.job(job_id) / "launch.pkl"

    def is_done(self, job_id: str) -> bool:
        return self.result_path(job_id).is_file()

    def read_result(self, job_id: str) -> dict | None:
        """A finished job's result, or None."""
        path = self.result_path(job_id)
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def write_result(self, job_id: str, result: dict[str, Any]) -> None:
        """The done-marker: written last, atomically."""
        atomic_write_json(self.result_path(job_id), result)

    def result_files(self) -> list[Path]:
        return sorted(self.jobs_dir.glob(f"*/{RESULT}")) if self.jobs_dir.is_dir() else []

    def load_results(self) -> list[dict]:
        """Every finished job's result, oldest first."""
        if not self.jobs_dir.is_dir():
            raise UserError(f"{self.root}: no results here (expected {self.jobs_dir}/<job-id>/{RESULT})")
        results = []
        for path in self.result_files():
            try:
                results.append(json.loads(path.read_text(encoding="utf-8")))
            except json.JSONDecodeError as e:
                raise UserError(f"{path}:{e.lineno}: malformed result JSON ({e.msg})") from None
        return sorted(results, key=lambda r: r["finished"])

    def sweep(self) -> list[Path]:
        """Remove what killed processes left under OUT: temporary files of dead writers, and a finished job's
        resumable state and markers (the result is written before they are removed). Returns what went."""
        removed = sweep_temp(self.root) if self.root.is_dir() else []
        for result in self.result_files():
            removed += self.clear_resumable(result.parent.name)
        return removed

    def clear_resumable(self, job_id: str) -> list[Path]:
        """Remove a job's training state (with a save's ``.old`` aside), micro-batch marker and launch hand-off;
        returns what went."""
        state = self.train_state(job_id)
        removed = []
        for path in [*state.parent.glob(f"{state.name}*"), self.micro_batch_split(job_id), self.handoff(job_id)]:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists():
                path.unlink(missing_ok=True)
            else:
                continue
            removed.append(path)
        return removed

    def mark_failed(self, job_id: str, error: str) -> None:
        atomic_write_text(self.job(job_id) / FAILED, error)

    def clear_failed(self, job_id: str) -> None:
        (self.job(job_id) / FAILED).unlink(missing_ok=True)

    def failure(self, job_id: str) -> str | None:
        """The first line of a failed job's error, or None."""
        path = self.job(job_id) / FAILED
        if not path.is_file():
            return None
        lines = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        return lines[0] if lines else ""
