"""XTREME task definitions: readers of the official layouts (fixtures: tests/fixtures/official, written by its
make_fixtures.py) and hub sources, the latter checked offline through their naming and record conversion."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

import xstilts.tasks.xtreme as xt
from xstilts.data.items import ITEM
from xstilts.data.readers import NLI_LABELS, read_conll, read_squad_json, read_tsv_pairs
from xstilts.errors import UserError
from xstilts.metrics.suites import XTREME, XTREME_R
from xstilts.tasks.catalog import TaskCatalog

CATALOG = TaskCatalog.builtin()

FIX = Path(__file__).parent / "fixtures" / "official"
TASKS = ("xnli", "mnli", "pawsx", "udpos", "panx", "squad_v1", "xquad", "mlqa", "tydiqa")
# every (task, split, language) file of the fixtures
FILES = (
    [("xnli", "test", lang) for lang in ("en", "de", "ar")]
    + [("xnli", "dev", "en")]
    + [("mnli", s, "en") for s in ("train", "dev")]
    + [("pawsx", s, "en") for s in ("train", "dev", "test")]
    + [("pawsx", "test", lang) for lang in ("de", "zh")]
    + [("udpos", s, "en") for s in ("train", "dev", "test")]
    + [("udpos", "test", lang) for lang in ("de", "hi")]
    + [("panx", s, "en") for s in ("train", "dev", "test")]
    + [("panx", "test", lang) for lang in ("de", "ar", "ja")]
    + [("squad_v1", s, "en") for s in ("train", "dev")]
    + [("xquad", "test", lang) for lang in ("en", "de", "zh")]
    + [("mlqa", "test", lang) for lang in ("en", "de", "hi")]
    + [("tydiqa", "train", "en")]
    + [("tydiqa", s, lang) for s in ("dev", "test") for lang in ("en", "ar", "ko") if s == "test" or lang == "en"]
)


def load(task: str, split: str, lang: str, root: Path = FIX) -> list[dict]:
    return CATALOG.get(task, data_dir=root).source.load(split, lang)


def one_line_error(fn, *args, **kwargs) -> str:
    with pytest.raises(UserError) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


# ---- task definitions


def test_definitions():
    expect = {
        "xnli": ("classification", "target", "accuracy", "mnli"),
        "mnli": ("classification", "intermediate", "accuracy", None),
        "pawsx": ("classification", "target", "accuracy", None),
        "udpos": ("tagging", "target", "seqeval", None),
        "panx": ("tagging", "target", "seqeval", None),
        "squad_v1": ("span_qa", "intermediate", "squad", None),
        "xquad": ("span_qa", "target", "squad", "squad_v1"),
        "mlqa": ("span_qa", "target", "mlqa", "squad_v1"),
        "tydiqa": ("span_qa", "target", "squad", None),
    }
    for name, (fmt, kind, metric, train_task) in expect.items():
        task = CATALOG.get(name)
        assert (task.format.name, task.kind, task.metric, task.train_task, task.train_language) == (
            fmt,
            kind,
            metric,
            train_task,
            "en",
        )
        assert task.local is not None and isinstance(task.source, xt.XtremeHub)
        hub, local = task.languages, CATALOG.get(name, data_dir=FIX).languages
        assert local[: len(hub)] == hub if name != "udpos" else set(hub) < set(local)
    assert CATALOG.get("xnli").fields == ("text_a", "text_b") and CATALOG.get("xnli").labels == NLI_LABELS
    assert CATALOG.get("pawsx").labels == ("0", "1") and CATALOG.get("panx").labels == xt.PANX_TAGS
    assert len(CATALOG.get("udpos").labels) == 17 and CATALOG.get("xquad").labels is None


def test_languages_cover_both_suites_in_official_order():
    for name in ("xnli", "pawsx", "udpos", "panx", "xquad", "mlqa", "tydiqa"):
        langs = CATALOG.get(name, data_dir=FIX).languages  # the official files cover both suites
        assert langs[: len(XTREME.tasks[name].languages)] == XTREME.tasks[name].languages
        assert set(XTREME_R.tasks.get(name, XTREME.tasks[name]).languages) <= set(langs)
        assert len(set(langs)) == len(langs)
    assert len(CATALOG.get("panx").languages) == 48 and "qu" in CATALOG.get("panx").languages
    udpos = CATALOG.get("udpos", data_dir=FIX).languages
    assert len(udpos) == 38 and "wo" in udpos
    assert len(CATALOG.get("udpos").languages) == 33  # google/xtreme holds UD v2.5: XTREME's languages only
    assert CATALOG.get("xquad").languages[-1] == "ro" and len(CATALOG.get("xnli").languages) == 15
    assert CATALOG.get("mnli").languages == CATALOG.get("squad_v1").languages == ("en",)


# ---- local files: every fixture file


@pytest.mark.parametrize("task,split,lang", FILES)
def test_fixture_file_loads_clean(task, split, lang):
    examples = load(task, split, lang)
    assert 2 <= len(examples) <= 4
    assert len({ex["id"] for ex in examples}) == len(examples)
    labels = CATALOG.get(task).labels
    for ex in examples:
        fmt = CATALOG.get(task).format.name
        keys = set(ex) - ({ITEM} if CATALOG.get(task).parallel else set())  # tests/test_item_keys.py: the item keys
        if fmt == "classification":
            assert keys == {"id", "text_a", "text_b", "label"} and ex["label"] in labels
            assert ex["text_a"] and ex["text_b"]
        elif fmt == "tagging":
            assert keys == {"id", "tokens", "tags"} and len(ex["tokens"]) == len(ex["tags"]) > 0
            assert set(ex["tags"]) <= set(labels)
        else:
            assert keys == {"id", "question", "context", "answers"}
            for text, start in zip(ex["answers"]["text"], ex["answers"]["answer_start"], strict=True):
                assert ex["context"][start : start + len(text)] == text


def test_every_fixture_file_is_covered():
    on_disk = {p for p in FIX.rglob("*") if p.is_file() and p.name != "make_fixtures.py"}
    sources = {t: CATALOG.get(t, data_dir=FIX).source for t, _, _ in FILES}
    covered = {sources[t].root / sources[t].path(s, lang) for t, s, lang in FILES}
    assert on_disk == covered


def test_xnli_through_the_catalog_binding():
    examples = CATALOG.get("xnli", data_dir=FIX).source.load("test", "de")
    assert examples[0] == {
        "id": "test-de-0",
        "text_a": 'Er sagte "Hallo" zu allen.',  # csv quoting undone
        "text_b": "Er begrüßte die Leute.",
        "label": "entailment",
        ITEM: "test-0",
    }
    assert [ex["label"] for ex in examples] == ["entailment", "neutral", "contradiction"]
    assert load("xnli", "test", "ar")[1]["text_b"] == "الموقع لا يذكر أي فائز."
    assert CATALOG.get("xnli", data_dir=FIX).source.describe() == f"local:{FIX / 'xnli'}"


def test_xnli_trains_on_glue_mnli():
    xnli = CATALOG.get("xnli")
    train = CATALOG.training_source(xnli, FIX).load("train", "en")
    assert train[0]["text_a"] == '"Good," he said, "we leave at dawn."'  # GLUE TSV: quotes are text
    assert [ex["label"] for ex in train] == ["entailment", "contradiction", "neutral"]
    dev = CATALOG.training_source(xnli, FIX).load("dev", "en")
    assert [ex["label"] for ex in dev] == ["entailment", "neutral"]  # gold_label, not label1..label5
    assert len(CATALOG.checksum(xnli, [("train", "en"), ("test", "de")], FIX)) == 16


def test_pawsx():
    assert load("pawsx", "train", "en")[1] == {
        "id": "train-en-1",
        "text_a": "Paris is north of Lyon.",
        "text_b": "Lyon is north of Paris.",
        "label": "0",
        ITEM: "train-1",
    }
    assert load("pawsx", "test", "zh")[0]["text_a"] == "这座桥于1932年开通。"


def test_udpos():
    de = load("udpos", "test", "de")
    assert de[1] == {"id": "test-de-1", "tokens": ["Zum", "Glück"], "tags": ["ADP", "NOUN"]}
    assert load("udpos", "test", "hi")[0]["tokens"] == ["राम", "घर", "गया", "।"]
    assert [len(ex["tokens"]) for ex in load("udpos", "train", "en")] == [4, 2]


def test_panx_colons_and_raw_prefixes():
    assert load("panx", "test", "de")[0]["tokens"] == ["Angela", "Merkel", "um", "12:30"]
    ja = load("panx", "test", "ja")  # raw WikiANN: "ja:" removed, the rest of the token kept
    assert ja[0] == {
        "id": "test-ja-0",
        "tokens": ["東京", "タワー", "は", "12:00"],
        "tags": ["B-LOC", "I-LOC", "O", "O"],
    }
    assert load("panx", "test", "ar")[0]["tags"] == ["B-PER", "I-PER", "O", "B-LOC"]


def test_squad_several_answers():
    d1 = load("squad_v1", "dev", "en")[0]
    assert d1["id"] == "sq-d1" and d1["answers"]["text"][0] == "Santa Clara, California"
    assert d1["answers"]["answer_start"] == [65, 40, 40]
    assert [ex["id"] for ex in load("squad_v1", "train", "en")] == ["sq-t1", "sq-t2", "sq-t3"]


def test_xquad_mlqa_tydiqa():
    zh = load("xquad", "test", "zh")
    assert zh[0]["answers"] == {"text": ["1889年"], "answer_start": [4]}
    assert [ex["id"] for ex in zh] == [ex["id"] for ex in load("xquad", "test", "en")]  # parallel ids
    assert load("mlqa", "test", "hi")[0]["answers"]["text"] == ["रोम"]
    train = load("tydiqa", "train", "en")  # English only, out of the combined train file
    assert [ex["id"] for ex in train] == ["english-7292727379220047015-0", "english-7292727379220047015-1"]
    assert load("tydiqa", "dev", "en") == load("tydiqa", "test", "en")
    assert load("tydiqa", "test", "ko")[0]["answers"]["text"] == ["서울"]


# ---- local files: errors


def test_missing_file_names_the_path(tmp_path):
    msg = one_line_error(load, "xnli", "test", "de", tmp_path)
    assert str(tmp_path / "xnli" / "test-de.tsv") in msg and "missing" in msg
    assert str(tmp_path / "MNLI" / "train.tsv") in one_line_error(
        CATALOG.training_source(CATALOG.get("xnli"), tmp_path).load, "train", "en"
    )
    assert "missing" in one_line_error(read_squad_json, tmp_path / "nope.json", "test", "en")


def test_unknown_split_or_language():
    assert "no train split" in one_line_error(load, "xquad", "train", "en")
    assert "no language 'xx'" in one_line_error(load, "xnli", "test", "xx")
    assert "no language 'de'" in one_line_error(load, "mnli", "train", "de")


def test_tsv_too_few_columns(tmp_path):
    f = tmp_path / "dev-de.tsv"
    f.write_text("a\tb\tneutral\nonly one\tcolumn-less\n", encoding="utf-8")
    msg = one_line_error(read_tsv_pairs, f, "dev", "de", labels=NLI_LABELS)
    assert msg.startswith(f"{f}:2: 2 tab-separated columns, expected 3")


def test_tsv_test_file_without_labels_says_why(tmp_path):
    f = tmp_path / "test-de.tsv"  # what the current download_data.sh writes
    f.write_text("Ein Satz.\tNoch einer.\r\n", encoding="utf-8")
    msg = one_line_error(read_tsv_pairs, f, "test", "de")
    assert msg.startswith(f"{f}:1: ") and "strips test labels" in msg


def test_tsv_label_outside_set_and_bad_quoting(tmp_path):
    f = tmp_path / "test-de.tsv"
    f.write_text("a\tb\tentailment\n\na\tb\tcontradictory\n", encoding="utf-8")
    msg = one_line_error(read_tsv_pairs, f, "test", "de", labels=NLI_LABELS)
    assert msg.startswith(f"{f}:3: label 'contradictory' is not one of")
    f.write_text('a\tb\tneutral\n"open quote\tb\tneutral\n', encoding="utf-8")
    assert one_line_error(read_tsv_pairs, f, "test", "de").startswith(f"{f}:")


def test_tsv_header_checks(tmp_path):
    f = tmp_path / "train.tsv"
    f.write_text("sentence1\tsentence2\tlabel\nA\tB\tneutral\n", encoding="utf-8")
    msg = one_line_error(
        read_tsv_pairs, f, "train", "en", columns=("sentence1", "sentence2", "gold_label"), header=True
    )
    assert msg == f"{f}:1: header lacks column(s) gold_label"
    f.write_text("sentence1\tsentence2\tgold_label\nA\tB\tneutral\nA\tB\n", encoding="utf-8")
    assert one_line_error(
        read_tsv_pairs, f, "train", "en", columns=("sentence1", "sentence2", "gold_label"), header=True
    ).startswith(f"{f}:3: 2 tab-separated columns, expected 3")


def test_conll_errors(tmp_path):
    f = tmp_path / "test-de.tsv"
    f.write_text("Der\tDET\nHund\tNOUN\n\nbellt\tVERBB\n", encoding="utf-8")
    assert one_line_error(read_conll, f, "test", "de", tags=xt.UPOS_TAGS).startswith(
        f"{f}:4: tag 'VERBB' is not one of ADJ"
    )
    f.write_text("Der\tDET\nHund\n", encoding="utf-8")  # a test file without tags
    msg = one_line_error(read_conll, f, "test", "de", tags=xt.UPOS_TAGS)
    assert msg.startswith(f"{f}:2: 1 tab-separated columns, expected 2") and "strips test labels" in msg
    f.write_text("de:Angela\tB-PER\nMerkel\tI-PER\n", encoding="utf-8")
    assert one_line_error(read_conll, f, "test", "de", tags=xt.PANX_TAGS, lang_prefix=True).startswith(
        f"{f}:2: token 'Merkel' lacks the 'de:' prefix"
    )


def test_conll_blank_lines_and_crlf(tmp_path):
    f = tmp_path / "dev-en.tsv"
    f.write_text("\n\nI\tPRON\r\nran\tVERB\r\n\r\n\r\nYes\tINTJ", encoding="utf-8")
    assert read_conll(f, "dev", "en", tags=xt.UPOS_TAGS) == [
        {"id": "dev-en-0", "tokens": ["I", "ran"], "tags": ["PRON", "VERB"]},
        {"id": "dev-en-1", "tokens": ["Yes"], "tags": ["INTJ"]},
    ]


def _squad(path: Path, qas: list[dict], context: str = "Rome is old.") -> Path:
    path.write_text(
        json.dumps({"data": [{"title": "t", "paragraphs": [{"context": context, "qas": qas}]}]}), encoding="utf-8"
    )
    return path


def test_json_errors(tmp_path):
    f = tmp_path / "xquad.de.json"
    f.write_text('{"data": [\n  {"paragraphs": [}\n]}', encoding="utf-8")
    assert one_line_error(read_squad_json, f, "test", "de").startswith(f"{f}:2: invalid JSON")
    _squad(f, [{"id": "q1", "answers": [{"text": "Rome", "answer_start": 0}]}])
    assert one_line_error(read_squad_json, f, "test", "de") == (
        f"{f}: data[0].paragraphs[0].qas[0]: expected 'question' to be str, found NoneType"
    )
    _squad(f, [{"id": "q1", "question": "?", "answers": [{"text": "Rome", "answer_start": "0"}]}])
    msg = one_line_error(read_squad_json, f, "test", "de")
    assert msg.endswith("qas[0].answers[0]: expected 'answer_start' to be int, found str")
    qa = {"id": "q1", "question": "?", "answers": [{"text": "Rome", "answer_start": 0}]}
    _squad(f, [qa, qa])
    assert one_line_error(read_squad_json, f, "test", "de").endswith("qas[1]: id 'q1' appears twice")
    f.write_text("[]", encoding="utf-8")
    assert one_line_error(read_squad_json, f, "test", "de") == (
        f"{f}: top level: expected 'data' to be list, found NoneType"
    )


def test_json_stripped_test_answers_say_why(tmp_path):
    f = _squad(
        tmp_path / "xquad.de.json", [{"id": "q1", "question": "?", "answers": [{"answer_start": 0, "text": ""}]}]
    )
    msg = one_line_error(read_squad_json, f, "test", "de")  # what remove_qa_test_annotations leaves
    assert "empty answer text" in msg and "strips test labels" in msg
    _squad(f, [{"id": "q1", "question": "?", "answers": []}])
    assert one_line_error(read_squad_json, f, "test", "de").endswith("(id q1): no answers")


def test_json_id_prefix(tmp_path):
    f = _squad(
        tmp_path / "train.json",
        [{"id": "arabic-1-0", "question": "?", "answers": [{"text": "Rome", "answer_start": 0}]}],
    )
    assert one_line_error(read_squad_json, f, "train", "en", id_prefix="english-") == (
        f"{f}: no question id starts with 'english-'"
    )


# ---- hub sources, offline


def test_hub_names():
    def names(task, split, lang):
        src = CATALOG.get(task).source
        return src.dataset, src.config(split, lang), src.split_name(split, lang)

    assert names("xnli", "test", "sw") == ("facebook/xnli", "sw", "test")
    assert names("mnli", "dev", "en") == ("nyu-mll/glue", "mnli", "validation_matched")
    assert names("mnli", "train", "en") == ("nyu-mll/glue", "mnli", "train")
    assert names("pawsx", "dev", "en") == ("google-research-datasets/paws-x", "en", "validation")
    assert names("pawsx", "test", "ko") == ("google-research-datasets/paws-x", "ko", "test")
    assert names("udpos", "test", "af") == ("google/xtreme", "udpos.Afrikaans", "test")
    assert names("udpos", "dev", "en") == ("google/xtreme", "udpos.English", "validation")
    assert names("panx", "test", "qu") == ("unimelb-nlp/wikiann", "qu", "test")
    assert names("squad_v1", "dev", "en") == ("rajpurkar/squad", "plain_text", "validation")
    assert names("xquad", "test", "ro") == ("google/xquad", "xquad.ro", "validation")
    assert names("mlqa", "test", "hi") == ("google/xtreme", "MLQA.hi.hi", "test")
    assert names("tydiqa", "train", "en") == ("google/xtreme", "tydiqa", "train")
    assert names("tydiqa", "test", "sw") == ("google/xtreme", "tydiqa", "validation")
    assert set(xt.UDPOS_HUB_NAMES) == set(XTREME.tasks["udpos"].languages)
    assert "XTREME-R" in one_line_error(CATALOG.get("udpos").source.config, "test", "wo")
    assert "no train split" in one_line_error(CATALOG.get("xquad").source.split_name, "train", "en")
    assert CATALOG.get("xquad").source.checksum("test", "de") == "hub:google/xquad:xquad.de:validation:main"


def test_hub_convert():
    def convert(task, record, lang):
        return CATALOG.get(task).source.convert(record, lang)

    assert convert("xnli", {"premise": "P", "hypothesis": "H", "label": 2}, "de") == {
        "id": None,
        "text_a": "P",
        "text_b": "H",
        "label": "contradiction",
    }
    assert convert("mnli", {"premise": "P", "hypothesis": "H", "label": 1, "idx": 7}, "en")["id"] == "7"
    assert convert("pawsx", {"id": 12, "sentence1": "A", "sentence2": "B", "label": 1}, "de") == {
        "id": "12",
        "text_a": "A",
        "text_b": "B",
        "label": "1",
        ITEM: "12",
    }
    assert convert("udpos", {"tokens": ["Der", "Hund"], "pos_tags": [5, 7]}, "de") == {
        "id": None,
        "tokens": ["Der", "Hund"],
        "tags": ["DET", "NOUN"],
    }
    assert convert(
        "panx",
        {
            "tokens": ["Angela", "Merkel", "sagt"],
            "ner_tags": [1, 2, 0],
            "langs": ["de"] * 3,
            "spans": ["PER: Angela Merkel"],
        },
        "de",
    )["tags"] == ["B-PER", "I-PER", "O"]
    row = {
        "id": "56be",
        "title": "T",
        "context": "Rome is old.",
        "question": "Which city?",
        "answers": {"text": ["Rome"], "answer_start": [0]},
    }
    expected = {
        "id": "56be",
        "question": "Which city?",
        "context": "Rome is old.",
        "answers": {"text": ["Rome"], "answer_start": [0]},
    }
    assert convert("squad_v1", row, "en") == expected
    for task in ("xquad", "mlqa"):
        assert convert(task, row, "en") == {**expected, ITEM: "56be"}
    assert convert("tydiqa", {**row, "id": "english-1-0"}, "en") == {**expected, "id": "english-1-0"}
    assert convert("tydiqa", {**row, "id": "arabic-1-0"}, "en") is None
    assert "label 3 outside" in one_line_error(convert, "xnli", {"premise": "P", "hypothesis": "H", "label": 3}, "de")


def test_hub_load_filters_and_numbers(monkeypatch):
    rows = [
        {
            "id": f"{name}-{i}-0",
            "title": "",
            "context": "c",
            "question": "q",
            "answers": {"text": ["c"], "answer_start": [0]},
        }
        for i, name in enumerate(["arabic", "english"] * 2)
    ]
    calls = []

    def load_dataset(dataset, config, split, revision):
        calls.append((dataset, config, split))
        return rows if config == "tydiqa" else [{"premise": "P", "hypothesis": "H", "label": 0}] * 2

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    assert [ex["id"] for ex in CATALOG.get("tydiqa").source.load("train", "en")] == ["english-1-0", "english-3-0"]
    assert [ex["id"] for ex in CATALOG.get("xnli").source.load("test", "de")] == ["test-de-0", "test-de-1"]
    assert calls == [("google/xtreme", "tydiqa", "train"), ("facebook/xnli", "de", "test")]
