"""One worker of a run: claim ready jobs and run them, coordinating with other workers only through OUT.

A job's ``result.json`` says it is done, and its lease in ``OUT/queue.sqlite`` (``experiments/queue``) says
who runs it. So ``--workers N`` processes, several ``xstilts run`` commands on one machine or on machines
sharing the folder, and Ray tasks (``experiments/ray_runner``) can all work on one experiment without
running a job twice.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from xstilts.config.schema import ExperimentConfig
from xstilts.errors import JobsFailed, UserError
from xstilts.experiments.launch import run_launched
from xstilts.experiments.options import DEFAULT_OPTIONS, RunOptions
from xstilts.experiments.plan import Plan, plan
from xstilts.experiments.queue import LeaseLost, Queue
from xstilts.experiments.rundir import RunDir
from xstilts.experiments.specs import Job
from xstilts.tasks.catalog import TaskCatalog

if TYPE_CHECKING:
    from xstilts.experiments.execute import Progress

POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Experiment:
    """What every worker of a run needs: the config, its task catalog, the output folder and run options.
    It pickles (to worker processes, Ray tasks and launched processes): the catalog travels as its folders."""

    cfg: ExperimentConfig
    catalog: TaskCatalog
    run: RunDir
    options: RunOptions = DEFAULT_OPTIONS

    def plan(self) -> Plan:
        """The current plan (it grows once a ``select`` can rank its candidates), also written to plan.json."""
        current = plan(self.cfg, self.catalog, self.run.read_result)
        self.run.write_plan([j.plan_entry() for j in current.jobs])
        return current

    def run_here(
        self, job: Job, progress: Progress = lambda *a: None, fence: Callable[[], AbstractContextManager] = nullcontext
    ) -> dict:
        """Run ``job`` in this process (the first one loads the training stack: torch, transformers); its result
        is written inside ``fence()``."""
        from xstilts.experiments.execute import run_job

        return run_job(job, self.run, self.catalog, progress, self.options, fence)


def enter_worker(threads: int | None) -> None:
    """Prepare a fresh worker process: torch's CPU threads."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def _one_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}".replace("\n", " ")


def run_claimed(
    job: Job, exp: Experiment, queue: Queue, progress: Progress = lambda *a: None, where: str | None = None
) -> None:
    """Run a job whose lease ``queue`` holds, logging its start (and ``where``) and end; ``FAILED`` holds the
    error of a job that raised until it is started again. A job taken over while this worker stalled ends
    ``superseded`` (at its next update, or at the fenced result): its result is not written, and what it left to
    resume from is removed if the job is done."""
    exp.run.clear_failed(job.id)
    queue.started(job.id, resumed=exp.run.train_state(job.id).is_dir(), where=where)
    fence = partial(queue.fence, job.id)
    try:
        with queue.heartbeat() as lost:

            def checked(*step: object) -> None:  # called at each update and evaluated language
                if lost():
                    raise LeaseLost(f"job {job.id}: its lease was lost while this worker stalled")
                progress(*step)

            if exp.cfg.accelerate.num_processes > 1 and job.spec.trains:
                run_launched(job, exp, exp.cfg.accelerate, exp.run.handoff(job.id), fence)
            else:
                exp.run_here(job, checked, fence)
    except LeaseLost as e:
        if exp.run.is_done(job.id):
            exp.run.clear_resumable(job.id)
        queue.release(job.id, "superseded", str(e))
        return
    except Exception as e:
        exp.run.mark_failed(job.id, _one_line(e))
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


def work(
    exp: Experiment,
    progress: Progress = lambda *a: None,
    on_job: Callable[[Job, int, int], None] = lambda job, done, total: None,
) -> None:
    """One worker: claim and run ready jobs until none is left. ``on_job(job, done, total)`` announces each.

    The plan is made once and again only when a job it awaits (a ``select`` candidate) has finished. A job
    waits for its upstream job; a job leased by another live worker is left to it. Jobs that fail in this
    run (here or in another worker) are not retried, nor is anything downstream of them; the worker
    finishes the rest and then raises :class:`JobsFailed`.
    """
    run = exp.run
    queue = Queue(run, exp.options.lease_ttl)
    since = time.time()
    current = exp.plan()
    while True:
        if any(run.is_done(i) for i in current.awaiting):
            current = exp.plan()
        jobs = current.jobs
        pending = [j for j in jobs if not run.is_done(j.id)]
        blocked = _blocked(pending, queue.failed_since(since))
        open_jobs = [j for j in pending if j.id not in blocked]
        if not open_jobs:
            break
        ready = [j for j in open_jobs if j.upstream is None or run.is_done(j.upstream)]
        job = next((j for j in ready if queue.claim(j.id)), None)
        if job is None:
            time.sleep(POLL_SECONDS)
            continue
        if run.is_done(job.id):  # finished by another worker since we looked
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
