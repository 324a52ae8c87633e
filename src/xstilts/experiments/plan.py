"""Expand an experiment into jobs with content-hash ids, upstream jobs first."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from xstilts.config import NONE_SETTING, ExperimentConfig
from xstilts.errors import UserError
from xstilts.formats import RETRIEVAL
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


def eval_languages(task: TaskDef, only: list[str] | None = None) -> list[str]:
    """Languages a target job evaluates: all of the task's (or those of ``only``), English included except
    for pair retrieval."""
    langs = [lang for lang in task.languages if task.format != "retrieval" or lang != task.train_language]
    if only is not None:
        if unknown := sorted(set(only) - set(langs)):
            raise UserError(f"{task.name}: eval.languages {unknown} are not among its languages {langs}")
        langs = [lang for lang in langs if lang in only]
    return langs


def _no_training(task: TaskDef) -> bool:
    return task.format in RETRIEVAL


def _target_splits(task: TaskDef, only: list[str] | None) -> list[tuple[str, str]]:
    tests = [("test", lang) for lang in eval_languages(task, only)]
    if task.format == "bucc":  # the mining threshold is chosen on dev
        return tests + [("dev", lang) for _, lang in tests]
    return tests if _no_training(task) else _train_splits(task) + tests


def _with_protocol(given: BaseModel, task: TaskDef, part: str) -> dict:
    """The task's protocol defaults, overridden by every field the config sets."""
    merged = {**task.protocol.get(part, {}), **given.model_dump(exclude_unset=True)}
    return type(given)(**merged).model_dump()


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
                        "data": task.data_checksum(_target_splits(task, target.eval.languages), data_dir),
                        "eval": _with_protocol(target.eval, task, "eval")}
                if _no_training(task):  # no training: the baseline is the same for every seed
                    job = _make("retrieval", {**spec, "seed": seed if up else None}, up and up.id)
                else:
                    job = _make("target", {**spec, "train": _with_protocol(target.train, task, "train"), "seed": seed},
                                up and up.id)
                jobs.setdefault(job.id, job)
    return list(jobs.values())

