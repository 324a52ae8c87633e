"""Per-GPU memory of a job before it runs: weights, gradients, AdamW state and activations, from the model's
architecture (its config.json, or a table of known hub ids) and the job's backbone, batch and launch settings.

Activations follow Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer Models": a
block holds s·b·h·(34 + 5·a·s/h) bytes of 16-bit activations for b sequences of s tokens (hidden size h, a heads),
twice that in fp32; with gradient checkpointing only each block's input (2·s·b·h bytes) stays, plus one block's
full activations while it is recomputed. Nothing here imports torch: ``xstilts plan`` reads JSON only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from xstilts.config.schema import AccelerateConfig, BackboneConfig, EvalConfig, ExperimentConfig, LoraConfig
from xstilts.errors import UserError
from xstilts.evaluate.hardware import ACCELERATOR_MEMORY_GIB
from xstilts.experiments.architectures import Architecture, architecture
from xstilts.experiments.cost import SEQS_BY_TASK
from xstilts.experiments.specs import IntermediateSpec, Job

if TYPE_CHECKING:
    from xstilts.tasks.catalog import TaskCatalog

GIB = 2**30
CONTEXT = GIB  # CUDA context and caching-allocator reserve per GPU: an assumption
NF4_BYTES = (4 + 8 / 64 + 32 / (64 * 256)) / 8  # QLoRA: 4-bit NF4, an 8-bit scale per 64, an fp32 one per 256 scales
ASSUMPTIONS = [
    (
        "memory per GPU = weights + gradients + AdamW state (two fp32 moments, 8 B per trainable parameter) "
        "+ activations + 1 GiB for the CUDA context and allocator (assumed)"
    ),
    (
        "weights 4 B (float32) or 2 B (bfloat16) per parameter; 4bit (QLoRA): the blocks' linear weights NF4 with "
        "double quantization (4.127 bits), the rest bf16; LoRA adapters and their gradients fp32"
    ),
    (
        "activations after Korthikanti et al. 2022: s·b·h·(34 + 5·a·s/h) bytes per block at 16 bits (x2 in fp32), "
        "b = batch_size / num_processes x sequences per example, s = max_length; gradient checkpointing keeps "
        "2·s·b·h per block plus one block; forward-only passes (probes, evaluation, retrieval): one block at the "
        "eval batch"
    ),
    (
        "fsdp shards weights, gradients and optimizer state over num_processes, ddp replicates them; task heads and "
        "allocator fragmentation are left out"
    ),
]


def lora_params(arch: Architecture, lora: LoraConfig) -> int:
    """Adapter parameters: rank·(inputs + outputs) for each targeted linear layer of every block."""
    chosen = arch.linears
    if lora.targets == "attention":
        chosen = chosen[:4]
    elif lora.targets != "all-linear":
        names = {t.rsplit(".", 1)[-1] for t in lora.targets}
        chosen = [x for x in chosen if x[0] in names]
    return arch.layers * lora.rank * sum(i + o for _, i, o in chosen)


def frozen_params(arch: Architecture, freeze: Iterable[str]) -> int:
    """Parameters ``train.freeze`` keeps fixed: ``embeddings`` and ``layers:N`` (the first N blocks)."""
    return sum(
        arch.embedding_params if part == "embeddings" else min(int(part[7:]), arch.layers) * arch.block_params
        for part in freeze
    )


@dataclass(frozen=True)
class Batch:
    """One forward pass on one GPU: ``examples`` × ``sequences`` per example, each of ``length`` tokens."""

    examples: int
    sequences: int
    length: int


@dataclass(frozen=True)
class Setup:
    """What a job's memory depends on besides the architecture."""

    dtype: str
    lora: LoraConfig | None
    checkpointing: bool
    launched: bool  # a training job, run by ``accelerate launch`` on ``processes`` GPUs
    processes: int
    fsdp: bool
    mixed_precision: bool
    train: Batch | None  # None: forward passes only
    evaluation: Batch
    frozen: tuple[str, ...] = ()


PARTS = ("weights", "gradients", "optimizer", "activations", "context")


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes per GPU, by part."""

    weights: int
    gradients: int
    optimizer: int
    activations: int
    context: int = CONTEXT

    @property
    def total(self) -> int:
        return sum(getattr(self, part) for part in PARTS)

    @property
    def largest(self) -> str:
        """The largest estimated part (the fixed context left out)."""
        return max(PARTS[:-1], key=lambda part: getattr(self, part))

    def as_dict(self) -> dict[str, Any]:
        return {p: getattr(self, p) for p in PARTS} | {"total_gib": round(self.total / GIB, 2), "largest": self.largest}


def _block_activations(arch: Architecture, batch: Batch) -> int:
    """Korthikanti et al.'s s·b·h·(34 + 5·a·s/h) bytes of one block at 16 bits."""
    s, b = batch.length, batch.examples * batch.sequences
    return 34 * s * b * arch.hidden + 5 * arch.heads * s * s * b


def memory(arch: Architecture, setup: Setup) -> MemoryEstimate:
    """Per-GPU bytes of a job of ``setup`` on ``arch``."""
    width = 2 if setup.dtype == "bfloat16" else 4
    lora = setup.lora
    adapters = lora_params(arch, lora) if lora else 0
    if lora and lora.quantize == "4bit":
        linear = arch.layers * sum(i * o for _, i, o in arch.linears)
        weights = round(linear * NF4_BYTES) + 2 * (arch.params - linear)
    else:
        weights = width * arch.params
    trainable = 0 if setup.train is None else adapters if lora else arch.params - frozen_params(arch, setup.frozen)
    scale = 2 if setup.dtype == "float32" and not setup.mixed_precision else 1  # fp32 activations
    activations = _block_activations(arch, setup.evaluation)
    if (b := setup.train) is not None:
        full = _block_activations(arch, b)
        kept = arch.layers * 2 * b.length * b.examples * b.sequences * arch.hidden + full
        activations = max(activations, kept if setup.checkpointing else arch.layers * full)
    shards = setup.processes if setup.fsdp else 1
    return MemoryEstimate(
        -(-(weights + 4 * adapters) // shards),
        -(-trainable * (4 if lora else width) // shards),
        -(-8 * trainable // shards),
        scale * activations,
    )


def job_setup(
    job: Job, backbone: BackboneConfig, accelerate: AccelerateConfig, catalog: TaskCatalog | None = None
) -> Setup:
    """A job's :class:`Setup`; sequences per example from ``SEQS_BY_TASK``, else the task format's cost hint
    (1 without a catalog). Intermediate jobs check English dev at the default eval batch."""
    spec = job.spec
    tasks = spec.intermediate if isinstance(spec, IntermediateSpec) else (spec.target,)
    sequences = max(
        SEQS_BY_TASK.get(t, catalog.get(t, spec.model.data_dir).format.cost.sequences if catalog else 1) for t in tasks
    )
    train = getattr(spec, "train", None)
    ev = getattr(spec, "eval", None) or EvalConfig()
    processes = accelerate.num_processes if spec.trains else 1
    return Setup(
        dtype=backbone.dtype,
        lora=backbone.lora,
        checkpointing=backbone.gradient_checkpointing,
        launched=spec.trains,
        processes=processes,
        fsdp=spec.trains and accelerate.strategy == "fsdp",
        mixed_precision=getattr(spec, "mixed_precision", "no") != "no",
        train=Batch(train.batch_size // processes, sequences, train.max_length)
        if train and train.recipe != "probe"
        else None,
        evaluation=Batch(ev.batch_size, sequences, ev.max_length),
        frozen=tuple(train.freeze) if train else (),
    )


def job_memory(
    job: Job,
    architecture: Architecture,
    backbone: BackboneConfig,
    accelerate: AccelerateConfig,
    catalog: TaskCatalog | None = None,
) -> MemoryEstimate:
    """Per-GPU bytes of ``job`` (``backbone`` holds gradient_checkpointing too)."""
    return memory(architecture, job_setup(job, backbone, accelerate, catalog))


def _changes(arch: Architecture, s: Setup, capacity: int) -> list[tuple[str, dict[str, Any]]]:
    """Config changes that lower a job's memory: (what to set, the Setup fields it changes)."""
    out: list[tuple[str, dict[str, Any]]] = []
    if s.dtype == "float32":
        out.append(("dtype bfloat16", {"dtype": "bfloat16"}))
    if s.train and s.lora is None:
        out.append(("lora", {"lora": LoraConfig()}))
    if s.lora is None or s.lora.quantize != "4bit":
        four = (s.lora or LoraConfig()).model_copy(update={"quantize": "4bit"})
        out.append(("lora 4bit" if s.lora is None else "4bit", {"lora": four}))
    if s.train and not s.checkpointing:
        out.append(("gradient_checkpointing", {"checkpointing": True}))
    if s.launched and not (s.fsdp and s.processes >= 8):
        n = max(8, s.processes)
        fewer = replace(s.train, examples=max(1, s.train.examples * s.processes // n)) if s.train else None
        out.append((f"fsdp over {n} GPUs", {"fsdp": True, "processes": n, "train": fewer}))
    key, batch = ("train", s.train) if s.train else ("evaluation", s.evaluation)
    if batch.examples > 1:
        smaller = [replace(batch, examples=batch.examples >> k) for k in range(1, batch.examples.bit_length())]
        fit = next((b for b in smaller if memory(arch, replace(s, **{key: b})).total <= capacity), smaller[-1])
        ratio = batch.examples // fit.examples
        label = f"micro-batch {fit.examples} (grad_accum x{ratio})" if s.train else f"eval batch_size {fit.examples}"
        out.append((label, {key: fit}))
    return out


def advice(arch: Architecture, setup: Setup, capacity: int) -> str:
    """What would bring a job that needs more than ``capacity`` bytes per GPU under it."""
    changes = _changes(arch, setup, capacity)
    alone = [(label, memory(arch, replace(setup, **change)).total) for label, change in changes]
    if fits := [f"{label} ({t / GIB:.1f} GiB)" for label, t in alone if t <= capacity]:
        return "fits with " + " or ".join(fits)
    if not changes:
        return "no config change lowers it: a larger accelerator"
    together = memory(arch, replace(setup, **{k: v for _, change in changes for k, v in change.items()})).total
    labels = f"{', '.join(label for label, _ in changes)} ({together / GIB:.1f} GiB)"
    if together <= capacity:
        return f"fits with all of {labels}"
    return f"too large even with {labels}: more GPUs or a larger accelerator"


def accelerator_memory(accelerator: str) -> int:
    """Bytes per GPU of a named accelerator; for ``cpu``, this machine's RAM (MemTotal)."""
    name = accelerator.lower()
    if name == "cpu":
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if name not in ACCELERATOR_MEMORY_GIB:
        raise UserError(f"unknown accelerator {accelerator!r} (known: cpu, {', '.join(ACCELERATOR_MEMORY_GIB)})")
    return int(ACCELERATOR_MEMORY_GIB[name] * GIB)


def memory_plan(jobs: list[Job], catalog: TaskCatalog, cfg: ExperimentConfig, accelerator: str) -> dict[str, Any]:
    """Each job's memory per GPU (None for a model of unknown architecture), whether it fits ``accelerator``,
    and, when not, what would help."""
    capacity = accelerator_memory(accelerator)
    archs = {ref: architecture(ref) for ref in dict.fromkeys(j.spec.model.model for j in jobs)}
    rows: dict[str, dict[str, Any] | None] = {}
    for job in jobs:
        arch = archs[job.spec.model.model]
        if arch is None:
            rows[job.id] = None
            continue
        model = job.spec.model
        backbone = BackboneConfig.model_validate(
            {**model.backbone, "gradient_checkpointing": model.gradient_checkpointing}
        )
        setup = job_setup(job, backbone, cfg.accelerate, catalog)
        est = memory(arch, setup)
        rows[job.id] = est.as_dict() | {"fits": est.total <= capacity}
        if est.total > capacity:
            rows[job.id]["help"] = advice(arch, setup, capacity)
    return {
        "accelerator": accelerator,
        "capacity_gib": round(capacity / GIB, 1),
        "jobs": rows,
        "unknown": [ref for ref, arch in archs.items() if arch is None],
        "assumptions": ASSUMPTIONS,
    }


def memory_cell(row: dict[str, Any] | None) -> str:
    """A job's memory in the plan table: GiB per GPU and its largest part."""
    return "memory ?" if row is None else f"{row['total_gib']:.1f} GiB ({row['largest']})"


def format_memory(plan: dict[str, Any], jobs: list[Job]) -> str:
    """The plan's memory lines: how many jobs fit, a warning per job that does not, unknown architectures."""
    acc, cap, rows = plan["accelerator"], plan["capacity_gib"], plan["jobs"]
    known = [j for j in jobs if rows[j.id] is not None]
    lines = [f"memory per GPU on {acc} ({cap:g} GiB): {sum(rows[j.id]['fits'] for j in known)}/{len(known)} jobs fit"]
    lines += [
        f"warning: job {j.id} ({j.kind}) needs {rows[j.id]['total_gib']:.1f} GiB per GPU, {acc} has {cap:g} GiB; "
        f"{rows[j.id]['help']}"
        for j in known
        if not rows[j.id]["fits"]
    ]
    lines += [
        f"memory of {ref}: architecture unknown (not a local HF directory, me5-small@L<n> or a known hub id)"
        for ref in plan["unknown"]
    ]
    return "\n".join(lines + [f"  * {a}" for a in plan["assumptions"]])
