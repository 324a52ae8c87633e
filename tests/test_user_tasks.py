"""Tasks defined by YAML + JSONL/CSV/TSV files (xstilts.tasks.user): loading, errors, the shipped example, a run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from xstilts.config.schema import ExperimentConfig
from xstilts.errors import UserError
from xstilts.experiments.export import rows as export_rows
from xstilts.experiments.resolve import resolve
from xstilts.experiments.rundir import RunDir
from xstilts.experiments.runner import run_experiment
from xstilts.tasks.catalog import TaskCatalog
from xstilts.tasks.user import check_task, load_task_file, load_tasks_dir

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "user-task"


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _task(folder: Path, spec: dict | str, name: str = "task.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    text = spec if isinstance(spec, str) else yaml.safe_dump(spec, sort_keys=False, default_flow_style=None)
    (folder / name).write_text(text)
    return folder / name


INTENT = {
    "name": "intent",
    "format": "classification",
    "labels": ["billing", "delivery"],
    "fields": {"text": "utterance", "label": "intent", "id": "ticket"},
    "data": {"train": "train.jsonl", "dev": "dev.jsonl"},
}
ROWS = [
    {"ticket": "T1", "utterance": "charged twice", "intent": "billing"},
    {"ticket": "T2", "utterance": "where is my parcel", "intent": "delivery"},
]


def test_classification_jsonl_with_mapping_and_ids(tmp_path):
    _jsonl(tmp_path / "train.jsonl", ROWS)
    (tmp_path / "dev.jsonl").write_text(
        '{"utterance": "refund my fee", "intent": "billing"}\n\n'
        '{"utterance": "late box", "intent": "delivery", "ticket": "x"}\n'
    )
    task = load_task_file(_task(tmp_path, {**INTENT, "fields": {"text": "utterance", "label": "intent"}}))
    assert (task.name, task.format.name, task.kind, task.metric, task.fields) == (
        "intent",
        "classification",
        "intermediate",
        "accuracy",
        ("text",),
    )
    assert task.labels == ("billing", "delivery") and task.languages == ("en",)
    assert task.source.load("dev", "en") == [
        {"id": "dev.jsonl:1", "text": "refund my fee", "label": "billing"},
        {"id": "dev.jsonl:3", "text": "late box", "label": "delivery"},
    ]
    assert check_task(task) == {"train-en": 2, "dev-en": 2}
    task = load_task_file(_task(tmp_path, INTENT))  # ids from the ticket column, which dev.jsonl lacks
    assert [ex["id"] for ex in task.source.load("train", "en")] == ["T1", "T2"]
    with pytest.raises(UserError, match=r"dev.jsonl:1: missing field 'ticket'"):
        check_task(task)


def test_pair_classification_csv_and_checksum(tmp_path):
    (tmp_path / "train.csv").write_text('\ufeffq1,q2,same\n"a, quoted","multi\nline",1\n\nc,d,0\n', encoding="utf-8")
    path = _task(
        tmp_path,
        {
            "name": "para",
            "format": "classification",
            "labels": [0, 1],
            "fields": {"text_a": "q1", "text_b": "q2", "label": "same"},
            "data": {"train": "train.csv", "dev": "train.csv"},
        },
    )
    task = load_task_file(path)
    assert task.fields == ("text_a", "text_b") and task.labels == ("0", "1")
    assert task.source.load("train", "en") == [
        {"id": "train.csv:2", "text_a": "a, quoted", "text_b": "multi\nline", "label": "1"},
        {"id": "train.csv:5", "text_a": "c", "text_b": "d", "label": "0"},
    ]
    before = task.source.checksum("train", "en")
    assert len(before) == 64 and load_task_file(path).source.checksum("train", "en") == before
    _task(tmp_path, {**yaml.safe_load(path.read_text()), "labels": [1, 0]})  # label order: another head
    assert load_task_file(path).source.checksum("train", "en") != before
    (tmp_path / "train.csv").write_text("q1,q2,same\nc,d,0\n")
    assert load_task_file(path).source.checksum("train", "en") not in (before,)


def test_multiple_choice_tsv_columns_and_jsonl_list(tmp_path):
    (tmp_path / "train.tsv").write_text("q\tc0\tc1\tc2\tans\nwhy?\tyes\tno\tmaybe\t2\n")
    _jsonl(tmp_path / "dev.jsonl", [{"q": "why?", "options": ["a", "b", "c"], "ans": 0}])
    task = load_task_file(
        _task(
            tmp_path,
            {
                "name": "mc",
                "format": "multiple_choice",
                "fields": {"question": "q", "choices": ["c0", "c1", "c2"], "label": "ans"},
                "data": {"train": "train.tsv", "dev": "train.tsv"},
            },
        )
    )
    assert task.fields == ("question", "choices") and task.labels is None
    assert task.source.load("train", "en") == [
        {"id": "train.tsv:2", "question": "why?", "choices": ["yes", "no", "maybe"], "label": 2}
    ]
    task = load_task_file(
        _task(
            tmp_path,
            {
                "name": "mc",
                "format": "multiple_choice",
                "fields": {"question": "q", "choices": "options", "label": "ans"},
                "data": {"train": "dev.jsonl", "dev": "dev.jsonl"},
            },
        )
    )
    assert task.source.load("dev", "en")[0]["choices"] == ["a", "b", "c"]


def test_span_qa_jsonl_and_csv_squad_v2(tmp_path):
    _jsonl(
        tmp_path / "train.jsonl",
        [
            {
                "question": "who?",
                "context": "Ada wrote it. Ada did.",
                "answer": ["Ada", "Ada"],
                "answer_start": [0, 14],
            },
            {"question": "when?", "context": "never", "answer": [], "answer_start": []},
        ],
    )
    (tmp_path / "dev.csv").write_text("question,context,answer,answer_start\nwho?,Bo ran,Bo,0\nwhy?,no idea,,\n")
    task = load_task_file(
        _task(
            tmp_path,
            {
                "name": "qa",
                "format": "span_qa",
                "metric": "squad_v2",
                "data": {"train": "train.jsonl", "dev": "dev.csv"},
            },
        )
    )
    assert task.fields == ("question", "context") and task.metric == "squad_v2"
    train = task.source.load("train", "en")
    assert [ex["answers"] for ex in train] == [
        {"text": ["Ada", "Ada"], "answer_start": [0, 14]},
        {"text": [], "answer_start": []},
    ]
    assert [ex["answers"] for ex in task.source.load("dev", "en")] == [
        {"text": ["Bo"], "answer_start": [0]},
        {"text": [], "answer_start": []},
    ]


def test_tagging_target_with_per_language_test_files(tmp_path):
    _jsonl(tmp_path / "data" / "train.jsonl", [{"words": ["Ada", "runs"], "labels": ["B-PER", "O"]}])
    for lang in ("en", "de"):
        (tmp_path / "data" / f"test-{lang}.tsv").write_text(f"words\tlabels\n{lang} Ada\tO B-PER\n")
    task = load_task_file(
        _task(
            tmp_path / "tasks",
            {
                "name": "ner",
                "format": "tagging",
                "kind": "target",
                "labels": ["O", "B-PER"],
                "fields": {"tokens": "words", "tags": "labels"},
                "languages": ["en", "de"],
                "data": {
                    "train": "../data/train.jsonl",
                    "dev": "../data/train.jsonl",
                    "test": "../data/test-{lang}.tsv",
                },
            },
        )
    )
    assert (task.kind, task.metric, task.fields, task.languages) == ("target", "seqeval", ("tokens",), ("en", "de"))
    assert task.source.load("test", "de") == [{"id": "test-de.tsv:2", "tokens": ["de", "Ada"], "tags": ["O", "B-PER"]}]
    assert check_task(task) == {"train-en": 1, "dev-en": 1, "test-en": 1, "test-de": 1}
    with pytest.raises(UserError, match="has no language 'fr'"):
        task.source.load("test", "fr")


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize(
    "change, expected",
    [
        (
            {"format": "regression"},
            "task.yaml:2: format: expected one of classification, multiple_choice, span_qa, tagging (got 'regression')",
        ),
        ({"name": "Support Intent"}, "task.yaml:1: name: String should match pattern"),
        ({"name": "none"}, "task.yaml:1: name: 'none' is the no-intermediate baseline"),
        ({"colour": "red"}, "task.yaml:6: colour: unknown field"),
        ({"metric": "f1"}, "task.yaml:6: metric: classification is scored with accuracy (got 'f1')"),
        ({"labels": None}, "task.yaml:1: labels: required for classification"),
        ({"labels": []}, "task.yaml:3: labels: must not be empty"),
        ({"labels": ["a", "b", "a"]}, "task.yaml:3: labels: 'a' is listed twice"),
        (
            {"fields": {"text": "u", "label": "i", "tokens": "t"}},
            "task.yaml:4: fields.tokens: not a field of classification (fields: text, text_a, text_b, label, id)",
        ),
        ({"fields": {"text_a": "u"}}, "task.yaml:4: fields.text_a: text_a and text_b go together"),
        (
            {"data": {"train": "train.jsonl", "val": "dev.jsonl"}},
            "task.yaml:5: data.val: Input should be 'train', 'dev' or 'test' (got 'val')",
        ),
        (
            {"data": {"train": "train.jsonl"}},
            "task.yaml:5: data: missing the dev split (intermediate tasks need train, dev)",
        ),
        ({"kind": "target"}, "task.yaml:5: data: missing the test split (target tasks need train, dev, test)"),
        (
            {"data": {"train": "train.txt", "dev": "dev.jsonl"}},
            "task.yaml:5: data.train: unsupported file type '.txt' (use .jsonl, .csv or .tsv)",
        ),
        (
            {"data": {"train": "train-{split}.jsonl", "dev": "dev.jsonl"}},
            "task.yaml:5: data.train: unknown placeholder {split}; only {lang} is allowed",
        ),
        ({"data": {"train": "nope.jsonl", "dev": "dev.jsonl"}}, "task.yaml:5: data.train: missing data file "),
        (
            {"kind": "target", "languages": ["en", "de"], "data": {**INTENT["data"], "test": "dev.jsonl"}},
            "task.yaml:5: data.test: needs a {lang} placeholder: there are 2 languages",
        ),
        ({"format": "multiple_choice"}, "task.yaml:3: labels: not used by multiple_choice"),
    ],
)
def test_definition_errors_name_file_line_and_field(tmp_path, change, expected):
    _jsonl(tmp_path / "train.jsonl", ROWS)
    _jsonl(tmp_path / "dev.jsonl", ROWS)
    spec = {k: v for k, v in {**INTENT, **change}.items() if v is not None}
    path = _task(tmp_path, spec)
    with pytest.raises(UserError) as err:
        load_task_file(path)
    assert _one_line(err).startswith(f"{tmp_path}/{expected}")


def test_invalid_yaml_and_not_a_mapping(tmp_path):
    with pytest.raises(UserError, match=r"task.yaml:3: invalid YAML \(expected ',' or ']'"):
        load_task_file(_task(tmp_path, "name: x\nformat: [a\n"))
    with pytest.raises(UserError, match=r"task.yaml: expected a mapping"):
        load_task_file(_task(tmp_path, "- a\n"))


@pytest.mark.parametrize(
    "train, expected",
    [
        (
            "".join(json.dumps({"ticket": str(i), "utterance": "x", "intent": "billing"}) + "\n" for i in range(6))
            + '{"ticket": "7", "intent": "billing"}\n',
            "train.jsonl:7: missing field 'utterance'",
        ),
        (
            '{"ticket": "1", "utterance": "x", "intent": "refund"}\n',
            "train.jsonl:1: label 'refund' is not one of billing, delivery",
        ),
        ("\n\n", "train.jsonl: no examples"),
        ('{"ticket": "1", "utterance": x}\n', "train.jsonl:1: invalid JSON"),
        ('{"ticket": "1", "utterance": "x", "intent": "billing"}\n' * 2, "train.jsonl:2: duplicate id '1'"),
        ('{"ticket": "1", "utterance": 5, "intent": "billing"}\n', "train.jsonl:1: field 'utterance' must be a string"),
    ],
)
def test_jsonl_row_errors(tmp_path, train, expected):
    (tmp_path / "train.jsonl").write_text(train)
    _jsonl(tmp_path / "dev.jsonl", ROWS)
    task = load_task_file(_task(tmp_path, INTENT))
    with pytest.raises(UserError) as err:
        task.source.load("train", "en")
    assert _one_line(err).startswith(f"{tmp_path}/{expected}")


def test_csv_row_errors(tmp_path):
    _jsonl(tmp_path / "dev.jsonl", ROWS)
    rows = "".join(f"T{i},hello,billing\n" for i in range(2, 12))
    (tmp_path / "train.csv").write_text("ticket,utterance,intent\n" + rows + "T12,hi,refund\n")
    task = load_task_file(_task(tmp_path, {**INTENT, "data": {"train": "train.csv", "dev": "dev.jsonl"}}))
    with pytest.raises(UserError) as err:
        task.source.load("train", "en")
    assert _one_line(err) == f"{tmp_path}/train.csv:12: label 'refund' is not one of billing, delivery"
    (tmp_path / "train.csv").write_text("ticket,text,intent\nT1,hi,billing\n")
    with pytest.raises(UserError, match=r"train.csv:1: missing column 'utterance' \(the header has ticket, text"):
        task.source.load("train", "en")
    (tmp_path / "train.csv").write_text("ticket,utterance,intent\nT1,hi\n")
    with pytest.raises(UserError, match=r"train.csv:2: 2 values, but the header has 3 columns"):
        task.source.load("train", "en")
    (tmp_path / "train.csv").unlink()
    with pytest.raises(UserError, match=r"train.csv: missing data file"):
        task.source.load("train", "en")


def test_format_specific_row_errors(tmp_path):
    def fails(spec: dict, row: dict, expected: str) -> None:
        _jsonl(tmp_path / "d.jsonl", [row])
        task = load_task_file(_task(tmp_path, {**spec, "data": {"train": "d.jsonl", "dev": "d.jsonl"}}))
        with pytest.raises(UserError) as err:
            task.source.load("train", "en")
        assert _one_line(err) == f"{tmp_path}/d.jsonl:1: {expected}"

    mc = {"name": "mc", "format": "multiple_choice"}
    fails(mc, {"question": "q", "choices": ["a", "b"], "label": 2}, "label 2 is not a choice index (0 to 1)")
    fails(
        mc,
        {"question": "q", "choices": "a", "label": 0},
        "field 'choices' must be a list of two strings or more (in CSV/TSV, map choices to a list of columns)",
    )
    qa = {"name": "qa", "format": "span_qa"}
    fails(
        qa,
        {"question": "q", "context": "Ada ran", "answer": "ran", "answer_start": 0},
        "answer 'ran' is not at answer_start 0 of the context",
    )
    fails(
        qa,
        {"question": "q", "context": "c", "answer": "", "answer_start": ""},
        "no answer (only metric squad_v2 allows unanswerable questions)",
    )
    tag = {"name": "tag", "format": "tagging", "labels": ["O"]}
    fails(tag, {"tokens": ["a", "b"], "tags": ["O"]}, "2 tokens but 1 tags")
    fails(tag, {"tokens": ["a"], "tags": ["B-X"]}, "tag 'B-X' is not one of O")


def test_folder_loading_and_name_clashes(tmp_path):
    _jsonl(tmp_path / "train.jsonl", ROWS)
    _jsonl(tmp_path / "dev.jsonl", ROWS)
    folder = tmp_path
    _task(folder, INTENT, "a.yaml")
    _task(folder, {**INTENT, "name": "intent2"}, "b.yml")
    (folder / "notes.txt").write_text("not a task")
    assert [t.name for t in load_tasks_dir(folder)] == ["intent", "intent2"]
    builtin_names = TaskCatalog.builtin().names()
    catalog = TaskCatalog.builtin().with_dir(folder)
    assert sorted(set(catalog.names()) - set(builtin_names)) == ["intent", "intent2"]
    assert catalog.get("intent2").source.describe() == f"user:{folder / 'b.yml'}"
    again = catalog.with_dir(folder)  # the same files again: no clash
    assert again.names() == catalog.names() and again.get("intent2") == catalog.get("intent2")
    _task(folder, INTENT, "c.yaml")
    with pytest.raises(UserError) as err:
        load_tasks_dir(folder)
    assert _one_line(err) == f"{folder / 'c.yaml'}:1: name: task 'intent' is also defined in {folder / 'a.yaml'}"
    (folder / "c.yaml").unlink()
    builtin = _task(
        tmp_path / "other",
        {**INTENT, "name": "pocket-topic", "data": {"train": "../train.jsonl", "dev": "../dev.jsonl"}},
    )
    with pytest.raises(UserError) as err:
        TaskCatalog.builtin().with_dir(builtin.parent)
    assert _one_line(err) == f"{builtin}:1: name: task 'pocket-topic' is already defined as a built-in task"
    with pytest.raises(UserError, match="tasks folder not found"):
        load_tasks_dir(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match=r"empty: no task definitions \(\*.yaml\)"):
        load_tasks_dir(tmp_path / "empty")


def test_register_checks_the_data_first(tmp_path):
    _jsonl(tmp_path / "train.jsonl", ROWS)
    (tmp_path / "dev.jsonl").write_text("")
    _task(tmp_path, INTENT)
    catalog = TaskCatalog.builtin()
    with pytest.raises(UserError, match=r"dev.jsonl: no examples"):
        catalog.with_dir(tmp_path)
    assert catalog.find("intent") is None  # all or nothing


def test_shipped_example():
    catalog = TaskCatalog.builtin().with_dir(EXAMPLE / "tasks")
    (task,) = [catalog.get(name) for name in sorted(set(catalog.names()) - set(TaskCatalog.builtin().names()))]
    assert (task.name, task.format.name, task.kind, task.metric) == (
        "support-intent",
        "classification",
        "intermediate",
        "accuracy",
    )
    assert check_task(task) == {"train-en": 48, "dev-en": 16}
    for split in ("train", "dev"):
        examples = task.source.load(split, "en")
        assert {ex["label"] for ex in examples} == set(task.labels) == {"billing", "delivery", "returns", "account"}
        assert all(ex["id"].startswith("T-") and ex["text"] for ex in examples)
    config = yaml.safe_load((EXAMPLE / "config.yaml").read_text())
    assert config.pop("tasks_dir") == "tasks" and (EXAMPLE / "tasks").is_dir()
    cfg = ExperimentConfig.model_validate(config)
    assert cfg.intermediate.settings == ["none", "support-intent"] and cfg.model == "me5-small@L2"
    assert cfg.targets[0].task == "pocket-topic" and cfg.intermediate.train.max_steps == 5
    resolve(cfg, catalog)  # every task it names is in the catalog with the example's tasks


def test_user_task_as_intermediate_in_a_tiny_run(tiny_model, tiny_catalog, tmp_path):
    words = {"food": "we like pizza and bread", "sport": "they play ball and win the game"}
    rows = [{"text": text, "label": label} for _ in range(8) for label, text in words.items()]
    _jsonl(tmp_path / "data" / "train.jsonl", rows)
    (tmp_path / "data" / "dev.tsv").write_text("text\tlabel\n" + "".join(f"{t}\t{y}\n" for y, t in words.items()))
    _task(
        tmp_path / "tasks",
        {
            "name": "my-topic",
            "format": "classification",
            "labels": ["food", "sport"],
            "data": {"train": "../data/train.jsonl", "dev": "../data/dev.tsv"},
        },
    )
    catalog = tiny_catalog.with_dir(tmp_path / "tasks")
    budget = {"batch_size": 8, "lr": 1e-3, "max_length": 32, "max_steps": 2}
    cfg = ExperimentConfig.model_validate(
        {
            "model": tiny_model,
            "intermediate": {"settings": ["none", "my-topic"], "train": budget},
            "targets": [
                {
                    "task": "t-topic",
                    "train": budget,
                    "eval": {"max_examples_per_language": 10},
                    "probe_reference": False,
                }
            ],
        }
    )
    summary = run_experiment(cfg, catalog, "", tmp_path / "run", Console(quiet=True))
    assert summary["ran"] == 3
    rows = export_rows(RunDir(tmp_path / "run"))
    dev = [r for r in rows if r["kind"] == "intermediate" and r["task"] == "my-topic"]
    assert [(r["split"], r["language"], r["metric"], r["n"]) for r in dev] == [("dev", "en", "accuracy", 2)]
    tests = [r for r in rows if r["target"] == "t-topic" and r["split"] == "test"]
    assert {r["intermediate"] for r in tests} == {"none", "my-topic"}
