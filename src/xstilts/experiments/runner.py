"""Running an experiment: every pending job once, in dependency order, by one or more workers.

Workers coordinate only through the output folder: a job's ``result.json`` says it is done, and its lease
in ``OUT/queue.sqlite`` (``experiments/queue``) says who runs it. So ``--workers N`` processes, several
``xstilts run`` commands on one machine or on machines sharing the folder, and Ray tasks
(``experiments/ray_runner``) can all work on one experiment without running a job twice.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from xstilts.cache import atomic_write_text
from xstilts.config import ExperimentConfig
from xstilts.errors import JobsFailed, UserError
from xstilts.experiments.execute import DEFAULT_OPTIONS, RunOptions, job_dir, run_job, train_state_dir
from xstilts.experiments.execute import Progress as JobProgress
from xstilts.experiments.index import FAILED
from xstilts.experiments.launch import run_launched
from xstilts.experiments.plan import Job, plan
from xstilts.experiments.queue import Queue
from xstilts.experiments.store import is_done, read_result

POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Experiment:
    """What every worker of a run needs: the config, the output folder, run options, and the user task
    folders to register again in a fresh process."""

    cfg: ExperimentConfig
    out: Path
    options: RunOptions = DEFAULT_OPTIONS
    task_dirs: tuple[Path, ...] = field(default_factory=tuple)

    def enter_worker(self, threads: int | None = None) -> None:
        """Prepare a fresh worker process: user tasks, and torch's CPU threads."""
        from xstilts.tasks.user import register_tasks_dir

        for folder in self.task_dirs:
            register_tasks_dir(folder, check_data=False)
        if threads:
            import torch

            torch.set_num_threads(threads)

    def plan(self) -> list[Job]:
        """The current plan (it grows once a ``select`` can rank its candidates), also written to plan.json."""
        jobs = plan(self.cfg, lambda job_id: read_result(self.out, job_id))
        text = json.dumps([{"id": j.id, "kind": j.kind, "upstream": j.upstream, "grid": j.grid, "spec": j.spec}
                           for j in jobs], indent=2, ensure_ascii=False) + "\n"
        path = self.out / "plan.json"
        if not path.is_file() or path.read_text(encoding="utf-8") != text:  # workers re-plan while they wait
            atomic_write_text(path, text)
        return jobs


def _one_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}".replace("\n", " ")


def run_claimed(job: Job, exp: Experiment, queue: Queue, progress: JobProgress = lambda *a: None,
                where: str | None = None) -> None:
    """Run a job whose lease ``queue`` holds, logging its start (and ``where``) and end; ``FAILED`` holds the
    error of a job that raised until it is started again."""
    folder = job_dir(exp.out, job.id)
    (folder / FAILED).unlink(missing_ok=True)
    queue.started(job.id, resumed=train_state_dir(exp.out, job.id).is_dir(), where=where)
    try:
        with queue.heartbeat():
            if exp.cfg.accelerate.num_processes > 1 and job.kind != "retrieval":
                run_launched(job, exp)
            else:
                run_job(job, exp.out, progress, exp.options)
    except Exception as e:
        atomic_write_text(folder / FAILED, _one_line(e))
        queue.release(job.id, "failed", _one_line(e))
        raise
    except BaseException:  # Ctrl-C, SIGTERM: not the job's fault; its training checkpoint stays
        queue.release(job.id, "interrupted")
        raise
    queue.release(job.id, "done")


def _blocked(pending: list[Job], failed: dict[str, str]) -> set[str]:
    """Failed jobs and every job downstream of one."""
    blocked = set(failed)
    for job in pending:  # upstream jobs come first in a plan
        if job.upstream in blocked:
            blocked.add(job.id)
    return blocked


def work(exp: Experiment, progress: JobProgress = lambda *a: None,
         on_job: Callable[[Job, int, int], None] = lambda job, done, total: None) -> None:
    """One worker: claim and run ready jobs until none is left. ``on_job(job, done, total)`` announces each.

    A job waits for its upstream job; a job leased by another live worker is left to it. Jobs that fail
    in this run (here or in another worker) are not retried, nor is anything downstream of them; the
    worker finishes the rest and then raises :class:`JobsFailed`.
    """
    queue = Queue(exp.out)
    since = time.time()
    while True:
        jobs = exp.plan()
        pending = [j for j in jobs if not is_done(exp.out, j.id)]
        blocked = _blocked(pending, queue.failed_since(since))
        open_jobs = [j for j in pending if j.id not in blocked]
        if not open_jobs:
            break
        ready = [j for j in open_jobs if j.upstream is None or is_done(exp.out, j.upstream)]
        job = next((j for j in ready if queue.claim(j.id)), None)
        if job is None:
            time.sleep(POLL_SECONDS)
            continue
        if is_done(exp.out, job.id):  # finished by another worker since we looked
            queue.release(job.id, None)
            continue
        on_job(job, len(jobs) - len(pending), len(jobs))
        try:
            run_claimed(job, exp, queue, progress)
        except UserError:
            raise  # bad input fails every job alike
        except Exception:  # noqa: BLE001, S110 - logged; the loop skips it and its dependents
            pass
    if failed := queue.failed_since(since):
        raise JobsFailed(failed)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def stop_on_sigterm() -> None:
    """Let SIGTERM (a scheduler's pre-emption, ``kill``) interrupt like Ctrl-C: the job's lease is released
    and logged ``interrupted``, and its last training checkpoint waits for the next run."""
    signal.signal(signal.SIGTERM, _interrupt)


def _worker_main(exp: Experiment, threads: int) -> None:
    stop_on_sigterm()
    exp.enter_worker(threads)
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
    procs = [ctx.Process(target=_worker_main, args=(exp, threads), name=f"xstilts-worker-{i}", daemon=True)
             for i in range(workers)]  # daemons: stopped (SIGTERM) if this process is
    for p in procs:
        p.start()
    with _progress(console) as bar:
        overall = bar.add_task(f"jobs ({workers} workers)", total=None)
        while any(p.is_alive() for p in procs):
            plan_path = exp.out / "plan.json"
            if plan_path.is_file():
                ids = [j["id"] for j in json.loads(plan_path.read_text(encoding="utf-8"))]
                bar.update(overall, total=len(ids), completed=sum(is_done(exp.out, i) for i in ids))
            time.sleep(1.0)
    for p in procs:
        p.join()
    if failed := Queue(exp.out).failed_since(since):
        raise JobsFailed(failed)
    if any(p.exitcode for p in procs):
        raise RuntimeError(f"worker exit codes {[p.exitcode for p in procs]}; see the messages above")


def run_experiment(cfg: ExperimentConfig, config_text: str, out: Path, console: Console, workers: int = 1,
                   options: RunOptions = DEFAULT_OPTIONS, runner: str = "local", address: str | None = None) -> dict:
    """Run every pending job of ``cfg`` into ``out``: here (``workers`` processes) or on a Ray cluster at
    ``address``. Returns counts and wall time."""
    from xstilts.tasks.user import registered_dirs

    out = Path(out)
    start = time.perf_counter()
    atomic_write_text(out / "experiment.yaml", config_text)
    exp = Experiment(cfg, out, options, tuple(registered_dirs()))
    before = {j.id for j in exp.plan() if is_done(out, j.id)}
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
                bar.update(overall, completed=done, total=total,
                           description=f"jobs ({job.kind} {job.setting} {job.spec.get('target') or ''})")

            def progress(description: str, n: int, total: int) -> None:
                bar.update(detail, description=description, completed=n, total=total)

            work(exp, progress, on_job)
    jobs = exp.plan()
    ran = sum(1 for j in jobs if j.id not in before and is_done(out, j.id))
    return {"jobs": len(jobs), "ran": ran, "skipped": len(jobs) - ran,
            "seconds": round(time.perf_counter() - start, 2)}
