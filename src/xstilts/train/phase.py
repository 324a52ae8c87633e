"""One training phase (intermediate or target): heads on a backbone, the recipe's probe, then fine-tuning."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from accelerate.utils import set_seed
from torch import nn

from xstilts.config.schema import EvalConfig, TrainConfig
from xstilts.evaluate.predict import predict_logits
from xstilts.evaluate.zero_shot import headline_score
from xstilts.models.backbone import freeze, local_device
from xstilts.models.multitask import MultiHeadModel, build_multitask
from xstilts.tasks.definition import TaskDef
from xstilts.tasks.features import task_features
from xstilts.train.loop import Checkpoints, Tracking, TrainTask, train
from xstilts.train.meters import Movement
from xstilts.train.probe import ProbeTask, fit_probe, head_fingerprint

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class PhaseTask:
    """A task of the phase with its English train and dev examples."""

    task: TaskDef
    train: list[dict]
    dev: list[dict]


def seeded_subset(examples: list[dict], n: int | None, seed: int) -> list[dict]:
    """A seeded random subsample of training examples, in file order."""
    if n is None or len(examples) <= n:
        return examples
    keep = np.sort(np.random.default_rng(seed).choice(len(examples), n, replace=False))
    return [examples[i] for i in keep]


def train_phase(
    backbone: nn.Module,
    tokenizer: Any,
    phase: list[PhaseTask],
    cfg: TrainConfig,
    eval_cfg: EvalConfig,
    seed: int | None,
    pooling: str,
    progress: Progress,
    label: str,
    checkpoints: Checkpoints | None = None,
    tracking: Tracking | None = None,
    mixed_precision: str = "no",
) -> tuple[MultiHeadModel, dict]:
    """Train heads (and the backbone, unless the recipe is a probe) on the tasks' English train sets."""
    seed = seed if seed is not None else 0
    set_seed(seed)
    tasks = [p.task for p in phase]
    probed = cfg.recipe in ("probe", "lp-ft")
    model = build_multitask(backbone, tasks, cfg.head, pooling, normalised=probed and cfg.probe_input == "normalised")
    # the probe and the meter run where training will (PartialState() here would set up the launch too early)
    model.to(local_device())
    train_tasks, dev_sets = [], {}
    for p in phase:
        examples = seeded_subset(p.train, cfg.max_train_examples, seed)
        train_tasks.append(TrainTask(p.task.name, task_features(p.task, "train", examples, tokenizer, cfg.max_length)))
        dev_sets[p.task.name] = (p.dev, task_features(p.task, "dev", p.dev, tokenizer, eval_cfg.max_length))
    movement = Movement(backbone, dev_sets[tasks[0].name][1], tokenizer.pad_token_id)
    stats: dict[str, Any] = {"recipe": cfg.recipe}
    if probed:
        progress(f"{label}: probe", 0, 1)
        probe_tasks = [
            ProbeTask(t.name, tt.features, dev_sets[t.name][1], headline_score(t, *dev_sets[t.name]))
            for t, tt in zip(tasks, train_tasks)
        ]
        stats["probe"] = fit_probe(
            model, probe_tasks, cfg.probe_l2, eval_cfg.batch_size, tokenizer.pad_token_id, seed, cfg.probe_input
        )
    if cfg.recipe == "probe":
        return model, {**stats, "updates": 0, "movement": movement.measure(backbone)}
    stats["frozen"] = len(freeze(backbone, cfg.freeze))
    dev_score = _dev_checks(model, tasks, dev_sets, tokenizer, cfg, eval_cfg, stats) if cfg.select_on_dev else None
    stats["heads_at_start"] = {name: head_fingerprint(h) for name, h in model.heads.items()}
    stats |= train(
        model,
        train_tasks,
        cfg,
        seed,
        tokenizer.pad_token_id,
        on_step=lambda step, total, loss: progress(f"{label} loss {loss:.3f}", step, total),
        dev_score=dev_score,
        checkpoints=checkpoints,
        tracking=tracking,
        mixed_precision=mixed_precision,
    )
    return model, {**stats, "movement": movement.measure(model.backbone)}


def _dev_checks(
    model: MultiHeadModel,
    tasks: list[TaskDef],
    dev_sets: dict,
    tokenizer: Any,
    cfg: TrainConfig,
    eval_cfg: EvalConfig,
    stats: dict,
) -> Callable[[], float]:
    """The headline English dev score (of the first ``eval_subset`` examples), averaged over the tasks
    ``select_by`` chooses; each dev set featurized once."""
    chosen = tasks if cfg.select_by == "macro" else [t for t in tasks if t.name == cfg.select_by]
    checks = {}
    for t in chosen:
        dev, features = dev_sets[t.name]
        if cfg.eval_subset is not None and cfg.eval_subset < len(dev):
            dev = dev[: cfg.eval_subset]
            features = task_features(t, "dev", dev, tokenizer, eval_cfg.max_length)
        checks[t.name] = (features, headline_score(t, dev, features))
    stats["dev_check_examples"] = {t.name: len(dev_sets[t.name][0][: cfg.eval_subset]) for t in chosen}

    def dev_score() -> float:
        return float(
            np.mean(
                [
                    score(predict_logits(model, name, features, eval_cfg.batch_size, tokenizer.pad_token_id))
                    for name, (features, score) in checks.items()
                ]
            )
        )

    return dev_score
