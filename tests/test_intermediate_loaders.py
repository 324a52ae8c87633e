"""The paper's English intermediate tasks: readers of the official layouts (fixtures:
tests/fixtures/official_intermediate), hub sources checked offline, and their listing."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from types import MappingProxyType

import pytest

from xstilts.data import files
from xstilts.data import official_intermediate as oi
from xstilts.data.official_intermediate import ConcatSource, Part
from xstilts.data.readers import NLI_LABELS, read_squad_v2
from xstilts.data.sources import JsonlDirSource
from xstilts.errors import UserError
from xstilts.tasks.catalog import TaskCatalog

CATALOG = TaskCatalog.builtin()

FIX = Path(__file__).parent / "fixtures" / "official_intermediate"
TASKS = ("anli_plus", "qqp", "sst2", "squad_v2", "hellaswag", "commonsenseqa", "cosmosqa", "ccg")
KEYS = {
    "classification": {"id", "text_a", "text_b", "label"},
    "span_qa": {"id", "question", "context", "answers"},
    "multiple_choice": {"id", "question", "choices", "label"},
    "tagging": {"id", "tokens", "tags"},
}
N_CHOICES = {"hellaswag": 4, "commonsenseqa": 5, "cosmosqa": 4}


def load(task: str, split: str, root: Path = FIX) -> list[dict]:
    return CATALOG.get(task, data_dir=root).source.load(split, "en")


def one_line_error(fn, *args, **kwargs) -> str:
    with pytest.raises(UserError) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def _copy(tmp_path: Path, rel: str, text: str) -> Path:
    """A data_dir holding one file ``rel`` with ``text``."""
    path = tmp_path / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---- definitions


def test_definitions():
    expect = {
        "anli_plus": ("classification", "accuracy", ("text_a", "text_b"), NLI_LABELS),
        "qqp": ("classification", "accuracy", ("text_a", "text_b"), ("not_duplicate", "duplicate")),
        "sst2": ("classification", "accuracy", ("text",), ("negative", "positive")),
        "squad_v2": ("span_qa", "squad_v2", ("question", "context"), None),
        "hellaswag": ("multiple_choice", "accuracy", ("question", "choices"), None),
        "commonsenseqa": ("multiple_choice", "accuracy", ("question", "choices"), None),
        "cosmosqa": ("multiple_choice", "accuracy", ("question", "choices"), None),
        "ccg": ("tagging", "accuracy", ("tokens",), None),
    }
    for name, (fmt, metric, fields, labels) in expect.items():
        task = CATALOG.get(name)
        assert (task.format.name, task.kind, task.metric, task.fields, task.labels) == (
            fmt,
            "intermediate",
            metric,
            fields,
            labels,
        )
        assert task.train_language == "en" and task.train_task is None and task.local is not None
        assert task.languages == ("en",) == CATALOG.get(name, data_dir=FIX).languages
    assert CATALOG.get("mnli").head == CATALOG.get("anli_plus").head == "nli"
    assert CATALOG.get("mnli").labels == CATALOG.get("anli_plus").labels


# ---- local files


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("split", ("train", "dev"))
def test_fixture_loads_clean(task, split):
    bound = CATALOG.get(task, data_dir=FIX)
    examples = load(task, split)
    assert len(examples) >= 2 and len({ex["id"] for ex in examples}) == len(examples)
    keys = {"id", "text", "label"} if task == "sst2" else KEYS[bound.format.name]
    for ex in examples:
        assert set(ex) == keys
        if bound.labels is not None and "label" in ex:
            assert ex["label"] in bound.labels
        if task in N_CHOICES:
            assert len(ex["choices"]) == N_CHOICES[task] and 0 <= ex["label"] < N_CHOICES[task]
        if task == "ccg":
            assert len(ex["tokens"]) == len(ex["tags"]) and set(ex["tags"]) <= set(bound.labels)
        if task == "squad_v2":
            for text, start in zip(ex["answers"]["text"], ex["answers"]["answer_start"], strict=True):
                assert ex["context"][start : start + len(text)] == text


def test_every_fixture_file_is_read(monkeypatch):
    read: set[Path] = set()

    def tracked_open(path, *args, **kwargs):  # every data file is opened in xstilts.data.files
        read.add(Path(path))
        return open(path, *args, **kwargs)

    monkeypatch.setattr(files, "open", tracked_open, raising=False)
    for task in TASKS:
        for split in ("train", "dev"):
            load(task, split)
    assert {p for p in FIX.rglob("*") if p.is_file()} == read


def test_anli_plus_concatenates_rounds_snli_mnli():
    train = load("anli_plus", "train")
    parts = [ex["id"].split("-", 1)[0] for ex in train]
    assert parts == ["anli_r1"] * 3 + ["anli_r2"] * 2 + ["anli_r3"] * 2 + ["snli"] * 2 + ["mnli"] * 2
    assert train[0] == {
        "id": "anli_r1-a1f0c5e2-0001-4a3e-9d1b-000000000001",
        "text_a": "The Tamar Bridge is a suspension bridge in south-west England. It opened in 1961 "
        "and carries the A38 road.",
        "text_b": "The bridge opened before 1970.",
        "label": "entailment",
    }
    assert [ex["label"] for ex in train[:3]] == ["entailment", "neutral", "contradiction"]
    snli = [ex for ex in train if ex["id"].startswith("snli-")]  # the "-" row (no gold label) is skipped
    assert [(ex["id"], ex["label"]) for ex in snli] == [
        ("snli-train-en-0", "entailment"),
        ("snli-train-en-1", "contradiction"),
    ]
    assert train[-2] == {
        "id": "mnli-train-en-0",
        "text_a": "The inn has ten rooms.",
        "text_b": "The inn is full.",
        "label": "neutral",
    }  # MNLI/ read as the mnli task reads it
    dev = load("anli_plus", "dev")  # ANLI's three dev rounds only
    assert [ex["id"].split("-", 1)[0] for ex in dev] == ["anli_r1"] * 2 + ["anli_r2"] * 2 + ["anli_r3"] * 2
    assert dev[-2]["label"] == "contradiction" and dev[-2]["text_b"] == "The recipe needs no eggs."


def test_concat_source_checksum_and_splits(tmp_path):
    src = CATALOG.get("anli_plus", data_dir=FIX).source
    assert isinstance(src, ConcatSource) and src.describe().startswith("concat(anli_r1=local:")
    assert src.checksum("train", "en") != src.checksum("dev", "en")
    assert "no test split (it has dev, train)" in one_line_error(src.load, "test", "en")
    a, b = tmp_path / "a", tmp_path / "b"
    for d, label in ((a, "x"), (b, "y")):
        _copy(d, "train-en.jsonl", json.dumps({"id": "1", "text": "t", "label": label}) + "\n")
    concat = ConcatSource((Part("a", JsonlDirSource(a)), Part("b", JsonlDirSource(b), ("train",))))
    assert [ex["id"] for ex in concat.load("train", "en")] == ["a-1", "b-1"]
    before = concat.checksum("train", "en")
    _copy(b, "train-en.jsonl", json.dumps({"id": "1", "text": "t", "label": "z"}) + "\n")
    assert concat.checksum("train", "en") != before  # any part's data changes it


def test_qqp_sst2():
    assert load("qqp", "train")[1] == {
        "id": "train-en-1",
        "text_a": "How can I improve my English writing?",
        "text_b": "What are some ways to improve my writing in English?",
        "label": "duplicate",
    }
    assert load("qqp", "dev")[0]["text_a"] == 'How do I start a "small" garden on a balcony?'  # QUOTE_NONE
    sst = load("sst2", "train")
    assert sst[2] == {
        "id": "train-en-2",
        "text": 'a warm , funny and "honest" portrait of a family ',
        "label": "positive",
    }  # GLUE's trailing space kept, as the hub
    assert [ex["label"] for ex in load("sst2", "dev")] == ["positive", "negative"]


def test_squad_v2_unanswerable_questions_have_no_answers():
    train = load("squad_v2", "train")
    assert train[0]["answers"] == {"text": ["France"], "answer_start": [102]}
    assert train[1] == {
        "id": "5ad39d53604f3c001a3fe8d3",
        "context": train[0]["context"],
        "question": "When did the French give their name to Normandy?",
        "answers": {"text": [], "answer_start": []},
    }  # is_impossible: plausible_answers not gold
    dev = load("squad_v2", "dev")
    assert [len(ex["answers"]["text"]) for ex in dev] == [3, 0, 1]


def test_multiple_choice():
    hs = load("hellaswag", "train")
    assert hs[0] == {
        "id": "4",
        "question": "A man is standing next to a snowy car. he",
        "choices": [
            "drives away quickly.",
            "eats a sandwich on the roof.",
            "scrapes the ice off the windshield.",
            "paints the car blue.",
        ],
        "label": 2,
    }
    assert hs[1]["question"].startswith("[header] How to water a cactus") and hs[1]["label"] == 0  # WikiHow: no ctx_b
    assert [ex["id"] for ex in load("hellaswag", "dev")] == ["24", "92"]
    csqa = load("commonsenseqa", "dev")
    assert csqa[0] == {
        "id": "1afa02df02c908a558b4036e80242fac",
        "question": "Where do you keep milk cold?",
        "choices": ["oven", "bookshelf", "garden", "mailbox", "refrigerator"],
        "label": 4,
    }
    cosmos = load("cosmosqa", "train")
    assert cosmos[1]["question"] == (
        "My mom said , \"Don't forget your coat , it's cold\" , and I left it at home "
        "anyway . Why did the narrator leave the coat ?"
    )  # CSV quotes undone
    assert cosmos[1]["choices"][0] == "They thought it would not be cold ." and cosmos[1]["label"] == 0
    assert [ex["label"] for ex in cosmos] == [1, 0, 3]
    assert cosmos[0]["id"].endswith("##q1_a1##3XANS000000000000000000000001")


def test_ccg_tags_come_from_the_files():
    train = load("ccg", "train")
    assert train[0] == {
        "id": "train-0",
        "tokens": ["Vinken", "will", "join", "the", "board", "."],
        "tags": ["N", r"(S[dcl]\NP)/(S[b]\NP)", r"(S[b]\NP)/NP", "NP[nb]/N", "N", "."],
    }
    labels = CATALOG.get("ccg", data_dir=FIX).labels
    assert labels == tuple(sorted(set(labels))) and len(labels) == 11
    assert r"(S\NP)\(S\NP)" in labels  # in dev only: scored, never a surprise to the tagging format
    assert CATALOG.get("ccg").labels is None


# ---- local files: errors


def test_missing_files_name_the_path(tmp_path):
    assert str(tmp_path / "anli_v1.0" / "R1" / "train.jsonl") in one_line_error(load, "anli_plus", "train", tmp_path)
    assert str(tmp_path / "ccg" / "ccg.train") in one_line_error(lambda: CATALOG.get("ccg", data_dir=tmp_path).labels)
    assert "no test split" in one_line_error(load, "hellaswag", "test")


def test_nli_errors(tmp_path):
    f = _copy(
        tmp_path,
        "train.jsonl",
        '{"uid": "1", "context": "c", "hypothesis": "h", "label": "e"}\n'
        '{"uid": "2", "context": "c", "hypothesis": "h", "label": "x"}\n',
    )
    assert one_line_error(oi.read_anli, f, "train", "en") == f"{f}:2: label 'x' is not one of e, n, c"
    f.write_text('{"uid": "1", "context": "c", "hypothesis": "h", "label": "e"}\n{"uid": "2", "context": "c",\n')
    assert one_line_error(oi.read_anli, f, "train", "en").startswith(f"{f}:2: invalid JSON")
    f.write_text('{"uid": "1", "context": "c", "label": "e"}\n')
    assert one_line_error(oi.read_anli, f, "train", "en") == f"{f}:1: expected 'hypothesis' to be str, found NoneType"
    f.write_text('{"uid": "1", "context": "c", "hypothesis": "h", "label": "e"}\n' * 2)
    assert one_line_error(oi.read_anli, f, "train", "en") == f"{f}:2: id '1' appears twice"
    f.write_text('{"pairID": "p", "sentence1": "a", "sentence2": "b", "gold_label": "entails"}\n')
    assert one_line_error(oi.read_snli, f, "train", "en").startswith(f"{f}:1: gold_label 'entails' is not one of")


def test_glue_tsv_errors(tmp_path):
    header = "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
    f = _copy(tmp_path, "QQP/train.tsv", header + "1\t2\t3\tA?\tB?\t0\n\tWas it real? Yes.\t0\n")
    msg = one_line_error(oi.read_qqp, f, "train", "en")  # the old QQP.zip's kind of row
    assert msg.startswith(f"{f}:3: 3 tab-separated columns, expected 6") and "QQP-clean.zip" in msg
    f.write_text(header + "1\t2\t3\tA?\tB?\t2\n")
    assert one_line_error(oi.read_qqp, f, "train", "en").startswith(f"{f}:2: label '2' is not one of 0, 1")
    g = _copy(tmp_path, "SST-2/train.tsv", "sentence\tlabel\ngood \t1\nbad \tnegative\n")
    assert one_line_error(oi.read_sst2, g, "train", "en").startswith(f"{g}:3: label 'negative' is not one of 0, 1")
    g.write_text("text\tlabel\ngood \t1\n")
    assert one_line_error(oi.read_sst2, g, "train", "en") == f"{g}:1: expected the header 'sentence<TAB>label'"
    g.write_text("sentence\tlabel\ngood\t1\textra\n")
    assert one_line_error(oi.read_sst2, g, "train", "en").startswith(f"{g}:2: 3 tab-separated columns, expected 2")


def test_squad_v2_errors(tmp_path):
    def squad(qa: dict) -> Path:
        par = {"qas": [qa], "context": "Rome is old."}
        return _copy(tmp_path, "dev-v2.0.json", json.dumps({"version": "v2.0", "data": [{"paragraphs": [par]}]}))

    f = squad({"question": "?", "id": "q1", "answers": [], "is_impossible": False})
    assert one_line_error(read_squad_v2, f, "dev", "en") == f"{f}: data[0].paragraphs[0].qas[0] (id q1): no answers"
    f = squad({"question": "?", "id": "q1", "answers": [], "is_impossible": "yes"})
    assert one_line_error(read_squad_v2, f, "dev", "en").endswith("expected 'is_impossible' to be bool, found str")
    f = squad({"question": "?", "id": "q1", "answers": [{"text": "Rome", "answer_start": "0"}]})
    assert one_line_error(read_squad_v2, f, "dev", "en") == (
        f"{f}: data[0].paragraphs[0].qas[0].answers[0]: expected 'answer_start' to be int, found str"
    )
    f.write_text('{"data": [\n  {"paragraphs": [}\n]}')
    assert one_line_error(read_squad_v2, f, "dev", "en").startswith(f"{f}:2: invalid JSON")


def test_multiple_choice_errors(tmp_path):
    row = {"ind": 1, "ctx": "c", "endings": ["a", "b", "c", "d"], "label": 4}
    f = _copy(tmp_path, "hellaswag_val.jsonl", json.dumps(row) + "\n")
    assert one_line_error(oi.read_hellaswag, f, "dev", "en") == f"{f}:1: label 4 is not an answer index 0..3"
    f.write_text(json.dumps({**row, "label": 0, "endings": ["a", "b"]}) + "\n")
    assert one_line_error(oi.read_hellaswag, f, "dev", "en") == f"{f}:1: expected 'endings' to be a list of 4 strings"
    q = {"stem": "?", "choices": [{"label": k, "text": k.lower()} for k in "ABCDE"]}
    g = _copy(tmp_path, "dev_rand_split.jsonl", json.dumps({"answerKey": "F", "id": "x", "question": q}) + "\n")
    assert one_line_error(oi.read_commonsenseqa, g, "dev", "en") == (
        f"{g}:1: answerKey 'F' is not one of the choice labels A, B, C, D, E"
    )
    header = "id,context,question,answer0,answer1,answer2,answer3,label\n"
    h = _copy(tmp_path, "valid.csv", header + 'a,"c, d",q,0,1,2,3,1\nb,c,q,0,1,2,3,4\n')
    assert one_line_error(oi.read_cosmosqa, h, "dev", "en") == f"{h}:3: label '4' is not an answer index 0..3"
    h.write_text(header + 'a,"multi\nline",q,0,1,2,3,1\nb,c,q,0,1,2\n')
    assert one_line_error(oi.read_cosmosqa, h, "dev", "en").startswith(f"{h}:4: 6 columns, expected 8")
    h.write_text(header + "a,c,q,0,1,2,3,1\na,c,q,0,1,2,3,1\n")
    assert one_line_error(oi.read_cosmosqa, h, "dev", "en") == f"{h}:3: id 'a' appears twice"


def test_ccg_errors(tmp_path):
    f = _copy(tmp_path, "ccg.train", "He ran\tNP S[dcl]\\NP\nShe ran .\tNP S[dcl]\\NP\n")
    assert one_line_error(oi.read_ccg, f, "train", "en") == f"{f}:2: 3 tokens but 2 tags"
    f.write_text("He ran\tNP S[dcl]\\NP\n\nShe ran NP S[dcl]\\NP\n")
    assert one_line_error(oi.read_ccg, f, "train", "en") == f"{f}:3: 1 tab-separated columns, expected 2 (tokens, tags)"


# ---- hub sources, offline


def _names(task: str, split: str) -> tuple:
    src = CATALOG.get(task).source
    return src.dataset, src.config(split, "en"), src.split_name(split, "en")


def test_hub_names():
    assert _names("qqp", "dev") == ("nyu-mll/glue", "qqp", "validation")
    assert _names("sst2", "train") == ("nyu-mll/glue", "sst2", "train")
    assert _names("squad_v2", "dev") == ("rajpurkar/squad_v2", "squad_v2", "validation")
    assert _names("hellaswag", "dev") == ("Rowan/hellaswag", None, "validation")
    assert _names("commonsenseqa", "train") == ("tau/commonsense_qa", None, "train")
    assert _names("cosmosqa", "dev") == ("allenai/cosmos_qa", None, "validation")
    parts = {p.name: p for p in CATALOG.get("anli_plus").source.parts}
    assert list(parts) == ["anli_r1", "anli_r2", "anli_r3", "snli", "mnli"]
    r2 = parts["anli_r2"].source
    assert (r2.dataset, r2.config("dev", "en"), r2.split_name("dev", "en")) == ("facebook/anli", "plain_text", "dev_r2")
    assert (parts["snli"].source.dataset, parts["snli"].splits) == ("stanfordnlp/snli", ("train",))
    mnli = parts["mnli"].source
    assert (mnli.dataset, mnli.config("train", "en"), mnli.split_name("train", "en")) == _names("mnli", "train")
    assert "CCGbank" in one_line_error(CATALOG.get("ccg").source.load, "train", "en")


def test_hub_convert():
    def convert(task, row):
        return CATALOG.get(task).source.convert(row, "en")

    anli = CATALOG.get("anli_plus").source.parts[0].source.convert
    assert anli({"uid": "u1", "premise": "P", "hypothesis": "H", "label": 1, "reason": ""}, "en") == {
        "id": "u1",
        "text_a": "P",
        "text_b": "H",
        "label": "neutral",
    }
    snli = CATALOG.get("anli_plus").source.parts[3].source.convert
    assert snli({"premise": "P", "hypothesis": "H", "label": -1}, "en") is None
    assert snli({"premise": "P", "hypothesis": "H", "label": 2}, "en")["label"] == "contradiction"
    assert convert("qqp", {"question1": "A?", "question2": "B?", "label": 1, "idx": 5}) == {
        "id": "5",
        "text_a": "A?",
        "text_b": "B?",
        "label": "duplicate",
    }
    assert convert("sst2", {"sentence": "fine ", "label": 0, "idx": 3}) == {
        "id": "3",
        "text": "fine ",
        "label": "negative",
    }
    assert convert(
        "squad_v2",
        {"id": "q", "title": "t", "context": "c", "question": "?", "answers": {"text": [], "answer_start": []}},
    )["answers"] == {"text": [], "answer_start": []}
    row = {
        "ind": 24,
        "activity_label": "a",
        "ctx_a": "A man.",
        "ctx_b": "he",
        "ctx": "A man. he",
        "endings": ["w", "x", "y", "z"],
        "source_id": "s",
        "split": "val",
        "split_type": "indomain",
        "label": "3",
    }
    assert convert("hellaswag", row) == {
        "id": "24",
        "question": "A man. he",
        "choices": ["w", "x", "y", "z"],
        "label": 3,
    }
    csqa = {
        "id": "i",
        "question": "Q?",
        "question_concept": "c",
        "answerKey": "B",
        "choices": {"label": list("ABCDE"), "text": list("vwxyz")},
    }
    assert convert("commonsenseqa", csqa) == {"id": "i", "question": "Q?", "choices": list("vwxyz"), "label": 1}
    cosmos = {
        "id": "c1",
        "context": "Ctx .",
        "question": "Why ?",
        "answer0": "a",
        "answer1": "b",
        "answer2": "c",
        "answer3": "d",
        "label": 2,
    }
    assert convert("cosmosqa", cosmos) == {"id": "c1", "question": "Ctx . Why ?", "choices": list("abcd"), "label": 2}
    assert "label 7 is not an answer index" in one_line_error(convert, "cosmosqa", {**cosmos, "label": 7})


def test_anli_plus_hub_load(monkeypatch):
    calls = []

    def load_dataset(dataset, config, split, revision):
        calls.append((dataset, split))
        if dataset == "stanfordnlp/snli":
            return [{"premise": "P", "hypothesis": "H", "label": x} for x in (0, -1, 2)]
        key = "uid" if dataset == "facebook/anli" else "idx"
        return [{key: f"{split}{i}", "premise": "P", "hypothesis": "H", "label": 1} for i in range(2)]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    ids = [ex["id"] for ex in CATALOG.get("anli_plus").source.load("train", "en")]
    assert ids[:2] == ["anli_r1-train_r10", "anli_r1-train_r11"] and ids[6:] == [
        "snli-train-en-0",
        "snli-train-en-1",
        "mnli-train0",
        "mnli-train1",
    ]  # SNLI's -1 row dropped
    assert [d for d, _ in calls] == ["facebook/anli"] * 3 + ["stanfordnlp/snli", "nyu-mll/glue"]
    calls.clear()
    assert len(CATALOG.get("anli_plus").source.load("dev", "en")) == 6
    assert calls == [("facebook/anli", f"dev_r{r}") for r in (1, 2, 3)]
    source = CATALOG.get("anli_plus").source
    assert source.checksum("dev", "en") != source.checksum("train", "en")


# ---- listing


def test_tasks_list_intermediate(monkeypatch):
    from typer.testing import CliRunner

    from xstilts.cli import app

    no_pocket = TaskCatalog(MappingProxyType({n: t for n, t in CATALOG.tasks.items() if not n.startswith("pocket-")}))
    monkeypatch.setattr(TaskCatalog, "builtin", classmethod(lambda cls: no_pocket))  # listing them builds the suite
    result = CliRunner().invoke(app, ["tasks", "list", "--kind", "intermediate", "--format", "json"])
    assert result.exit_code == 0, result.output
    entries = {e["name"]: e for e in json.loads(result.output)}
    expect = {
        "anli_plus": "accuracy",
        "mnli": "accuracy",
        "qqp": "accuracy",
        "squad_v1": "squad",
        "squad_v2": "squad_v2",
        "hellaswag": "accuracy",
        "commonsenseqa": "accuracy",
        "cosmosqa": "accuracy",
        "ccg": "accuracy",
        "sst2": "accuracy",
    }
    assert set(expect) <= set(entries)
    for name, metric in expect.items():
        e = entries[name]
        assert (e["kind"], e["metric"], e["languages"], e["format"]) == (
            "intermediate",
            metric,
            ["en"],
            CATALOG.get(name).format.name,
        )
        assert e["sources"][-1] == "local:<data_dir> (official layout)"
    assert entries["ccg"]["sources"][0] == "local-only:ccg"
    assert entries["anli_plus"]["sources"][0].startswith("concat(anli_r1=hub:facebook/anli, ")
