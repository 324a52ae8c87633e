"""Run one job (intermediate, target or retrieval) from its spec alone and write its result atomically."""

from __future__ import annotations

import datetime as dt
import hashlib
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import PartialState
from accelerate.utils import set_seed

import xstilts
from xstilts.cache import atomic_dir, atomic_write_json
from xstilts.config import EvalConfig, TrainConfig
from xstilts.errors import UserError
from xstilts.evaluate import per_example, retrieval
from xstilts.evaluate.metrics import primary_metric
from xstilts.evaluate.official_files import write_official
from xstilts.evaluate.predict import predict_logits
from xstilts.experiments.plan import Job, eval_languages
from xstilts.formats import trainable_format
from xstilts.formats.retrieval import default_layer, embed
from xstilts.models.backbone import MultiHeadModel, freeze, load_backbone, local_device, save_backbone
from xstilts.tasks.registry import TaskDef, get_task
from xstilts.train.loop import Checkpoints, Tracking, TrainTask, train
from xstilts.train.meters import Movement
from xstilts.train.probe import ProbeTask, fit_probe, head_fingerprint

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class RunOptions:
    """How jobs run, without changing what they compute: training checkpoints and trackers."""

    checkpoint_every: float = 300.0  # seconds between resumable training checkpoints; 0 = every update
    trackers: list[str] = field(default_factory=list)


DEFAULT_OPTIONS = RunOptions()


@dataclass(frozen=True)
class _Context:
    out: Path
    progress: Progress
    options: RunOptions


def job_dir(out: Path, job_id: str) -> Path:
    return Path(out) / "jobs" / job_id


def checkpoint_dir(out: Path, job_id: str) -> Path:
    """The trained backbone an intermediate job hands to its targets."""
    return job_dir(out, job_id) / "checkpoint"


def train_state_dir(out: Path, job_id: str) -> Path:
    """Resumable mid-training state of a job that has not finished."""
    return job_dir(out, job_id) / "train_state"


def fixed_subset(examples: list[dict], n: int | None, key: str = "id") -> list[dict]:
    """The same ``n`` examples for every setting and seed: smallest hashes of ``key``, in file order."""
    if n is None or len(examples) <= n:
        return examples
    digest = [hashlib.sha1(str(ex[key]).encode()).digest() for ex in examples]
    keep = set(sorted(range(len(examples)), key=digest.__getitem__)[:n])
    return [ex for i, ex in enumerate(examples) if i in keep]


def seeded_subset(examples: list[dict], n: int | None, seed: int) -> list[dict]:
    """A seeded random subsample of training examples, in file order."""
    if n is None or len(examples) <= n:
        return examples
    keep = np.sort(np.random.default_rng(seed).choice(len(examples), n, replace=False))
    return [examples[i] for i in keep]


def versions() -> dict[str, str]:
    import accelerate
    import transformers

    return {"xstilts": xstilts.__version__, "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "accelerate": accelerate.__version__,
            "numpy": np.__version__}


def device_name() -> str:
    """``cpu``, or the name of the CUDA device the job ran on."""
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


def _metric_rows(task: TaskDef, split: str, language: str, scores: dict[str, float], n: int) -> list[dict]:
    return [{"task": task.name, "split": split, "language": language, "metric": m, "value": v, "n": n}
            for m, v in scores.items()]


def _evaluate(model: MultiHeadModel, task: TaskDef, language: str, examples: list[dict], tokenizer: Any,
              cfg: EvalConfig) -> tuple[dict, list]:
    fmt = trainable_format(task.format)
    feats = fmt.featurize(task, examples, tokenizer, cfg.max_length)
    outputs = predict_logits(model, task.name, feats, cfg.batch_size, tokenizer.pad_token_id)
    predictions = fmt.predict(outputs, feats, examples, task)
    return fmt.score(predictions, examples, task, language), predictions


def _example_stats(task: TaskDef, language: str, predictions: list, examples: list[dict],
                   scores: dict[str, float]) -> dict[str, np.ndarray]:
    """Per-example statistics of a test set's metrics (see evaluate/per_example), keyed for the job's file."""
    fmt = trainable_format(task.format)
    counts = fmt.example_counts(predictions, examples, task) if hasattr(fmt, "example_counts") else None
    stats = per_example.example_stats(lambda p, e: fmt.score(p, e, task, language), predictions, examples, scores,
                                      counts)
    return {per_example.key(task.name, "test", language, m): s for m, s in stats.items()}


def _dev_metrics(model: MultiHeadModel, task: TaskDef, tokenizer: Any, cfg: EvalConfig, data_dir) -> list[dict]:
    """English dev scores, the only data used to compare checkpoints."""
    dev = task.training_source(data_dir).load("dev", task.train_language)
    scores, _ = _evaluate(model, task, task.train_language, dev, tokenizer, cfg)
    return _metric_rows(task, "dev", task.train_language, scores, len(dev))


def _backbone_for(job: Job, out: Path):
    return load_backbone(str(checkpoint_dir(out, job.upstream)) if job.upstream else job.spec["model"])


def _headline_dev(task: TaskDef, examples: list[dict], features: list[dict]) -> Callable[[list], float]:
    """The headline English dev score of per-feature outputs (the probe's selection score)."""
    fmt = trainable_format(task.format)

    def score(outputs: list) -> float:
        scores = fmt.score(fmt.predict(outputs, features, examples, task), examples, task, task.train_language)
        return scores[primary_metric(set(scores))]
    return score


def _train_model(backbone, tokenizer, tasks: list[TaskDef], cfg: TrainConfig, eval_cfg: EvalConfig, spec: dict,
                 progress: Progress, label: str, checkpoints: Checkpoints | None = None,
                 tracking: Tracking | None = None) -> tuple[MultiHeadModel, dict]:
    """Train heads (and the backbone, unless the recipe is a probe) on the tasks' English train sets."""
    seed = spec["seed"] if spec["seed"] is not None else 0
    set_seed(seed)
    formats = {t.name: trainable_format(t.format) for t in tasks}
    heads: dict[str, Any] = {}
    for t in tasks:
        first = next(o for o in tasks if o.head_name == t.head_name)
        if (first.format, first.labels) != (t.format, t.labels):
            raise UserError(f"tasks {first.name} and {t.name} share head {t.head_name!r} but differ in format or labels")
        heads.setdefault(t.head_name, formats[t.name].make_head(t, backbone.config, cfg.head))
    for head in heads.values():  # heads tied to the backbone (masked LM) size their parts from it
        if hasattr(head, "attach"):
            head.attach(backbone)
    model = MultiHeadModel(backbone, heads, formats, {t.name: t.head_name for t in tasks}, spec["head_pooling"])
    # the probe and the meter run where training will (PartialState() here would set up the launch too early)
    model.to(local_device())
    train_tasks, dev_sets = [], {}
    for t in tasks:
        examples = t.training_source(spec["data_dir"]).load("train", t.train_language)
        examples = seeded_subset(examples, cfg.max_train_examples, seed)
        train_tasks.append(TrainTask(t.name, formats[t.name].featurize(t, examples, tokenizer, cfg.max_length)))
        dev = t.training_source(spec["data_dir"]).load("dev", t.train_language)
        dev_sets[t.name] = (dev, formats[t.name].featurize(t, dev, tokenizer, eval_cfg.max_length))
    if cfg.select_by != "macro" and cfg.select_by not in {t.name for t in tasks}:
        raise UserError(f"select_by: {cfg.select_by!r} is neither 'macro' nor one of the tasks {[t.name for t in tasks]}")
    chosen = tasks if cfg.select_by == "macro" else [t for t in tasks if t.name == cfg.select_by]
    movement = Movement(backbone, dev_sets[tasks[0].name][1], tokenizer.pad_token_id)
    stats: dict[str, Any] = {"recipe": cfg.recipe}
    if cfg.recipe in ("probe", "lp-ft"):
        progress(f"{label}: probe", 0, 1)
        probe_tasks = [ProbeTask(t.name, tt.features, dev_sets[t.name][1], _headline_dev(t, *dev_sets[t.name]))
                       for t, tt in zip(tasks, train_tasks)]
        stats["probe"] = fit_probe(model, probe_tasks, cfg.probe_l2, eval_cfg.batch_size, tokenizer.pad_token_id, seed)
    if cfg.recipe == "probe":
        return model, {**stats, "updates": 0, "movement": movement.measure(backbone)}
    stats["frozen"] = len(freeze(backbone, cfg.freeze))

    checks = {}  # English dev (its first eval_subset examples) of each chosen task, featurized once
    if cfg.select_on_dev:
        for t in chosen:
            dev, features = dev_sets[t.name]
            if cfg.eval_subset is not None and cfg.eval_subset < len(dev):
                dev = dev[:cfg.eval_subset]
                features = formats[t.name].featurize(t, dev, tokenizer, eval_cfg.max_length)
            checks[t.name] = (features, _headline_dev(t, dev, features))
        stats["dev_check_examples"] = {t.name: len(dev_sets[t.name][0][:cfg.eval_subset]) for t in chosen}

    def dev_score() -> float:  # the headline English dev metric, averaged over the chosen tasks
        return float(np.mean([score(predict_logits(model, name, features, eval_cfg.batch_size, tokenizer.pad_token_id))
                              for name, (features, score) in checks.items()]))
    stats["heads_at_start"] = {name: head_fingerprint(h) for name, h in model.heads.items()}
    stats |= train(model, train_tasks, cfg, seed, tokenizer.pad_token_id,
                   on_step=lambda step, total, loss: progress(f"{label} loss {loss:.3f}", step, total),
                   dev_score=dev_score if cfg.select_on_dev else None, checkpoints=checkpoints, tracking=tracking,
                   mixed_precision=spec.get("mixed_precision", "no"))
    return model, {**stats, "movement": movement.measure(model.backbone)}


def _train_job(backbone, tokenizer, tasks: list[TaskDef], cfg: TrainConfig, eval_cfg: EvalConfig, job: Job,
               ctx: _Context, label: str) -> tuple[MultiHeadModel, dict]:
    """:func:`_train_model` with the job's resumable checkpoints and its trackers (run ``OUT/tracking/<id>``)."""
    options = ctx.options
    tracking = Tracking(options.trackers, ctx.out / "tracking", job.id, {
        k: v for k, v in job.spec.items() if k not in ("data", "weights")}) if options.trackers else None
    return _train_model(backbone, tokenizer, tasks, cfg, eval_cfg, job.spec, ctx.progress, label,
                        Checkpoints(train_state_dir(ctx.out, job.id), options.checkpoint_every), tracking)


def _run_intermediate(job: Job, ctx: _Context) -> dict:
    spec = job.spec
    backbone, tokenizer = load_backbone(spec["model"])
    tasks = [get_task(n, data_dir=spec["data_dir"]) for n in spec["intermediate"]]
    model, stats = _train_job(backbone, tokenizer, tasks, TrainConfig(**spec["train"]), EvalConfig(), job, ctx,
                              f"intermediate {job.setting}")
    if not PartialState().is_main_process:  # launched on several processes: the main one reports
        return {}
    metrics = []
    for t in tasks:
        metrics += _dev_metrics(model, t, tokenizer, EvalConfig(), spec["data_dir"])
    with atomic_dir(checkpoint_dir(ctx.out, job.id)) as tmp:
        save_backbone(model.backbone, tokenizer, tmp)
    return {"metrics": metrics, "train": stats}


def _run_target(job: Job, ctx: _Context) -> dict:
    spec, out, progress = job.spec, ctx.out, ctx.progress
    task = get_task(spec["target"], data_dir=spec["data_dir"])
    eval_cfg = EvalConfig(**spec["eval"])
    backbone, tokenizer = _backbone_for(job, out)
    model, stats = _train_job(backbone, tokenizer, [task], TrainConfig(**spec["train"]), eval_cfg, job, ctx,
                              f"{task.name} after {job.setting}")
    if not PartialState().is_main_process:
        return {}
    metrics = _dev_metrics(model, task, tokenizer, eval_cfg, spec["data_dir"])
    langs = eval_languages(task, eval_cfg.languages)
    examples_stats: dict[str, np.ndarray] = {}
    for i, lang in enumerate(langs):
        progress(f"{task.name} after {job.setting}: eval {lang}", i, len(langs))
        examples = fixed_subset(task.source.load("test", lang), eval_cfg.max_examples_per_language)
        scores, predictions = _evaluate(model, task, lang, examples, tokenizer, eval_cfg)
        metrics += _metric_rows(task, "test", lang, scores, len(examples))
        examples_stats |= _example_stats(task, lang, predictions, examples, scores)
        write_official(job_dir(out, job.id), task.name, lang, predictions, examples)
    per_example.write(job_dir(out, job.id) / per_example.FILE, examples_stats)
    return {"metrics": metrics, "train": stats}


def _run_retrieval(job: Job, ctx: _Context) -> dict:
    spec, out, progress = job.spec, ctx.out, ctx.progress
    task = get_task(spec["target"], data_dir=spec["data_dir"])
    cfg = EvalConfig(**spec["eval"])
    backbone, tokenizer = _backbone_for(job, out)
    backbone.to(PartialState().device)
    layer = default_layer(backbone) if cfg.layer == "auto" else cfg.layer

    def encode(texts: list[str], contexts: list[str] | None = None) -> np.ndarray:
        return embed(backbone, tokenizer, texts, layer, cfg.pooling, cfg.max_length, cfg.batch_size, contexts)

    langs = eval_languages(task, cfg.languages)
    examples = {lang: fixed_subset(task.source.load("test", lang), cfg.max_examples_per_language, "target")
                if task.format == "retrieval" else task.source.load("test", lang) for lang in langs}
    if task.format == "retrieval":  # every distinct sentence once: English sides repeat across languages
        query_field, candidate_field = task.fields
        progress(f"{task.name} after {job.setting}: encoding", 0, len(langs))
        vectors = retrieval.encode_unique(encode, [ex[f] for exs in examples.values() for ex in exs
                                                   for f in task.fields])
    elif task.format == "answer_retrieval":
        pool = task.source.candidates("test")
        pool_vectors = encode([c["text"] for c in pool], [c["context"] for c in pool] if "context" in pool[0] else None)
    metrics, examples_stats = [], {}
    for i, lang in enumerate(langs):
        progress(f"{task.name} after {job.setting}: {lang}", i, len(langs))
        if task.format == "retrieval":
            scores, predictions = retrieval.pair_retrieval(encode, examples[lang], query_field, candidate_field, vectors)
        elif task.format == "bucc":
            scores, predictions = retrieval.bucc(encode, task.source.load("dev", lang), examples[lang])
        else:
            scores, predictions = retrieval.answer_retrieval(encode, examples[lang], [c["id"] for c in pool],
                                                             pool_vectors)
        metrics += _metric_rows(task, "test", lang, scores, len(examples[lang]))
        if task.format == "retrieval":  # query i is right when its nearest candidate is candidate i
            hits = np.array([[float(found == i)] for i, found in enumerate(predictions)])
            kept = per_example.reproducing({"accuracy": hits}, scores)
            examples_stats |= {per_example.key(task.name, "test", lang, m): s for m, s in kept.items()}
        write_official(job_dir(out, job.id), task.name, lang, predictions, examples[lang])
    per_example.write(job_dir(out, job.id) / per_example.FILE, examples_stats)
    return {"metrics": metrics, "layer": layer}


_RUNNERS = {"intermediate": _run_intermediate, "target": _run_target, "retrieval": _run_retrieval}


def run_job(job: Job, out: Path, progress: Progress = lambda *a: None, options: RunOptions = DEFAULT_OPTIONS) -> dict:
    """Execute ``job`` and write ``OUT/jobs/<id>/result.json`` (the job's done-marker) atomically; a job
    interrupted during training continues from its last training checkpoint."""
    start = time.perf_counter()
    body = _RUNNERS[job.kind](job, _Context(Path(out), progress, options))
    if not PartialState().is_main_process:
        return body
    spec = job.spec
    result = {
        "job_id": job.id, "kind": job.kind, "model": spec["model"], "intermediate": job.setting,
        "target": spec.get("target"), "seed": spec["seed"], "upstream": job.upstream, **body,
        "seconds": round(time.perf_counter() - start, 3), "device": device_name(),
        "threads": torch.get_num_threads(), "spec": spec,
        "versions": versions(),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    atomic_write_json(job_dir(out, job.id) / "result.json", result)
    Checkpoints(train_state_dir(out, job.id)).discard()
    return result
