"""Masked LM: BERT masking, the tied head, the raw-text source, the pocket corpus and a multi-task run."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from conftest import WORDS
from rich.console import Console

from xstilts.config.schema import ExperimentConfig
from xstilts.data.raw_text import RawTextSource
from xstilts.errors import UserError
from xstilts.experiments.rundir import RunDir
from xstilts.experiments.runner import run_experiment
from xstilts.formats.base import IGNORE_INDEX, collate
from xstilts.formats.registry import get_format
from xstilts.tasks.catalog import TaskCatalog
from xstilts.tasks.mlm import mlm_task, pocket_corpus

MLM = get_format("mlm")


@pytest.fixture(scope="module")
def mlm_model(tmp_path_factory) -> str:
    """conftest's tiny BERT, with a <mask> token in its vocabulary."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["<pad>", "<s>", "</s>", "<unk>", "<mask>", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 1), ("</s>", 2)]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        mask_token="<mask>",
    )
    path = tmp_path_factory.mktemp("tiny-mlm-bert")
    torch.manual_seed(0)
    BertModel(
        BertConfig(
            vocab_size=len(vocab),
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


@pytest.fixture(scope="module")
def loaded(mlm_model):
    from xstilts.models.backbone import load_backbone

    return load_backbone(mlm_model)


def _corpus(root, n=60, langs=("xx", "yy")) -> dict:
    rng = random.Random(1)
    files = {}
    for lang in langs:
        files[lang] = root / f"{lang}.txt"
        lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))) for _ in range(n)]
        files[lang].write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    return files


def _examples(n=150, length=20) -> list[dict]:
    rng = random.Random(0)
    return [{"id": f"e{i}", "text": " ".join(rng.choice(WORDS) for _ in range(length))} for i in range(n)]


def test_masking_statistics_and_determinism(loaded):
    _, tok = loaded
    task = mlm_task("m", {"xx": "unused.txt"})
    examples = _examples()
    feats = MLM.featurize(task, examples, tok, 64)
    assert feats == MLM.featurize(task, examples, tok, 64)  # seeded by the example id
    assert MLM.featurize(task, examples[5:6], tok, 64) == feats[5:6]  # ...not by position or batch
    specials = set(tok.all_special_ids)
    masked = kept = randomised = total = 0
    for f, ex in zip(feats, examples):
        original = tok(ex["text"])["input_ids"]
        assert len(f["input_ids"]) == len(f["label"]) == len(original)
        assert all(t == IGNORE_INDEX for t, o in zip(f["label"], original) if o in specials)  # never masked
        total += sum(o not in specials for o in original)
        for inp, lab, orig in zip(f["input_ids"], f["label"], original):
            if lab == IGNORE_INDEX:
                assert inp == orig
                continue
            assert lab == orig
            masked += 1
            kept += inp == orig
            randomised += inp not in (orig, tok.mask_token_id)
            assert inp == tok.mask_token_id or inp not in specials
    assert total == 3000 and masked == 450  # round(15%) of the 20 words of each example
    assert 0.75 < (masked - kept - randomised) / masked < 0.85
    assert 0.06 < randomised / masked < 0.14 and 0.05 < kept / masked < 0.14
    short = MLM.featurize(task, [{"id": "s", "text": "pizza"}], tok, 64)[0]
    assert sum(t != IGNORE_INDEX for t in short["label"]) == 1  # at least one masked token
    assert len(MLM.featurize(task, examples[:1], tok, 8)[0]["input_ids"]) == 8  # truncated


def test_tokenizer_without_mask_token(tiny_model):
    from transformers import AutoTokenizer

    with pytest.raises(UserError, match="no mask token"):
        MLM.featurize(mlm_task("m", {"xx": "x.txt"}), _examples(2), AutoTokenizer.from_pretrained(tiny_model), 32)


def test_head_is_tied_and_trains_the_embeddings(loaded):
    backbone, tok = loaded
    task = mlm_task("m", {"xx": "unused.txt"})
    head = MLM.make_head(task, backbone.config)
    head.attach(backbone)
    embeddings = backbone.get_input_embeddings().weight
    assert head.bias.shape == (embeddings.shape[0],)
    assert not any(p.shape[0] == embeddings.shape[0] and p.ndim == 2 for p in head.parameters())  # no own decoder
    batch = collate(MLM.featurize(task, _examples(6, 10), tok, 32), tok.pad_token_id)
    decoders = []
    hook = head.register_forward_pre_hook(lambda module, args: decoders.append(args[1].data_ptr()))
    logits = MLM.logits(backbone, head, batch, "cls")
    hook.remove()
    assert decoders == [embeddings.data_ptr()]  # decodes with the embedding storage itself
    assert logits.shape == (6, 2, embeddings.shape[0])  # round(15% of 10) masked positions per row
    backbone.zero_grad()
    loss = MLM.loss(logits, batch)
    loss.backward()
    assert torch.isfinite(loss) and embeddings.grad is not None and embeddings.grad.abs().sum() > 0
    assert head.bias.grad.abs().sum() > 0
    # the decoder is the embedding matrix itself: changing a row of a token absent from the inputs moves
    # exactly that token's logits
    row = next(i for i in range(5, len(tok.get_vocab())) if i not in set(batch["input_ids"].flatten().tolist()))
    delta = torch.linspace(-1, 1, embeddings.shape[1])  # not constant: LayerNorm outputs sum to ~0
    with torch.no_grad():
        embeddings[row] += delta
        moved = (MLM.logits(backbone, head, batch, "cls") - logits.detach()).abs().amax(dim=(0, 1))
        embeddings[row] -= delta
    assert moved[row] > 1e-3 and torch.cat([moved[:row], moved[row + 1 :]]).max() < 1e-6
    backbone.zero_grad()
    with torch.inference_mode():  # prediction gets ids, and scores them against the gold ids
        ids = MLM.logits(backbone, head, batch, "cls").float().numpy()
    feats = MLM.featurize(task, _examples(6, 10), tok, 32)
    preds = MLM.predict(list(ids), feats, _examples(6, 10), task)
    assert [len(p["predicted"]) for p in preds] == [2] * 6
    assert all(p["gold"] == [t for t in f["label"] if t != IGNORE_INDEX] for p, f in zip(preds, feats))
    perfect = [{"predicted": p["gold"], "gold": p["gold"]} for p in preds]
    assert MLM.score(perfect, [], task, "en") == {"accuracy": 100.0}


def test_raw_text_source(tmp_path):
    files = _corpus(tmp_path, n=40)
    src = RawTextSource(files)
    train, dev = src.load("train", "en"), src.load("dev", "en")
    assert len(dev) == 4 and len(train) == 76  # every 20th line of each language is dev
    assert {ex["language"] for ex in train} == {"xx", "yy"} == {ex["language"] for ex in dev}
    assert dev[0]["id"] == "xx-39" and dev[0]["text"] == files["xx"].read_text().split("\n")[38]  # blank lines skipped
    assert not {ex["id"] for ex in train} & {ex["id"] for ex in dev}
    assert src.languages() == ("xx", "yy") and src.labels() is None
    before = src.checksum("train", "en")
    files["yy"].write_text("changed\n", encoding="utf-8")
    assert src.checksum("train", "en") != before
    with pytest.raises(UserError, match="only train and dev"):
        src.load("test", "xx")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok\nfine\n" + b"\xff\xfe broken\n")
    with pytest.raises(UserError, match=r"bad\.txt:3: not UTF-8"):
        RawTextSource({"zz": bad}).load("train", "en")
    with pytest.raises(UserError, match=r"missing\.txt: missing text file"):
        RawTextSource({"zz": tmp_path / "missing.txt"}).checksum("train", "en")


def test_pocket_corpus_is_disjoint_from_the_pocket_test_sets():
    """mlm-pocket from the real pocket data (normal cache): >= 20 non-English languages, built once, and no
    line equal to any pocket test text (topic test texts, retrieval test sources and targets)."""
    pytest.importorskip("chatterbot_corpus")
    pytest.importorskip("django")
    pytest.importorskip("polib")
    from xstilts.data.pocket import POCKET_TASKS, build_pocket, read_meta
    from xstilts.tasks.mlm import pocket_test_texts

    files = pocket_corpus()
    dirs = build_pocket()
    banned = pocket_test_texts(dirs, {name: read_meta(dirs[name]) for name in POCKET_TASKS})
    assert len(banned) > 10000
    counts = {}
    for lang, path in files.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        counts[lang] = len(lines)
        assert lines and len(set(lines)) == len(lines) and all(lines)
        assert not {" ".join(t.split()) for t in lines} & banned, lang
    print("mlm-pocket lines per language:", counts)
    assert len(files) >= 20 and not any(lang == "en" or lang.startswith("en-") for lang in files)
    stamp = {lang: path.stat().st_mtime_ns for lang, path in files.items()}
    assert pocket_corpus() == files and {lang: p.stat().st_mtime_ns for lang, p in files.items()} == stamp
    task = TaskCatalog.builtin().get("mlm-pocket")
    assert (task.format.name, task.kind, task.metric) == ("mlm", "intermediate", "accuracy")


def test_mlm_in_the_intermediate_mix(mlm_model, tiny_catalog, tmp_path):
    catalog = tiny_catalog.with_tasks(mlm_task("t-mlm", _corpus(tmp_path)))
    budget = {"batch_size": 8, "max_steps": 4, "lr": 1e-3, "max_length": 32}
    cfg = ExperimentConfig.model_validate(
        {
            "model": mlm_model,
            "seeds": [1],
            "intermediate": {"settings": ["t-sametopic+t-mlm"], "train": budget},
            "targets": [{"task": "t-topic", "train": budget, "probe_reference": False}],
        }
    )
    summary = run_experiment(cfg, catalog, "", tmp_path / "out", Console(quiet=True))
    assert summary["ran"] == 3  # the intermediate job, the target after it, and the baseline
    results = RunDir(tmp_path / "out").load_results()
    inter = next(r for r in results if r["kind"] == "intermediate")
    assert set(inter["train"]["examples_seen"]) == {"t-sametopic", "t-mlm"} and inter["train"]["updates"] == 4
    mlm_dev = [m for m in inter["metrics"] if m["task"] == "t-mlm"]
    assert [(m["split"], m["metric"], m["n"]) for m in mlm_dev] == [("dev", "accuracy", 6)]
    assert 0 <= mlm_dev[0]["value"] <= 100
    target = next(r for r in results if r["kind"] == "target" and r["upstream"] == inter["job_id"])
    assert {m["language"] for m in target["metrics"] if m["split"] == "test"} == {"en", "xx", "yy"}
    assert np.isfinite(target["train"]["final_loss"])
