"""Run one job from its typed spec alone and write its result atomically: a short script of model, train and
evaluate calls."""

from __future__ import annotations

import datetime as dt
import gc
import platform
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import numpy as np
import torch
from accelerate import PartialState

import xstilts
from xstilts.cache import atomic_dir, atomic_write_text
from xstilts.config.schema import EvalConfig
from xstilts.data.items import item_key
from xstilts.evaluate import hardware, latency
from xstilts.evaluate.official_files import write_official
from xstilts.evaluate.zero_shot import (
    dev_metrics,
    evaluate,
    evaluate_encoder,
    fixed_subset,
    metric_rows,
    subset_key,
)
from xstilts.experiments.options import DEFAULT_OPTIONS, RunOptions
from xstilts.experiments.plan import eval_languages
from xstilts.experiments.rundir import RunDir
from xstilts.experiments.specs import IntermediateSpec, Job, JobSpec, RetrievalSpec, TargetSpec
from xstilts.formats.pooling import truncated
from xstilts.metrics import per_example
from xstilts.models.adapters import job_backbone, save_handoff
from xstilts.models.backbone import local_device
from xstilts.tasks.catalog import TaskCatalog
from xstilts.tasks.definition import TaskDef
from xstilts.tasks.features import task_features
from xstilts.train.loop import Checkpoints, Tracking
from xstilts.train.phase import PhaseTask, train_phase

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class _Context:
    job: Job
    run: RunDir
    catalog: TaskCatalog
    progress: Progress
    options: RunOptions
    split: int = 1  # micro-batches per batch (after out-of-memory errors); the effective batch stays

    @property
    def label(self) -> str:
        return f"{self.job.target} after {self.job.setting}" if self.job.target else f"intermediate {self.job.setting}"

    def task(self, name: str) -> TaskDef:
        return self.catalog.get(name, self.job.spec.model.data_dir)

    def phase_task(self, task: TaskDef) -> PhaseTask:
        source = self.catalog.training_source(task, self.job.spec.model.data_dir)
        return PhaseTask(task, source.load("train", task.train_language), source.load("dev", task.train_language))

    def backbone(self):
        """(backbone, tokenizer) the job starts from: the model, or its upstream job's encoder (see
        ``models.adapters``), with new adapters when it trains with LoRA."""
        spec = self.job.spec
        upstream = self.run.checkpoint(spec.upstream) if spec.upstream else None
        model = spec.model
        checkpointing, seed = model.gradient_checkpointing, spec.seed or 0
        return job_backbone(model.model, model.backbone, upstream, spec.trains, checkpointing, seed)

    def train(
        self, backbone, tokenizer, phase: list[PhaseTask], spec: IntermediateSpec | TargetSpec, eval_cfg: EvalConfig
    ):
        """The job's training phase, with its resumable checkpoints and trackers (run ``OUT/tracking/<id>``)."""
        options = self.options
        tracking = (
            Tracking(
                options.trackers,
                self.run.tracking_dir,
                self.job.id,
                {k: v for k, v in spec.as_dict().items() if k not in ("data", "weights")},
            )
            if options.trackers
            else None
        )
        cfg = spec.train
        if self.split > 1:
            cfg = cfg.model_copy(
                update={"batch_size": cfg.batch_size // self.split, "grad_accum": cfg.grad_accum * self.split}
            )
        return train_phase(
            backbone,
            tokenizer,
            phase,
            cfg,
            eval_cfg,
            spec.seed,
            spec.model.head_pooling,
            self.progress,
            self.label,
            Checkpoints(self.run.train_state(self.job.id), options.checkpoint_every),
            tracking,
            spec.mixed_precision,
        )


def versions() -> dict[str, str]:
    import accelerate
    import transformers

    return {
        "xstilts": xstilts.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "accelerate": accelerate.__version__,
        "numpy": np.__version__,
    }


def device_name() -> str:
    """``cpu``, or the name of the CUDA device the job ran on."""
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


def _run_intermediate(ctx: _Context, spec: IntermediateSpec) -> dict:
    backbone, tokenizer = ctx.backbone()
    phase = [ctx.phase_task(ctx.task(n)) for n in spec.intermediate]
    model, stats = ctx.train(backbone, tokenizer, phase, spec, EvalConfig())
    if not PartialState().is_main_process:  # launched on several processes: the main one reports
        return {}
    with hardware.TokenMeter(model.backbone) as evaluation:
        metrics = [row for p in phase for row in dev_metrics(model, p.task, p.dev, tokenizer, EvalConfig())]
    first = phase[0]  # inference speed on the first task's English dev examples
    english = task_features(
        first.task, "dev", first.dev[: latency.THROUGHPUT_EXAMPLES], tokenizer, EvalConfig().max_length
    )
    speed = latency.measure(model, first.task.name, english, tokenizer.pad_token_id)
    with atomic_dir(ctx.run.checkpoint(ctx.job.id)) as tmp:
        save_handoff(model.backbone, tokenizer, tmp, spec.model.backbone)
    return {"metrics": metrics, "train": stats, "meters": _meters(model, evaluation, speed, stats)}


def _test_sets(ctx: _Context, task: TaskDef, cfg: EvalConfig) -> dict[str, list[dict]]:
    return {
        lang: fixed_subset(task.source.load("test", lang), cfg.max_examples_per_language, subset_key(task))
        for lang in eval_languages(task, cfg.languages)
    }


def _report(ctx: _Context, task: TaskDef, results: dict, tests: dict[str, list[dict]]) -> list[dict]:
    """Metric rows of each language's evaluation; per-example statistics (one row per test example, beside their
    item keys) and official files written."""
    rows, stats = [], {}
    for lang, ev in results.items():
        rows += metric_rows(task, "test", lang, ev.scores, len(tests[lang]))
        if ev.stats:  # formats scored over whole sets (BUCC, answer retrieval) keep no rows to key
            stats |= {per_example.key(task.name, "test", lang, m): s for m, s in ev.stats.items()}
            items = np.array([item_key(ex) for ex in tests[lang]], dtype=str)
            stats[per_example.key(task.name, "test", lang, per_example.ITEMS)] = items
        write_official(ctx.run.job(ctx.job.id), task.format, task.name, lang, ev.predictions, tests[lang])
    if stats:
        stats[per_example.parallel_key(task.name, "test")] = np.array(task.parallel)
    per_example.write(ctx.run.per_example(ctx.job.id), stats)
    return rows


def _run_target(ctx: _Context, spec: TargetSpec) -> dict:
    task = ctx.task(spec.target)
    backbone, tokenizer = ctx.backbone()
    phase = ctx.phase_task(task)
    model, stats = ctx.train(backbone, tokenizer, [phase], spec, spec.eval)
    if not PartialState().is_main_process:
        return {}
    tests = _test_sets(ctx, task, spec.eval)
    results = {}
    with hardware.TokenMeter(model.backbone) as evaluation:
        metrics = dev_metrics(model, task, phase.dev, tokenizer, spec.eval)
        for i, (lang, examples) in enumerate(tests.items()):
            ctx.progress(f"{ctx.label}: eval {lang}", i, len(tests))
            results[lang] = evaluate(model, task, "test", lang, examples, tokenizer, spec.eval)
    english = task_features(task, "dev", phase.dev[: latency.THROUGHPUT_EXAMPLES], tokenizer, spec.eval.max_length)
    speed = latency.measure(model, task.name, english, tokenizer.pad_token_id)  # on English dev examples
    return {
        "metrics": metrics + _report(ctx, task, results, tests),
        "train": stats,
        "meters": _meters(model, evaluation, speed, stats),
    }


def _run_retrieval(ctx: _Context, spec: RetrievalSpec) -> dict:
    task = ctx.task(spec.target)
    backbone, tokenizer = ctx.backbone()
    backbone.to(PartialState().device)
    tests = _test_sets(ctx, task, spec.eval)
    ctx.progress(f"{ctx.label}: encoding", 0, len(tests))
    with hardware.TokenMeter(backbone) as evaluation:
        results, layer = evaluate_encoder(backbone, tokenizer, task, tests, spec.eval)
    texts = [ex[f] for exs in tests.values() for ex in exs for f in task.fields if isinstance(ex.get(f), str)]
    ev = spec.eval
    speed = latency.measure_encoder(backbone, tokenizer, texts, layer, ev.pooling, ev.max_length)
    with truncated(backbone, layer):  # N of the blocks the pooled layer needs, as the encoding ran
        meters = _meters(backbone, evaluation, speed)
    return {"metrics": _report(ctx, task, results, tests), "layer": layer, "meters": meters}


def _meters(model: torch.nn.Module, evaluation: hardware.TokenMeter, speed: dict, train: dict | None = None) -> dict:
    """The meters a job's runner measured (run_job adds peak memory): MFU on ``model``'s device and N."""
    peak = hardware.peak_flops(next(model.parameters()).device)
    return hardware.meters(hardware.non_embedding_params(model), peak, evaluation, speed, train)


_RUNNERS: dict[type[JobSpec], Callable] = {
    IntermediateSpec: _run_intermediate,
    TargetSpec: _run_target,
    RetrievalSpec: _run_retrieval,
}


def run_job(
    job: Job,
    run: RunDir,
    catalog: TaskCatalog,
    progress: Progress = lambda *a: None,
    options: RunOptions = DEFAULT_OPTIONS,
    fence: Callable[[], AbstractContextManager] = nullcontext,
) -> dict:
    """Execute ``job`` and write ``OUT/jobs/<id>/result.json`` (the job's done-marker) atomically, inside
    ``fence()`` (the worker's lease check); a job interrupted during training continues from its last training
    checkpoint."""
    start = time.perf_counter()
    spec = job.spec
    marker = run.micro_batch_split(job.id)
    split = int(marker.read_text()) if marker.is_file() else 1
    while True:
        try:
            with hardware.PeakMemory(local_device()) as memory:
                body = _RUNNERS[type(spec)](_Context(job, run, catalog, progress, options, split), spec)
            break
        except torch.OutOfMemoryError as error:
            split = _split_further(job, run, split, progress, error)
    if not PartialState().is_main_process:
        return body
    if split > 1:
        train = spec.train
        body["micro_batches"] = {
            "batch_size": train.batch_size // split,
            "grad_accum": train.grad_accum * split,
            "split_after_out_of_memory": split,
        }
    body["meters"] = hardware.ordered(body.get("meters", {}) | memory.meters())
    result = {
        "job_id": job.id,
        "kind": job.kind,
        "model": spec.model.model,
        "intermediate": job.setting,
        "target": job.target,
        "seed": spec.seed,
        "upstream": job.upstream,
        **body,
        "seconds": round(time.perf_counter() - start, 3),
        "device": device_name(),
        "threads": torch.get_num_threads(),
        "spec": spec.as_dict(),
        "versions": versions(),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    with fence():
        run.write_result(job.id, result)
    Checkpoints(run.train_state(job.id)).discard()
    marker.unlink(missing_ok=True)
    return result


def _split_further(job: Job, run: RunDir, split: int, progress: Progress, error: torch.OutOfMemoryError) -> int:
    """After an out-of-memory error: twice the micro-batches per batch (half the micro-batch, twice the
    accumulation: the same effective batch), remembered for a resumed run; training starts again, since its
    checkpoint holds batches of the old size. Re-raises once the batch cannot be split evenly."""
    train = getattr(job.spec, "train", None)
    if train is None or train.batch_size % (split * 2):
        raise error
    split *= 2
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    Checkpoints(run.train_state(job.id)).discard()
    atomic_write_text(run.micro_batch_split(job.id), str(split))
    progress(f"out of memory: micro-batch {train.batch_size // split} x {train.grad_accum * split} accumulation", 0, 1)
    return split
