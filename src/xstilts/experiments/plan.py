"""Expand an experiment into jobs with content-hash ids, upstream jobs first."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from xstilts.config import NONE_SETTING, ExperimentConfig
from xstilts.models.registry import model_fingerprint
from xstilts.tasks.registry import TaskDef, get_task


@dataclass(frozen=True)
class Job:
    """One unit of work. ``spec`` holds everything that decides its output; ``id`` hashes it."""

    kind: str  # intermediate | target | retrieval
    spec: dict[str, Any] = field(compare=False)
    id: str = ""
    upstream: str | None = None

    @property
    def setting(self) -> str:
        return "+".join(self.spec["intermediate"]) or NONE_SETTING


def job_id(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


def _make(kind: str, spec: dict[str, Any], upstream: str | None) -> Job:
    spec = {"kind": kind, **spec, "upstream": upstream}
    return Job(kind, spec, job_id(spec), upstream)


def _train_splits(task: TaskDef) -> list[tuple[str, str]]:
    return [("train", task.train_language), ("dev", task.train_language)]


def test_languages(task: TaskDef) -> list[str]:
    """Languages a target job evaluates: all of them, English included, except English for retrieval."""
    return [lang for lang in task.languages if task.format != "retrieval" or lang != task.train_language]


def _target_splits(task: TaskDef) -> list[tuple[str, str]]:
    tests = [("test", lang) for lang in test_languages(task)]
    return tests if task.format == "retrieval" else _train_splits(task) + tests


def plan(cfg: ExperimentConfig) -> list[Job]:
    """Every job of the experiment, deduplicated, each after the jobs it needs."""
    model = {"model": cfg.model, "weights": model_fingerprint(cfg.model), "head_pooling": cfg.head_pooling,
             "data_dir": cfg.data_dir}
    data_dir = cfg.data_dir
    jobs: dict[str, Job] = {}
    for seed in cfg.seeds:
        upstream: dict[str, Job | None] = {}
        for setting in cfg.intermediate.settings:
            if setting == NONE_SETTING:
                upstream[setting] = None
                continue
            names = setting.split("+")
            data = {n: get_task(n, data_dir=data_dir).data_checksum(_train_splits(get_task(n)), data_dir)
                    for n in names}
            job = _make("intermediate", {**model, "intermediate": names, "data": data,
                                         "train": cfg.intermediate.train.model_dump(), "seed": seed}, None)
            upstream[setting] = jobs.setdefault(job.id, job)
        for target in cfg.targets:
            task = get_task(target.task, data_dir=data_dir)
            for setting, up in upstream.items():
                spec = {**model, "intermediate": up.spec["intermediate"] if up else [], "target": task.name,
                        "data": task.data_checksum(_target_splits(task), data_dir), "eval": target.eval.model_dump()}
                if task.format == "retrieval":  # no training: the baseline is the same for every seed
                    job = _make("retrieval", {**spec, "seed": seed if up else None}, up and up.id)
                else:
                    job = _make("target", {**spec, "train": target.train.model_dump(), "seed": seed}, up and up.id)
                jobs.setdefault(job.id, job)
    return list(jobs.values())

