"""The local runner: every job of a plan, in order, skipping finished ones, with rich progress."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from xstilts.cache import atomic_write_json, atomic_write_text
from xstilts.config import ExperimentConfig
from xstilts.experiments.execute import job_dir, run_job
from xstilts.experiments.plan import Job, plan
from xstilts.experiments.store import is_done, read_result


@contextlib.contextmanager
def job_markers(folder: Path) -> Iterator[None]:
    """``RUNNING`` ("<host> <pid>") while the job runs, ``FAILED`` (one line) if it raises; see experiments/index."""
    (folder / "FAILED").unlink(missing_ok=True)
    atomic_write_text(folder / "RUNNING", f"{socket.gethostname()} {os.getpid()}")
    try:
        yield
    except Exception as e:
        atomic_write_text(folder / "FAILED", f"{type(e).__name__}: {e}".replace("\n", " "))
        raise
    finally:
        (folder / "RUNNING").unlink(missing_ok=True)


def run_experiment(cfg: ExperimentConfig, config_text: str, out: Path, console: Console) -> dict:
    """Run every pending job of ``cfg`` into ``out``; returns counts and wall time."""
    out = Path(out)
    start = time.perf_counter()
    atomic_write_text(out / "experiment.yaml", config_text)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    ran = 0
    with Progress(*columns, console=console, transient=True) as bar:
        overall = bar.add_task("jobs", total=0)
        detail = bar.add_task("", total=1)
        while True:  # a selection adds target jobs once its candidates are done
            jobs = plan(cfg, lambda job_id: read_result(out, job_id))
            atomic_write_json(out / "plan.json", [{"id": j.id, "kind": j.kind, "upstream": j.upstream,
                                                   "spec": j.spec} for j in jobs])
            pending: list[Job] = [j for j in jobs if not is_done(out, j.id)]
            if not pending:
                break
            bar.update(overall, total=ran + len(pending))
            for job in pending:
                bar.update(overall, description=f"jobs ({job.kind} {job.setting} {job.spec.get('target') or ''})")
                with job_markers(job_dir(out, job.id)):
                    run_job(job, out, lambda d, n, total: bar.update(detail, description=d, completed=n, total=total))
                bar.advance(overall)
                ran += 1
    return {"jobs": len(jobs), "ran": ran, "skipped": len(jobs) - ran, "seconds": round(time.perf_counter() - start, 2)}
