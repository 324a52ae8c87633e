"""One shared backbone with a head per task (tasks may share a head): the model every training phase trains."""

from __future__ import annotations

import torch
from torch import nn

from xstilts.formats.base import HeadFormat
from xstilts.formats.heads import normalised_head
from xstilts.tasks.definition import TaskDef


class MultiHeadModel(nn.Module):
    """A backbone and named heads; ``head_of`` maps each task to its head. ``forward(task, batch)`` returns the
    task's loss on a labelled batch, ``logits(task, batch)`` its outputs."""

    def __init__(
        self,
        backbone: nn.Module,
        heads: dict[str, nn.Module],
        formats: dict[str, HeadFormat],
        head_of: dict[str, str],
        pooling: str,
    ):
        super().__init__()
        self.backbone = backbone
        self.heads = nn.ModuleDict(heads)
        self.formats = formats
        self.head_of = head_of
        self.pooling = pooling

    def logits(self, task: str, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.formats[task].logits(self.backbone, self.heads[self.head_of[task]], batch, self.pooling)

    def forward(self, task: str, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.formats[task].loss(self.logits(task, batch), batch)


def build_multitask(
    backbone: nn.Module, tasks: list[TaskDef], head_kind: str, pooling: str, normalised: bool = False
) -> MultiHeadModel:
    """A fresh head per head name (the first task naming it builds it), tied to the backbone where its format
    needs that (the masked LM's decoder); with ``normalised``, every head a probe can fit reads L2-normalised
    input (``formats.heads.NormalisedInput``)."""
    heads: dict[str, nn.Module] = {}
    for t in tasks:
        if t.head_name not in heads:
            head = t.format.make_head(t, backbone.config, head_kind)
            if normalised and t.format.probe_able:
                head = normalised_head(head, backbone.config.hidden_size)
            heads[t.head_name] = head
            t.format.attach(head, backbone)
    return MultiHeadModel(
        backbone, heads, {t.name: t.format for t in tasks}, {t.name: t.head_name for t in tasks}, pooling
    )
