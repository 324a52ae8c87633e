"""The experiment YAML schema (pydantic). It validates on its own: task names, models and other cross-references
are checked against a task catalog by ``xstilts.experiments.resolve``."""

from __future__ import annotations

import itertools
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from xstilts.config.protocols import NAMED, named_defaults

NONE_SETTING = "none"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


FREEZE_RE = r"^(embeddings|layers:[1-9][0-9]*)$"


class TrainConfig(_Strict):
    """Optimisation, recipe and budget of one training phase."""

    recipe: Literal["full", "probe", "lp-ft"] = Field(
        "lp-ft",
        description="full: fine-tune everything from a fresh head; probe: frozen encoder, only the heads "
        "train (fit on cached representations); lp-ft: the probe first, then full fine-tuning "
        "from its heads (Kumar et al. 2022)",
    )
    head: Literal["linear", "mlp"] = Field("linear", description="linear, or dense-tanh-linear (RoBERTa/jiant)")
    lr: float = Field(1e-5, gt=0)
    head_lr: float | None = Field(None, gt=0, description="learning rate of the heads (default: lr)")
    layer_decay: float | None = Field(
        None,
        gt=0,
        le=1,
        description="layer-wise lr decay: block i (1 = bottom) "
        "of L trains at lr * decay^(L+1-i), the embeddings at lr * decay^(L+1)",
    )
    freeze: list[Annotated[str, Field(pattern=FREEZE_RE)]] = Field(
        default_factory=list, description="backbone parts kept bitwise unchanged: embeddings, layers:N (first N)"
    )
    probe_l2: list[Annotated[float, Field(ge=0)]] = Field(
        default_factory=lambda: [1e-2, 1e-3, 1e-4, 1e-5],
        min_length=1,
        description="L2 strengths of the probe's L-BFGS fit; the best on English dev wins",
    )
    probe_input: Literal["standardised", "normalised"] = Field(
        "standardised",
        description="what the probe (recipes probe and lp-ft) fits on: standardised (each dimension to zero mean "
        "and unit variance over English train, folded into the head's first linear layer) or normalised (each "
        "vector the head reads, pooled or per token, L2-normalised and scaled by sqrt(hidden size), as the head "
        "then does in fine-tuning too); recipe full ignores it",
    )
    batch_size: int = Field(32, ge=1)
    grad_accum: int = Field(1, ge=1)
    epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, ge=1, description="optimizer updates; overrides epochs when set")
    max_examples: int | None = Field(None, ge=1, description="examples seen in all; overrides epochs when set")
    max_seconds: float | None = Field(None, gt=0, description="wall-clock cap on training (not reproducible)")
    max_train_examples: int | None = Field(None, ge=1, description="seeded subsample of each task's train split")
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    weight_decay: float = Field(0.01, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    max_length: int = Field(128, ge=8)
    sampler: Literal["proportional", "uniform", "temperature", "capped"] = "proportional"
    temperature: float = Field(2.0, gt=0, description="temperature sampler: p ~ n^(1/T)")
    sampler_cap: int | None = Field(None, ge=1, description="capped sampler: p ~ min(n, cap)")
    loss_weights: dict[str, float] = Field(default_factory=dict, description="task -> loss multiplier (default 1)")
    select_on_dev: bool = Field(False, description="keep the weights whose English dev score is best")
    eval_every_steps: int | None = Field(
        None,
        ge=1,
        description="with select_on_dev: score English dev every N updates (and at the end) instead of once an epoch",
    )
    eval_subset: int | None = Field(
        None,
        ge=1,
        description="with select_on_dev: score the first N English dev "
        "examples only (jiant's eval_subset_num); the reported dev metric uses all",
    )
    select_by: str = Field("macro", description="dev score to select on: macro (mean over tasks) or a task name")
    early_stopping_patience: int | None = Field(None, ge=1, description="stop after N dev scores without a gain")

    @model_validator(mode="after")
    def _sampler_settings(self) -> TrainConfig:
        if self.sampler == "capped" and self.sampler_cap is None:
            raise ValueError("sampler 'capped' needs sampler_cap")
        for field in ("early_stopping_patience", "eval_every_steps", "eval_subset"):
            if getattr(self, field) and not self.select_on_dev:
                raise ValueError(f"{field} needs select_on_dev: true")
        if self.recipe == "probe" and (self.freeze or self.layer_decay or self.head_lr):
            raise ValueError("recipe 'probe' trains no encoder part: freeze, layer_decay and head_lr do not apply")
        return self


SPEC_OPTIONAL = ("eval_every_steps", "eval_subset")  # left out of job specs while unset, so older ids hold


def train_spec(train: TrainConfig) -> dict:
    """A training phase as a job spec holds it: ``probe_input`` only where a probe reads it and it is not the
    standardised input every earlier version used, so older ids hold."""
    spec = {k: v for k, v in train.model_dump().items() if not (k in SPEC_OPTIONAL and v is None)}
    if train.recipe == "full" or train.probe_input == "standardised":
        del spec["probe_input"]
    return spec


class EvalConfig(_Strict):
    """Zero-shot evaluation settings of a target task."""

    batch_size: int = Field(64, ge=1)
    max_length: int = Field(128, ge=8)
    languages: list[str] | None = Field(None, min_length=1, description="evaluate only these of the task's languages")
    max_examples_per_language: int | None = Field(
        None, ge=1, description="evaluate a fixed (seed-independent) subset of each language"
    )
    layer: int | Literal["auto"] = Field(
        "auto", description="retrieval: hidden layer to pool; auto = round(14/24 depth)"
    )
    pooling: Literal["mean", "cls", "last"] = "mean"


class SelectConfig(_Strict):
    """Train every candidate, rank them by English dev score, and send the top k to the targets."""

    top_k: int = Field(ge=1)
    by: Literal["english_dev"] = "english_dev"


class SubsetsOf(_Strict):
    """An ``intermediate.settings`` entry standing for subsets of ``subsets_of`` of each size in ``sizes`` (size 0
    is the baseline, size k >= 2 a multi-task setting, names in listed order); a size with more than
    ``max_per_size`` subsets keeps a random sample of them, drawn with ``default_rng([seed, size])``."""

    subsets_of: list[str] = Field(min_length=1)
    sizes: list[int] = Field(min_length=1)
    max_per_size: int | None = Field(None, ge=1)
    seed: int = 0

    @field_validator("subsets_of")
    @classmethod
    def _once(cls, tasks: list[str]) -> list[str]:
        if len(set(tasks)) != len(tasks):
            raise ValueError("a task is listed twice")
        return tasks

    @model_validator(mode="after")
    def _sizes(self) -> SubsetsOf:
        if bad := [k for k in self.sizes if not 0 <= k <= len(self.subsets_of)]:
            raise ValueError(f"sizes {bad} are outside 0..{len(self.subsets_of)} (the number of tasks)")
        if len(set(self.sizes)) != len(self.sizes):
            raise ValueError("a size is listed twice")
        return self

    def settings(self) -> list[str]:
        """The settings this entry stands for, by size, then in listed order."""
        out = []
        for k in self.sizes:
            subsets = list(itertools.combinations(self.subsets_of, k))
            if self.max_per_size and len(subsets) > self.max_per_size:
                keep = np.random.default_rng([self.seed, k]).choice(len(subsets), self.max_per_size, replace=False)
                subsets = [subsets[i] for i in sorted(keep)]
            out += ["+".join(s) or NONE_SETTING for s in subsets]
        return out


# a task setting or a SubsetsOf mapping; the "tag:" loc parts pydantic adds are dropped from error paths
Setting = Annotated[
    Annotated[str, Tag("tag:name")] | Annotated[SubsetsOf, Tag("tag:subsets")],
    Discriminator(lambda v: "tag:subsets" if isinstance(v, (dict, SubsetsOf)) else "tag:name"),
]


class IntermediateConfig(_Strict):
    """Intermediate-task settings: 'none' (baseline), task names joined by '+' for multi-task, and ``subsets_of``
    mappings (:class:`SubsetsOf`), which validation expands: afterwards every setting is a string."""

    settings: list[Setting] = Field(default_factory=lambda: [NONE_SETTING])
    train: TrainConfig = TrainConfig()
    select: SelectConfig | None = None

    @model_validator(mode="after")
    def _select_candidates(self) -> IntermediateConfig:
        candidates = [s for s in self.settings if s != NONE_SETTING]
        if self.select and any("+" in s for s in candidates):
            raise ValueError("with select, settings list single candidate tasks (the top k are combined for you)")
        if self.select and self.select.top_k > len(candidates):
            raise ValueError(f"select.top_k {self.select.top_k} exceeds the {len(candidates)} candidates")
        return self

    @field_validator("settings")
    @classmethod
    def _known_tasks(cls, settings: list[str | SubsetsOf]) -> list[str]:
        out: list[str] = []
        plain: set[str] = set()
        for entry in settings:
            for s in entry.settings() if isinstance(entry, SubsetsOf) else [entry]:
                if s != NONE_SETTING:
                    names = s.split("+")
                    s = "+".join(sorted(set(names), key=names.index))
                if isinstance(entry, str):  # subsets may repeat a listed setting, listed settings may not
                    if s in plain:
                        raise ValueError(f"setting {s!r} is listed twice")
                    plain.add(s)
                if s not in out:
                    out.append(s)
        if NONE_SETTING not in out:
            out.insert(0, NONE_SETTING)  # the baseline is always part of a run
        return out


class TargetConfig(_Strict):
    """One target task: English fine-tuning (unless retrieval) and zero-shot evaluation."""

    task: str
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
    probe_reference: bool = Field(
        True,
        description="also fit two linear probes on the frozen pretrained encoder (standardised and L2-normalised "
        "input), reported beside the fine-tuned settings",
    )


class LoraConfig(_Strict):
    """Low-rank adapters (peft) on the backbone's linear layers: only they and the task heads train."""

    rank: int = Field(16, ge=1)
    alpha: float = Field(32.0, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    targets: Literal["all-linear", "attention"] | list[str] = Field(
        "all-linear", description="all-linear (every linear layer in the blocks), attention, or module names"
    )
    handoff: Literal["merged", "stacked"] = Field(
        "merged",
        description="how a target job starts from an intermediate job: merged (its adapters folded into the "
        "weights, then new ones) or stacked (its adapters kept, frozen, under new ones)",
    )
    quantize: Literal["none", "4bit"] = Field("none", description="4bit: QLoRA, NF4 base weights (bitsandbytes, GPU)")


class BackboneConfig(_Strict):
    """How the pretrained model is held and trained: weight dtype, gradient checkpointing, adapters."""

    dtype: Literal["float32", "bfloat16"] = "float32"
    gradient_checkpointing: bool = Field(False, description="recompute each block's activations in backward")
    lora: LoraConfig | None = None

    def spec(self) -> dict[str, Any]:
        """What changes a job's numbers (gradient checkpointing does not): empty for the defaults."""
        out: dict[str, Any] = {}
        if self.dtype != "float32":
            out["dtype"] = self.dtype
        if self.lora is not None:
            out["lora"] = self.lora.model_dump()
        return out


class ResourcesConfig(_Strict):
    """What one job asks of a Ray cluster (and the CPU threads it uses)."""

    cpus: int = Field(1, ge=1)
    gpus: float = Field(0, ge=0)


class AccelerateConfig(_Strict):
    """How a training job uses several GPUs: ``accelerate launch`` with one process per GPU (DDP or FSDP),
    each taking an equal share of every batch, so the optimisation is that of one process."""

    num_processes: int = Field(1, ge=1, description="processes (GPUs) per training job; 1 = no launch")
    strategy: Literal["ddp", "fsdp"] = "ddp"
    fsdp_wrap: Literal["layer", "size"] = Field(
        "layer", description="FSDP units: each transformer block (decoder or encoder layer), or modules above 1M params"
    )
    mixed_precision: Literal["no", "fp16", "bf16"] = "no"


def _tracker_installed(name: str) -> str:
    import importlib.util

    package = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb"}[name]
    if importlib.util.find_spec(package) is None:
        raise ValueError(f"tracker {name!r} needs the {package} package: pip install {package}")
    return name


Tracker = Annotated[Literal["tensorboard", "mlflow", "wandb"], AfterValidator(_tracker_installed)]


MIN_LANGUAGES = 3  # the fewest zero-shot languages over which a gain x resource interaction is estimated
ANALYSES = (
    "gains",
    "contrasts",
    "heatmap",
    "tiers",
    "scaling",
    "num-tasks",
    "pareto",
    "throughput",
    "selection",
    "suite",
)


class ReportConfig(_Strict):
    """What ``xstilts report`` (and the end of ``xstilts run``) writes: the analyses, in this order, and formats.

    gains: per target, the findings (gains over none with intervals over seeds and test items, Holm-adjusted),
    forest plots, then the full tables; contrasts: every pair of settings; heatmap: gain per language and setting;
    tiers: gains by language resource tier and a mixed model of gain x resource (needs at least MIN_LANGUAGES
    zero-shot languages per target); scaling: scores against parameter count (log fit, R²); num-tasks: gain against
    the number of intermediate tasks; pareto: zero-shot score against inference latency; throughput:
    intermediate-training throughput against the gain it gave; selection: English dev rank against zero-shot gain;
    suite: XTREME / XTREME-R task, group and overall scores as the official evaluate.py reports them.
    """

    analyses: list[Literal[ANALYSES]] = Field(default_factory=lambda: ["gains", "heatmap", "selection"], min_length=1)
    formats: list[Literal["md", "html", "latex"]] = Field(default_factory=lambda: ["md", "html", "latex"], min_length=1)


class ExperimentConfig(_Strict):
    """A whole experiment: one YAML file."""

    name: str = "experiment"
    protocol: Literal["xstilts-2020"] | None = Field(
        None,
        description="a named protocol whose values become the defaults of every field it covers "
        "(see xstilts.config.protocols); fields the config sets still win",
    )
    model: str = Field(description="HF model directory, hub id, or an xstilts reference like me5-small@L6")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    head_pooling: Literal["cls", "mean", "last"] = Field(
        "cls", description="what a head reads: the first token, the mean, or the last non-pad token (decoders)"
    )
    tasks_dir: str | None = Field(None, description="folder of user task YAML files, relative to this config")
    data_dir: str | None = Field(None, description="read benchmark tasks from official-layout files here, not the hub")
    intermediate: IntermediateConfig = IntermediateConfig()
    targets: list[TargetConfig] = Field(min_length=1)
    trackers: list[Tracker] = Field(
        default_factory=list,
        description="log per-step loss, learning rate, "
        "throughput and dev scores to OUT/tracking/<job-id> through Accelerate",
    )
    backbone: BackboneConfig = BackboneConfig()
    resources: ResourcesConfig = ResourcesConfig()
    accelerate: AccelerateConfig = AccelerateConfig()
    report: ReportConfig = ReportConfig()

    @model_validator(mode="after")
    def _batches_split_evenly(self) -> ExperimentConfig:
        n = self.accelerate.num_processes
        for where, train in [
            ("intermediate.train", self.intermediate.train),
            *((f"targets[{i}].train", t.train) for i, t in enumerate(self.targets)),
        ]:
            if train.batch_size % n:
                raise ValueError(
                    f"{where}.batch_size {train.batch_size} does not split evenly over accelerate.num_processes {n}"
                )
        return self

    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(
        default_factory=dict,
        description="field path -> values: the experiment runs on every point of the cross "
        "product (see xstilts.config.grid)",
    )
    arms: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="name -> fields that replace the config's in that arm (e.g. encoders and decoders with their "
        "own models, pooling, adapters and grid): the experiment runs every arm (see xstilts.config.grid)",
    )

    @model_validator(mode="before")
    @classmethod
    def _protocol_defaults(cls, data: Any) -> Any:
        """A named protocol's values fill every field it covers that the config leaves unset."""
        if not isinstance(data, dict) or data.get("protocol") is None:
            return data
        name = data["protocol"]
        if not isinstance(name, str) or name not in NAMED:
            return data  # the field's own validation names the choices
        data = {**named_defaults(name, "experiment"), **data}
        intermediate = data.get("intermediate") if isinstance(data.get("intermediate"), dict) else {}
        if isinstance(intermediate.get("train", {}), dict):
            data["intermediate"] = {
                **intermediate,
                "train": {**named_defaults(name, "intermediate"), **intermediate.get("train", {})},
            }
        if isinstance(data.get("targets"), list):
            data["targets"] = [
                {**t, "train": {**named_defaults(name, "target"), **t.get("train", {})}}
                if isinstance(t, dict) and isinstance(t.get("train", {}), dict)
                else t
                for t in data["targets"]
            ]
        return data

    @model_validator(mode="after")
    def _unique_targets(self) -> ExperimentConfig:
        names = [t.task for t in self.targets]
        if len(set(names)) != len(names):
            raise ValueError("a target task is listed twice")
        return self
