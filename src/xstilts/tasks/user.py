"""Tasks defined without Python: one YAML file per task in a folder, data in JSONL, CSV or TSV files.

``register_tasks_dir(folder)`` registers every ``*.yaml`` (or ``*.yml``) file of ``folder``::

    name: support-intent        # unique; lowercase letters, digits and _ . -
    description: ...            # optional, free text
    format: classification      # classification | multiple_choice | span_qa | tagging
    kind: intermediate          # intermediate (default) | target
    metric: accuracy            # optional: classification, multiple_choice: accuracy; tagging: seqeval;
                                #   span_qa: squad (default) or squad_v2 (allows unanswerable questions)
    labels: [billing, delivery, returns]   # classification and tagging (the tags) only; non-empty, unique
    fields: {text: utterance, label: intent, id: ticket}   # format field -> column / JSON key
    data:                       # split -> file, relative to this YAML file; .jsonl, .csv or .tsv
      train: ../data/train.jsonl          # train and dev are English ({lang} becomes en)
      dev: ../data/dev.jsonl
      test: ../data/test-{lang}.csv       # one file per language of `languages`; required for a target
    languages: [en, de]         # the test languages; default [en]

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
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from xstilts.cache import sha256_file
from xstilts.config import NONE_SETTING, field_error, read_yaml_mapping, validation_error
from xstilts.data.files import jsonl_rows, read_text
from xstilts.errors import UserError
from xstilts.tasks import registry
from xstilts.tasks.registry import TaskDef

METRICS = {"classification": ("accuracy",), "multiple_choice": ("accuracy",), "span_qa": ("squad", "squad_v2"),
           "tagging": ("seqeval",)}
FORMAT_FIELDS = {"multiple_choice": ("question", "choices", "label"),
                 "span_qa": ("question", "context", "answer", "answer_start"), "tagging": ("tokens", "tags")}
INPUTS = {"multiple_choice": ("question", "choices"), "span_qa": ("question", "context"), "tagging": ("tokens",)}
SUFFIXES = (".jsonl", ".csv", ".tsv")


class TaskFile(BaseModel):
    """One task definition file (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    description: str = ""
    format: Literal["classification", "multiple_choice", "span_qa", "tagging"]
    kind: Literal["intermediate", "target"] = "intermediate"
    metric: str | None = None
    labels: list[str] | None = None
    fields: dict[str, Any] = Field(default_factory=dict)  # a column name, or for choices a list of them
    data: dict[Literal["train", "dev", "test"], str]
    languages: list[str] = Field(default_factory=lambda: ["en"], min_length=1)

    @field_validator("labels", mode="before")
    @classmethod
    def _numbers_as_text(cls, v: Any) -> Any:
        """``labels: [0, 1]`` means the strings "0" and "1" (labels are compared as strings)."""
        return [str(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else x for x in v] \
            if isinstance(v, list) else v


class _Bad(Exception):
    def __init__(self, loc: tuple, msg: str):
        self.loc, self.msg = loc, msg


def _yaml_error(path: Path, loc: tuple, msg: str) -> UserError:
    """``path:line: field: msg``, the line looked up in the YAML file."""
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        root = None
    return field_error(path, root, loc, msg)


def _columns(spec: TaskFile) -> dict[str, str | list[str]]:
    """format field -> column, defaults filled in; _Bad on a field the format does not read."""
    given = dict(spec.fields)
    if spec.format == "classification":
        pair = {"text_a", "text_b"} & given.keys()
        if pair and "text" in given:
            raise _Bad(("fields", "text"), "use text, or text_a and text_b, not both")
        if len(pair) == 1:
            raise _Bad(("fields", pair.pop()), "text_a and text_b go together")
        wanted = (("text_a", "text_b") if pair else ("text",)) + ("label",)
    else:
        wanted = FORMAT_FIELDS[spec.format]
    for key, col in given.items():
        if key not in wanted and key != "id":
            known = ", ".join(("text", "text_a", "text_b", "label") if spec.format == "classification" else wanted)
            raise _Bad(("fields", key), f"not a field of {spec.format} (fields: {known}, id)")
        if key == "choices" and isinstance(col, list):
            if len(col) < 2 or not all(isinstance(c, str) for c in col):
                raise _Bad(("fields", key), "expected one column, or a list of two column names or more")
        elif not isinstance(col, str):
            raise _Bad(("fields", key), f"expected a column name (got {col!r})")
    return {f: given.get(f, f) for f in wanted} | ({"id": given["id"]} if "id" in given else {})


def _check(spec: TaskFile, path: Path) -> TaskFile:
    """The cross-field rules pydantic's types do not express; the spec with metric and fields filled in."""
    if spec.name == NONE_SETTING:
        raise _Bad(("name",), f"{NONE_SETTING!r} is the no-intermediate baseline, not a task name")
    metric = spec.metric or METRICS[spec.format][0]
    if metric not in METRICS[spec.format]:
        raise _Bad(("metric",), f"{spec.format} is scored with {' or '.join(METRICS[spec.format])} (got {metric!r})")
    if spec.format in ("classification", "tagging"):
        if spec.labels is None:
            raise _Bad(("labels",), f"required for {spec.format}")
        if not spec.labels:
            raise _Bad(("labels",), "must not be empty")
        if dup := next((x for i, x in enumerate(spec.labels) if x in spec.labels[:i]), None):
            raise _Bad(("labels",), f"{dup!r} is listed twice")
    elif spec.labels is not None:
        raise _Bad(("labels",), f"not used by {spec.format}")
    if dup := next((x for i, x in enumerate(spec.languages) if x in spec.languages[:i]), None):
        raise _Bad(("languages",), f"{dup!r} is listed twice")
    columns = _columns(spec)
    needed = ("train", "dev", "test") if spec.kind == "target" else ("train", "dev")
    if missing := next((s for s in needed if s not in spec.data), None):
        raise _Bad(("data",), f"missing the {missing} split ({spec.kind} tasks need {', '.join(needed)})")
    for split, rel in spec.data.items():
        try:
            names = {f for _, f, _, _ in string.Formatter().parse(rel) if f is not None}
        except ValueError as e:
            raise _Bad(("data", split), f"bad placeholder in {rel!r}: {e}") from None
        if other := sorted(names - {"lang"}):
            raise _Bad(("data", split), f"unknown placeholder {{{other[0]}}}; only {{lang}} is allowed")
        if split == "test" and len(spec.languages) > 1 and "lang" not in names:
            raise _Bad(("data", split), f"needs a {{lang}} placeholder: there are {len(spec.languages)} languages")
        if Path(rel).suffix not in SUFFIXES:
            raise _Bad(("data", split), f"unsupported file type {Path(rel).suffix or rel!r} (use .jsonl, .csv or .tsv)")
        for lang in spec.languages if split == "test" else ["en"]:
            file = _data_file(path, rel, lang)
            if not file.is_file():
                raise _Bad(("data", split), f"missing data file {file}")
    return spec.model_copy(update={"metric": metric, "fields": columns})


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
            raise UserError(f"{file}:1: missing column {missing!r} (the header has {', '.join(header) or 'nothing'})")
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
            raise UserError(f"{self.path}: task {self.spec.name!r} has no language {language!r} "
                            f"(it has {', '.join(self.spec.languages)})")
        return _data_file(self.path, self.spec.data[split], language)

    def load(self, split: str, language: str) -> list[dict]:
        file = self.file(split, language)
        cols = self.spec.fields
        names = [c for v in cols.values() for c in (v if isinstance(v, list) else [v])]
        examples, ids, n_choices = [], set(), None
        for line, row in _rows(file, names):
            ex = _example(self.spec, row, f"{file}:{line}")
            ex["id"] = ex.get("id", f"{file.name}:{line}")
            if ex["id"] in ids:
                raise UserError(f"{file}:{line}: duplicate id {ex['id']!r}")
            ids.add(ex["id"])
            if self.spec.format == "multiple_choice":
                n_choices = n_choices or len(ex["choices"])
                if len(ex["choices"]) != n_choices:
                    raise UserError(f"{file}:{line}: {len(ex['choices'])} choices, earlier examples have {n_choices}")
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


def _example(spec: TaskFile, row: dict, at: str) -> dict:
    """One record mapped into the format's example schema; ``at`` is ``file:line`` for errors."""
    cols = spec.fields

    def raw(col: str) -> Any:
        if row.get(col) is None:
            raise UserError(f"{at}: missing field {col!r}")
        return row[col]

    def text(col: str) -> str:
        if not isinstance(v := raw(col), str):
            raise UserError(f"{at}: field {col!r} must be a string (got {type(v).__name__})")
        return v

    def words(col: str) -> list[str]:
        v = raw(col)
        v = v.split() if isinstance(v, str) else v
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise UserError(f"{at}: field {col!r} must be a list of strings")
        return v

    def integer(col: str, v: Any = None) -> int:
        v = raw(col) if v is None else v
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        if isinstance(v, str) and v.strip().isdigit():
            return int(v)
        raise UserError(f"{at}: field {col!r} must be a whole number (got {v!r})")

    ex: dict[str, Any] = {}
    if "id" in cols:
        if not (ex_id := str(raw(cols["id"])).strip()):
            raise UserError(f"{at}: empty id in field {cols['id']!r}")
        ex["id"] = ex_id
    if spec.format == "classification":
        ex |= {f: text(cols[f]) for f in cols if f.startswith("text")}
        label = raw(cols["label"])
        label = str(label) if isinstance(label, int) and not isinstance(label, bool) else label
        if label not in spec.labels:
            raise UserError(f"{at}: label {label!r} is not one of {', '.join(spec.labels)}")
        ex["label"] = label
    elif spec.format == "multiple_choice":
        c = cols["choices"]
        choices = [text(x) for x in c] if isinstance(c, list) else raw(c)
        if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(x, str) for x in choices):
            raise UserError(f"{at}: field {c!r} must be a list of two strings or more"
                            + (" (in CSV/TSV, map choices to a list of columns)" if isinstance(choices, str) else ""))
        label = integer(cols["label"])
        if not 0 <= label < len(choices):
            raise UserError(f"{at}: label {label} is not a choice index (0 to {len(choices) - 1})")
        ex |= {"question": text(cols["question"]), "choices": choices, "label": label}
    elif spec.format == "span_qa":
        context, answer, start = text(cols["context"]), raw(cols["answer"]), raw(cols["answer_start"])
        answers = [answer] if isinstance(answer, str) else answer
        starts = [start] if not isinstance(start, list) else start
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
            raise UserError(f"{at}: field {cols['answer']!r} must be a string or a list of strings")
        answers = [a for a in answers if a]
        starts = [integer(cols["answer_start"], s) for s in starts if s != ""]
        if len(starts) != len(answers):
            raise UserError(f"{at}: {len(answers)} answers but {len(starts)} answer_start values")
        if not answers and spec.metric != "squad_v2":
            raise UserError(f"{at}: no answer (only metric squad_v2 allows unanswerable questions)")
        for a, s in zip(answers, starts):
            if context[s:s + len(a)] != a:
                raise UserError(f"{at}: answer {a!r} is not at answer_start {s} of the context")
        ex |= {"question": text(cols["question"]), "context": context,
               "answers": {"text": answers, "answer_start": starts}}
    else:
        tokens, tags = words(cols["tokens"]), words(cols["tags"])
        if not tokens or len(tokens) != len(tags):
            raise UserError(f"{at}: {len(tokens)} tokens but {len(tags)} tags")
        if bad := next((t for t in tags if t not in spec.labels), None):
            raise UserError(f"{at}: tag {bad!r} is not one of {', '.join(spec.labels)}")
        ex |= {"tokens": tokens, "tags": tags}
    return ex


def load_task_file(path: str | Path) -> TaskDef:
    """The task of one definition file; any problem in it is a one-line UserError (data rows are read later)."""
    path = Path(path)
    data, root = read_yaml_mapping(path, "task")
    try:
        spec = _check(TaskFile.model_validate(data), path)
    except ValidationError as e:
        raise validation_error(path, root, e) from None
    except _Bad as e:
        raise field_error(path, root, e.loc, e.msg) from None
    fields = tuple(f for f in spec.fields if f.startswith("text")) if spec.format == "classification" \
        else INPUTS[spec.format]
    return TaskDef(spec.name, spec.format, spec.kind, spec.metric, UserSource(spec, path), fields=fields)


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
            raise _yaml_error(file, ("name",), f"task {task.name!r} is also defined in {tasks[task.name].source.path}")
        tasks[task.name] = task
    return list(tasks.values())


def check_task(task: TaskDef) -> dict[str, int]:
    """Read every split and language of a task (raising on the first bad row); ``{"train-en": n, ...}``."""
    splits = [(s, task.train_language) for s in ("train", "dev")] + [("test", lang) for lang in task.languages]
    return {f"{s}-{lang}": len(task.source.load(s, lang)) for s, lang in splits if s in task.source.spec.data}


def register_tasks_dir(folder: str | Path, check_data: bool = True) -> list[TaskDef]:
    """Register the tasks of ``folder`` (all or none), after reading all their data when ``check_data``.
    A name taken by a built-in task or another file is an error naming the YAML file; registering the
    same file again replaces its task."""
    tasks = load_tasks_dir(folder)
    for task in tasks:
        old = registry.get_task(task.name, quiet=True)
        if old is not None and not (isinstance(old.source, UserSource)
                                    and old.source.path.resolve() == task.source.path.resolve()):
            other = f"in {old.source.path}" if isinstance(old.source, UserSource) else "as a built-in task"
            raise _yaml_error(task.source.path, ("name",), f"task {task.name!r} is already defined {other}")
        if check_data:
            check_task(task)
    for task in tasks:
        registry._TASKS[task.name] = task
    return tasks


def registered_dirs() -> list[Path]:
    """Folders of the user tasks registered in this process: what a worker process registers again."""
    return list(dict.fromkeys(t.source.path.parent.resolve() for t in registry._TASKS.values()
                              if isinstance(t.source, UserSource)))
