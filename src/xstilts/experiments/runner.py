"""Running an experiment: every pending job once, in dependency order, by one or more workers (see
``experiments/worker``), here or on a Ray cluster (``experiments/ray_runner``)."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import time
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from xstilts.cache import sweep_temp
from xstilts.config.schema import ExperimentConfig
from xstilts.data.token_cache import features_dir
from xstilts.errors import JobsFailed, UserError
from xstilts.experiments.options import DEFAULT_OPTIONS, RunOptions
from xstilts.experiments.queue import Queue
from xstilts.experiments.rundir import RunDir
from xstilts.experiments.specs import Job
from xstilts.experiments.worker import Experiment, enter_worker, stop_on_sigterm, work
from xstilts.tasks.catalog import TaskCatalog


def _worker_main(exp: Experiment, threads: int) -> None:
    stop_on_sigterm()
    enter_worker(threads)
    try:
        work(exp)
    except (JobsFailed, UserError):
        raise SystemExit(1) from None  # the parent reports from the queue log
    except KeyboardInterrupt:
        raise SystemExit(130) from None  # stopped with the parent


@contextlib.contextmanager
def _progress(console: Console) -> Iterator[Progress]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        yield bar


def _local_workers(exp: Experiment, workers: int, console: Console) -> None:
    """``workers`` processes, torch's CPU threads split among them; progress from the result files."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    ctx = multiprocessing.get_context("spawn")
    since = time.time()
    procs = [
        ctx.Process(target=_worker_main, args=(exp, threads), name=f"xstilts-worker-{i}", daemon=True)
        for i in range(workers)
    ]  # daemons: stopped (SIGTERM) if this process is
    for p in procs:
        p.start()
    with _progress(console) as bar:
        overall = bar.add_task(f"jobs ({workers} workers)", total=None)
        while any(p.is_alive() for p in procs):
            if exp.run.plan_path.is_file():
                ids = [j["id"] for j in json.loads(exp.run.plan_path.read_text(encoding="utf-8"))]
                bar.update(overall, total=len(ids), completed=sum(exp.run.is_done(i) for i in ids))
            time.sleep(1.0)
    for p in procs:
        p.join()
    if failed := Queue(exp.run).failed_since(since):
        raise JobsFailed(failed)
    if any(p.exitcode for p in procs):
        raise RuntimeError(f"worker exit codes {[p.exitcode for p in procs]}; see the messages above")


def _sweep(exp: Experiment, console: Console) -> None:
    """Clear what killed runs left: temporary files (OUT and the feature cache), finished jobs' resumable
    state, and leases of dead workers. Live workers' files and leases stay."""
    run = exp.run
    removed = run.sweep() + (sweep_temp(features_dir()) if features_dir().is_dir() else [])
    expired = Queue(run, exp.options.lease_ttl).sweep()
    if removed or expired:
        console.print(f"cleared after a killed run: {len(removed)} leftover files, {len(expired)} dead leases")


def run_experiment(
    cfg: ExperimentConfig,
    catalog: TaskCatalog,
    config_text: str,
    out: Path,
    console: Console,
    workers: int = 1,
    options: RunOptions = DEFAULT_OPTIONS,
    runner: str = "local",
    address: str | None = None,
) -> dict:
    """Run every pending job of ``cfg`` (its tasks looked up in ``catalog``) into ``out``: here (``workers``
    processes) or on a Ray cluster at ``address``. Returns counts and wall time."""
    run = RunDir(out)
    start = time.perf_counter()
    exp = Experiment(cfg, catalog, run, options)
    before = {j.id for j in exp.plan().jobs if run.is_done(j.id)}  # a bad config fails here, before OUT is written
    run.write_experiment(config_text)
    _sweep(exp, console)
    if runner == "ray":
        from xstilts.experiments.ray_runner import run_on_ray

        run_on_ray(exp, address, console)
    elif runner != "local":
        raise UserError(f"--runner {runner!r}: expected local or ray")
    elif workers > 1:
        _local_workers(exp, workers, console)
    else:
        with _progress(console) as bar:
            overall = bar.add_task("jobs", total=0)
            detail = bar.add_task("", total=1)

            def on_job(job: Job, done: int, total: int) -> None:
                bar.update(
                    overall,
                    completed=done,
                    total=total,
                    description=f"jobs ({job.kind} {job.setting} {job.target or ''})",
                )

            def progress(description: str, n: int, total: int) -> None:
                bar.update(detail, description=description, completed=n, total=total)

            work(exp, progress, on_job)
    jobs = exp.plan().jobs
    ran = sum(1 for j in jobs if j.id not in before and run.is_done(j.id))
    return {"jobs": len(jobs), "ran": ran, "skipped": len(jobs) - ran, "seconds": round(time.perf_counter() - start, 2)}
