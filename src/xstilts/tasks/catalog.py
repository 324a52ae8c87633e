"""The task catalog: an immutable value holding the built-in tasks and a config's user tasks.

Built once (``TaskCatalog.builtin()``, then ``with_dir`` / ``with_tasks``) and handed to validation, planning,
execution and workers; nothing changes it behind anyone's back. ``task@lang`` names the translation of a
task (``xstilts.tasks.translated``); a ``data_dir`` reads a task from its official-layout files.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from xstilts.errors import UserError
from xstilts.tasks.definition import TaskDef


@functools.cache
def _builtin() -> Mapping[str, TaskDef]:
    from xstilts.tasks import intermediate, mlm, pocket, xtreme, xtreme_retrieval

    tasks: dict[str, TaskDef] = {}
    for task in (*xtreme.TASKS, *intermediate.TASKS, *xtreme_retrieval.TASKS, *pocket.TASKS, *mlm.TASKS):
        if task.name in tasks:
            raise ValueError(f"built-in task {task.name!r} is defined twice")
        tasks[task.name] = task
    return MappingProxyType(tasks)


@dataclass(frozen=True)
class TaskCatalog:
    """Tasks by name. ``dirs`` are the user task folders it read (a worker process reads them again: pickling
    a catalog keeps its folders and added tasks, not its built-in definitions)."""

    tasks: Mapping[str, TaskDef]
    dirs: tuple[Path, ...] = ()
    added: tuple[TaskDef, ...] = field(default=(), repr=False)

    @classmethod
    def builtin(cls) -> TaskCatalog:
        return cls(_builtin())

    def __reduce__(self):
        return _rebuild, (self.dirs, self.added)

    def with_tasks(self, *tasks: TaskDef) -> TaskCatalog:
        """This catalog plus ``tasks`` (a name already taken is replaced: tests and notebooks define their own)."""
        return TaskCatalog(
            MappingProxyType({**self.tasks, **{t.name: t for t in tasks}}), self.dirs, (*self.added, *tasks)
        )

    def with_dir(self, folder: str | Path, check_data: bool = True) -> TaskCatalog:
        """This catalog plus the user tasks of ``folder`` (see ``xstilts.tasks.user``), after reading all their
        data when ``check_data``. A name taken by a built-in task or another folder is an error naming the file."""
        from xstilts.tasks.user import UserSource, check_task, load_tasks_dir, task_file_error

        if Path(folder).resolve() in self.dirs:
            return self
        tasks = load_tasks_dir(folder)
        for task in tasks:
            old = self.tasks.get(task.name)
            if old is not None:
                other = f"in {old.source.path}" if isinstance(old.source, UserSource) else "as a built-in task"
                raise task_file_error(task.source.path, ("name",), f"task {task.name!r} is already defined {other}")
            if check_data:
                check_task(task)
        return TaskCatalog(
            MappingProxyType({**self.tasks, **{t.name: t for t in tasks}}),
            (*self.dirs, Path(folder).resolve()),
            self.added,
        )

    def names(self) -> list[str]:
        return sorted(self.tasks)

    def find(self, name: str, data_dir: str | Path | None = None) -> TaskDef | None:
        """The definition of ``name`` (read from official-layout files under ``data_dir`` when given and the task
        has such a reader), or None."""
        task = self.tasks.get(name)
        if task is None and "@" in name:
            from xstilts.tasks.translated import variant

            base_name, _, language = name.partition("@")
            base = self.tasks.get(base_name)
            task = variant(base, language) if base is not None else None
        if task is not None and data_dir is not None and task.local is not None:
            task = replace(task, source=task.local(Path(data_dir)))
        return task

    def get(self, name: str, data_dir: str | Path | None = None) -> TaskDef:
        """``find``, or a UserError naming the known tasks."""
        task = self.find(name, data_dir)
        if task is None:
            raise UserError(f"unknown task {name!r} (known: {', '.join(self.names())})")
        return task

    def training_source(self, task: TaskDef, data_dir: str | Path | None = None):
        """Where a task's English train and dev splits come from."""
        return self.get(task.train_task, data_dir).source if task.train_task else task.source

    def checksum(self, task: TaskDef, splits: list[tuple[str, str]], data_dir: str | Path | None = None) -> str:
        """One checksum over the named (split, language) data; train and dev from the training source."""
        h = hashlib.sha256()
        for split, lang in splits:
            source = self.training_source(task, data_dir) if split in ("train", "dev") else task.source
            h.update(f"{split}-{lang}:{source.checksum(split, lang)}\n".encode())
        return h.hexdigest()[:16]


def _rebuild(dirs: tuple[Path, ...], added: tuple[TaskDef, ...]) -> TaskCatalog:
    catalog = TaskCatalog.builtin()
    for folder in dirs:
        catalog = catalog.with_dir(folder, check_data=False)
    return catalog.with_tasks(*added)
