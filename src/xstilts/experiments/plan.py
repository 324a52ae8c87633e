"""Expand a resolved experiment into typed jobs with content-hash ids, upstream jobs first."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from pydantic import BaseModel

from xstilts.config.grid import variants
from xstilts.config.schema import NONE_SETTING, EvalConfig, ExperimentConfig, TrainConfig
from xstilts.experiments.resolve import resolve
from xstilts.experiments.specs import IntermediateSpec, Job, ModelSpec, RetrievalSpec, TargetSpec
from xstilts.models.registry import model_fingerprint
from xstilts.tasks.catalog import TaskCatalog
from xstilts.tasks.definition import TaskDef

Done = Callable[[str], "dict | None"]


@dataclass(frozen=True)
class Plan:
    """The jobs of an experiment, each after the jobs it needs; ``awaiting``: jobs whose results can add jobs
    (the candidates of an ``intermediate.select`` not yet ranked). Re-plan only when one of them finishes."""

    jobs: list[Job]
    awaiting: frozenset[str]


def eval_languages(task: TaskDef, only: list[str] | None = None) -> list[str]:
    """Languages a target job evaluates: those its format reads (English too, except for pair retrieval), or
    those of ``only`` among them."""
    langs = task.format.test_languages(task)
    return [lang for lang in langs if only is None or lang in only]


def _train_splits(task: TaskDef) -> list[tuple[str, str]]:
    return [("train", task.train_language), ("dev", task.train_language)]


def _target_splits(task: TaskDef, only: list[str] | None) -> list[tuple[str, str]]:
    langs = eval_languages(task, only)
    reads = [(split, lang) for split in task.format.eval_splits for lang in langs]
    return _train_splits(task) + reads if task.format.trains else reads


def _with_protocol(given: BaseModel, task: TaskDef, part: str) -> BaseModel:
    """The task's protocol defaults, overridden by every field the config sets."""
    return type(given)(**{**task.protocol.get(part, {}), **given.model_dump(exclude_unset=True)})


PROBE_INPUTS = ("standardised", "normalised")  # the reference probes of every target, one job each


def probe_train(train: TrainConfig, probe_input: str) -> TrainConfig:
    """A reference probe's training: a linear head fit on the frozen encoder (deterministic: no seed) on
    ``probe_input``, with the target's data and probe settings; fields a probe never reads keep their defaults,
    so targets share one job."""
    return TrainConfig(
        recipe="probe",
        head="linear",
        max_length=train.max_length,
        max_train_examples=train.max_train_examples,
        probe_l2=train.probe_l2,
        probe_input=probe_input,
    )


def english_dev(results: list[dict | None], task: TaskDef) -> float | None:
    """Mean over seeds of an intermediate task's headline English dev metric (None until every seed is done)."""
    if not results or any(r is None for r in results):
        return None
    return float(
        sum(
            next(m["value"] for m in r["metrics"] if m["task"] == task.name and m["metric"] == task.headline)
            for r in results
        )
        / len(results)
    )


class _Planner:
    """One plan() call: data checksums computed once (for every grid point), jobs deduplicated."""

    def __init__(self, catalog: TaskCatalog, done: Done):
        self.catalog, self.done = catalog, done
        self.checksums: dict[tuple, str] = {}
        self.awaiting: set[str] = set()

    def checksum(self, name: str, splits: list[tuple[str, str]], data_dir: str | None) -> str:
        key = (name, tuple(splits), data_dir)
        if key not in self.checksums:
            self.checksums[key] = self.catalog.checksum(self.catalog.get(name, data_dir), splits, data_dir)
        return self.checksums[key]

    def ranking(self, cfg: ExperimentConfig, jobs: dict[str, Job]) -> list[tuple[str, float]]:
        """Candidate intermediate tasks by falling English dev score; empty (and the candidates awaited) until all
        of them have finished."""
        scores = {}
        for setting in cfg.intermediate.settings:
            if setting != NONE_SETTING:
                ids = [j.id for j in jobs.values() if j.kind == "intermediate" and j.setting == setting]
                scores[setting] = english_dev([self.done(i) for i in ids], self.catalog.get(setting))
                if scores[setting] is None:
                    self.awaiting.update(ids)
        if any(s is None for s in scores.values()):
            return []
        return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))

    def point(self, cfg: ExperimentConfig) -> list[Job]:
        """The jobs of a config without a grid."""
        backbone = cfg.backbone
        fingerprint = model_fingerprint(cfg.model)
        model = ModelSpec(
            cfg.model, fingerprint, cfg.head_pooling, cfg.data_dir, backbone.spec(), backbone.gradient_checkpointing
        )
        precision = cfg.accelerate.mixed_precision
        jobs: dict[str, Job] = {}

        def add(job: Job) -> Job:
            return jobs.setdefault(job.id, job)

        def intermediate(setting: str, seed: int) -> Job:
            names = setting.split("+")
            data = {n: self.checksum(n, _train_splits(self.catalog.get(n)), cfg.data_dir) for n in names}
            return add(Job(IntermediateSpec(model, tuple(names), seed, None, data, cfg.intermediate.train, precision)))

        for seed in cfg.seeds:
            for setting in cfg.intermediate.settings:
                if setting != NONE_SETTING:
                    intermediate(setting, seed)
        settings = cfg.intermediate.settings
        if cfg.intermediate.select:
            top = [name for name, _ in self.ranking(cfg, jobs)[: cfg.intermediate.select.top_k]]
            settings = [NONE_SETTING, *top, *(["+".join(top)] if len(top) > 1 else [])]
        for seed in cfg.seeds:
            upstream = {s: None if s == NONE_SETTING else intermediate(s, seed) for s in settings}
            for target in cfg.targets:
                task = self.catalog.get(target.task, cfg.data_dir)
                data = self.checksum(task.name, _target_splits(task, target.eval.languages), cfg.data_dir)
                evaluation: EvalConfig = _with_protocol(target.eval, task, "eval")
                for up in upstream.values():
                    seen = up.spec.intermediate if up else ()
                    if not task.format.trains:  # no training: the baseline is the same for every seed
                        add(
                            Job(
                                RetrievalSpec(
                                    model, seen, seed if up else None, up and up.id, task.name, data, evaluation
                                )
                            )
                        )
                        continue
                    train: TrainConfig = _with_protocol(target.train, task, "train")
                    add(
                        Job(
                            TargetSpec(
                                model,
                                seen,
                                seed,
                                up and up.id,
                                task.name,
                                data,
                                evaluation,
                                train,
                                precision,
                                task.parallel,
                            )
                        )
                    )
                    if up is None and target.probe_reference and train.recipe != "probe":
                        for probe_input in PROBE_INPUTS:
                            probe = probe_train(train, probe_input)
                            add(
                                Job(
                                    TargetSpec(
                                        model,
                                        (),
                                        None,
                                        None,
                                        task.name,
                                        data,
                                        evaluation,
                                        probe,
                                        parallel=task.parallel,
                                    )
                                )
                            )
        return list(jobs.values())


def plan(cfg: ExperimentConfig, catalog: TaskCatalog, done: Done = lambda job_id: None) -> Plan:
    """Every job of the experiment, of every grid point, deduplicated (a job several points share appears once),
    each after the jobs it needs. ``done(job_id)`` gives a finished job's result: with ``intermediate.select``,
    target jobs of the top-k candidates (alone and together) appear once every candidate's result is there.
    The config's cross-references are checked first (:func:`resolve`)."""
    resolve(cfg, catalog)
    planner = _Planner(catalog, done)
    jobs: dict[str, Job] = {}
    points: dict[str, list[dict]] = {}
    for point, variant in variants(cfg):
        for job in planner.point(variant):
            jobs.setdefault(job.id, job)
            points.setdefault(job.id, []).append(point)
    return Plan(
        [
            replace(
                job,
                grid={k: v if all(p[k] == v for p in points[job.id]) else None for k, v in points[job.id][0].items()},
            )
            for job in jobs.values()
        ],
        frozenset(planner.awaiting),
    )
