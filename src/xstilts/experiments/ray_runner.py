"""The Ray runner: every pending job as a Ray task with declared resources, in dependency order.

Each task takes its upstream job's task as an argument, so Ray starts it only after that one has
finished. Inside, the task claims the job's lease like any local worker (``experiments/queue``), so Ray
tasks and local runs can share one output folder; that folder must be on storage every node sees.
"""

from __future__ import annotations

import time

from rich.console import Console

from xstilts.errors import JobsFailed, UserError
from xstilts.experiments.queue import Queue
from xstilts.experiments.specs import Job
from xstilts.experiments.worker import POLL_SECONDS, Experiment, enter_worker, run_claimed


def _run_task(exp: Experiment, job: Job, threads: int, *upstream: str) -> str:
    """Body of a Ray task: wait for the lease (another worker may hold it), then run the job; the log's start
    row names the Ray node."""
    import ray

    enter_worker(threads)
    queue = Queue(exp.run, exp.options.lease_ttl)
    while not queue.claim(job.id):
        if exp.run.is_done(job.id):
            return job.id
        time.sleep(POLL_SECONDS)
    if exp.run.is_done(job.id):
        queue.release(job.id, None)
    else:
        run_claimed(job, exp, queue, where=f"ray node {ray.get_runtime_context().get_node_id()}")
    return job.id


def run_on_ray(exp: Experiment, address: str | None, console: Console) -> None:
    """Run ``exp`` on the Ray cluster at ``address`` (``auto``: the one this machine belongs to; None: a new
    local one). Each job asks for ``resources.cpus`` CPUs and ``resources.gpus`` GPUs."""
    try:
        import ray
    except ImportError:
        raise UserError("--runner ray needs Ray: pip install 'xstilts[ray]'") from None
    res = exp.cfg.resources
    ray.init(address=address, log_to_driver=False, configure_logging=False)
    try:
        task = ray.remote(_run_task)
        while True:  # a selection adds jobs once its candidates are done
            pending = [j for j in exp.plan().jobs if not exp.run.is_done(j.id)]
            if not pending:
                return
            refs = {}
            for job in pending:  # upstream jobs come first
                deps = [refs[job.upstream]] if job.upstream in refs else []
                refs[job.id] = task.options(
                    num_cpus=res.cpus, num_gpus=res.gpus, max_retries=0, name=f"xstilts-{job.kind}-{job.id}"
                ).remote(exp, job, res.cpus, *deps)
            console.print(f"ray: {len(refs)} jobs submitted to {ray.get_runtime_context().gcs_address}")
            failed = {}
            for job_id, ref in refs.items():
                try:
                    ray.get(ref)
                except ray.exceptions.RayError as e:
                    failed[job_id] = str(e).strip().splitlines()[-1]
            if failed:
                raise JobsFailed(failed)
    finally:
        ray.shutdown()
