"""A task definition: data (format, kind, metric, source), not a class."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from xstilts.data.sources import Source
from xstilts.formats.base import Format
from xstilts.formats.registry import get_format


@dataclass(frozen=True)
class TaskDef:
    """One task. ``format`` is the format object (a registered format's name is accepted and looked up);
    ``fields`` name the example keys the format reads. The test examples of a ``parallel`` task carry
    ``xstilts.data.items.ITEM``, which names an item alike in every language."""

    name: str
    format: Format
    kind: str  # target | intermediate
    metric: str
    source: Source = field(compare=False)
    fields: tuple[str, ...] = ("text",)
    train_language: str = "en"
    train_task: str | None = None  # English train/dev come from this task (XNLI trains on MNLI)
    local: Callable[[Path], Source] | None = field(default=None, compare=False)  # reader of the official layout
    protocol: dict = field(default_factory=dict, compare=False)  # {"train": {...}, "eval": {...}} paper defaults
    head: str | None = None  # tasks naming the same head train one shared head (same format and labels)
    parallel: bool = False  # the test set is parallel across languages: the same items translated

    def __post_init__(self) -> None:
        if isinstance(self.format, str):
            object.__setattr__(self, "format", get_format(self.format))

    @property
    def head_name(self) -> str:
        return self.head or self.name

    @property
    def languages(self) -> tuple[str, ...]:
        return self.source.languages()

    @property
    def labels(self) -> tuple[str, ...] | None:
        return self.source.labels()

    @property
    def headline(self) -> str:
        """The metric a report leads with and checkpoints are selected on."""
        return self.format.headline(self.metric)
