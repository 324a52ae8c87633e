"""The tokenization cache: equal rows cold and warm for every head format, keys that change with what decides
the rows, and the files it shares between jobs."""

from __future__ import annotations

import pytest
from conftest import WORDS

from xstilts.data.sources import JsonlDirSource
from xstilts.data.token_cache import cached, checksum, features_dir
from xstilts.models.backbone import load_backbone
from xstilts.tasks.definition import TaskDef
from xstilts.tasks.features import task_features

TAGS = ("O", "B-FOOD", "I-FOOD")


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XSTILTS_FEATURE_CACHE", str(tmp_path / "features"))


@pytest.fixture(scope="module")
def tok(tiny_model):
    return load_backbone(tiny_model)[1]


def _files() -> list:
    return sorted(features_dir().glob("*.arrow")) if features_dir().is_dir() else []


def _qa_and_tagging() -> list[tuple[TaskDef, list[dict]]]:
    context = " ".join(WORDS[:30])
    qa = TaskDef("t-qa", "span_qa", "target", "squad_v2", JsonlDirSource("."))
    qa_examples = [
        {
            "id": "q1",
            "question": "what do we eat",
            "context": context,
            "answers": {"text": ["pizza"], "answer_start": [context.index("pizza")]},
        },
        {"id": "q2", "question": "who", "context": context, "answers": {"text": [], "answer_start": []}},
    ]
    tag = TaskDef("t-tag", "tagging", "target", "seqeval", JsonlDirSource(".", TAGS))
    tag_examples = [{"id": "s1", "tokens": ["we", "eat", "pizza", "bread"], "tags": ["O", "O", "B-FOOD", "I-FOOD"]}]
    return [(qa, qa_examples), (tag, tag_examples)]


def test_cold_and_warm_rows_are_equal_for_every_head_format(tiny_catalog, tok):
    cases = [
        (tiny_catalog.get(n), tiny_catalog.get(n).source.load("train", "en"))
        for n in ("t-topic", "t-answer", "t-sametopic")
    ]
    for task, examples in cases + _qa_and_tagging():
        cold = task_features(task, "train", examples, tok, 16)
        assert len(_files()) >= 1
        written = _files()
        warm = task_features(task, "train", examples, tok, 16)
        assert _files() == written  # read, not written again
        assert warm == cold
        # the cache holds what the format computes (Arrow gives tuples back as lists)
        fresh = task.format.featurize(task, examples, tok, 16)
        assert [_lists(f) for f in fresh] == warm
    assert len(_files()) == len(cases) + 2


def _lists(value):
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    return value


def test_key_covers_split_length_data_and_tokenizer(tiny_catalog, tok, subword_tok):
    task = tiny_catalog.get("t-topic")
    examples = task.source.load("train", "en")
    task_features(task, "train", examples, tok, 16)
    task_features(task, "train", examples, tok, 16)
    assert len(_files()) == 1
    task_features(task, "train", examples, tok, 8)
    assert len(_files()) == 2
    changed = [dict(examples[0], text=examples[0]["text"] + " pizza"), *examples[1:]]
    assert task_features(task, "train", changed, tok, 16) != task_features(task, "train", examples, tok, 16)
    assert len(_files()) == 3
    task_features(task, "dev", examples, tok, 16)
    assert len(_files()) == 4
    task_features(task, "train", examples, subword_tok, 16)
    assert len(_files()) == 5


@pytest.fixture(scope="module")
def subword_tok():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<pad>", "<unk>", *WORDS, "##s"])}
    raw = Tokenizer(models.WordPiece(vocab, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="<pad>", unk_token="<unk>")


def test_rows_arrow_cannot_hold_are_returned_uncached():
    rows = [{"x": 1}, {"x": [1, 2]}]
    assert cached({"k": 1}, lambda: rows) == rows
    assert _files() == []


def test_checksum_follows_the_data():
    assert checksum([{"a": 1, "b": "é"}]) == checksum([{"a": 1, "b": "é"}])
    assert checksum([{"a": 1}]) != checksum([{"a": 2}])
    assert checksum([{"a": [1, 2]}]) != checksum([{"a": [1, 2], "b": None}])
