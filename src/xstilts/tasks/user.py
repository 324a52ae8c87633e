"""Tasks defined without Python: one YAML file per task in a folder, data in JSONL, CSV or TSV files.

``TaskCatalog.with_dir(folder)`` adds the task of every ``*.yaml`` (or ``*.yml``) file of ``folder``::

    name: support-intent        # unique; lowercase letters, digits and _ . -
    description: ...            # optional, free text
    format: classification      # classification | multiple_choice | span_qa | tagging
    kind: intermediate          # intermediate (default) | target
    metric: accuracy            # optional: classification, multiple_choice: accuracy; tagging: seqeval;
                                #   span_qa: squad (default) or squad_v2 (allows unanswerable questions)
    labels: [billing, delivery, returns]   # classification and tagging (the tags) only; non-empty, unique
    fields: {text: utterance, label: intent, id: ticket}   # format field -> column / JSON key
    data:                       # split -> file: absolute, or relative to this YAML file and inside the folder
                                #   above it (tasks/ beside data/); .jsonl, .csv or .tsv
      train: ../data/train.jsonl          # train and dev are English ({lang} becomes en)
      dev: ../data/dev.jsonl
      test: ../data/test-{lang}.csv       # one file per language of `languages`; required for a target
    languages: [en, de]         # the test languages; default [en]
    parallel: true              # optional (default false): the test files hold the same items in every language
                                #   (translations), keyed by the id column, else by their row (the same order)

Fields per format (a field left out of ``fields`` reads the column of its own name):

- classification: ``text``, or ``text_a`` and ``text_b`` for pairs; ``label`` (a string of ``labels``)
- multiple_choice: ``question``; ``choices``: a column holding a list, or a list of columns
  (``[c0, c1, c2]``); ``label``: the 0-based index of the right choice. Every example has as many choices.
- span_qa: ``question``, ``context``, ``answer`` (a text or a list of texts; empty: no answer, squad_v2
  only) and ``answer_start`` (the character offset of each answer in the context)
- tagging: ``tokens`` and ``tags``, lists (in CSV/TSV: space-separated); every tag one of ``labels``
- every format: ``id``, a column of unique example ids; without it an example's id is ``<file>:<line>``

CSV and TSV files start with a header row and are read by Python's csv module (TSV: the excel-tab
dialect). Every problem is one UserError line naming the file and line.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import string
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator

from xstilts.cache import sha256_file
from xstilts.config.schema import NONE_SETTING
from xstilts.config.yaml_file import field_error, read_yaml_mapping, validation_error
from xstilts.data.files import jsonl_rows, read_text
from xstilts.data.items import ITEM, row_key
from xstilts.errors import UserError
from xstilts.formats.base import FieldProblem, Format, Row
from xstilts.formats.registry import format_names, get_format
from xstilts.tasks.definition import TaskDef

SUFFIXES = (".jsonl", ".csv", ".tsv")


class TaskFile(BaseModel):
    """One task definition file (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    description: str = ""
    format: str
    kind: Literal["intermediate", "target"] = "intermediate"
    metric: str | None = None
    labels: list[str] | None = None
    fields: dict[str, Any] = Field(default_factory=dict)  # a column name, or for choices a list of them
    data: dict[Literal["train", "dev", "test"], str]
    languages: list[str] = Field(default_factory=lambda: ["en"], min_length=1)
    parallel: StrictBool = False

    @field_validator("format")
    @classmethod
    def _file_format(cls, name: str) -> str:
        offered = [n for n in format_names() if get_format(n).user_fields]
        if name not in offered:
            raise ValueError(f"expected one of {', '.join(offered)}")
        return name

    @field_validator("labels", mode="before")
    @classmethod
    def _numbers_as_text(cls, v: Any) -> Any:
        """``labels: [0, 1]`` means the strings "0" and "1" (labels are compared as strings)."""
        return (
            [str(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else x for x in v]
            if isinstance(v, list)
            else v
        )


def task_file_error(path: Path, loc: tuple, msg: str) -> UserError:
    """``path:line: field: msg``, the line looked up in the YAML file."""
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        root = None
    return field_error(path, root, loc, msg)


def _check(spec: TaskFile, path: Path) -> TaskFile:
    """The cross-field rules pydantic's types do not express; the spec with metric and fields filled in."""
    if spec.name == NONE_SETTING:
        raise FieldProblem(("name",), f"{NONE_SETTING!r} is the no-intermediate baseline, not a task name")
    fmt = get_format(spec.format)
    metric = spec.metric or fmt.metrics[0]
    if metric not in fmt.metrics:
        raise FieldProblem(("metric",), f"{spec.format} is scored with {' or '.join(fmt.metrics)} (got {metric!r})")
    if fmt.labelled:
        if spec.labels is None:
            raise FieldProblem(("labels",), f"required for {spec.format}")
        if not spec.labels:
            raise FieldProblem(("labels",), "must not be empty")
        if dup := next((x for i, x in enumerate(spec.labels) if x in spec.labels[:i]), None):
            raise FieldProblem(("labels",), f"{dup!r} is listed twice")
    elif spec.labels is not None:
        raise FieldProblem(("labels",), f"not used by {spec.format}")
    if dup := next((x for i, x in enumerate(spec.languages) if x in spec.languages[:i]), None):
        raise FieldProblem(("languages",), f"{dup!r} is listed twice")
    columns = fmt.user_columns(dict(spec.fields))
    needed = ("train", "dev", "test") if spec.kind == "target" else ("train", "dev")
    if missing := next((s for s in needed if s not in spec.data), None):
        raise FieldProblem(("data",), f"missing the {missing} split ({spec.kind} tasks need {', '.join(needed)})")
    for split, rel in spec.data.items():
        try:
            names = {f for _, f, _, _ in string.Formatter().parse(rel) if f is not None}
        except ValueError as e:
            raise FieldProblem(("data", split), f"bad placeholder in {rel!r}: {e}") from None
        if other := sorted(names - {"lang"}):
            raise FieldProblem(("data", split), f"unknown placeholder {{{other[0]}}}; only {{lang}} is allowed")
        if split == "test" and len(spec.languages) > 1 and "lang" not in names:
            raise FieldProblem(
                ("data", split), f"needs a {{lang}} placeholder: there are {len(spec.languages)} languages"
            )
        root = _data_root(path)
        for lang in spec.languages if split == "test" else ["en"]:
            if not Path(rel).is_absolute() and not Path(os.path.abspath(_data_file(path, rel, lang))).is_relative_to(
                root
            ):
                raise FieldProblem(("data", split), f"{rel!r} is outside {root} (a relative data path stays inside it)")
        if Path(rel).suffix not in SUFFIXES:
            raise FieldProblem(
                ("data", split), f"unsupported file type {Path(rel).suffix or rel!r} (use .jsonl, .csv or .tsv)"
            )
        for lang in spec.languages if split == "test" else ["en"]:
            file = _data_file(path, rel, lang)
            if not file.is_file():
                raise FieldProblem(("data", split), f"missing data file {file}")
    return spec.model_copy(update={"metric": metric, "fields": columns})


def _data_root(yaml_path: Path) -> Path:
    """The folder a task's data must lie in: the one holding the task file's folder (``tasks/`` beside ``data/``)."""
    return Path(os.path.abspath(yaml_path.parent)).parent


def _data_file(yaml_path: Path, rel: str, lang: str) -> Path:
    return Path(os.path.normpath(yaml_path.parent / rel.format(lang=lang)))


def _rows(file: Path, columns: list[str]) -> Iterator[tuple[int, dict]]:
    """(line, record) of a JSONL, CSV or TSV file; CSV/TSV must have every column in their header."""
    text = read_text(file).removeprefix("\ufeff")
    if file.suffix == ".jsonl":
        yield from jsonl_rows(file, text)
        return
    reader = csv.reader(io.StringIO(text, newline=""), dialect="excel-tab" if file.suffix == ".tsv" else "excel")
    try:
        header = next(reader, None) or []
        if missing := next((c for c in columns if c not in header), None):
            names = ", ".join(h if h.isprintable() else repr(h) for h in header)  # a quoted line break stays quoted
            raise UserError(f"{file}:1: missing column {missing!r} (the header has {names or 'nothing'})")
        prev = reader.line_num
        for values in reader:
            start, prev = prev + 1, reader.line_num
            if not values:
                continue
            if len(values) != len(header):
                raise UserError(f"{file}:{start}: {len(values)} values, but the header has {len(header)} columns")
            yield start, dict(zip(header, values))
    except csv.Error as e:
        raise UserError(f"{file}:{reader.line_num}: invalid {file.suffix[1:].upper()}: {e}") from None


@dataclass(frozen=True, eq=False)
class UserSource:
    """The data of a task definition file; ``spec`` has its fields and metric filled in by ``_check``."""

    spec: TaskFile
    path: Path  # the YAML file

    def languages(self) -> tuple[str, ...]:
        return tuple(self.spec.languages)

    def labels(self) -> tuple[str, ...] | None:
        return tuple(self.spec.labels) if self.spec.labels is not None else None

    def file(self, split: str, language: str) -> Path:
        if split not in self.spec.data:
            raise UserError(f"{self.path}: task {self.spec.name!r} has no {split} split")
        if split == "test" and language not in self.spec.languages:
            raise UserError(
                f"{self.path}: task {self.spec.name!r} has no language {language!r} "
                f"(it has {', '.join(self.spec.languages)})"
            )
        return _data_file(self.path, self.spec.data[split], language)

    def load(self, split: str, language: str) -> list[dict]:
        file = self.file(split, language)
        cols = self.spec.fields
        fmt = get_format(self.spec.format)
        names = [c for v in cols.values() for c in (v if isinstance(v, list) else [v])]
        examples, ids = [], set()
        for line, row in _rows(file, names):
            at = f"{file}:{line}"
            ex = _example(fmt, self.spec, Row(row, at))
            ex["id"] = ex.get("id", f"{file.name}:{line}")
            if self.spec.parallel:
                ex[ITEM] = ex["id"] if "id" in self.spec.fields else row_key(split, len(examples))
            if ex["id"] in ids:
                raise UserError(f"{at}: duplicate id {ex['id']!r}")
            ids.add(ex["id"])
            if examples:
                fmt.user_agrees(ex, examples[0], at)
            examples.append(ex)
        if not examples:
            raise UserError(f"{file}: no examples")
        return examples

    @cached_property
    def _definition(self) -> str:
        """What of the definition changes the examples or the head (so the job ids)."""
        return json.dumps(self.spec.model_dump(include={"format", "metric", "labels", "fields"}), sort_keys=True)

    def checksum(self, split: str, language: str) -> str:
        file = self.file(split, language)
        if not file.is_file():
            raise UserError(f"{file}: missing data file ({split} split, language {language!r})")
        return hashlib.sha256(f"{sha256_file(file)}\n{self._definition}".encode()).hexdigest()

    def describe(self) -> str:
        return f"user:{self.path}"


def _example(fmt: Format, spec: TaskFile, row: Row) -> dict:
    """One record mapped into the format's example schema, with its id when the file has an id column."""
    ex: dict[str, Any] = {}
    if "id" in spec.fields:
        if not (ex_id := str(row.raw(spec.fields["id"])).strip()):
            raise UserError(f"{row.at}: empty id in field {spec.fields['id']!r}")
        ex["id"] = ex_id
    return ex | fmt.user_example(row, spec.fields, spec.labels, spec.metric)


def load_task_file(path: str | Path) -> TaskDef:
    """The task of one definition file; any problem in it is a one-line UserError (data rows are read later)."""
    path = Path(path)
    data, root = read_yaml_mapping(path, "task")
    try:
        spec = _check(TaskFile.model_validate(data), path)
    except ValidationError as e:
        raise validation_error(path, root, e) from None
    except FieldProblem as e:
        raise field_error(path, root, e.loc, e.msg) from None
    fmt = get_format(spec.format)
    return TaskDef(
        spec.name,
        fmt,
        spec.kind,
        spec.metric,
        UserSource(spec, path),
        fields=fmt.user_inputs(spec.fields),
        parallel=spec.parallel,
    )


def load_tasks_dir(folder: str | Path) -> list[TaskDef]:
    """The tasks of every ``*.yaml`` / ``*.yml`` file in ``folder`` (not its subfolders), by file name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"{folder}: tasks folder not found")
    files = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    if not files:
        raise UserError(f"{folder}: no task definitions (*.yaml) in this folder")
    tasks: dict[str, TaskDef] = {}
    for file in files:
        task = load_task_file(file)
        if task.name in tasks:
            raise task_file_error(
                file, ("name",), f"task {task.name!r} is also defined in {tasks[task.name].source.path}"
            )
        tasks[task.name] = task
    return list(tasks.values())


def check_task(task: TaskDef) -> dict[str, int]:
    """Read every split and language of a task (raising on the first bad row); ``{"train-en": n, ...}``."""
    splits = [(s, task.train_language) for s in ("train", "dev")] + [("test", lang) for lang in task.languages]
    return {f"{s}-{lang}": len(task.source.load(s, lang)) for s, lang in splits if s in task.source.spec.data}
