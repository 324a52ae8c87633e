"""Every task format on an encoder (tiny BERT) and a decoder (tiny Llama), with full fine-tuning and with LoRA;
span QA and tagging on a tiny mDeBERTa and mT5 encoder too; LoRA trains only adapters and heads; an intermediate
job hands its adapters on merged or stacked."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from conftest import WORDS
from rich.console import Console

from xstilts.config.schema import ExperimentConfig, TrainConfig
from xstilts.data.sources import JsonlDirSource
from xstilts.evaluate.predict import predict_logits
from xstilts.experiments.rundir import RunDir
from xstilts.experiments.runner import run_experiment
from xstilts.formats.pooling import pool
from xstilts.models.adapters import UPSTREAM, job_backbone, save_handoff
from xstilts.models.multitask import build_multitask
from xstilts.tasks.definition import TaskDef
from xstilts.train.loop import TrainTask, train

LORA = {"rank": 4, "alpha": 8.0, "dropout": 0.0, "targets": "all-linear", "handoff": "merged", "quantize": "none"}
MODES = {"full": {}, "lora": {"lora": LORA}}


@pytest.fixture(params=["encoder", "decoder"])
def backbone_ref(request, tiny_model, tiny_decoder) -> tuple[str, str]:
    """(model directory, pooling): the tiny BERT with its first token, the tiny Llama with its last."""
    return (tiny_model, "cls") if request.param == "encoder" else (tiny_decoder, "last")


def test_last_token_pooling_reads_the_last_unmasked_token_on_either_side():
    hidden = torch.arange(24.0).view(2, 4, 3)
    right = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    left = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    assert pool(hidden, right, "last").tolist() == [hidden[0, 1].tolist(), hidden[1, 3].tolist()]
    assert pool(hidden, left, "last").tolist() == [hidden[0, 3].tolist(), hidden[1, 3].tolist()]


@pytest.mark.parametrize("mode", MODES)
def test_every_format_trains_and_evaluates(backbone_ref, mode, tiny_catalog, tmp_path):
    """Classification, multiple choice and retrieval through whole experiments (intermediate, target, zero-shot
    in every language); span QA and tagging through training and prediction below."""
    model, pooling = backbone_ref
    budget = {"batch_size": 8, "lr": 5e-3, "max_length": 32, "max_steps": 6}
    cfg = ExperimentConfig.model_validate(
        {
            "model": model,
            "head_pooling": pooling,
            "backbone": MODES[mode],
            "intermediate": {"settings": ["none", "t-answer"], "train": budget},
            "targets": [
                {"task": "t-topic", "train": budget, "probe_reference": False},
                {"task": "t-retrieval", "eval": {"pooling": pooling}},
            ],
        }
    )
    summary = run_experiment(cfg, tiny_catalog, "", tmp_path, Console(quiet=True))
    assert summary["ran"] == summary["jobs"] == 5
    results = RunDir(tmp_path).load_results()
    tested = {
        (r["kind"], r["intermediate"]): {m["language"] for m in r["metrics"] if m["split"] == "test"} for r in results
    }
    for setting in ("none", "t-answer"):
        assert tested["target", setting] >= {"xx", "yy"} and tested["retrieval", setting] >= {"xx", "yy"}
    assert all(0 <= m["value"] <= 100 for r in results for m in r["metrics"])
    for fmt in ("span_qa", "tagging"):
        _train_and_predict(model, pooling, MODES[mode], fmt)


def _qa_and_tagging_examples(fmt: str) -> list[dict]:
    rng = random.Random(0)
    examples = []
    for i in range(24):
        words = [rng.choice([w for w in WORDS if w != "pizza"]) for _ in range(rng.randint(4, 12))]
        words.insert(rng.randrange(len(words)), "pizza")
        if fmt == "tagging":
            examples.append({"id": str(i), "tokens": words, "tags": ["B-FOOD" if w == "pizza" else "O" for w in words]})
        else:
            context = " ".join(words)
            answers = {"text": ["pizza"], "answer_start": [context.index("pizza")]}
            examples.append({"id": str(i), "question": "what food", "context": context, "answers": answers})
    return examples


def _train_and_predict(model_ref: str, pooling: str, settings: dict, fmt: str) -> None:
    labels = ("O", "B-FOOD") if fmt == "tagging" else None
    task = TaskDef("t-" + fmt, fmt, "target", "seqeval" if labels else "squad", JsonlDirSource(".", labels))
    backbone, tok = job_backbone(model_ref, settings, None, trains=True)
    model = build_multitask(backbone, [task], "linear", pooling)
    examples = _qa_and_tagging_examples(fmt)
    feats = task.format.featurize(task, examples, tok, 32)
    losses = []
    cfg = TrainConfig(lr=5e-3, batch_size=8, max_steps=12, warmup_ratio=0.0, recipe="full")
    train(
        model, [TrainTask(task.name, feats)], cfg, 0, tok.pad_token_id, on_step=lambda s, t, loss: losses.append(loss)
    )
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    preds = task.format.predict(predict_logits(model, task.name, feats, 16, tok.pad_token_id), feats, examples, task)
    assert len(preds) == len(examples)
    assert set(task.format.score(preds, examples, task, "en")) >= {"f1"}


def test_lora_changes_only_adapters_and_heads(tiny_decoder, tiny_catalog):
    task = tiny_catalog.get("t-topic")
    backbone, tok = job_backbone(tiny_decoder, {"lora": LORA}, None, trains=True)
    model = build_multitask(backbone, [task], "linear", "last")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    examples = task.source.load("train", "en")
    feats = task.format.featurize(task, examples, tok, 32)
    train(
        model,
        [TrainTask(task.name, feats)],
        TrainConfig(lr=1e-2, batch_size=8, max_steps=5, recipe="full"),
        0,
        tok.pad_token_id,
    )
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert changed and changed <= trainable
    assert all(".lora_" in n or not n.startswith("backbone.") for n in trainable)
    assert any(n.startswith("heads.") for n in changed) and any(".lora_B." in n for n in changed)


@pytest.mark.parametrize("handoff", ["merged", "stacked"])
def test_a_target_starts_from_the_intermediate_adapters(handoff, tiny_decoder, tmp_path):
    """The hand-off directory holds the merged encoder or the adapters alone; the target's backbone computes what
    the intermediate job's did (new adapters start at zero) and trains only its new adapters."""
    lora = {**LORA, "handoff": handoff}
    trained, tok = job_backbone(tiny_decoder, {"lora": lora}, None, trains=True)
    with torch.no_grad():  # as if trained: non-zero B matrices
        for name, p in trained.named_parameters():
            if ".lora_B." in name:
                p.normal_(0, 0.5)
    ids = torch.tensor([[1, 5, 9, 14, 2, 7]])
    mask = torch.ones_like(ids)
    with torch.no_grad():
        expected = trained(input_ids=ids, attention_mask=mask).last_hidden_state
    save_handoff(trained, tok, tmp_path / "checkpoint", {"lora": lora})
    files = {p.name for p in (tmp_path / "checkpoint").iterdir()}
    assert ("adapter_config.json" in files) == (handoff == "stacked")
    assert ("model.safetensors" in files) == (handoff == "merged")

    target, _ = job_backbone(tiny_decoder, {"lora": lora}, tmp_path / "checkpoint", trains=True)
    with torch.no_grad():
        got = target(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    trainable = [n for n, p in target.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_" in n and f".{UPSTREAM}." not in n for n in trainable)
    if handoff == "stacked":
        assert any(f".{UPSTREAM}." in n for n, _ in target.named_parameters())  # kept, frozen, under the new ones
    retrieval, _ = job_backbone(tiny_decoder, {"lora": lora}, tmp_path / "checkpoint", trains=False)
    with torch.no_grad():  # retrieval reads the adapted encoder
        torch.testing.assert_close(retrieval(input_ids=ids, attention_mask=mask).last_hidden_state, expected)


def _other_encoder(family: str, tokenizer_from: str, folder) -> str:
    """A tiny mDeBERTa-style (DeBERTa-v2, relative positions only) or mT5 model directory with the tiny tokenizer."""
    from transformers import AutoTokenizer, DebertaV2Config, DebertaV2Model, MT5Config, MT5Model

    torch.manual_seed(0)
    if family == "mt5":
        config = MT5Config(vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=2, num_heads=4)
        MT5Model(config).save_pretrained(folder)
    else:
        config = DebertaV2Config(
            vocab_size=64,
            hidden_size=16,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=32,
            max_position_embeddings=64,
            relative_attention=True,
            position_buckets=16,
            pos_att_type=["p2c", "c2p"],
            position_biased_input=False,
            type_vocab_size=0,
        )
        DebertaV2Model(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tokenizer_from).save_pretrained(folder)
    return str(folder)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("family", "loaded"), [("mt5", "MT5EncoderModel"), ("mdeberta", "DebertaV2Model")])
def test_mdeberta_and_the_mt5_encoder_train_span_qa_and_tagging(family, loaded, mode, tiny_model, tmp_path):
    """mT5 loads as its encoder alone (MT5EncoderModel); both train with our heads, in full and with LoRA."""
    model = _other_encoder(family, tiny_model, tmp_path)
    backbone, _ = job_backbone(model, MODES[mode], None, trains=True)
    base = backbone.get_base_model() if mode == "lora" else backbone
    assert type(base).__name__ == loaded
    for fmt in ("span_qa", "tagging"):
        _train_and_predict(model, "mean", MODES[mode], fmt)


def test_bf16_weights_and_gradient_checkpointing_train_lora(tiny_decoder, tiny_catalog):
    task = tiny_catalog.get("t-topic")
    backbone, tok = job_backbone(tiny_decoder, {"dtype": "bfloat16", "lora": LORA}, None, True, checkpointing=True)
    base = backbone.get_base_model()
    assert base.dtype == torch.bfloat16 and base.is_activation_checkpointing
    assert all(p.dtype == torch.float32 for n, p in backbone.named_parameters() if p.requires_grad)  # adapters fp32
    model = build_multitask(backbone, [task], "linear", "last")
    feats = task.format.featurize(task, task.source.load("train", "en"), tok, 32)
    losses = []
    cfg = TrainConfig(lr=1e-2, batch_size=8, max_steps=8, recipe="full")
    train(
        model, [TrainTask(task.name, feats)], cfg, 0, tok.pad_token_id, on_step=lambda s, t, loss: losses.append(loss)
    )
    assert all(np.isfinite(losses)) and len(losses) == 8
