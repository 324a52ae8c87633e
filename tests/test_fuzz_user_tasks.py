"""Property-based fuzzing of user task definitions (task YAML) and their data files (JSONL, CSV, TSV): random
bytes, random YAML mappings, mutated valid definitions and random rows give a task / examples or a one-line
UserError, never another exception."""

from __future__ import annotations

import copy
import csv
import io
import json

import pytest
import yaml
from fuzz_support import FUZZ, clean, folder, json_values, random_bytes, records, short_text, tricky_text, write
from hypothesis import given
from hypothesis import strategies as st

from xstilts.tasks.user import load_task_file

LABELS = ["billing", "returns", "0"]
TAGS = ["O", "B-PER", "I-PER"]
SPECS = {  # a valid definition per format, its data columns and a plausible value per column
    "classification": (
        {
            "format": "classification",
            "labels": LABELS,
            "fields": {"text": "utterance", "label": "intent", "id": "ticket"},
        },
        {"utterance": tricky_text, "intent": st.sampled_from(LABELS) | short_text, "ticket": short_text},
    ),
    "pairs": (
        {"format": "classification", "labels": LABELS, "fields": {"text_a": "a", "text_b": "b"}},
        {"a": tricky_text, "b": tricky_text, "label": st.sampled_from(LABELS) | json_values},
    ),
    "multiple_choice": (
        {"format": "multiple_choice", "fields": {"choices": ["c0", "c1", "c2"]}},
        {
            "question": tricky_text,
            "c0": tricky_text,
            "c1": tricky_text,
            "c2": tricky_text,
            "label": st.sampled_from(["0", "1", "2", "3", "²", " 1", "-1"]) | st.integers(-1, 3),
        },
    ),
    "multiple_choice_list": (
        {"format": "multiple_choice"},
        {
            "question": tricky_text,
            "choices": st.lists(tricky_text, max_size=4) | tricky_text,
            "label": st.sampled_from(["0", "1", "²"]) | st.integers(-1, 3),
        },
    ),
    "span_qa": (
        {"format": "span_qa", "metric": "squad_v2", "fields": {"answer": "answers"}},
        {
            "question": tricky_text,
            "context": st.sampled_from(["the cat sat", "", "¹²"]),
            "answers": st.sampled_from(["cat", "the", ""]) | st.lists(st.sampled_from(["cat", "sat", ""]), max_size=2),
            "answer_start": st.sampled_from(["4", "0", "²", "", "x"])
            | st.integers(-2, 12)
            | st.lists(st.integers(-1, 8) | st.sampled_from(["4", "²", ""]), max_size=2),
        },
    ),
    "tagging": (
        {"format": "tagging", "labels": TAGS},
        {
            "tokens": st.lists(short_text, max_size=3) | short_text,
            "tags": st.lists(st.sampled_from(TAGS), max_size=3) | st.sampled_from(["O B-PER", "O", "X"]),
        },
    ),
}
SUFFIXES = (".jsonl", ".csv", ".tsv")


def _definition(spec: dict, suffix: str) -> dict:
    return {
        "name": "fuzz-task",
        "kind": "intermediate",
        **spec,
        "data": {"train": f"train{suffix}", "dev": f"train{suffix}"},
    }


def _table(rows: list[dict], header: list[str], delimiter: str) -> str:
    out = io.StringIO()
    w = csv.writer(out, delimiter=delimiter)
    w.writerow(header)
    for r in rows:
        w.writerow(
            " ".join(v) if isinstance(v, list) and all(isinstance(x, str) for x in v) else str(v)
            for v in (r.get(c, "") for c in header)
        )
    return out.getvalue()


def _load(task_yaml: str | bytes, data: str | bytes | None, suffix: str = ".jsonl") -> None:
    with folder() as d:
        if data is not None:
            write(d / f"train{suffix}", data)

        def run():
            task = load_task_file(write(d / "task.yaml", task_yaml))
            return task.source.load("train", "en")

        clean(run)


@pytest.mark.parametrize("suffix", SUFFIXES)
@FUZZ
@given(data=random_bytes)
def test_user_data_random_bytes(suffix, data):
    _load(yaml.safe_dump(_definition(SPECS["classification"][0], suffix)), data, suffix)


@FUZZ
@given(text=random_bytes)
def test_user_task_yaml_random_bytes(text):
    _load(text, "", ".jsonl")


TOP = ["name", "description", "format", "kind", "metric", "labels", "fields", "data", "languages"]


@FUZZ
@given(doc=st.dictionaries(st.sampled_from(TOP) | short_text, json_values, max_size=6))
def test_user_task_yaml_random_mappings(doc):
    _load(yaml.safe_dump(doc, allow_unicode=True), "", ".jsonl")


@FUZZ
@given(
    which=st.sampled_from(sorted(SPECS)),
    suffix=st.sampled_from(SUFFIXES),
    key=st.sampled_from(TOP),
    value=json_values
    | st.sampled_from(["tagging", "target", "squad_v2", "train.jsonl", "x-{lang}.csv", "{x}.tsv", "none", "{"]),
    sub=st.sampled_from(["fields", "data", "labels", None]),
    sub_key=short_text | st.sampled_from(["text", "label", "id", "choices", "train", "dev", "test"]),
)
def test_user_task_yaml_mutated(which, suffix, key, value, sub, sub_key):
    doc = copy.deepcopy(_definition(SPECS[which][0], suffix))
    if sub is not None and isinstance(doc.get(sub), dict):
        doc[sub][sub_key] = value
    else:
        doc[key] = value
    _load(yaml.safe_dump(doc, allow_unicode=True), "", suffix)


@pytest.mark.parametrize("which", sorted(SPECS))
@FUZZ
@given(data=st.data(), suffix=st.sampled_from(SUFFIXES))
def test_user_data_structured(which, data, suffix):
    spec, columns = SPECS[which]
    rows = data.draw(st.lists(records(columns), max_size=4))
    if suffix == ".jsonl":
        text = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows)
    else:
        header = data.draw(st.permutations(sorted(columns)) | st.lists(st.sampled_from(sorted(columns)) | short_text))
        text = _table(rows, list(header), "\t" if suffix == ".tsv" else ",")
    _load(yaml.safe_dump(_definition(spec, suffix), allow_unicode=True), text, suffix)
