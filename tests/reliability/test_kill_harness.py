"""The kill harness: `xstilts run configs/quick.yaml` is SIGKILLed once per seed, then resumed by the plain command
until it finishes, and must end exactly where one clean run ends.

Seeds 1-7 each place their kill in one stage of a run (tokenization, training, checkpoint writing,
evaluation, prediction-file writing, result writing, index update): a call of that stage drawn from the
clean run's trace, and a moment in it drawn from its I/O events (just before a rename, an fsync, a removal,
a result read into the index), its duration, or its return. Seeds 8-10 kill at a time drawn from the whole
clean run, counted from the stage call begun last by then (so a slower machine kills at the same progress).
The kill hits the process group, as a pre-empted node would (``killpoint/sitecustomize.py``).

After the resume: every metric and every prediction file equals the clean run's; each planned job has one
result, ran to its end at most once, and appears once in the index; no temporary file, resumable state of a
finished job or lease is left in OUT or in the feature cache.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import sqlite3
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from cli_runs import XSTILTS, job_losses, job_metrics, job_results
from conftest import KILLPOINT, ROOT, QuickRun

from xstilts.experiments.queue import Queue
from xstilts.experiments.rundir import RunDir
from xstilts.metrics import per_example

pytestmark = pytest.mark.slow

STAGES = ("tokenization", "training", "checkpoint", "evaluation", "predictions", "result", "index")
SEEDS = range(1, 11)
TRAIN_STATE_SAVE = "xstilts.train.loop:_save_state"
SAVES = (
    3  # with a save after every update, quick.yaml's first training job alone saves 3 (4 updates, none after the last)
)
LEFTOVER = re.compile(
    r"\.tmp(\.old)?$|\.partial|\.old$|^train_state|^micro_batch_split$|^launch\.pkl$|-journal$|-wal$|-shm$"
)


def _killpoint(seed: int, clean: QuickRun) -> tuple[str | None, dict, list[str]]:
    """The seed's stage (None: any), its kill point and the extra run options it needs. Training and checkpoint
    kills run with a training state saved after every update, so the resume continues from one."""
    rng = random.Random(seed)
    stage = STAGES[seed - 1] if seed <= len(STAGES) else None
    if stage is None:  # counted from the last stage call the clean run had begun by then, so that a run slower
        # or faster than the clean one is still killed at the same point of its progress
        at = rng.uniform(3.0, 0.95 * clean.seconds)
        begun = [r for r in clean.trace if r["start"] <= at]
        if not begun:
            return None, {"seconds": round(at, 2)}, []
        anchor = max(begun, key=lambda r: r["start"])
        after = {"function": anchor["function"], "call": anchor["n"]}
        return None, {"after": after, "seconds": round(at - anchor["start"], 3)}, []
    every_update = ["--checkpoint-every", "0"] if stage in ("training", "checkpoint") else []
    if stage == "checkpoint" and rng.random() < 0.5:  # the resumable training state (absent from the clean trace)
        point = rng.choice([["io", n] for n in (1, 2, 3, 4)] + [["time", round(rng.uniform(0.0, 0.5), 3)]])
        return stage, {"function": TRAIN_STATE_SAVE, "call": rng.randrange(SAVES), "point": point}, every_update
    calls = [r for r in clean.trace if r["stage"] == stage]
    if stage == "tokenization":
        calls = [r for r in calls if r["io"]]  # those that featurize (and write the cache), not cache hits
    call = rng.choice(calls)
    points = [["io", n] for n in range(1, call["io"] + 1)]
    points += [["time", round(rng.uniform(0.1, 0.9) * call["seconds"], 3)], ["exit"]]
    return stage, {"function": call["function"], "call": call["n"], "point": rng.choice(points)}, every_update


def _xstilts_run(out: Path, features: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [XSTILTS, "run", "configs/quick.yaml", "--out", str(out), *args],
        check=False,
        cwd=ROOT,
        env=os.environ | {"XSTILTS_FEATURE_CACHE": str(features)} | (env or {}),
        capture_output=True,
        text=True,
        start_new_session=True,  # its own process group: the kill takes the whole run, as a lost node would
        timeout=900,
    )


def _leftovers(*roots: Path) -> list[Path]:
    return [p for root in roots for p in root.rglob("*") if LEFTOVER.search(p.name)]


def _files(job: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(job)): p.read_bytes()
        for kind in ("predictions", "labels")
        for p in (job / kind).rglob("*")
        if p.is_file()
    }


@pytest.mark.parametrize("seed", SEEDS, ids=[f"seed{s}-{STAGES[s - 1] if s <= len(STAGES) else 'any'}" for s in SEEDS])
def test_a_run_killed_anywhere_resumes_to_the_clean_results(seed, quick_run, tmp_path):
    stage, spec, options = _killpoint(seed, quick_run)
    out, features, log = tmp_path / "out", tmp_path / "features", tmp_path / "kills.jsonl"
    killed = _xstilts_run(
        out,
        features,
        *options,
        env={"PYTHONPATH": str(KILLPOINT), "XSTILTS_KILLPOINT": json.dumps(spec), "XSTILTS_KILLLOG": str(log)},
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    (kill,) = [json.loads(line) for line in log.read_text().splitlines()]
    assert stage is None or stage in kill["active"], kill  # it landed in the chosen stage

    resumed = _xstilts_run(out, features)  # the plain command
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    # the clean run's metrics, prediction files and per-example statistics
    assert job_metrics(out) == job_metrics(quick_run.out)
    assert job_losses(out) == job_losses(quick_run.out)  # training resumed bit-identically
    run, clean = RunDir(out), RunDir(quick_run.out)
    for job_id in job_results(quick_run.out):
        assert _files(run.job(job_id)) == _files(clean.job(job_id)), job_id
        if clean.per_example(job_id).is_file():
            mine, theirs = per_example.read(run.per_example(job_id)), per_example.read(clean.per_example(job_id))
            assert mine.keys() == theirs.keys() and all(np.array_equal(mine[k], theirs[k]) for k in mine)

    # one whole result per planned job, each run to its end at most once, each once in the index
    planned = {job["id"] for job in run.read_plan()}
    results = job_results(out)
    assert set(results) == planned and all(run.result_path(i).parent.name == i for i in results)
    log_events = Queue(run).log()
    assert max(Counter(e["job_id"] for e in log_events if e["event"] == "done").values()) == 1
    with sqlite3.connect(run.index_path) as index:
        assert sorted(i for (i,) in index.execute("SELECT job_id FROM jobs")) == sorted(planned)
        assert index.execute("SELECT count(*) FROM metrics").fetchone()[0] == sum(
            len(r["metrics"]) for r in results.values()
        )
    index.close()

    # nothing half-done is left: no temporary file, no resumable state or marker of a finished job, no lease
    assert _leftovers(out, features) == []
    with sqlite3.connect(run.queue_path) as queue:
        assert queue.execute("SELECT * FROM leases").fetchall() == []
    queue.close()
