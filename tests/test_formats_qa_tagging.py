"""Span QA and tagging formats: windows and offsets, span decoding, first-sub-word labels, tiny training runs."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
from conftest import WORDS

from xstilts.cache import cache_dir
from xstilts.config.schema import TrainConfig
from xstilts.data.sources import JsonlDirSource
from xstilts.errors import UserError
from xstilts.evaluate.predict import predict_logits
from xstilts.formats import span_qa
from xstilts.formats.base import IGNORE_INDEX, collate
from xstilts.formats.registry import get_format
from xstilts.models.backbone import load_backbone
from xstilts.models.multitask import build_multitask
from xstilts.tasks.definition import TaskDef
from xstilts.train.loop import TrainTask, train

QA = get_format("span_qa")
TAG = get_format("tagging")
TAGS = ("O", "B-FOOD", "I-FOOD")


def _qa_task(metric: str = "squad") -> TaskDef:
    return TaskDef("t-qa", "span_qa", "target", metric, JsonlDirSource("."))


def _tag_task() -> TaskDef:
    return TaskDef("t-tag", "tagging", "target", "seqeval", JsonlDirSource(".", TAGS))


def _qa_example(context: str, answer: str | None, question: str = "what do we eat", qid: str = "q") -> dict:
    if answer is None:
        return {"id": qid, "question": question, "context": context, "answers": {"text": [], "answer_start": []}}
    return {
        "id": qid,
        "question": question,
        "context": context,
        "answers": {"text": [answer], "answer_start": [context.index(answer)]},
    }


@pytest.fixture(scope="module")
def word_tok(tiny_model):
    return load_backbone(tiny_model)[1]


@pytest.fixture(scope="module")
def subword_model(tmp_path_factory) -> str:
    """A tiny BERT whose WordPiece tokenizer splits words: "pizzas" -> pizza ##s."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    pieces = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "##s", "##ing", "##ed", "##er"] + WORDS
    tok = Tokenizer(models.WordPiece({p: i for i, p in enumerate(pieces)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 1), ("[SEP]", 2)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]", unk_token="[UNK]"
    )
    path = tmp_path_factory.mktemp("subword-bert")
    torch.manual_seed(0)
    BertModel(
        BertConfig(
            vocab_size=len(pieces),
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            max_position_embeddings=64,
            pad_token_id=0,
        ),
        add_pooling_layer=False,
    ).save_pretrained(path)
    fast.save_pretrained(path)
    return str(path)


# ---------------------------------------------------------------- span QA: featurize


def test_qa_windows_overlap_by_stride_and_hold_every_answer(word_tok, monkeypatch):
    monkeypatch.setattr(span_qa, "DOC_STRIDE", 3)
    words = [WORDS[i % len(WORDS)] for i in range(30)]
    context = " ".join(words)
    spans = [(i, j) for i in range(len(words)) for j in range(i, min(i + 3, len(words)))]
    starts = np.cumsum([0] + [len(w) + 1 for w in words])
    examples = [
        {
            "id": f"{i}-{j}",
            "question": "what do we eat",
            "context": context,
            "answers": {"text": [" ".join(words[i : j + 1])], "answer_start": [int(starts[i])]},
        }
        for i, j in spans
    ]
    feats = QA.featurize(_qa_task(), examples, word_tok, max_length=16)
    windows = [[o for o in f["_offsets"] if o is not None] for f in feats if f["_example"] == 0]
    assert len(windows) > 3 and all(len(f["input_ids"]) <= 16 for f in feats)
    for a, b in itertools.pairwise(windows):
        assert a[-3:] == b[:3]  # consecutive windows share DOC_STRIDE context tokens
    straddling = 0
    for n, ex in enumerate(examples):
        mine = [f for f in feats if f["_example"] == n]
        held = [f for f in mine if f["start"] or f["end"]]
        assert held, ex["id"]
        for f in held:
            assert context[f["_offsets"][f["start"]][0] : f["_offsets"][f["end"]][1]] == ex["answers"]["text"][0]
        covered = [f for f in mine if any(o[0] <= starts[spans[n][0]] < o[1] for o in f["_offsets"] if o)]
        straddling += len(covered) > len(held)
    assert straddling > 0  # some answers begin in a window that cuts them off: that window gets (0, 0)


def test_qa_featurize_no_answer_long_question_and_tiny_max_length(word_tok):
    long_q = " ".join(["what"] * 40)
    feats = QA.featurize(
        _qa_task("squad_v2"), [_qa_example("we like pizza " * 10, None, question=long_q)], word_tok, max_length=24
    )
    assert feats and all(f["start"] == f["end"] == 0 for f in feats)
    assert all(len(f["input_ids"]) <= 24 and sum(o is not None for o in f["_offsets"]) >= 2 for f in feats)
    with pytest.raises(UserError, match="no room"):
        QA.featurize(_qa_task(), [_qa_example("we like pizza", "pizza")], word_tok, max_length=8)


# ---------------------------------------------------------------- span QA: decoding and scores


def _peaks(feat: dict, start: dict[int, float], end: dict[int, float], pad: int = 3) -> np.ndarray:
    """Logits of -10 (padding rows 100) but for the given start and end values."""
    out = np.full((len(feat["input_ids"]) + pad, 2), -10.0, dtype=np.float32)
    out[len(feat["input_ids"]) :] = 100.0
    for i, v in start.items():
        out[i, 0] = v
    for i, v in end.items():
        out[i, 1] = v
    return out


def _ctx_positions(feat: dict) -> list[int]:
    return [i for i, o in enumerate(feat["_offsets"]) if o is not None]


def test_qa_predict_best_span_across_windows(word_tok, monkeypatch):
    monkeypatch.setattr(span_qa, "DOC_STRIDE", 2)
    context = " ".join(WORDS[:24])
    ex = _qa_example(context, None)
    feats = QA.featurize(_qa_task(), [ex], word_tok, max_length=16)
    assert len(feats) >= 3
    first, last = _ctx_positions(feats[0]), _ctx_positions(feats[-1])
    outputs = [_peaks(f, {}, {}) for f in feats]
    outputs[0] = _peaks(feats[0], {first[0]: 3.0, 1: 50.0}, {first[1]: 3.0, 1: 50.0})  # 1 is a question token
    outputs[-1] = _peaks(feats[-1], {last[2]: 4.0}, {last[3]: 4.0})
    [pred] = QA.predict(outputs, feats, [ex], _qa_task())
    offsets = feats[-1]["_offsets"]
    assert pred == context[offsets[last[2]][0] : offsets[last[3]][1]] == " ".join(WORDS[24 - len(last) + 2 :][:2])
    # the end before the start, or a span longer than MAX_ANSWER_LENGTH, is never chosen
    monkeypatch.setattr(span_qa, "MAX_ANSWER_LENGTH", 2)
    outputs = [_peaks(f, {}, {}) for f in feats]
    outputs[0] = _peaks(feats[0], {first[3]: 9.0, first[0]: 1.0}, {first[2]: 9.0, first[5]: 8.0, first[1]: 1.0})
    [pred] = QA.predict(outputs, feats, [ex], _qa_task())
    assert pred == " ".join(WORDS[:2])


def test_qa_predict_no_answer_only_for_squad_v2(word_tok):
    ex = _qa_example("we like pizza and bread", None)
    feats = QA.featurize(_qa_task(), [ex], word_tok, max_length=32)
    ctx = _ctx_positions(feats[0])
    null_wins = [_peaks(feats[0], {0: 5.0, ctx[2]: 2.0}, {0: 5.0, ctx[2]: 2.0})]
    span_wins = [_peaks(feats[0], {0: 1.0, ctx[2]: 2.0}, {0: 1.0, ctx[2]: 2.0})]
    assert QA.predict(null_wins, feats, [ex], _qa_task("squad_v2")) == [""]
    assert QA.predict(null_wins, feats, [ex], _qa_task("squad")) == ["pizza"]
    assert QA.predict(null_wins, feats, [ex], _qa_task("mlqa")) == ["pizza"]
    assert QA.predict(span_wins, feats, [ex], _qa_task("squad_v2")) == ["pizza"]


def test_qa_null_score_is_the_minimum_over_windows(word_tok, monkeypatch):
    monkeypatch.setattr(span_qa, "DOC_STRIDE", 2)
    ex = _qa_example(" ".join(WORDS[:24]), None)
    feats = QA.featurize(_qa_task(), [ex], word_tok, max_length=16)
    ctx = _ctx_positions(feats[0])
    outputs = [_peaks(f, {0: 10.0}, {0: 10.0}) for f in feats]
    outputs[-1] = _peaks(feats[-1], {0: 1.0}, {0: 1.0})
    outputs[0] = _peaks(feats[0], {0: 10.0, ctx[0]: 3.0}, {0: 10.0, ctx[0]: 3.0})
    assert QA.predict(outputs, feats, [ex], _qa_task("squad_v2")) == [WORDS[0]]


def test_qa_scores():
    examples = [_qa_example("we like the pizza", "the pizza"), _qa_example("we like bread", None)]
    v2 = QA.score(["pizza", ""], examples, _qa_task("squad_v2"), "en")
    assert v2 == {"exact_match": 100.0, "f1": 100.0}
    assert QA.score(["like", "bread"], examples, _qa_task("squad_v2"), "en") == {"exact_match": 0.0, "f1": 0.0}
    assert QA.score(["pizza"], examples[:1], _qa_task("squad"), "en") == {"exact_match": 100.0, "f1": 100.0}
    de = [_qa_example("wir essen die Pizza", "die Pizza")]
    assert QA.score(["Pizza"], de, _qa_task("mlqa"), "de")["exact_match"] == 100.0
    assert QA.score(["Pizza"], de, _qa_task("squad"), "de")["exact_match"] == 0.0


# ---------------------------------------------------------------- tagging


def test_tagging_labels_first_subword_and_predicts_per_word(subword_model):
    tok = load_backbone(subword_model)[1]
    ex = {"id": "t", "tokens": ["we", "eat", "pizzas", "and", "breads"], "tags": ["O", "O", "B-FOOD", "O", "B-FOOD"]}
    [feat] = TAG.featurize(_tag_task(), [ex], tok, max_length=32)
    assert tok.convert_ids_to_tokens(feat["input_ids"]) == [
        "[CLS]",
        "we",
        "eat",
        "pizza",
        "##s",
        "and",
        "bread",
        "##s",
        "[SEP]",
    ]
    assert feat["label"] == [IGNORE_INDEX, 0, 0, 1, IGNORE_INDEX, 0, 1, IGNORE_INDEX, IGNORE_INDEX]
    assert feat["_words"] == [None, 0, 1, 2, 2, 3, 4, 4, None]
    out = np.zeros((len(feat["input_ids"]) + 2, 3), dtype=np.float32)
    for t, k in ((1, 2), (2, 0), (3, 1), (4, 2), (5, 0), (6, 2), (7, 1)):
        out[t, k] = 1.0  # non-first sub-words (4, 7) must not count
    out[-2:, 1] = 5.0  # padding rows
    assert TAG.predict([out], [feat], [ex], _tag_task()) == [["I-FOOD", "O", "B-FOOD", "O", "I-FOOD"]]
    batch = collate([feat, TAG.featurize(_tag_task(), [ex], tok, max_length=4)[0]], tok.pad_token_id)
    assert batch["labels"].tolist()[1] == [IGNORE_INDEX, 0, 0, IGNORE_INDEX] + [IGNORE_INDEX] * 5


def test_tagging_truncated_words_fall_back_and_unknown_tags_fail(subword_model):
    tok = load_backbone(subword_model)[1]
    ex = {"id": "t", "tokens": ["pizzas", "we", "eat"], "tags": ["B-FOOD", "O", "O"]}
    [feat] = TAG.featurize(_tag_task(), [ex], tok, max_length=5)  # [CLS] pizza ##s we [SEP]: "eat" is cut
    out = np.zeros((5, 3), dtype=np.float32)
    out[:, 2] = 1.0
    assert TAG.predict([out], [feat], [ex], _tag_task()) == [["I-FOOD", "I-FOOD", "O"]]
    no_o = TaskDef("t-pos", "tagging", "target", "seqeval", JsonlDirSource(".", ("NOUN", "VERB")))
    assert TAG.predict([out[:, :2]], [feat], [ex], no_o)[0][2] == "NOUN"
    with pytest.raises(UserError, match="B-DRINK"):
        TAG.featurize(_tag_task(), [{**ex, "tags": ["B-DRINK", "O", "O"]}], tok, max_length=8)
    assert TAG.score([["B-FOOD", "O", "O"]], [ex], _tag_task(), "en") == {
        "f1": 100.0,
        "precision": 100.0,
        "recall": 100.0,
    }


@pytest.mark.slow
def test_real_sentencepiece_tokenizer_offsets_and_first_pieces():
    """me5-small's XLM-R tokenizer, when already converted: its offsets include the leading space of "▁word"."""
    path = cache_dir() / "models" / "me5-small"
    if not (path / "tokenizer.json").is_file():
        pytest.skip("me5-small is not converted yet")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    ctx = "Der Eiffelturm steht in Paris. " * 6 + "Gustave Eiffel baute ihn für die Weltausstellung. " * 2
    ex = _qa_example(ctx, "Gustave Eiffel", question="Wer baute den Turm?")
    feats = QA.featurize(_qa_task(), [ex], tok, max_length=32)
    held = [f for f in feats if f["start"]]
    assert len(feats) > 2 and held
    for f in held:
        out = _peaks(f, {f["start"]: 5.0}, {f["end"]: 5.0})
        assert QA.predict([out], [f], [ex], _qa_task()) == ["Gustave Eiffel"]
    words = ["Gustave", "Eiffel", "baute", "den", "Eisenfachwerkturm", "."]
    tt = {"id": None, "tokens": words, "tags": ["B-FOOD", "I-FOOD", "O", "O", "O", "O"]}
    [feat] = TAG.featurize(_tag_task(), [tt], tok, max_length=32)
    first = [t for t, lab in enumerate(feat["label"]) if lab != IGNORE_INDEX]
    assert [feat["_words"][t] for t in first] == list(range(len(words)))
    assert len(feat["input_ids"]) > len(words) + 2  # some words were split


# ---------------------------------------------------------------- tiny training runs


def _train(model_path: str, task: TaskDef, examples: list[dict], max_length: int):
    backbone, tok = load_backbone(model_path)
    fmt = task.format
    model = build_multitask(backbone, [task], "linear", "mean")
    feats = fmt.featurize(task, examples, tok, max_length)
    losses = []
    cfg = TrainConfig(lr=5e-3, batch_size=8, max_steps=20, warmup_ratio=0.0)
    train(
        model,
        [TrainTask(task.name, feats)],
        cfg,
        0,
        tok.pad_token_id,
        on_step=lambda step, total, loss: losses.append(loss),
    )
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    outputs = predict_logits(model, task.name, feats, 16, tok.pad_token_id)
    return fmt.predict(outputs, feats, examples, task), outputs, feats


def test_span_qa_trains_end_to_end(tiny_model):
    rng = random.Random(0)
    filler = [w for w in WORDS if w != "pizza"]
    examples = []
    for i in range(24):
        words = [rng.choice(filler) for _ in range(rng.randint(8, 30))]
        words.insert(rng.randrange(len(words)), "pizza")
        examples.append(_qa_example(" ".join(words), "pizza", question="what food", qid=str(i)))
    task = _qa_task()
    preds, outputs, feats = _train(tiny_model, task, examples, max_length=24)
    assert len(feats) > len(examples)  # long contexts made several windows
    assert len(preds) == len(examples) and all(isinstance(p, str) for p in preds)
    assert all(o.shape[1] == 2 for o in outputs)
    scores = QA.score(preds, examples, task, "en")
    assert list(scores) == ["exact_match", "f1"] and scores["exact_match"] > 50.0


def test_tagging_trains_end_to_end(subword_model):
    rng = random.Random(0)
    food = {"pizza", "bread", "water", "coffee", "tea"}
    examples = []
    for i in range(24):
        words = [rng.choice(WORDS) + rng.choice(["", "", "s"]) for _ in range(rng.randint(3, 10))]
        tags = ["B-FOOD" if w.rstrip("s") in food else "O" for w in words]
        examples.append({"id": str(i), "tokens": words, "tags": tags})
    task = _tag_task()
    preds, outputs, _ = _train(subword_model, task, examples, max_length=16)
    assert [len(p) for p in preds] == [len(ex["tokens"]) for ex in examples]
    assert all(o.shape[1] == len(TAGS) for o in outputs)
    assert TAG.score(preds, examples, task, "en")["f1"] > 50.0


def test_tagging_accuracy_metric_scores_tokens():
    """CCG supertagging is scored by per-token accuracy, not chunk F1."""
    import dataclasses

    from xstilts.formats.tagging import Tagging

    task = TaskDef("ccg-like", "tagging", "intermediate", "accuracy", source=None, fields=("tokens",))
    examples = [{"tags": ["NP", "S\\NP", "."]}, {"tags": ["N/N", "N"]}]
    assert Tagging().score([["NP", "NP", "."], ["N/N", "N"]], examples, task, "en") == {"accuracy": 80.0}
    chunked = dataclasses.replace(task, metric="seqeval")
    assert "f1" in Tagging().score([["NP", "NP", "."], ["N/N", "N"]], examples, chunked, "en")
