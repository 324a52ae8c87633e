"""What every task format provides, and the shared batching helpers.

A format is one object (registered in ``xstilts.formats.registry``) that owns everything a kind of task
means: the example schema of user task files, featurize -> head -> loss -> predict -> score for formats
with a head (:class:`HeadFormat`), or ``evaluate`` on the encoder alone (:class:`EncoderFormat`), its
headline metric, its official prediction-file layout and its cost hint.

Format modules load without torch: the methods that compute import torch, ``heads`` and ``pooling`` in
their bodies.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from xstilts.errors import UserError
from xstilts.metrics import per_example

if TYPE_CHECKING:
    import torch
    from torch import nn
    from transformers import PretrainedConfig


class TaskInfo(Protocol):
    """What a format reads of a task definition (``xstilts.tasks.definition.TaskDef``)."""

    name: str
    metric: str
    fields: tuple[str, ...]
    train_language: str

    @property
    def labels(self) -> tuple[str, ...] | None: ...

    @property
    def languages(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class CostHint:
    """Typical tokens per sequence and sequences per example, for cost estimates before any data is read."""

    tokens: int
    sequences: int = 1


class FieldProblem(Exception):
    """A bad ``fields:`` entry of a user task file: the YAML location and what was expected."""

    def __init__(self, loc: tuple, msg: str):
        super().__init__(msg)
        self.loc, self.msg = loc, msg


@dataclass(frozen=True)
class Row:
    """One record of a user data file, read with errors naming ``at`` (``file:line``)."""

    values: dict
    at: str

    def raw(self, col: str) -> Any:
        if self.values.get(col) is None:
            raise UserError(f"{self.at}: missing field {col!r}")
        return self.values[col]

    def text(self, col: str) -> str:
        if not isinstance(v := self.raw(col), str):
            raise UserError(f"{self.at}: field {col!r} must be a string (got {type(v).__name__})")
        return v

    def words(self, col: str) -> list[str]:
        """A list of strings (in CSV/TSV: space-separated)."""
        v = self.raw(col)
        v = v.split() if isinstance(v, str) else v
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise UserError(f"{self.at}: field {col!r} must be a list of strings")
        return v

    def integer(self, col: str, value: Any = None) -> int:
        v = self.raw(col) if value is None else value
        if isinstance(v, int) and not isinstance(v, bool):
            return v
        if isinstance(v, str) and v.strip().isdecimal():  # isdigit() admits "²", which int() refuses
            return int(v)
        raise UserError(f"{self.at}: field {col!r} must be a whole number (got {v!r})")


def lines(values) -> str:
    """One value per line."""
    return "".join(f"{v}\n" for v in values)


class Format:
    """A kind of task. Subclasses set the class attributes and implement :class:`HeadFormat` or
    :class:`EncoderFormat`."""

    name: ClassVar[str]
    metrics: ClassVar[tuple[str, ...]] = ("accuracy",)  # metric schemes a task may name; the first is the default
    cost: ClassVar[CostHint] = CostHint(60)
    trains: ClassVar[bool] = True  # False: evaluated on the encoder alone, without a head or training
    eval_splits: ClassVar[tuple[str, ...]] = ("test",)  # splits a zero-shot evaluation reads per language
    subset_key: ClassVar[str | None] = "id"  # what a fixed test subset is keyed by; None: always whole sets
    user_fields: ClassVar[tuple[str, ...]] = ()  # fields of a user task file; empty: not offered there
    labelled: ClassVar[bool] = False  # user tasks list their label set
    file_ext: ClassVar[str] = "tsv"  # prediction files of tasks outside the suites (a suite names its own)

    def __repr__(self) -> str:
        return f"<format {self.name}>"

    def headline(self, metric: str) -> str:
        """The score key a report leads with, for a task scored by ``metric``."""
        return "accuracy"

    def test_languages(self, task: TaskInfo) -> tuple[str, ...]:
        """The languages a zero-shot evaluation reads."""
        return task.languages

    def official_files(self, predictions: list, examples: list[dict], ext: str) -> tuple[str, str] | None:
        """(prediction file text, label file text) in the layout XTREME's evaluate.py reads; None for a format
        without prediction files."""
        return None

    def user_columns(self, given: dict[str, Any]) -> dict[str, Any]:
        """``fields:`` of a user task file with defaults filled in (a field reads the column of its own name);
        FieldProblem on a field the format does not read."""
        for key, col in given.items():
            if key not in self.user_fields and key != "id":
                raise FieldProblem(
                    ("fields", key), f"not a field of {self.name} (fields: {', '.join(self.user_fields)}, id)"
                )
            if not isinstance(col, str):
                raise FieldProblem(("fields", key), f"expected a column name (got {col!r})")
        return {f: given.get(f, f) for f in self.user_fields} | ({"id": given["id"]} if "id" in given else {})

    def user_inputs(self, columns: dict[str, Any]) -> tuple[str, ...]:
        """The example keys the format reads (``TaskDef.fields``) of a user task with these columns."""
        return tuple(f for f in columns if f not in ("label", "id"))

    def user_example(self, row: Row, columns: dict[str, Any], labels: list[str] | None, metric: str) -> dict:
        """A user data record mapped into the format's example schema."""
        raise UserError(f"{row.at}: format {self.name} has no user task files")

    def user_agrees(self, example: dict, first: dict, at: str) -> None:
        """Check that a file's example agrees with its first one (e.g. in the number of choices)."""


class HeadFormat(Format, ABC):
    """featurize -> head -> logits -> loss / predict -> score.

    Features are dicts of ints or int lists (batched by ``collate``); keys starting with "_" carry metadata
    that stays out of batches. ``predict`` maps per-feature outputs back to one prediction per example.
    """

    probe_able: ClassVar[bool] = True  # whether a probe can fit the head on cached representations

    @abstractmethod
    def featurize(self, task: TaskInfo, examples: list[dict], tokenizer: Any, max_length: int) -> list[dict]: ...

    @abstractmethod
    def make_head(self, task: TaskInfo, config: PretrainedConfig, kind: str = "linear") -> nn.Module: ...

    def attach(self, head: nn.Module, backbone: nn.Module) -> None:
        """Tie the head to the backbone before training (the masked LM's decoder); most heads need nothing."""

    @abstractmethod
    def represent(self, backbone: nn.Module, batch: dict, pooling: str) -> torch.Tensor:
        """What the head reads: pooled vectors, or hidden states per token."""

    def head_logits(self, head: nn.Module, reps: torch.Tensor, batch: dict) -> torch.Tensor:
        return head(reps)

    def logits(self, backbone: nn.Module, head: nn.Module, batch: dict, pooling: str) -> torch.Tensor:
        return self.head_logits(head, self.represent(backbone, batch, pooling).float(), batch)  # heads: fp32

    @abstractmethod
    def loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor: ...

    @abstractmethod
    def predict(
        self, outputs: list[np.ndarray], features: list[dict], examples: list[dict], task: TaskInfo
    ) -> list: ...

    @abstractmethod
    def score(self, predictions: list, examples: list[dict], task: TaskInfo, language: str) -> dict[str, float]: ...

    def example_stats(
        self, predictions: list, examples: list[dict], task: TaskInfo, language: str, scores: dict[str, float]
    ) -> dict[str, np.ndarray]:
        """Per-example statistics that reproduce ``scores`` (see ``metrics.per_example``); by default each
        example scored alone, which is right for metrics that are means over examples."""
        return per_example.example_stats(lambda p, e: self.score(p, e, task, language), predictions, examples, scores)


class EncoderFormat(Format, ABC):
    """Evaluated on the pooled encoder alone: no head, no training."""

    trains: ClassVar[bool] = False

    @abstractmethod
    def evaluate(
        self,
        encode: Encode,
        task: TaskInfo,
        examples: dict[str, list[dict]],
        dev: Callable[[str], list],
        candidates: Callable[[], list[dict]],
    ) -> dict[str, Evaluation]:
        """Scores, predictions and per-example statistics per language of ``examples``. ``encode(texts,
        contexts=None)`` gives L2-normalised rows; ``dev(language)`` and ``candidates()`` read the task's dev
        split and its shared candidate pool, for the formats that need them."""


Encode = Callable[..., np.ndarray]


@dataclass(frozen=True)
class Evaluation:
    """One language's zero-shot result."""

    scores: dict[str, float]
    predictions: Any
    stats: dict[str, np.ndarray]


def label_files(predictions: list, golds: list, ext: str) -> tuple[str, str]:
    """Classification-style official files: one label per line, or ``{"label": ...}`` per line for jsonl."""
    if ext == "jsonl":
        return (lines(json.dumps({"label": p}) for p in predictions), lines(json.dumps({"label": g}) for g in golds))
    return lines(predictions), lines(golds)


def feature_length(feature: dict) -> int:
    """Tokens in a feature (all choices for multiple choice): the key for length-grouped batching."""
    ids = feature["input_ids"]
    return sum(len(x) for x in ids) if ids and isinstance(ids[0], list) else len(ids)


def _pad(rows: list[list[int]], width: int, pad_id: int) -> list[list[int]]:
    return [r + [pad_id] * (width - len(r)) for r in rows]


def padded(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token rows right-padded to the longest, and their attention mask: from the lengths, not from the pad id
    (a decoder pads with EOS, which may also stand inside a sequence)."""
    import torch

    width = max(len(r) for r in rows)
    return torch.tensor(_pad(rows, width, pad_id)), torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])


IGNORE_INDEX = -100


def collate(features: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Dynamic padding to the longest sequence in the batch: input_ids (B, L) or (B, C, L) for multiple
    choice, an attention mask, and every other non-"_" key ("label" becomes "labels"; lists pad with -100)."""
    import torch

    first = features[0]["input_ids"]
    if first and isinstance(first[0], list):  # (B, C, L): every choice padded to the longest of the batch
        ids, mask = padded([s for f in features for s in f["input_ids"]], pad_id)
        ids, mask = (t.view(len(features), len(first), -1) for t in (ids, mask))
    else:
        ids, mask = padded([f["input_ids"] for f in features], pad_id)
    batch = {"input_ids": ids, "attention_mask": mask}
    for key in features[0]:
        if key == "input_ids" or key.startswith("_"):
            continue
        values = [f[key] for f in features]
        if isinstance(values[0], list):
            values = _pad(values, max(len(v) for v in values), IGNORE_INDEX)
        batch["labels" if key == "label" else key] = torch.tensor(values)
    return batch
