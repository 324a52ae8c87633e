"""Item identity across the languages of a parallel test set: the item keys the loaders give (hub rows and official
files), fixed subsets that keep the same items in every language, the keys a job's per_example.npz keeps beside
its statistics, and ``parallel:`` in user task files."""

from __future__ import annotations

import json
import random
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from xstilts.config.schema import EvalConfig, ExperimentConfig, TrainConfig
from xstilts.data.items import ITEM, item_key
from xstilts.data.sources import JsonlDirSource
from xstilts.errors import UserError
from xstilts.evaluate.zero_shot import fixed_subset, subset_key
from xstilts.experiments.rundir import RunDir
from xstilts.experiments.runner import run_experiment
from xstilts.experiments.specs import Job, ModelSpec, TargetSpec
from xstilts.metrics import per_example
from xstilts.tasks.catalog import TaskCatalog
from xstilts.tasks.definition import TaskDef
from xstilts.tasks.user import load_task_file

CATALOG = TaskCatalog.builtin()
FIXTURES = Path(__file__).parent / "fixtures"
OFFICIAL, RETRIEVAL, PARALLEL = FIXTURES / "official", FIXTURES / "official_retrieval", FIXTURES / "parallel"
PARALLEL_TASKS = {"xnli", "pawsx", "xquad", "mlqa", "xcopa", "tatoeba", "pocket-retrieval"}


def test_the_parallel_tasks():
    assert {name for name in CATALOG.names() if CATALOG.get(name).parallel} == PARALLEL_TASKS


# ---------------------------------------------------------------- hub rows, as each task's convert sees them


def _squad_row(qid: str, question: str) -> dict:
    return {
        "id": qid,
        "title": "T",
        "context": "Rome.",
        "question": question,
        "answers": {"text": ["Rome"], "answer_start": [0]},
    }


def _copa_row(idx: int, premise: str) -> dict:
    return {
        "premise": premise,
        "choice1": "a",
        "choice2": "b",
        "question": "cause",
        "label": 0,
        "idx": idx,
        "changed": False,
    }


def _pair(text: str, label: int, **more) -> dict:
    return {"label": label, **more, "premise": text, "hypothesis": text, "sentence1": text, "sentence2": text}


HUB_ROWS = {  # (dataset, config) -> the test rows of two languages: the same items, in each language's order
    ("facebook/xnli", "de"): [_pair("Er kam.", 0), _pair("Sie ging.", 2), _pair("Es regnet.", 1)],
    ("facebook/xnli", "en"): [_pair("He came.", 0), _pair("She left.", 2), _pair("It rains.", 1)],
    ("google-research-datasets/paws-x", "de"): [_pair("Zwei", 0, id=2), _pair("Eins", 1, id=1)],
    ("google-research-datasets/paws-x", "en"): [_pair("One", 1, id=1), _pair("Two", 0, id=2)],
    ("google/xquad", "xquad.de"): [_squad_row("56be-1", "Wo?"), _squad_row("56be-2", "Wann?")],
    ("google/xquad", "xquad.en"): [_squad_row("56be-1", "Where?"), _squad_row("56be-2", "When?")],
    ("google/xtreme", "MLQA.de.de"): [_squad_row("c3", "Wann?")],  # MLQA: a language has a subset of the items
    ("google/xtreme", "MLQA.en.en"): [_squad_row("a1", "Who?"), _squad_row("c3", "When?")],
    ("cambridgeltl/xcopa", "it"): [_copa_row(3, "La lampada si spense."), _copa_row(8, "Il bambino rise.")],
    ("cambridgeltl/xcopa", "zh"): [_copa_row(3, "灯灭了。"), _copa_row(8, "孩子笑了。")],
    ("google/xtreme", "tatoeba.deu"): [
        {"source_sentence": "Ich habe Hunger.\n", "target_sentence": "I'm hungry.\n"},
        {"source_sentence": "Wo ist er?\n", "target_sentence": "Where is he?\n"},
    ],
    ("google/xtreme", "tatoeba.cmn"): [
        {"source_sentence": "他在哪里？\n", "target_sentence": "Where is he?\n"},
        {"source_sentence": "我饿了。\n", "target_sentence": "I'm hungry.\n"},
    ],
}
HUB_LANGUAGES = {"xnli": ("de", "en"), "pawsx": ("de", "en"), "xquad": ("de", "en"), "mlqa": ("de", "en")}
HUB_LANGUAGES |= {"xcopa": ("it", "zh"), "tatoeba": ("de", "zh")}
HUB_ITEMS = {  # task -> each language's item keys, in its rows' order
    "xnli": (["test-0", "test-1", "test-2"], ["test-0", "test-1", "test-2"]),
    "pawsx": (["2", "1"], ["1", "2"]),
    "xquad": (["56be-1", "56be-2"], ["56be-1", "56be-2"]),
    "mlqa": (["c3"], ["a1", "c3"]),
    "xcopa": (["3", "8"], ["3", "8"]),
    "tatoeba": (["I'm hungry.", "Where is he?"], ["Where is he?", "I'm hungry."]),
}


@pytest.fixture
def offline_hub(monkeypatch):
    def load_dataset(dataset, config, split, revision):
        return HUB_ROWS[dataset, config]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))


@pytest.mark.parametrize("task", sorted(HUB_ITEMS))
def test_hub_rows_key_an_item_alike_in_two_languages(offline_hub, task):
    source = CATALOG.get(task).source
    first, second = (source.load("test", lang) for lang in HUB_LANGUAGES[task])
    assert ([ex[ITEM] for ex in first], [ex[ITEM] for ex in second]) == HUB_ITEMS[task]


# ---------------------------------------------------------------- official files (data_dir)

FILE_ITEMS = {  # task -> (data_dir, two languages, each one's item keys in file order)
    "xnli": (OFFICIAL, ("en", "de"), ["test-0", "test-1", "test-2"], ["test-0", "test-1", "test-2"]),
    "pawsx": (OFFICIAL, ("en", "zh"), ["test-0", "test-1"], ["test-0", "test-1"]),
    "xquad": (
        OFFICIAL,
        ("en", "zh"),
        ["56be4db0acb8001400a502ec", "56be4db0acb8001400a502ed"],
        ["56be4db0acb8001400a502ec", "56be4db0acb8001400a502ed"],
    ),
    "mlqa": (
        PARALLEL,
        ("en", "de"),
        [
            "5a1f0e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3",
            "5b2e1d0c9b8a79685746352413021f0e1d2c3b4a",
            "5c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d",
        ],
        ["5b2e1d0c9b8a79685746352413021f0e1d2c3b4a", "5a1f0e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3"],
    ),
    "xcopa": (PARALLEL, ("it", "zh"), ["3", "8"], ["3", "8"]),
    "tatoeba": (
        RETRIEVAL,
        ("de", "zh"),
        ["I'm hungry.", "Where is the train station?", "The weather is nice today."],
        ["I'm hungry.", "Where is the train station?", "The weather is nice today."],
    ),
}


@pytest.mark.parametrize("task", sorted(FILE_ITEMS))
def test_official_files_key_an_item_alike_in_two_languages(task):
    root, langs, *items = FILE_ITEMS[task]
    loaded = [CATALOG.get(task, data_dir=root).source.load("test", lang) for lang in langs]
    assert [[ex[ITEM] for ex in exs] for exs in loaded] == items


def test_the_same_mlqa_question_is_the_same_item_in_two_languages():
    en, de = (CATALOG.get("mlqa", data_dir=PARALLEL).source.load("test", lang) for lang in ("en", "de"))
    answer = {ex[ITEM]: ex["answers"]["text"][0] for ex in de}
    assert {answer[ex[ITEM]]: ex["answers"]["text"][0] for ex in en if ex[ITEM] in answer} == {
        "in Rom": "in Rome",
        "sechs": "six",
    }


def test_pocket_retrieval_pairs_are_keyed_by_their_english_side():
    source = CATALOG.get("pocket-retrieval").source
    de, fr = source.load("test", "de"), source.load("test", "fr")
    assert all(ex[ITEM] == ex["target"] for ex in de + fr)
    shared = {ex[ITEM] for ex in de} & {ex[ITEM] for ex in fr}
    assert shared and {ex["id"] for ex in de}.isdisjoint(ex["id"] for ex in fr)


def test_item_key_is_the_item_else_the_id():
    assert item_key({"id": "test-de-3", ITEM: "test-3"}) == "test-3"
    assert item_key({"id": "de7", "text": "t"}) == "de7"


# ---------------------------------------------------------------- fixed subsets


def _translations(lang: str, n: int = 60) -> list[dict]:
    """n items of a parallel test set in ``lang``: ids name the language, items do not; in the language's order."""
    rows = [{"id": f"{lang}-{i}", "text": f"{lang} {i}", "label": "a", ITEM: f"q{i}"} for i in range(n)]
    random.Random(lang).shuffle(rows)
    return rows


def test_a_parallel_subset_keeps_the_same_items_in_every_language():
    key = subset_key(CATALOG.get("xnli"))
    assert key == ITEM
    de, sw = (fixed_subset(_translations(lang), 10, key) for lang in ("de", "sw"))
    assert len(de) == 10 and {ex[ITEM] for ex in de} == {ex[ITEM] for ex in sw}
    by_id = (fixed_subset(_translations(lang), 10, "id") for lang in ("de", "sw"))  # the rule before: per language
    assert len(set.intersection(*({ex[ITEM] for ex in exs} for exs in by_id))) < 10


def test_non_parallel_and_retrieval_subsets_are_as_before():
    topic, retrieval = CATALOG.get("pocket-topic"), CATALOG.get("pocket-retrieval")
    assert not topic.parallel and subset_key(topic) == "id" == topic.format.subset_key
    assert subset_key(CATALOG.get("bucc2018")) is None
    pairs = retrieval.source.load("test", "de")  # the demo's retrieval: its English side was already the key
    assert fixed_subset(pairs, 40, subset_key(retrieval)) == fixed_subset(pairs, 40, "target")


# ---------------------------------------------------------------- job ids


def _target(parallel: bool, **evaluation) -> Job:
    model = ModelSpec("m", "w", "mean", None)
    return Job(TargetSpec(model, (), 1, None, "xnli", "d", EvalConfig(**evaluation), TrainConfig(), parallel=parallel))


def test_parallel_subsets_give_new_job_ids_only_where_there_are_subsets():
    assert _target(True).id == _target(False).id  # whole test sets: as before
    assert _target(False, max_examples_per_language=50).spec.as_dict()["eval"].get("subset") is None
    keyed = _target(True, max_examples_per_language=50)
    assert keyed.spec.as_dict()["eval"]["subset"] == "items"
    assert keyed.id != _target(False, max_examples_per_language=50).id


def test_the_plan_marks_parallel_targets():
    from xstilts.experiments.plan import plan

    cfg = ExperimentConfig.model_validate(
        {
            "model": "me5-small",
            "targets": [
                {"task": "xnli", "eval": {"max_examples_per_language": 50}},
                {"task": "pocket-topic", "eval": {"max_examples_per_language": 50}},
            ],
        }
    )
    targets = [j.spec for j in plan(cfg, CATALOG).jobs if j.kind == "target"]
    assert {(t.target, t.parallel) for t in targets} == {("xnli", True), ("pocket-topic", False)}
    assert all(t.as_dict()["eval"].get("subset") == ("items" if t.parallel else None) for t in targets)


# ---------------------------------------------------------------- per_example.npz of a run


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def parallel_catalog(tiny_catalog, tiny_data, tmp_path) -> TaskCatalog:
    """The tiny tasks and p-topic, p-retrieval: t-topic's and t-retrieval's data made parallel (test rows keyed by
    item, t-topic's the same items in every language, each language in its own order)."""
    topic, pairs = tmp_path / "p-topic", tmp_path / "p-retrieval"
    shutil.copytree(tiny_data["t-topic"], topic)
    pairs.mkdir()
    for lang in ("en", "xx", "yy"):
        rows = [{**r, ITEM: f"q{i}"} for i, r in enumerate(_rows(topic / f"test-{lang}.jsonl"))]
        random.Random(lang).shuffle(rows)
        _jsonl(topic / f"test-{lang}.jsonl", rows)
    for file in tiny_data["t-retrieval"].glob("test-*.jsonl"):
        _jsonl(pairs / file.name, [{**r, ITEM: r["target"]} for r in _rows(file)])
    labels = tiny_catalog.get("t-topic").labels
    return tiny_catalog.with_tasks(
        TaskDef("p-topic", "classification", "target", "accuracy", JsonlDirSource(topic, labels), parallel=True),
        TaskDef(
            "p-retrieval",
            "retrieval",
            "target",
            "accuracy",
            JsonlDirSource(pairs),
            fields=("source", "target"),
            parallel=True,
        ),
    )


def test_a_run_keeps_the_item_key_of_every_statistics_row(tiny_model, parallel_catalog, tiny_data, tmp_path):
    budget = {"batch_size": 8, "epochs": 1, "lr": 1e-3, "max_length": 32}
    subset = {"max_examples_per_language": 8}
    cfg = ExperimentConfig.model_validate(
        {
            "name": "items",
            "model": tiny_model,
            "seeds": [1],
            "targets": [
                {"task": "p-topic", "train": budget, "eval": subset, "probe_reference": False},
                {"task": "t-topic", "train": budget, "probe_reference": False},
                {"task": "p-retrieval", "eval": {"layer": 1, **subset}},
            ],
        }
    )
    run = RunDir(tmp_path / "out")
    run_experiment(cfg, parallel_catalog, "yaml", run.root, Console(quiet=True))
    kept: dict[str, dict[str, list[str]]] = {}
    for result in run.load_results():
        task = result["target"]
        with np.load(run.per_example(result["job_id"]), allow_pickle=False) as npz:
            stats = {k: npz[k] for k in npz.files}
        parallel = stats.pop(per_example.parallel_key(task, "test"))
        assert parallel.shape == () and bool(parallel) is parallel_catalog.get(task).parallel
        for lang in {m["language"] for m in result["metrics"] if m["split"] == "test"}:
            items = stats.pop(per_example.key(task, "test", lang, per_example.ITEMS))
            assert items.dtype.kind == "U" and len(items) == len(set(items))
            rows = [s for k, s in stats.items() if k.startswith(f"{task}|test|{lang}|")]
            assert rows and all(len(s) == len(items) for s in rows)  # one key per statistics row
            kept.setdefault(task, {})[lang] = list(items)
    # a parallel subset: the same 8 items in every language, in each language's file order
    topic = kept["p-topic"]
    assert {frozenset(items) for items in topic.values()} == {frozenset(topic["en"])} and len(topic["en"]) == 8
    for lang, items in topic.items():
        order = [r[ITEM] for r in _rows(tmp_path / "p-topic" / f"test-{lang}.jsonl")]
        assert items == [i for i in order if i in items]
    # a task that is not parallel: every row keyed by its (per-language) id
    assert kept["t-topic"] == {
        lang: [r["id"] for r in _rows(tiny_data["t-topic"] / f"test-{lang}.jsonl")] for lang in ("en", "xx", "yy")
    }
    # pair retrieval: a row per query, keyed by its English side
    for lang, items in kept["p-retrieval"].items():
        targets = [r["target"] for r in _rows(tiny_data["t-retrieval"] / f"test-{lang}.jsonl")]
        assert len(items) == 8 and items == [t for t in targets if t in items]


# ---------------------------------------------------------------- user task files


def _user_task(folder: Path, parallel: str, fields: str = "{text: utterance, label: intent, id: ticket}") -> Path:
    for lang, texts in (("en", ["charged twice", "late box"]), ("de", ["Paket fehlt", "doppelt bezahlt"])):
        tickets = ["T1", "T2"] if lang == "en" else ["T2", "T1"]  # the same tickets, in another order
        intents = ["billing", "delivery"] if lang == "en" else ["delivery", "billing"]
        _jsonl(
            folder / f"test-{lang}.jsonl",
            [{"ticket": t, "utterance": u, "intent": i} for t, u, i in zip(tickets, texts, intents)],
        )
    shutil.copy(folder / "test-en.jsonl", folder / "train.jsonl")
    path = folder / "task.yaml"
    path.write_text(
        "name: intent\n"
        "format: classification\n"
        "kind: target\n"
        "labels: [billing, delivery]\n"
        f"fields: {fields}\n"
        "data: {train: train.jsonl, dev: train.jsonl, test: 'test-{lang}.jsonl'}\n"
        "languages: [en, de]\n"
        f"parallel: {parallel}\n",
        encoding="utf-8",
    )
    return path


def test_a_parallel_user_task_keys_its_items_by_id_else_by_row(tmp_path):
    task = load_task_file(_user_task(tmp_path, "true"))
    assert task.parallel
    en, de = (task.source.load("test", lang) for lang in ("en", "de"))
    assert (
        {ex[ITEM]: ex["label"] for ex in en}
        == {ex[ITEM]: ex["label"] for ex in de}
        == {"T1": "billing", "T2": "delivery"}
    )
    task = load_task_file(_user_task(tmp_path, "true", "{text: utterance, label: intent}"))
    assert [ex[ITEM] for ex in task.source.load("test", "de")] == ["test-0", "test-1"]
    assert [ex["id"] for ex in task.source.load("test", "de")] == ["test-de.jsonl:1", "test-de.jsonl:2"]
    task = load_task_file(_user_task(tmp_path, "false"))
    assert not task.parallel and ITEM not in task.source.load("test", "de")[0]


@pytest.mark.parametrize("value", ["maybe", "1", "'yes'"])
def test_user_task_parallel_must_be_a_boolean(tmp_path, value):
    with pytest.raises(UserError) as err:
        load_task_file(_user_task(tmp_path, value))
    message = str(err.value)
    assert "\n" not in message and message.startswith(
        f"{tmp_path / 'task.yaml'}:8: parallel: Input should be a valid boolean"
    )
