"""Shared fixtures: a tiny random BERT with a word-level tokenizer, tiny tasks in the pocket formats, and one clean
run of configs/quick.yaml on the real model."""

from __future__ import annotations

import json
import os
import random
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import transformers

transformers.logging.disable_progress_bar()

from xstilts.data.sources import JsonlDirSource
from xstilts.tasks.catalog import TaskCatalog
from xstilts.tasks.definition import TaskDef

WORDS = (
    "food drink eat pizza bread water coffee tea sport ball run goal team win game play music song "
    "sing guitar band dance the a is i like we you they it what do does where when how who and or"
).split()
TOPICS = {"food": WORDS[:8], "sport": WORDS[8:16], "music": WORDS[16:22]}
LANGS = ("en", "xx", "yy")


def _sentence(rng: random.Random, topic: str) -> str:
    return " ".join(rng.choice(TOPICS[topic] + WORDS[22:]) for _ in range(rng.randint(3, 9)))


def _word_tokenizer(specials: list[str], single: str, pair: str, pad: str | None = None):
    """A word-level fast tokenizer over ``specials`` + WORDS, with ``<s>``/``</s>`` templates (and a pad token)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(specials + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    marks = [(t, vocab[t]) for t in ("<s>", "</s>")]
    tok.post_processor = processors.TemplateProcessing(single=single, pair=pair, special_tokens=marks)
    pad_token = {"pad_token": pad} if pad else {}
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", **pad_token
    )


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """A 2-layer BERT (hidden 32) with a word-level tokenizer over WORDS, saved as an HF directory."""
    from transformers import BertConfig, BertModel

    fast = _word_tokenizer(["<pad>", "<s>", "</s>", "<unk>"], "<s> $A </s>", "<s> $A </s> </s> $B </s>", "<pad>")
    path = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(
        vocab_size=len(fast),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=0,
    )
    import torch

    torch.manual_seed(0)
    BertModel(config, add_pooling_layer=False).save_pretrained(path)
    fast.save_pretrained(path)
    return str(path)


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> dict[str, Path]:
    """Synthetic data in the pocket formats: topic (target), retrieval (target), answer and sametopic."""
    rng = random.Random(0)
    root = tmp_path_factory.mktemp("tiny-data")
    dirs = {name: root / name for name in ("t-topic", "t-retrieval", "t-answer", "t-sametopic")}
    for d in dirs.values():
        d.mkdir()
    topics = sorted(TOPICS)
    for split, langs, n in (("train", ["en"], 60), ("dev", ["en"], 20), ("test", LANGS, 20)):
        for lang in langs:
            _write(
                dirs["t-topic"] / f"{split}-{lang}.jsonl",
                [
                    {"id": f"{lang}{i}", "text": _sentence(rng, t), "label": t}
                    for i, t in enumerate(rng.choice(topics) for _ in range(n))
                ],
            )
    for lang in LANGS[1:]:
        _write(
            dirs["t-retrieval"] / f"test-{lang}.jsonl",
            [
                {"id": f"{lang}{i}", "source": s, "target": s}
                for i, s in enumerate(_sentence(rng, rng.choice(topics)) for _ in range(15))
            ],
        )
    for split, n in (("train", 40), ("dev", 12)):
        rows = []
        for i in range(n):
            t = rng.choice(topics)
            choices = [_sentence(rng, c) for c in topics] + [_sentence(rng, t)]
            rows.append({"id": f"a{i}", "question": _sentence(rng, t), "choices": choices, "label": topics.index(t)})
        _write(dirs["t-answer"] / f"{split}-en.jsonl", rows)
        _write(
            dirs["t-sametopic"] / f"{split}-en.jsonl",
            [
                {
                    "id": f"s{i}",
                    "text_a": _sentence(rng, a),
                    "text_b": _sentence(rng, b),
                    "label": "same" if a == b else "different",
                }
                for i, (a, b) in enumerate((rng.choice(topics), rng.choice(topics)) for _ in range(n))
            ],
        )
    return dirs


@pytest.fixture
def tiny_catalog(tiny_data) -> TaskCatalog:
    """The built-in tasks and the tiny ones (t-topic, t-retrieval, t-answer, t-sametopic)."""
    defs = [
        TaskDef(
            "t-topic",
            "classification",
            "target",
            "accuracy",
            JsonlDirSource(tiny_data["t-topic"], tuple(sorted(TOPICS))),
        ),
        TaskDef(
            "t-retrieval",
            "retrieval",
            "target",
            "accuracy@1",
            JsonlDirSource(tiny_data["t-retrieval"]),
            fields=("source", "target"),
        ),
        TaskDef(
            "t-answer",
            "multiple_choice",
            "intermediate",
            "accuracy",
            JsonlDirSource(tiny_data["t-answer"]),
            fields=("question", "choices"),
        ),
        TaskDef(
            "t-sametopic",
            "classification",
            "intermediate",
            "accuracy",
            JsonlDirSource(tiny_data["t-sametopic"], ("different", "same")),
            fields=("text_a", "text_b"),
        ),
    ]
    return TaskCatalog.builtin().with_tasks(*defs)


@pytest.fixture(scope="session")
def tiny_task_files(tiny_data, tmp_path_factory) -> Path:
    """The tiny tasks as user task YAML files (u-topic, u-answer, u-sametopic): a folder a separate
    ``xstilts`` process can register through ``tasks_dir``."""
    import yaml

    folder = tmp_path_factory.mktemp("tiny-task-files")
    specs = [
        {
            "name": "u-topic",
            "format": "classification",
            "kind": "target",
            "labels": sorted(TOPICS),
            "languages": list(LANGS),
            "dir": "t-topic",
            "test": True,
        },
        {"name": "u-answer", "format": "multiple_choice", "dir": "t-answer"},
        {
            "name": "u-sametopic",
            "format": "classification",
            "labels": ["different", "same"],
            "fields": {"text_a": "text_a", "text_b": "text_b"},
            "dir": "t-sametopic",
        },
    ]
    for spec in specs:
        data = tiny_data[spec.pop("dir")]
        splits = {"train": str(data / "train-en.jsonl"), "dev": str(data / "dev-en.jsonl")}
        if spec.pop("test", False):
            splits["test"] = str(data / "test-{lang}.jsonl")
        (folder / f"{spec['name']}.yaml").write_text(yaml.safe_dump({**spec, "data": splits}), encoding="utf-8")
    return folder


ROOT = Path(__file__).resolve().parents[1]
KILLPOINT = Path(__file__).parent / "reliability" / "killpoint"  # the kill harness's fault injection


@dataclass(frozen=True)
class QuickRun:
    """A finished run of configs/quick.yaml: its OUT, the feature cache it filled from empty, its wall time, and
    the trace of its stages (one record per call of a stage function; ``killpoint/sitecustomize.py``)."""

    out: Path
    features: Path
    seconds: float
    trace: list[dict]


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory) -> QuickRun:
    """``xstilts run configs/quick.yaml``, traced: the integration tests read it, and the kill harness compares
    killed-and-resumed runs with it and places its kills from the trace."""
    from cli_runs import XSTILTS

    root = tmp_path_factory.mktemp("quick")
    out, features, trace = root / "out", root / "features", root / "trace.jsonl"
    env = os.environ | {
        "PYTHONPATH": str(KILLPOINT),
        "XSTILTS_KILLTRACE": str(trace),
        "XSTILTS_FEATURE_CACHE": str(features),
    }
    start = time.monotonic()
    proc = subprocess.run(
        [XSTILTS, "run", "configs/quick.yaml", "--out", str(out)],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(line) for line in trace.read_text(encoding="utf-8").splitlines()]
    return QuickRun(out, features, time.monotonic() - start, records)


@pytest.fixture(scope="session")
def tiny_decoder(tmp_path_factory) -> str:
    """A 2-layer Llama-style decoder (hidden 32, grouped-query attention) with a word-level tokenizer over WORDS
    that, like Llama's, has BOS and EOS but no pad token."""
    import torch
    from transformers import LlamaConfig, LlamaModel

    fast = _word_tokenizer(["<unk>", "<s>", "</s>"], "<s> $A", "<s> $A </s> $B")
    path = tmp_path_factory.mktemp("tiny-llama")
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        bos_token_id=1,
        eos_token_id=2,
    )
    torch.manual_seed(0)
    LlamaModel(config).save_pretrained(path)
    fast.save_pretrained(path)
    return str(path)
