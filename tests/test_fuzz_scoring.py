"""Property-based fuzzing of ``xstilts score``'s readers of prediction and label files: random bytes and random
structurally valid files of every task layout give scores or a one-line UserError, never another exception."""

from __future__ import annotations

import json

import pytest
from fuzz_support import FUZZ, clean, folder, json_values, random_bytes, records, short_text, tricky_text, write
from hypothesis import given
from hypothesis import strategies as st

from xstilts.evaluate.scoring import score_language
from xstilts.metrics.suites import SUITES

TASKS = {  # one task per file layout and metric: (suite, task, language)
    "xnli": ("xtreme", "xnli", "de"),
    "xcopa": ("xtreme-r", "xcopa", "et"),
    "udpos": ("xtreme", "udpos", "de"),
    "bucc2018": ("xtreme", "bucc2018", "de"),
    "xquad": ("xtreme", "xquad", "de"),
    "mlqa": ("xtreme", "mlqa", "zh"),
    "lareqa": ("xtreme-r", "lareqa", "de"),
    "mewslix": ("xtreme-r", "mewslix", "de"),
}


def _score(name: str, pred, gold) -> None:
    suite, task_name, lang = TASKS[name]
    task = SUITES[suite].tasks[task_name]
    with folder() as d:
        p = write(d / "predictions" / f"test-{lang}.{task.ext}", pred)
        g = write(d / "labels" / f"test-{lang}.{task.ext}", gold)
        clean(lambda: score_language(task, lang, p, g))


@pytest.mark.parametrize("name", sorted(TASKS))
@FUZZ
@given(pred=random_bytes, gold=random_bytes)
def test_score_random_bytes(name, pred, gold):
    _score(name, pred, gold)


def lines(line, max_size=6):
    return st.lists(line, max_size=max_size).map("\n".join)


label = st.sampled_from(["entailment", "neutral", "0", "1", ""]) | short_text
tag = st.sampled_from(["O", "B-PER", "I-PER", "NOUN", "", "B-"]) | short_text
pair = st.builds(lambda a, b: f"{a}\t{b}", st.sampled_from(["de-1", "de-2"]), st.sampled_from(["en-1", "en-2"]))
ids = st.sampled_from(["q1", "q2", "q3"])
answer = st.sampled_from(["a", "the b", "", "东京"]) | tricky_text
squad_gold = records(
    {
        "data": st.lists(
            records(
                {
                    "paragraphs": st.lists(
                        records(
                            {
                                "qas": st.lists(
                                    records(
                                        {
                                            "id": ids | json_values,
                                            "answers": st.lists(
                                                records({"text": answer | json_values}), min_size=1, max_size=2
                                            )
                                            | json_values,
                                        }
                                    ),
                                    min_size=1,
                                    max_size=3,
                                )
                            }
                        ),
                        min_size=1,
                        max_size=2,
                    )
                }
            ),
            min_size=1,
            max_size=2,
        )
    }
) | st.lists(json_values, min_size=1, max_size=2)
id_map_str = st.dictionaries(ids, answer | json_values, max_size=3) | json_values
id_map_list = (
    st.dictionaries(
        ids, st.lists(st.sampled_from(["e1", " e2", ""]) | json_values, max_size=3) | json_values, max_size=3
    )
    | json_values
)

DOCS = {
    "xnli": (lines(label), lines(label)),
    "xcopa": (lines(records({"label": json_values}).map(json.dumps) | short_text),) * 2,
    "udpos": (lines(tag, 10), lines(tag, 10)),
    "bucc2018": (lines(pair | short_text), lines(pair | short_text)),
    "xquad": (id_map_str.map(json.dumps), squad_gold.map(json.dumps)),
    "mlqa": (id_map_str.map(json.dumps), squad_gold.map(json.dumps)),
    "lareqa": (id_map_list.map(json.dumps), id_map_list.map(json.dumps)),
    "mewslix": (id_map_list.map(json.dumps), id_map_list.map(json.dumps)),
}


@pytest.mark.parametrize("name", sorted(TASKS))
@FUZZ
@given(data=st.data())
def test_score_structured(name, data):
    pred, gold = (data.draw(s) for s in DOCS[name])
    _score(name, pred, gold)
