"""`make bench`: xstilts against Hugging Face Trainer and against bare loops, measured side by side in one run.

Rows (medians of alternating repetitions): training on pocket-topic's English train set with xstilts (default
optimisation; and with the embedding table frozen), with Trainer padded to 128 and with Trainer's length-grouped
dynamic padding; zero-shot evaluation of pocket-retrieval against a bare ``torch.no_grad()`` forward over the
same tokens; featurizing pocket-topic from a cold and a warm tokenization cache; the command line against
``python -c pass``. Prints a table and writes bench/results.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import transformers

from xstilts.cache import atomic_write_json
from xstilts.config.schema import EvalConfig, TrainConfig
from xstilts.evaluate.hardware import matmul_flops, non_embedding_params
from xstilts.evaluate.zero_shot import evaluate_encoder, fixed_subset
from xstilts.formats.pooling import truncated
from xstilts.formats.retrieval import default_layer
from xstilts.models.backbone import freeze, load_backbone
from xstilts.models.multitask import build_multitask
from xstilts.models.registry import resolve_model
from xstilts.tasks.catalog import TaskCatalog
from xstilts.tasks.features import task_features
from xstilts.train.loop import TrainTask, train
from xstilts.train.phase import seeded_subset

MODEL = "me5-small"
TRAIN_TASK, EVAL_TASK = "pocket-topic", "pocket-retrieval"
BATCH, MAX_LENGTH, LR = 32, 128, 2e-4
TRAIN_EXAMPLES = 768  # a seeded subset of the English train set: one epoch is 24 updates for every row
EVAL_PAIRS = 30  # test pairs per language of the evaluation row (all 83 languages)
PADDED_UPDATES = 6  # Trainer padded to 128 costs the same for any batch, so fewer updates suffice
ROOT = Path(__file__).resolve().parent
GOALS = {
    "train_vs_trainer_grouped": 1.3,
    "train_frozen_emb_vs_trainer_grouped": 1.8,
    "train_vs_trainer_padded": 5.0,
    "eval_vs_forward_ceiling": 0.8,
    "tokenize_cached_vs_cold": 20.0,
    "cli_help_seconds": 0.5,
    "cli_plan_seconds": 1.5,
}


def _rate(stamps: list[float], batch: int) -> float:
    """Examples per second between the end of the first update and the end of the last (the first update,
    which allocates buffers, is left out for every row alike)."""
    return batch * (len(stamps) - 1) / (stamps[-1] - stamps[0])


def xstilts_train(examples: list[dict], frozen: bool, updates: int) -> dict:
    task = TaskCatalog.builtin().get(TRAIN_TASK)
    backbone, tokenizer = load_backbone(MODEL)
    features = task_features(task, "train", examples, tokenizer, MAX_LENGTH)
    model = build_multitask(backbone, [task], "linear", "mean")
    if frozen:
        freeze(backbone, ["embeddings"])
    cfg = TrainConfig(recipe="full", lr=LR, batch_size=BATCH, max_length=MAX_LENGTH, max_steps=updates)
    stamps: list[float] = []
    summary = train(
        model,
        [TrainTask(task.name, features)],
        cfg,
        0,
        tokenizer.pad_token_id,
        lambda *_: stamps.append(time.perf_counter()),
    )
    return {
        "examples_per_second": _rate(stamps, BATCH),
        "tokens_per_second": summary["tokens_seen"] / summary["train_seconds"],
        "non_embedding_params": non_embedding_params(backbone),
    }


def trainer_train(examples: list[dict], grouped: bool, updates: int, scratch: Path) -> dict:
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
        default_data_collator,
    )

    task = TaskCatalog.builtin().get(TRAIN_TASK)
    path = resolve_model(MODEL)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(task.labels))
    index = {label: i for i, label in enumerate(task.labels)}
    padding = False if grouped else "max_length"
    enc = tokenizer([ex["text"] for ex in examples], truncation=True, max_length=MAX_LENGTH, padding=padding)
    data = Dataset.from_dict({**enc, "labels": [index[ex["label"]] for ex in examples]})
    stamps: list[float] = []

    class Stamps(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            stamps.append(time.perf_counter())

    args = TrainingArguments(
        output_dir=str(scratch / "trainer"),
        per_device_train_batch_size=BATCH,
        learning_rate=LR,
        weight_decay=0.01,
        warmup_steps=0.1,
        max_grad_norm=1.0,
        lr_scheduler_type="linear",
        optim="adamw_torch_fused",
        max_steps=updates,
        train_sampling_strategy="group_by_length" if grouped else "random",
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
        seed=0,
    )
    collator = DataCollatorWithPadding(tokenizer) if grouped else default_data_collator
    Trainer(model=model, args=args, train_dataset=data, data_collator=collator, callbacks=[Stamps()]).train()
    return {"examples_per_second": _rate(stamps, BATCH)}


def evaluation(backbone, tokenizer, tests: dict[str, list[dict]]) -> float:
    task = TaskCatalog.builtin().get(EVAL_TASK)
    start = time.perf_counter()
    evaluate_encoder(backbone, tokenizer, task, tests, EvalConfig())
    return time.perf_counter() - start


@torch.no_grad()
def forward_ceiling(backbone, tokenizer, tests: dict[str, list[dict]]) -> float:
    """A bare forward loop over the distinct sentences the evaluation encodes, length-sorted, through the same
    layers (tokenized before the clock starts)."""
    task = TaskCatalog.builtin().get(EVAL_TASK)
    cfg = EvalConfig()
    texts = sorted({ex[f] for exs in tests.values() for ex in exs for f in task.fields})
    ids = sorted(tokenizer(texts, truncation=True, max_length=cfg.max_length)["input_ids"], key=len)
    batches = []
    for k in range(0, len(ids), cfg.batch_size):
        rows = ids[k : k + cfg.batch_size]
        width = max(map(len, rows))
        batch = torch.tensor([r + [tokenizer.pad_token_id] * (width - len(r)) for r in rows])
        batches.append((batch, (batch != tokenizer.pad_token_id).long()))
    backbone.eval()
    with truncated(backbone, default_layer(backbone)):
        start = time.perf_counter()
        for input_ids, mask in batches:
            backbone(input_ids=input_ids, attention_mask=mask)
        return time.perf_counter() - start


def featurize_all(tokenizer, splits: dict[str, list[dict]]) -> float:
    task = TaskCatalog.builtin().get(TRAIN_TASK)
    start = time.perf_counter()
    for split, examples in splits.items():
        task_features(task, split, examples, tokenizer, MAX_LENGTH)
    return time.perf_counter() - start


def cli_seconds(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT.parent)
    return time.perf_counter() - start


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="alternating repetitions of each row (at least 3)")
    parser.add_argument("--updates", type=int, default=0, help="updates per training row (default: one epoch)")
    parser.add_argument("--out", type=Path, default=ROOT / "results.json")
    opts = parser.parse_args()
    transformers.logging.set_verbosity_error()
    catalog = TaskCatalog.builtin()
    topic, retrieval = catalog.get(TRAIN_TASK), catalog.get(EVAL_TASK)
    examples = seeded_subset(topic.source.load("train", "en"), TRAIN_EXAMPLES, 0)
    updates = opts.updates or -(-len(examples) // BATCH)
    scratch = Path(tempfile.mkdtemp(prefix="xstilts-bench-"))
    os.environ["XSTILTS_FEATURE_CACHE"] = str(scratch / "features")
    runs: dict[str, list[float]] = {}
    extra: dict[str, list[float]] = {"tokens_per_second": []}
    try:
        print("peak: fp32 matmul probe ...", file=sys.stderr)
        peak = matmul_flops()
        rows = {
            "xstilts": lambda: xstilts_train(examples, False, updates),
            "xstilts_frozen_emb": lambda: xstilts_train(examples, True, updates),
            "trainer_grouped": lambda: trainer_train(examples, True, updates, scratch),
            "trainer_padded_128": lambda: trainer_train(examples, False, PADDED_UPDATES, scratch),
        }
        names = list(rows)
        for rep in range(opts.reps):
            for name in names[rep % len(names) :] + names[: rep % len(names)]:  # a rotated order each repetition
                print(f"rep {rep + 1}/{opts.reps}: {name} ...", file=sys.stderr)
                out = rows[name]()
                runs.setdefault(name, []).append(out["examples_per_second"])
                if name == "xstilts":
                    extra["tokens_per_second"].append(out["tokens_per_second"])
                    n_params = out["non_embedding_params"]
        backbone, tokenizer = load_backbone(MODEL)
        tests = {  # every language, its first EVAL_PAIRS pairs by the fixed-subset rule
            lang: fixed_subset(retrieval.source.load("test", lang), EVAL_PAIRS, retrieval.format.subset_key)
            for lang in retrieval.format.test_languages(retrieval)
        }
        for rep in range(opts.reps):
            print(f"rep {rep + 1}/{opts.reps}: evaluation and its forward ceiling ...", file=sys.stderr)
            pair = [("eval", evaluation), ("forward_ceiling", forward_ceiling)]
            for name, fn in pair if rep % 2 == 0 else pair[::-1]:
                runs.setdefault(f"{name}_seconds", []).append(fn(backbone, tokenizer, tests))
        splits = {
            f"{split}:{lang}": topic.source.load(split, lang)
            for split, langs in (("train", ["en"]), ("dev", ["en"]), ("test", topic.languages))
            for lang in langs
        }
        for rep in range(max(opts.reps, 5)):
            shutil.rmtree(scratch / "features", ignore_errors=True)
            runs.setdefault("tokenize_cold_seconds", []).append(featurize_all(tokenizer, splits))
            runs.setdefault("tokenize_warm_seconds", []).append(featurize_all(tokenizer, splits))
        xstilts_bin = str(Path(sys.executable).with_name("xstilts"))
        commands = {
            "python_pass_seconds": [sys.executable, "-c", "pass"],
            "cli_help_seconds": [xstilts_bin, "--help"],
            "cli_plan_seconds": [xstilts_bin, "plan", "configs/demo.yaml", "--out", str(scratch / "plan")],
        }
        for _ in range(max(opts.reps, 5)):
            for name, args in commands.items():
                runs.setdefault(name, []).append(cli_seconds(args))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    med = {name: median(values) for name, values in runs.items()}
    tokens_per_second = median(extra["tokens_per_second"])
    ratios = {
        "train_vs_trainer_grouped": med["xstilts"] / med["trainer_grouped"],
        "train_frozen_emb_vs_trainer_grouped": med["xstilts_frozen_emb"] / med["trainer_grouped"],
        "train_vs_trainer_padded": med["xstilts"] / med["trainer_padded_128"],
        "eval_vs_forward_ceiling": med["forward_ceiling_seconds"] / med["eval_seconds"],
        "tokenize_cached_vs_cold": med["tokenize_cold_seconds"] / med["tokenize_warm_seconds"],
        "mfu_train": 6 * n_params * tokens_per_second / peak,
    }
    results = {
        "ratios": {k: round(v, 3) for k, v in ratios.items()},
        "goals": {k: {"goal": g, "met": _met(k, g, ratios, med)} for k, g in GOALS.items()},
        "medians": {k: round(v, 4) for k, v in med.items()},
        "runs": {k: [round(x, 4) for x in v] for k, v in runs.items()},
        "xstilts_train_tokens_per_second": round(tokens_per_second, 1),
        "non_embedding_params": n_params,
        "peak_flops": round(peak),
        "setup": {
            "model": MODEL,
            "train": f"{TRAIN_TASK} English train, a seeded subset of {len(examples)} examples, batch {BATCH}, max length {MAX_LENGTH}, "
            f"lr {LR}, AdamW (fused), linear warm-up 10% and decay, weight decay 0.01, clip 1.0",
            "updates": {"dynamic rows": updates, "trainer_padded_128": PADDED_UPDATES},
            "eval": f"{EVAL_TASK}, {len(tests)} languages, {EVAL_PAIRS} pairs each",
            "reps": opts.reps,
        },
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "threads": torch.get_num_threads(),
            "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    atomic_write_json(opts.out, results)
    print(_table(results))
    print(f"written: {opts.out}")


def _met(key: str, goal: float, ratios: dict, med: dict) -> bool:
    if key.startswith("cli_"):
        return med[key] < goal
    return ratios[key] >= goal


def _table(results: dict) -> str:
    med, ratios = results["medians"], results["ratios"]
    lines = [
        f"{'row':<38} {'median':>12}",
        f"{'xstilts, default optimisation':<38} {med['xstilts']:>8.1f} ex/s",
        f"{'xstilts, embeddings frozen':<38} {med['xstilts_frozen_emb']:>8.1f} ex/s",
        f"{'Trainer, group_by_length':<38} {med['trainer_grouped']:>8.1f} ex/s",
        f"{'Trainer, padded to 128':<38} {med['trainer_padded_128']:>8.1f} ex/s",
        f"{'zero-shot eval, ' + EVAL_TASK:<38} {med['eval_seconds']:>8.2f} s",
        f"{'bare forward ceiling, same tokens':<38} {med['forward_ceiling_seconds']:>8.2f} s",
        f"{'featurize ' + TRAIN_TASK + ', cold cache':<38} {med['tokenize_cold_seconds'] * 1000:>8.1f} ms",
        f"{'featurize ' + TRAIN_TASK + ', warm cache':<38} {med['tokenize_warm_seconds'] * 1000:>8.1f} ms",
        f"{'python -c pass':<38} {med['python_pass_seconds']:>8.2f} s",
        f"{'xstilts --help':<38} {med['cli_help_seconds']:>8.2f} s",
        f"{'xstilts plan configs/demo.yaml':<38} {med['cli_plan_seconds']:>8.2f} s",
        "",
        f"{'ratio':<38} {'value':>8}  goal",
    ]
    for key, value in ratios.items():
        goal = results["goals"].get(key)
        mark = "" if goal is None else f"  >= {goal['goal']:<5} {'met' if goal['met'] else 'MISSED'}"
        lines.append(f"{key:<38} {value:>8.3f}{mark}")
    for key in ("cli_help_seconds", "cli_plan_seconds"):
        goal = results["goals"][key]
        lines.append(f"{key:<38} {med[key]:>8.2f}  <  {goal['goal']:<5} {'met' if goal['met'] else 'MISSED'}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
