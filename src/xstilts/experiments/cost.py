"""Rough compute cost of an experiment's jobs: FLOPs and accelerator-hours, before running anything.

FLOPs follow the usual dense-transformer rule: 6·N per trained token (forward + backward) and 2·N per
inferred token, N = the model's parameter count. Dataset sizes and tokens per example come from the
*estimate* tables below (official dataset sizes, typical lengths), never from downloading data; tasks not in
the tables are counted from their local files when that is cheap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from xstilts.config.schema import TrainConfig
from xstilts.data.sources import JsonlDirSource, PocketSource
from xstilts.errors import UserError
from xstilts.evaluate.hardware import ACCELERATORS, PROBE_SIZE, cpu_peak_flops, matmul_flops
from xstilts.experiments.architectures import architecture
from xstilts.experiments.plan import eval_languages
from xstilts.experiments.specs import IntermediateSpec, Job, RetrievalSpec, TargetSpec
from xstilts.tasks.catalog import TaskCatalog
from xstilts.tasks.definition import TaskDef
from xstilts.tasks.mlm import PocketTextSource

# --- ESTIMATES: official dataset sizes (examples) -------------------------------------------------------------
# English training sets (train split) of intermediate tasks and of targets' training sources.
TRAIN_SIZES: dict[str, int] = {
    "mnli": 392_702,
    "squad_v1": 87_599,
    "squad_v2": 130_319,
    "qqp": 363_846,
    "anli_plus": 162_865 + 392_702 + 549_367,  # ANLI R1-R3 + MNLI + SNLI
    "hellaswag": 39_905,
    "commonsenseqa": 9_741,
    "cosmosqa": 25_262,
    "ccg": 39_604,  # CCGbank sections 02-21, sentences
    "sst2": 67_349,
    "pawsx": 49_401,
    "udpos": 12_543,  # approximate: UD English-EWT train sentences (XTREME's English POS train set)
    "panx": 20_000,
    "tydiqa": 3_696,
    "siqa": 33_410,
    "copa": 400,
}
# English dev sets used for checkpoint selection (approximate where the repository's split differs).
DEV_SIZES: dict[str, int] = {
    "mnli": 9_815,
    "squad_v1": 10_570,
    "squad_v2": 11_873,
    "qqp": 40_430,
    "anli_plus": 3_200 + 9_815 + 9_842,
    "hellaswag": 10_042,
    "commonsenseqa": 1_221,
    "cosmosqa": 2_985,
    "ccg": 1_913,
    "sst2": 872,
    "pawsx": 2_000,
    "udpos": 2_002,
    "panx": 10_000,
    "tydiqa": 440,
    "siqa": 1_954,
    "copa": 100,
}
# Test examples per language (a dict: per language, with "*" the default for other languages).
TEST_SIZES: dict[str, dict[str, int]] = {
    "xnli": {"*": 5_010},
    "pawsx": {"*": 2_000},
    "xquad": {"*": 1_190},
    "mlqa": {"en": 11_590, "es": 5_253, "de": 4_517, "ar": 5_335, "hi": 4_918, "vi": 5_495, "zh": 5_137, "*": 5_000},
    "tydiqa": {
        "en": 440,
        "ar": 921,
        "bn": 113,
        "fi": 782,
        "id": 565,
        "ko": 276,
        "ru": 812,
        "sw": 499,
        "te": 669,
        "*": 1_000,
    },  # gold-passage dev sets, approximate
    "udpos": {"*": 1_000},  # varies a lot by treebank; rough
    "panx": {"*": 10_000},  # 10k for most languages, fewer for some: an upper-end estimate
    "tatoeba": {"*": 1_000},
    "bucc2018": {"*": 10_000},  # bucc: per side, rough
    "xcopa": {"*": 500},
}
# Typical tokens per sequence and sequences per example (choices of multiple-choice tasks) where a task differs
# from its format's cost hint (``Format.cost``); capped at the job's max_length.
TOKENS_BY_TASK: dict[str, int] = {"sst2": 25, "qqp": 35, "ccg": 35, "copa": 20, "xcopa": 20, "hellaswag": 70}
SEQS_BY_TASK: dict[str, int] = {"hellaswag": 4, "commonsenseqa": 5, "cosmosqa": 4, "siqa": 3, "copa": 2, "xcopa": 2}
DEFAULT_SIZE = 10_000

# --- Accelerators: peak dense TFLOP/s, the table xstilts.evaluate.hardware keeps (MFU in results reads it too) ------
DEFAULT_UTILISATION = 0.4


def cpu_tflops(size: int = PROBE_SIZE, repeats: int = 5) -> float:
    """Measured fp32 TFLOP/s of this CPU now: the best of a few ``size``³ torch matmuls."""
    return matmul_flops(size, repeats) / 1e12


def peak_tflops(accelerator: str) -> float:
    """An accelerator's datasheet peak; for ``cpu`` this machine's matmul probe (measured once, then cached: the
    figure MFU in results divides by)."""
    name = accelerator.lower()
    if name == "cpu":
        return cpu_peak_flops() / 1e12
    if name not in ACCELERATORS:
        raise UserError(f"unknown accelerator {accelerator!r} (known: cpu, {', '.join(ACCELERATORS)})")
    return ACCELERATORS[name]


def model_params(ref: str) -> int | None:
    """Parameter count WITHOUT the input embeddings (a lookup, not a matmul: Kaplan et al. 2020) of a model
    reference (``experiments/architectures``: a local HF directory, ``me5-small@L<n>`` or a known hub id); None
    when unknown. Multilingual vocabularies make the difference large: 96M of me5-small's 118M parameters and
    256M of XLM-R large's 560M are embeddings."""
    arch = architecture(ref)
    return arch.params - arch.embedding_params if arch else None


# --- Sizes -------------------------------------------------------------------------------------------------------


def _counted(source: Any, split: str, lang: str) -> int | None:
    """Examples of a local source's split, from its metadata or by loading it; None when not available."""
    try:
        sizes = getattr(source, "meta", {}).get("sizes", {})
        if f"{split}-{lang}" in sizes:
            n = sizes[f"{split}-{lang}"]
            return int(n if isinstance(n, (int, float)) else len(n))
        return len(source.load(split, lang))
    except Exception:  # noqa: BLE001 - hub data offline, missing file, ...
        return None


_LOCAL_SOURCES = (PocketSource, PocketTextSource, JsonlDirSource)  # data on this machine: counted, never fetched


class _Sizes:
    """Split sizes per (task, split, language): the estimate tables first, else counted locally."""

    def __init__(self, catalog: TaskCatalog, data_dir: str | None, notes: set[str]):
        self.catalog, self.data_dir, self.notes, self._cache = catalog, data_dir, notes, {}

    def task(self, name: str) -> TaskDef:
        return self.catalog.get(name, self.data_dir)

    def size(self, name: str, split: str, lang: str) -> int:
        key = (name, split, lang)
        if key not in self._cache:
            table = {"train": TRAIN_SIZES, "dev": DEV_SIZES}.get(split)
            if table is not None and name in table and lang == "en":
                n = table[name]
            elif split == "test" and name in TEST_SIZES or split == "dev" and name in TEST_SIZES:
                n = TEST_SIZES[name].get(lang, TEST_SIZES[name]["*"])
            else:
                task = self.task(name)
                source = self.catalog.training_source(task, self.data_dir) if split in ("train", "dev") else task.source
                local = self.data_dir is not None or isinstance(source, _LOCAL_SOURCES)
                n = _counted(source, split, lang) if local else None  # never touch the hub
                if n is None:
                    n = DEFAULT_SIZE if split != "dev" else DEFAULT_SIZE // 10
                    self.notes.add(f"{name} {split}-{lang}: size unknown, assumed {n}")
                else:
                    self.notes.add(f"{name} {split}-{lang}: {n} examples counted from local data")
            self._cache[key] = n
        return self._cache[key]

    def tokens(self, name: str, max_length: int) -> int:
        """Tokens per example: sequences per example × typical tokens per sequence (capped at max_length)."""
        hint = self.task(name).format.cost
        return SEQS_BY_TASK.get(name, hint.sequences) * min(TOKENS_BY_TASK.get(name, hint.tokens), max_length)


def _examples_seen(train: TrainConfig, train_size: int) -> float:
    if train.max_examples:
        return float(train.max_examples)
    if train.max_steps:
        return float(train.max_steps * train.batch_size * train.grad_accum)
    return float(train.epochs) * train_size


def _dev_passes(train: TrainConfig, seen: float) -> int:
    """English dev checks: one an epoch (or every eval_every_steps updates, at most) with select_on_dev, else one."""
    if not train.select_on_dev:
        return 1
    if train.eval_every_steps:
        return max(1, math.ceil(seen / (train.batch_size * train.grad_accum) / train.eval_every_steps))
    return max(1, math.ceil(train.epochs))


def job_tokens(job: Job, sizes: _Sizes) -> tuple[float, float]:
    """(trained tokens, inferred tokens) of one job."""
    spec = job.spec
    train_tok = infer_tok = 0.0
    if isinstance(spec, IntermediateSpec):
        names = list(spec.intermediate)
    elif isinstance(spec, TargetSpec):
        target = sizes.task(spec.target)
        names = [target.train_task or target.name]
    else:
        names = []
    if names:
        train = spec.train
        counts = {n: min(sizes.size(n, "train", "en"), train.max_train_examples or math.inf) for n in names}
        total = sum(counts.values())
        mean_tok = sum(counts[n] * sizes.tokens(n, train.max_length) for n in names) / max(total, 1)
        # the probe reads the train set once, frozen (forward only); lp-ft then fine-tunes
        train_tok = 0.0 if train.recipe == "probe" else _examples_seen(train, total) * mean_tok
        infer_tok += total * mean_tok if train.recipe in ("probe", "lp-ft") else 0.0
        dev_tok = sum(
            min(sizes.size(n, "dev", "en"), train.eval_subset or math.inf) * sizes.tokens(n, train.max_length)
            for n in names
        )
        infer_tok += _dev_passes(train, _examples_seen(train, total)) * dev_tok
    if isinstance(spec, (TargetSpec, RetrievalSpec)):
        task = sizes.task(spec.target)
        ev = spec.eval
        for lang in eval_languages(task, ev.languages):
            for split in task.format.eval_splits:
                n = min(sizes.size(task.name, split, lang), ev.max_examples_per_language or math.inf)
                infer_tok += n * sizes.tokens(task.name, ev.max_length)
    return train_tok, infer_tok


def estimate(
    jobs: Iterable[Job],
    catalog: TaskCatalog,
    model_params: int | None = None,
    accelerator: str = "a100",
    utilisation: float | Achieved = DEFAULT_UTILISATION,
    is_done: Callable[[str], bool] | None = None,
    model: str | None = None,
) -> dict:
    """FLOPs and hours of ``jobs`` on ``accelerator`` at ``utilisation`` of its peak. ``model_params`` (else
    looked up from ``model``, or from each job's model reference: a grid may vary it) is N; ``is_done(job_id)``
    marks finished jobs. ``model_params`` in the result is N when one model (or ``model_params``) serves every
    job, else None; ``models`` maps each looked-up reference to its N."""
    jobs = list(jobs)
    if not isinstance(utilisation, Achieved) and not 0 < utilisation <= 1:
        raise UserError(f"utilisation must be in (0, 1], got {utilisation}")
    notes: set[str] = set()
    assumptions = [
        "FLOPs = 6·N·trained tokens + 2·N·inferred tokens (dense transformer rule; attention FLOPs ignored)",
        (
            "dataset sizes and tokens per example are estimates from tables in xstilts.experiments.cost "
            "(official sizes; typical lengths capped at max_length), not counted from the data"
        ),
        (
            "dev and test splits are inference only; English dev runs once per epoch (or every eval_every_steps updates, "
            "on eval_subset examples, at most: early stopping may end sooner) with select_on_dev, else once"
        ),
    ]
    models: dict[str, int] = {}  # reference -> N, unless model_params is given
    for ref in [] if model_params is not None else dict.fromkeys(model or j.spec.model.model for j in jobs):
        n = model_params_of(ref) if ref else None
        if n is None:
            raise UserError(f"parameter count of model {ref!r} unknown: pass model_params")
        models[ref] = n
        assumptions.append(f"N = {n:,} parameters for {ref}")
    peak = peak_tflops(accelerator)
    if accelerator.lower() == "cpu":
        assumptions.append(f"cpu peak from a {PROBE_SIZE}³ fp32 matmul probe on this machine: {peak:.3f} TFLOP/s")
    if isinstance(utilisation, Achieved):  # a share of the same peak the hours divide by
        measured, utilisation = utilisation, min(1.0, utilisation.tflops / peak)
        assumptions.append(
            f"utilisation {utilisation:.1%} measured from {measured.jobs} finished training jobs "
            f"({measured.tflops:.3f} TFLOP/s achieved)"
        )
    rate = peak * 1e12 * utilisation  # FLOP/s
    sizes: dict[str | None, _Sizes] = {}  # per data_dir
    rows, total, pending = [], 0.0, 0.0
    for job in jobs:
        data_dir = job.spec.model.data_dir
        train_tok, infer_tok = job_tokens(job, sizes.setdefault(data_dir, _Sizes(catalog, data_dir, notes)))
        n_params = model_params if model_params is not None else models[model or job.spec.model.model]
        flops = 6 * n_params * train_tok + 2 * n_params * infer_tok
        hours = flops / rate / 3600
        rows.append({"id": job.id, "kind": job.kind, "flops": flops, "hours": hours})
        total += flops
        if is_done is None or not is_done(job.id):
            pending += hours
    single = model_params if model_params is not None else next(iter(models.values())) if len(models) == 1 else None
    return {
        "accelerator": accelerator,
        "peak_tflops": peak,
        "utilisation": utilisation,
        "model_params": single,
        "models": models,
        "jobs": rows,
        "total_flops": total,
        "total_hours": total / rate / 3600,
        "pending_hours": pending,
        "assumptions": assumptions + sorted(notes),
    }


model_params_of = model_params  # ``estimate`` shadows the name with its argument


def runs_on(device: str, accelerator: str) -> bool:
    """Whether a result's ``device`` (``cpu`` or a CUDA device name) is the named accelerator."""
    device, name = device.lower(), accelerator.lower()
    return (
        device == "cpu" if name == "cpu" else name.split("-")[0] in device and (("fp32" in name) == ("fp32" in device))
    )


@dataclass(frozen=True)
class Achieved:
    """Training throughput measured from finished jobs: a utilisation for :func:`estimate` to derive."""

    tflops: float
    jobs: int


def achieved(results: list[dict], accelerator: str) -> Achieved:
    """The FLOP/s that finished training jobs reached on ``accelerator``: 6·N·tokens seen / training seconds,
    pooled over jobs."""
    flops = seconds = 0.0
    used = 0
    for r in results:
        train = r.get("train")
        if not train or not train.get("train_seconds") or not runs_on(r.get("device", ""), accelerator):
            continue
        n = model_params_of(r["spec"]["model"])
        if n is None:
            continue
        flops += 6 * n * train["tokens_seen"]
        seconds += train["train_seconds"]
        used += 1
    if not used:
        raise UserError(f"no finished training job here ran on {accelerator}: give --utilisation as a number")
    return Achieved(flops / seconds / 1e12, used)


def format_estimate(est: dict) -> str:
    """A short human-readable table: per kind, then totals."""
    kinds: dict[str, list[float]] = {}
    for row in est["jobs"]:
        k = kinds.setdefault(row["kind"], [0, 0.0, 0.0])
        k[0] += 1
        k[1] += row["flops"]
        k[2] += row["hours"]
    acc = est["accelerator"]
    size = (
        f"model {est['model_params'] / 1e6:,.0f}M params"
        if est["model_params"]
        else "models " + ", ".join(f"{ref} {n / 1e6:,.0f}M" for ref, n in est["models"].items()) + " params"
    )
    lines = [
        (f"{size}; {acc} at {est['peak_tflops']:.1f} TFLOP/s peak x {est['utilisation']:.0%} utilisation"),
        f"{'kind':<14}{'jobs':>6}{'FLOPs':>12}{acc + '-h':>12}",
    ]
    for kind, (n, flops, hours) in kinds.items():
        lines.append(f"{kind:<14}{n:>6}{flops:>12.3g}{hours:>12.1f}")
    lines.append(f"{'total':<14}{len(est['jobs']):>6}{est['total_flops']:>12.3g}{est['total_hours']:>12.1f}")
    lines.append(f"pending: {est['pending_hours']:.1f} {acc}-hours")
    lines += [f"  * {a}" for a in est["assumptions"]]
    return "\n".join(lines)
