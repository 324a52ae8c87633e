"""Job status: done, running, failed or pending, for every job of ``OUT/plan.json``.

A job is ``running`` while a live worker holds its lease (``OUT/queue.sqlite``, see experiments/queue),
and ``failed`` while ``OUT/jobs/<id>/FAILED`` exists: the runner writes the job's one-line error there
and removes it when the job starts again. A job with a ``result.json`` is done whatever else exists.
"""

from __future__ import annotations

from xstilts.config.schema import NONE_SETTING
from xstilts.experiments.index import refresh
from xstilts.experiments.queue import Queue
from xstilts.experiments.rundir import RunDir

STATES = ("done", "running", "failed", "pending")


def status(run: RunDir) -> dict:
    """Counts per state and one entry per planned job: ``{id, kind, setting, target, state, error}``."""
    plan = run.read_plan()
    con = refresh(run)
    try:
        done = {row[0] for row in con.execute("SELECT job_id FROM jobs")}
    finally:
        con.close()
    running = Queue(run).running()
    counts = dict.fromkeys(STATES, 0)
    jobs = []
    for j in plan:
        spec = j.get("spec") or {}
        error = None
        if j["id"] in done:
            state = "done"
        elif j["id"] in running:
            state = "running"
        elif (error := run.failure(j["id"])) is not None:
            state = "failed"
        else:
            state = "pending"
        counts[state] += 1
        jobs.append(
            {
                "id": j["id"],
                "kind": j.get("kind"),
                "setting": "+".join(spec.get("intermediate") or []) or NONE_SETTING,
                "target": spec.get("target"),
                "state": state,
                "error": error,
            }
        )
    return {**counts, "jobs": jobs}


def format_status(st: dict) -> str:
    """A summary line, then one aligned line per job (with the error of a failed one)."""
    total = len(st["jobs"])
    lines = [f"{total} jobs: " + ", ".join(f"{st[s]} {s}" for s in STATES)]
    rows = [(j["state"], j["kind"] or "", j["setting"], j["target"] or "-", j["id"]) for j in st["jobs"]]
    widths = [max((len(r[i]) for r in rows), default=0) for i in range(5)]
    for r, j in zip(rows, st["jobs"]):
        line = "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
        if j.get("error"):
            line += f"  ({j['error']})"
        lines.append(line)
    return "\n".join(lines)
