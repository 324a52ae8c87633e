"""The linear-probe phase: heads fit by L-BFGS on the frozen encoder's cached representations.

Representations are computed once (eval mode, no dropout) and every head is fit by full-batch L-BFGS for each L2
strength from strongest to weakest (warm-started); the strength with the best English dev score wins. The input
is ``standardised`` (each dimension over English train; folded into the head's first linear layer afterwards)
or ``normalised`` (the head itself L2-normalises what it reads, see ``formats.heads.NormalisedInput``): either
way the fitted head reads raw representations exactly as the fine-tuning phase will.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from xstilts.formats.base import collate

MAX_CACHE_BYTES = 4 << 30  # representations kept for the fit; beyond it a seeded subset of the examples


@dataclass
class ProbeTask:
    """A task's featurized English train and dev sets, and its headline dev score of per-feature outputs."""

    name: str
    train: list[dict]
    dev: list[dict]
    dev_score: Callable[[list[np.ndarray]], float]


def head_fingerprint(head: nn.Module) -> str:
    """A short hash of a head's weights: tells which head a phase started from."""
    digest = hashlib.sha256()
    for name, tensor in sorted(head.state_dict().items()):
        digest.update(name.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


@torch.no_grad()
def _cache(
    model: nn.Module, task: str, features: list[dict], order: np.ndarray, batch_size: int, pad_id: int, max_bytes: int
) -> tuple[list[tuple[torch.Tensor, dict]], list[int]]:
    """(representations, batch) per batch of ``features`` in ``order``, stopping at ``max_bytes``; and the
    feature indices cached, in cache order."""
    fmt, device = model.formats[task], next(model.parameters()).device
    cached, used, size = [], [], 0
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size].tolist()
        batch = {k: v.to(device) for k, v in collate([features[i] for i in idx], pad_id).items()}
        reps = fmt.represent(model.backbone, batch, model.pooling).float()
        size += reps.numel() * 4
        if size > max_bytes and cached:
            break
        cached.append((reps, batch))
        used += idx
    return cached, used


def _rows(reps: torch.Tensor, batch: dict) -> torch.Tensor:
    """The representation vectors of a batch: one per token (non-padding) for token-level heads, else all."""
    mask = batch["attention_mask"]
    if reps.shape[:-1] == mask.shape:
        return reps[mask.bool()]
    return reps.reshape(-1, reps.shape[-1])


def _first_linear(head: nn.Module) -> nn.Linear:
    return next(m for m in head.modules() if isinstance(m, nn.Linear))


def _standardise(
    train: list[tuple[torch.Tensor, dict]], dev: list[list[tuple[torch.Tensor, dict]]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Standardise every cached representation in place by English train's per-dimension mean and std; returns
    them. Near-constant dimensions are not blown up: folded back, they would give the head huge weights."""
    vectors = torch.cat([_rows(r, b) for r, b in train])
    mean, std = vectors.mean(0), vectors.std(0)
    std = std.clamp(min=max(1e-2 * float(std.mean()), 1e-12))
    for cached in [train, *dev]:
        for reps, _ in cached:
            reps.sub_(mean).div_(std)
    return mean, std


@torch.no_grad()
def _fold(head: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
    """Fold the standardisation into the head's first linear layer: head(x) == fitted_head((x - mean) / std)."""
    linear = _first_linear(head)
    linear.weight.div_(std)
    linear.bias.sub_(linear.weight @ mean)


def _fit(head: nn.Module, fmt, cached: list[tuple[torch.Tensor, dict]], l2: float, max_iter: int) -> None:
    """Minimise the mean training loss + l2/2 * |weights|^2 over the head's parameters."""
    params = [p for p in head.parameters() if p.requires_grad]
    weights = [p for p in params if p.ndim >= 2]
    total = sum(len(b["input_ids"]) for _, b in cached)
    optimizer = torch.optim.LBFGS(
        params,
        lr=1.0,
        max_iter=max_iter,
        history_size=20,
        tolerance_grad=1e-6,
        tolerance_change=1e-9,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = sum(
            fmt.loss(fmt.head_logits(head, reps, batch), batch) * (len(batch["input_ids"]) / total)
            for reps, batch in cached
        )
        loss = loss + l2 / 2 * sum((w**2).sum() for w in weights)
        loss.backward()
        return loss

    optimizer.step(closure)


@torch.no_grad()
def _outputs(
    head: nn.Module, fmt, cached: list[tuple[torch.Tensor, dict]], used: list[int], n: int
) -> list[np.ndarray]:
    out: list[np.ndarray] = [np.empty(0)] * n
    rows = (row for reps, batch in cached for row in fmt.head_logits(head, reps, batch).float().cpu().numpy())
    for i, row in zip(used, rows):
        out[i] = row
    return out


def fit_probe(
    model: nn.Module,
    tasks: list[ProbeTask],
    l2s: list[float],
    batch_size: int,
    pad_id: int,
    seed: int,
    probe_input: str,
    max_iter: int = 100,
    max_bytes: int = MAX_CACHE_BYTES,
) -> dict:
    """Fit the heads of ``model`` (a MultiHeadModel) on its frozen backbone, one head at a time (tasks sharing a
    head are fit together; the dev score is their mean); returns what the phase did, per head. With
    ``probe_input`` normalised, the model's heads must normalise their input (``build_multitask(normalised=True)``)."""
    start = time.perf_counter()
    model.eval()
    report = {}
    heads: dict[str, list[ProbeTask]] = {}
    for t in tasks:
        if model.formats[t.name].probe_able:
            heads.setdefault(model.head_of[t.name], []).append(t)
    for head_name, group in heads.items():
        head, fmt = model.heads[head_name], model.formats[group[0].name]
        train, dev, train_examples = [], [], 0
        for k, t in enumerate(group):
            order = np.random.default_rng([seed, k]).permutation(len(t.train))
            cached, used = _cache(model, t.name, t.train, order, batch_size, pad_id, max_bytes // len(group))
            train += cached
            train_examples += len(used)
            dev.append(_cache(model, t.name, t.dev, np.arange(len(t.dev)), batch_size, pad_id, 1 << 62))
        standardised = probe_input == "standardised"
        if standardised:
            mean, std = _standardise(train, [cached for cached, _ in dev])
        curve, best = [], None
        for l2 in sorted(l2s, reverse=True):  # strongest first; each fit warm-starts the next
            _fit(head, fmt, train, l2, max_iter)
            score = float(
                np.mean(
                    [
                        t.dev_score(_outputs(head, fmt, cached, used, len(t.dev)))
                        for t, (cached, used) in zip(group, dev, strict=True)
                    ]
                )
            )
            curve.append([l2, score])
            if best is None or score > best[0]:
                best = (score, l2, {k: v.clone() for k, v in head.state_dict().items()})
        head.load_state_dict(best[2])
        if standardised:
            _fold(head, mean, std)
        report[head_name] = {
            "l2": best[1],
            "dev_curve": curve,
            "train_examples": train_examples,
            "head": head_fingerprint(head),
        }
    return {"input": probe_input, "heads": report, "seconds": round(time.perf_counter() - start, 3)}
