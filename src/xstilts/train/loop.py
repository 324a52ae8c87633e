"""The training loop: Accelerate, AdamW, linear warm-up and decay, clipping, dynamic padding, task sampling."""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, broadcast_object_list
from transformers import get_linear_schedule_with_warmup

from xstilts.cache import aside, finish_replace, replace_dir
from xstilts.config.schema import TrainConfig
from xstilts.formats.base import collate, feature_length
from xstilts.models.backbone import parameter_depths
from xstilts.train.sampling import task_probabilities


class TrainingDiverged(RuntimeError):
    """A non-finite training loss: the job stops before the update that produced it."""


@dataclass
class TrainTask:
    """A task's featurized training set."""

    name: str
    features: list[dict]


def length_grouped_batches(lengths: list[int], batch_size: int, rng: np.random.Generator) -> list[list[int]]:
    """Shuffled batches of similar length: sort within random mega-batches of 50, then shuffle the batches."""
    perm = rng.permutation(len(lengths))
    mega = batch_size * 50
    batches = []
    for start in range(0, len(perm), mega):
        chunk = sorted(perm[start : start + mega], key=lambda i: -lengths[i])
        batches += [chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


class BatchStream:
    """A task's endless length-grouped batches, one epoch after another; checkpointable."""

    def __init__(self, task: TrainTask, batch_size: int, rng: np.random.Generator, pad_id: int):
        self.task, self.batch_size, self.rng, self.pad_id = task, batch_size, rng, pad_id
        self.lengths = [feature_length(f) for f in task.features]
        self._new_epoch()

    def _new_epoch(self) -> None:
        self.epoch_rng_state = self.rng.bit_generator.state
        self.batches = length_grouped_batches(self.lengths, self.batch_size, self.rng)
        self.position = 0

    def __next__(self) -> dict:
        if self.position == len(self.batches):
            self._new_epoch()
        idx = self.batches[self.position]
        self.position += 1
        return collate([self.task.features[i] for i in idx], self.pad_id)

    def state_dict(self) -> dict:
        return {"epoch_rng_state": self.epoch_rng_state, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["epoch_rng_state"]
        self._new_epoch()
        self.position = state["position"]


def _param_groups(model: torch.nn.Module, cfg: TrainConfig) -> list[dict]:
    """Trainable parameters grouped by learning rate (heads at ``head_lr``; the backbone at depth d, see
    ``parameter_depths``, at lr * layer_decay^(L + 1 - d)) and by weight decay (none for biases and norms)."""
    depths = parameter_depths(model.backbone)
    top = model.backbone.config.num_hidden_layers + 1
    groups: dict[tuple[float, bool], list] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.startswith("backbone."):
            lr = cfg.lr * (cfg.layer_decay or 1.0) ** (top - depths[name.removeprefix("backbone.")])
        else:
            lr = cfg.head_lr or cfg.lr
        decays = not (p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name)
        groups.setdefault((lr, decays), []).append(p)
    return [
        {"params": ps, "lr": lr, "weight_decay": cfg.weight_decay if decays else 0.0}
        for (lr, decays), ps in groups.items()
    ]


def planned_updates(sizes: list[int], cfg: TrainConfig) -> int:
    """Optimizer updates for the budget: max_steps, max_examples, or epochs over all tasks' examples."""
    per_update = cfg.batch_size * cfg.grad_accum
    if cfg.max_steps:
        return cfg.max_steps
    if cfg.max_examples:
        return max(1, math.ceil(cfg.max_examples / per_update))
    return max(1, math.ceil(cfg.epochs * sum(sizes) / per_update))


def _share(batch: dict[str, torch.Tensor], accelerator: Accelerator) -> dict[str, torch.Tensor]:
    """This process's rows of a batch that every process draws alike (wrapped round if it has fewer rows
    than there are processes)."""
    world = accelerator.num_processes
    if world == 1:
        return batch
    n = len(batch["input_ids"])
    rows = [i % n for i in range(max(n, world))][accelerator.process_index :: world]
    return {name: v[rows] for name, v in batch.items()}


def _agree(accelerator: Accelerator, flags: list[bool]) -> list[bool]:
    """The main process's flags, on every process."""
    return broadcast_object_list(flags) if accelerator.num_processes > 1 else flags


def _save_state(accelerator: Accelerator, checkpoints: Checkpoints) -> None:
    """Every process writes its part of the training state to ``partial``, which then replaces ``dir``."""
    if accelerator.is_main_process:
        shutil.rmtree(checkpoints.partial, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(checkpoints.partial))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        replace_dir(checkpoints.partial, checkpoints.dir)
    accelerator.wait_for_everyone()


@dataclass
class Checkpoints:
    """Where a training run keeps its resumable state, and how often (seconds; 0 = after every update)."""

    dir: Path
    every: float = 300.0

    @property
    def partial(self) -> Path:
        """Where a checkpoint is written before it replaces ``dir``."""
        return self.dir.with_name(self.dir.name + ".partial")

    def recover(self) -> None:
        """Finish a save that a kill left between its two renames, so ``dir`` holds the last complete state."""
        finish_replace(self.partial, self.dir)

    def discard(self) -> None:
        for path in (self.dir, self.partial, aside(self.partial)):
            shutil.rmtree(path, ignore_errors=True)


@dataclass
class Tracking:
    """Accelerate trackers (tensorboard, mlflow, wandb) for one run, logging under ``dir/run_name``."""

    trackers: list[str]
    dir: Path
    run_name: str
    config: dict[str, Any] = field(default_factory=dict)


class LoopState:
    """Everything of a training run besides model, optimizer, scheduler and RNGs (which Accelerate saves)."""

    def __init__(self, seed: int, streams: list[BatchStream], names: list[str]):
        self.rng = np.random.default_rng(seed)  # which task each batch comes from
        self.streams = streams
        self.step = 0  # micro-batches done
        self.seen = dict.fromkeys(names, 0)
        self.tokens = 0
        self.losses: list[float] = []
        self.dev_curve: list[tuple[int, float]] = []
        self.best_state: dict[str, torch.Tensor] | None = None
        self.seconds = 0.0  # training time before the current process started

    def state_dict(self) -> dict:
        return {
            "rng": self.rng.bit_generator.state,
            "streams": [s.state_dict() for s in self.streams],
            "step": self.step,
            "seen": self.seen,
            "tokens": self.tokens,
            "losses": self.losses,
            "dev_curve": self.dev_curve,
            "best_state": self.best_state,
            "seconds": self.seconds,
        }

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
        for stream, s in zip(self.streams, state["streams"]):
            stream.load_state_dict(s)
        for key in ("step", "seen", "tokens", "losses", "dev_curve", "best_state", "seconds"):
            setattr(self, key, state[key])


def _flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config as the flat scalar mapping trackers accept."""
    out: dict[str, Any] = {}
    for k, v in config.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v if isinstance(v, (int, float, str, bool)) else str(v)
    return out


def _prepare(
    model: torch.nn.Module, cfg: TrainConfig, updates: int, tracking: Tracking | None, mixed_precision: str
) -> tuple[Accelerator, torch.nn.Module, torch.optim.Optimizer, Any]:
    """The Accelerator, and the model, AdamW and the linear warm-up and decay schedule it prepared."""
    # split_batches: several processes share each batch, so the schedule steps once per update
    accelerator = Accelerator(
        gradient_accumulation_steps=cfg.grad_accum,
        mixed_precision=mixed_precision,
        dataloader_config=DataLoaderConfiguration(split_batches=True),
        log_with=tracking.trackers if tracking else None,
        project_dir=tracking.dir if tracking else None,
    )
    # gradients left by earlier work on the model (the lp-ft probe's L-BFGS) must not join the first update: a
    # resumed run would add them again to its own first update, and end differently
    model.zero_grad(set_to_none=True)
    # fused AdamW: a ~10x faster optimizer step on CPU than the default loop
    optimizer = torch.optim.AdamW(_param_groups(model, cfg), lr=cfg.lr, fused=True)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * updates), updates)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    return accelerator, model, optimizer, scheduler


class SparseEmbeddingGrad:
    """The input embedding table's gradient kept sparse through backward (only the rows a batch used), then
    written into one persistent dense buffer before clipping. The optimizer sees the same dense gradient (zero in
    untouched rows) as without it, but no step allocates, page-faults, zero-fills and frees a (vocabulary x
    hidden) tensor: with XLM-R's 250k-row table that was about a third of a small-batch update on CPU."""

    def __init__(self, embedding: torch.nn.Embedding):
        embedding.sparse = True
        self.weight = embedding.weight
        self.buffer: torch.Tensor | None = None
        self.rows: torch.Tensor | None = None  # rows the buffer holds non-zero values in

    @classmethod
    def attach(cls, backbone: torch.nn.Module, processes: int) -> SparseEmbeddingGrad | None:
        """For a trainable ``nn.Embedding`` table in a single-process run (distributed wrappers reduce dense
        gradients), else None."""
        table = backbone.get_input_embeddings()
        trainable = isinstance(table, torch.nn.Embedding) and table.weight.requires_grad
        return cls(table) if processes == 1 and trainable else None

    def densify(self) -> None:
        grad = self.weight.grad
        if grad is None or not grad.is_sparse:  # e.g. a tied output layer already made it dense
            return
        grad = grad.coalesce()
        if self.buffer is None:
            self.buffer = torch.zeros_like(self.weight)
        elif self.rows is not None:
            self.buffer.index_fill_(0, self.rows, 0.0)
        self.rows = grad.indices()[0]
        self.buffer.index_copy_(0, self.rows, grad.values())
        self.weight.grad = self.buffer

    def close(self, embedding: torch.nn.Embedding) -> None:
        """Leave the table as it was found: dense gradients, no buffer."""
        embedding.sparse = False
        self.buffer = self.rows = None


def _micro_step(
    accelerator: Accelerator,
    model: torch.nn.Module,
    optimizer,
    scheduler,
    state: LoopState,
    task: str,
    stream: BatchStream,
    weight: float,
    max_grad_norm: float,
    sparse: SparseEmbeddingGrad | None,
) -> None:
    """Forward and backward of one micro-batch of ``task``; the optimizer steps once the accumulation is full."""
    batch = next(stream)
    state.seen[task] += len(batch["input_ids"])
    state.tokens += int(batch["attention_mask"].sum())
    batch = {n: v.to(accelerator.device) for n, v in _share(batch, accelerator).items()}
    with accelerator.accumulate(model):
        loss = model(task, batch)
        value = float(accelerator.reduce(loss.detach(), "mean"))  # over every process's share: all agree
        if not math.isfinite(value):
            update = state.step // accelerator.gradient_accumulation_steps + 1
            raise TrainingDiverged(
                f"loss {value} on task {task} at update {update}; nothing of this update was applied, and the "
                "last training checkpoint is kept (lower the learning rate, or check the data)"
            )
        accelerator.backward(loss * weight)
        if accelerator.sync_gradients:
            if sparse:
                sparse.densify()
            accelerator.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    state.step += 1
    state.losses.append(value)


def _dev_check(
    state: LoopState, update: int, dev_score: Callable[[], float], model: torch.nn.Module, patience: int | None
) -> bool:
    """Score English dev and keep the weights when they score best; True once ``patience`` scores brought no gain."""
    state.dev_curve.append((update, dev_score()))
    model.train()
    best = max(range(len(state.dev_curve)), key=lambda i: state.dev_curve[i][1])
    if best == len(state.dev_curve) - 1:
        state.best_state = {name: v.detach().cpu().clone() for name, v in model.state_dict().items()}
        return False
    return bool(patience) and len(state.dev_curve) - 1 - best >= patience


def _summary(
    state: LoopState,
    tasks: list[TrainTask],
    probs: np.ndarray,
    updates: int,
    done: int,
    stopped_by: str,
    resumed_from: int | None,
    seconds: float,
    processes: int,
) -> dict[str, Any]:
    """What the run did: the budget it used, throughput, the final loss and the dev curve."""
    examples = sum(state.seen.values())
    curve = state.dev_curve
    return {
        "planned_updates": updates,
        "processes": processes,
        "updates": done,
        "stopped_by": stopped_by,
        **({"resumed_from_update": resumed_from} if resumed_from is not None else {}),
        "examples_seen": state.seen,
        "epochs_seen": {t.name: state.seen[t.name] / max(1, len(t.features)) for t in tasks},
        "tokens_seen": state.tokens,
        "sampling_probabilities": dict(zip((t.name for t in tasks), map(float, probs))),
        "train_seconds": round(seconds, 3),
        "examples_per_second": round(examples / seconds, 2) if seconds else None,
        "final_loss": float(np.mean(state.losses[-20:])) if state.losses else None,
        **({"dev_curve": curve, "selected_update": max(curve, key=lambda c: c[1])[0]} if curve else {}),
    }


def train(
    model: torch.nn.Module,
    tasks: list[TrainTask],
    cfg: TrainConfig,
    seed: int,
    pad_id: int,
    on_step: Callable[[int, int, float], None] | None = None,
    dev_score: Callable[[], float] | None = None,
    checkpoints: Checkpoints | None = None,
    tracking: Tracking | None = None,
    mixed_precision: str = "no",
) -> dict[str, Any]:
    """Train ``model`` (a MultiHeadModel, whose forward returns the loss) in place; returns the budget it used.

    With ``dev_score`` (English dev only), the model is scored after every epoch's worth of updates (or every
    ``eval_every_steps``) and at the end; the best-scoring weights are kept, and training stops early after
    ``early_stopping_patience`` scores without a gain. ``max_seconds`` stops training at a wall-clock cap. With
    ``checkpoints``, the whole training state is saved there periodically and a run finding one continues from
    it, ending exactly as an uninterrupted run would. Launched on several processes (``accelerate launch``),
    every process draws the same batches and trains on its equal share of each.
    """
    sizes = [len(t.features) for t in tasks]
    probs = task_probabilities(sizes, cfg.sampler, cfg.temperature, cfg.sampler_cap)
    weights = [cfg.loss_weights.get(t.name, 1.0) for t in tasks]
    updates = planned_updates(sizes, cfg)
    accelerator, model, optimizer, scheduler = _prepare(model, cfg, updates, tracking, mixed_precision)
    sparse = SparseEmbeddingGrad.attach(accelerator.unwrap_model(model).backbone, accelerator.num_processes)
    streams = [BatchStream(t, cfg.batch_size, np.random.default_rng([seed, i]), pad_id) for i, t in enumerate(tasks)]
    state = LoopState(seed, streams, [t.name for t in tasks])
    accelerator.register_for_checkpointing(state)
    resumed_from = None
    if checkpoints and accelerator.is_main_process:
        checkpoints.recover()
    accelerator.wait_for_everyone()
    if checkpoints and checkpoints.dir.is_dir():
        accelerator.load_state(str(checkpoints.dir))
        resumed_from = state.step // cfg.grad_accum
    if tracking:
        accelerator.init_trackers(tracking.run_name, config=_flat(tracking.config))
    # English dev is scored every eval_every_steps updates, else once an epoch, and at the end
    check_every = cfg.eval_every_steps or max(1, math.ceil(sum(sizes) / (cfg.batch_size * cfg.grad_accum)))
    stopped_by, done = "budget", state.step // cfg.grad_accum
    model.train()
    start = saved = time.perf_counter()
    while state.step < updates * cfg.grad_accum:
        k = int(state.rng.choice(len(tasks), p=probs))
        _micro_step(
            accelerator,
            model,
            optimizer,
            scheduler,
            state,
            tasks[k].name,
            streams[k],
            weights[k],
            cfg.max_grad_norm,
            sparse,
        )
        if state.step % cfg.grad_accum:
            continue
        done = state.step // cfg.grad_accum
        elapsed = state.seconds + time.perf_counter() - start
        if on_step:
            on_step(done, updates, state.losses[-1])
        if tracking:
            accelerator.log(
                {
                    "train/loss": state.losses[-1],
                    "train/lr": scheduler.get_last_lr()[0],
                    "train/examples_per_second": sum(state.seen.values()) / elapsed,
                },
                step=done,
            )
        # one decision for every process: each would otherwise read its own clock
        out_of_time, save_due = _agree(
            accelerator,
            [
                cfg.max_seconds is not None and elapsed >= cfg.max_seconds,
                checkpoints is not None and done < updates and time.perf_counter() - saved >= checkpoints.every,
            ],
        )
        if dev_score and (done % check_every == 0 or done == updates or out_of_time):
            patience_ran_out = _dev_check(state, done, dev_score, model, cfg.early_stopping_patience)
            if tracking:
                accelerator.log({"dev/score": state.dev_curve[-1][1]}, step=done)
            if patience_ran_out:
                stopped_by = "early_stopping"
                break
        if out_of_time:
            stopped_by = "max_seconds"
            break
        if save_due:
            state.seconds = elapsed
            _save_state(accelerator, checkpoints)
            saved = time.perf_counter()
    seconds = state.seconds + time.perf_counter() - start
    if sparse:
        sparse.close(accelerator.unwrap_model(model).backbone.get_input_embeddings())
    if tracking:
        accelerator.end_training()
    if state.best_state is not None:
        model.load_state_dict(state.best_state)
    return _summary(state, tasks, probs, updates, done, stopped_by, resumed_from, seconds, accelerator.num_processes)
