"""Expand an experiment into jobs with content-hash ids, upstream jobs first."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import BaseModel

from xstilts.config import NONE_SETTING, ExperimentConfig, TrainConfig, train_spec
from xstilts.errors import UserError
from xstilts.evaluate.metrics import primary_metric
from xstilts.experiments.grid import variants
from xstilts.formats import RETRIEVAL
from xstilts.models.registry import model_fingerprint
from xstilts.tasks.registry import TaskDef, get_task


@dataclass(frozen=True)
class Job:
    """One unit of work. ``spec`` holds everything that decides its output; ``id`` hashes it. ``grid`` (not part
    of the spec) holds each grid key's value where every grid point that needs the job agrees, else None."""

    kind: str  # intermediate | target | retrieval
    spec: dict[str, Any] = field(compare=False)
    id: str = ""
    upstream: str | None = None
    grid: dict[str, Any] = field(default_factory=dict, compare=False)

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
    merged = type(given)(**{**task.protocol.get(part, {}), **given.model_dump(exclude_unset=True)})
    return train_spec(merged) if isinstance(merged, TrainConfig) else merged.model_dump()


def probe_train(train: dict) -> dict:
    """The reference probe's training spec: a linear head fit on the frozen encoder (deterministic: no seed), with
    the target's data and probe settings; fields a probe never reads keep their defaults, so they share one job."""
    keep = {k: train[k] for k in ("max_length", "max_train_examples", "probe_l2")}
    return train_spec(TrainConfig(recipe="probe", head="linear", **keep))


def english_dev(results: list[dict]) -> float | None:
    """Mean over seeds of an intermediate task's headline English dev metric (None until every seed is done)."""
    if not results or any(r is None for r in results):
        return None
    return float(sum(next(m["value"] for m in r["metrics"] if m["metric"] == primary_metric(
        {x["metric"] for x in r["metrics"]})) for r in results) / len(results))


def ranking(cfg: ExperimentConfig, jobs: dict[str, Job], done: Callable[[str], dict | None]) -> list[tuple[str, float]]:
    """Candidate intermediate tasks by falling English dev score; empty until all candidates have finished.
    ``cfg`` is one grid point's config and ``jobs`` that point's jobs."""
    scores = {}
    for setting in cfg.intermediate.settings:
        if setting != NONE_SETTING:
            runs = [done(j.id) for j in jobs.values() if j.kind == "intermediate" and j.setting == setting]
            scores[setting] = english_dev(runs)
    if any(s is None for s in scores.values()):
        return []
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))


def plan(cfg: ExperimentConfig, done: Callable[[str], dict | None] = lambda job_id: None) -> list[Job]:
    """Every job of the experiment, of every grid point, deduplicated (a job several points share appears once),
    each after the jobs it needs. ``done(job_id)`` gives a finished job's result: with ``intermediate.select``,
    target jobs of the top-k candidates (alone and together) appear once every candidate's result is there."""

    @functools.cache  # data files are hashed once, not once per grid point
    def checksum(name: str, splits: tuple, data_dir: str | None) -> str:
        return get_task(name, data_dir=data_dir).data_checksum(list(splits), data_dir)

    jobs: dict[str, Job] = {}
    points: dict[str, list[dict]] = {}
    for point, variant in variants(cfg):
        for job in _plan_point(variant, done, checksum):
            jobs.setdefault(job.id, job)
            points.setdefault(job.id, []).append(point)
    return [replace(job, grid={k: v if all(p[k] == v for p in points[job.id]) else None
                               for k, v in points[job.id][0].items()}) for job in jobs.values()]


def _plan_point(cfg: ExperimentConfig, done: Callable[[str], dict | None],
                checksum: Callable[[str, tuple, str | None], str]) -> list[Job]:
    """The jobs of a config without a grid."""
    model = {"model": cfg.model, "weights": model_fingerprint(cfg.model), "head_pooling": cfg.head_pooling,
             "data_dir": cfg.data_dir}
    data_dir = cfg.data_dir
    jobs: dict[str, Job] = {}
    # mixed precision changes what training computes (full precision stays out of the spec: older ids hold)
    precision = {"mixed_precision": cfg.accelerate.mixed_precision} if cfg.accelerate.mixed_precision != "no" else {}

    def intermediate(setting: str, seed: int) -> Job:
        names = setting.split("+")
        data = {n: checksum(n, tuple(_train_splits(get_task(n))), data_dir) for n in names}
        job = _make("intermediate", {**model, "intermediate": names, "data": data,
                                     "train": train_spec(cfg.intermediate.train), **precision, "seed": seed}, None)
        return jobs.setdefault(job.id, job)

    for seed in cfg.seeds:
        for setting in cfg.intermediate.settings:
            if setting != NONE_SETTING:
                intermediate(setting, seed)
    settings = cfg.intermediate.settings
    if cfg.intermediate.select:
        top = [name for name, _ in ranking(cfg, jobs, done)[:cfg.intermediate.select.top_k]]
        settings = [NONE_SETTING, *top, *(["+".join(top)] if len(top) > 1 else [])]
    for seed in cfg.seeds:
        upstream = {s: None if s == NONE_SETTING else intermediate(s, seed) for s in settings}
        for target in cfg.targets:
            task = get_task(target.task, data_dir=data_dir)
            for setting, up in upstream.items():
                spec = {**model, "intermediate": up.spec["intermediate"] if up else [], "target": task.name,
                        "data": checksum(task.name, tuple(_target_splits(task, target.eval.languages)), data_dir),
                        "eval": _with_protocol(target.eval, task, "eval")}
                if _no_training(task):  # no training: the baseline is the same for every seed
                    job = _make("retrieval", {**spec, "seed": seed if up else None}, up and up.id)
                else:
                    train = _with_protocol(target.train, task, "train")
                    job = _make("target", {**spec, "train": train, **precision, "seed": seed}, up and up.id)
                    if up is None and target.probe_reference and train["recipe"] != "probe":
                        probe = _make("target", {**spec, "train": probe_train(train), "seed": None}, None)
                        jobs.setdefault(probe.id, probe)
                jobs.setdefault(job.id, job)
    return list(jobs.values())
