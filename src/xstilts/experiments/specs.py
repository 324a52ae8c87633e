"""Typed, frozen job specs, one class per job kind, and the job that carries one.

A spec holds everything that decides a job's output; the job id is the hash of its JSON form, which is the
same dict earlier versions hashed, so ids of unchanged experiments hold.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from xstilts.config.schema import NONE_SETTING, EvalConfig, TrainConfig, train_spec


@dataclass(frozen=True)
class ModelSpec:
    """The pretrained model and what every job of it shares."""

    model: str
    weights: str  # fingerprint of the weights behind ``model``
    head_pooling: str
    data_dir: str | None
    backbone: Mapping[str, Any] = field(default_factory=dict, hash=False)  # BackboneConfig.spec(): dtype, lora
    gradient_checkpointing: bool = False  # how training runs, not what it computes: not in the id

    def as_dict(self) -> dict[str, Any]:
        """Its fields, without ``backbone`` when it holds the defaults (ids of earlier experiments hold)."""
        fields = dict(vars(self))
        del fields["gradient_checkpointing"]
        if not fields["backbone"]:
            del fields["backbone"]
        else:
            fields["backbone"] = json.loads(json.dumps(fields["backbone"]))
        return fields


@dataclass(frozen=True)
class JobSpec:
    """What all job kinds hold: the model, the intermediate tasks the encoder has seen, the seed (None: a job
    whose result does not depend on one) and the upstream job whose checkpoint it starts from."""

    kind: ClassVar[str]
    trains: ClassVar[bool] = True  # a training job (launched on several processes when the config asks)
    model: ModelSpec
    intermediate: tuple[str, ...]
    seed: int | None
    upstream: str | None

    @property
    def setting(self) -> str:
        return "+".join(self.intermediate) or NONE_SETTING

    def as_dict(self) -> dict[str, Any]:
        """The spec as plan.json and result.json hold it, and as the job id hashes it."""
        return {
            "kind": self.kind,
            **self.model.as_dict(),
            "intermediate": list(self.intermediate),
            **self._own(),
            "seed": self.seed,
            "upstream": self.upstream,
        }

    def _own(self) -> dict[str, Any]:
        return {}


def _precision(mixed_precision: str) -> dict[str, str]:
    """Mixed precision changes what training computes; full precision stays out of the spec (older ids hold)."""
    return {"mixed_precision": mixed_precision} if mixed_precision != "no" else {}


@dataclass(frozen=True)
class IntermediateSpec(JobSpec):
    """Training on English intermediate tasks; hands its encoder to target jobs."""

    kind: ClassVar[str] = "intermediate"
    data: Mapping[str, str]  # task -> checksum of its train and dev data
    train: TrainConfig
    mixed_precision: str = "no"

    def _own(self) -> dict[str, Any]:
        return {"data": dict(self.data), "train": train_spec(self.train), **_precision(self.mixed_precision)}


def _eval(evaluation: EvalConfig, parallel: bool) -> dict[str, Any]:
    """A target's evaluation: the fixed subsets of a parallel test set keep the same items in every language,
    which is recorded only where there are subsets (ids of full test sets hold)."""
    keyed = parallel and evaluation.max_examples_per_language is not None
    return evaluation.model_dump() | ({"subset": "items"} if keyed else {})


@dataclass(frozen=True)
class TargetSpec(JobSpec):
    """English fine-tuning on a target task, then zero-shot evaluation in its languages."""

    kind: ClassVar[str] = "target"
    target: str
    data: str  # checksum of every split the job reads
    eval: EvalConfig
    train: TrainConfig
    mixed_precision: str = "no"
    parallel: bool = False  # the target's test set is parallel across languages (``TaskDef.parallel``)

    def _own(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "data": self.data,
            "eval": _eval(self.eval, self.parallel),
            "train": train_spec(self.train),
            **_precision(self.mixed_precision),
        }


@dataclass(frozen=True)
class RetrievalSpec(JobSpec):
    """Zero-shot evaluation of a task read off the encoder alone (no training)."""

    kind: ClassVar[str] = "retrieval"
    trains: ClassVar[bool] = False
    target: str
    data: str
    eval: EvalConfig

    def _own(self) -> dict[str, Any]:
        return {"target": self.target, "data": self.data, "eval": self.eval.model_dump()}


def spec_id(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Job:
    """One unit of work: its spec and id (the spec's hash). ``grid`` (not part of the spec) holds each grid key's
    value where every grid point that needs the job agrees, else None."""

    spec: JobSpec
    grid: dict[str, Any] = field(default_factory=dict, compare=False)
    id: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "id", spec_id(self.spec.as_dict()))

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def upstream(self) -> str | None:
        return self.spec.upstream

    @property
    def setting(self) -> str:
        return self.spec.setting

    @property
    def target(self) -> str | None:
        return getattr(self.spec, "target", None)

    def plan_entry(self) -> dict[str, Any]:
        """The job as plan.json lists it."""
        return {
            "id": self.id,
            "kind": self.kind,
            "upstream": self.upstream,
            "grid": self.grid,
            "spec": self.spec.as_dict(),
        }
