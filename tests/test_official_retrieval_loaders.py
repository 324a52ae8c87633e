"""Official-format readers of tatoeba, bucc2018, lareqa, mewslix, xcopa, copa and siqa, on tiny fixtures."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from xstilts.data import official_retrieval as o
from xstilts.data.items import ITEM
from xstilts.errors import UserError
from xstilts.tasks.catalog import TaskCatalog

CATALOG = TaskCatalog.builtin()

ROOT = Path(__file__).parent / "fixtures" / "official_retrieval"
Q1, Q2, Q3 = "56beb4343aeaaa14008c925b", "56beb4343aeaaa14008c925f", "56d20650e7d4791d00902614"


@pytest.fixture
def copy(tmp_path) -> Path:
    """A writable copy of the fixtures."""
    shutil.copytree(ROOT, tmp_path / "data")
    return tmp_path / "data"


def _error(fn, *args) -> str:
    with pytest.raises(UserError) as e:
        fn(*args)
    message = str(e.value)
    assert "\n" not in message
    return message


def _ids_unique(records):
    assert len({r["id"] for r in records}) == len(records)


# ---------------------------------------------------------------- tatoeba


def test_tatoeba_pairs_line_i_with_line_i():
    records = o.tatoeba_files(ROOT).load("test", "zh")
    assert records == [
        {"id": "zh-0", "source": "我饿了。", "target": "I'm hungry.", ITEM: "I'm hungry."},
        {
            "id": "zh-1",
            "source": "火车站在哪里？",
            "target": "Where is the train station?",
            ITEM: "Where is the train station?",
        },
        {
            "id": "zh-2",
            "source": "今天天气很好。",
            "target": "The weather is nice today.",
            ITEM: "The weather is nice today.",
        },
    ]


def test_tatoeba_through_the_catalog():
    task = CATALOG.get("tatoeba", data_dir=ROOT)
    records = task.source.load("test", "de")
    assert records[0] == {"id": "de-0", "source": "Ich habe Hunger.", "target": "I'm hungry.", ITEM: "I'm hungry."}
    assert records[2]["source"] == "Das Wetter ist heute schön."
    _ids_unique(records)
    assert (task.format.name, task.kind, task.metric, task.fields) == (
        "retrieval",
        "target",
        "accuracy",
        ("target", "source"),
    )  # English queries, as the official evaluation
    assert len(task.languages) == 41 and {"az", "lt", "pl", "uk", "ro"} <= set(task.languages)
    assert len(CATALOG.get("tatoeba").languages) == 36  # the hub has XTREME's languages only


def test_tatoeba_errors_name_the_file(copy):
    source = CATALOG.get("tatoeba", data_dir=copy).source
    assert "tatoeba/v1/tatoeba.rus-eng.rus: missing data file" in _error(source.load, "test", "ru")
    assert "tatoeba has no dev split" in _error(source.load, "dev", "de")
    (copy / "tatoeba/v1/tatoeba.deu-eng.eng").write_text("I'm hungry.\n", encoding="utf-8")
    assert _error(source.load, "test", "de").endswith(
        "tatoeba.deu-eng.eng: 1 lines, but tatoeba.deu-eng.deu has 3 (the files are line-aligned)"
    )


def test_tatoeba_checksum_covers_the_english_file(copy):
    source = o.tatoeba_files(copy)
    before = source.checksum("test", "de")
    (copy / "tatoeba/v1/tatoeba.deu-eng.eng").write_text("a\nb\nc\n", encoding="utf-8")
    assert source.checksum("test", "de") != before


# ---------------------------------------------------------------- bucc2018


def test_bucc_dev_sentences_and_gold():
    records = o.bucc_files(ROOT).load("dev", "de")
    assert records[:3] == [
        {
            "id": "de-000000001",
            "side": "src",
            "text": "Der Vertrag wurde im Jahr 2010 unterzeichnet.",
            "gold": ["en-000000003"],
        },
        {"id": "de-000000002", "side": "src", "text": "Die Stadt liegt am Ufer der Donau.", "gold": ["en-000000001"]},
        {"id": "de-000000003", "side": "src", "text": "Über 300 Vogelarten wurden gezählt.", "gold": []},
    ]
    assert records[3:] == [
        {"id": "en-000000001", "side": "en", "text": "The city lies on the banks of the Danube."},
        {"id": "en-000000002", "side": "en", "text": "The weather was cold that winter."},
        {"id": "en-000000003", "side": "en", "text": "The treaty was signed in 2010."},
    ]
    _ids_unique(records)
    assert o.bucc_gold_pairs(records) == {("de-000000001", "en-000000003"), ("de-000000002", "en-000000001")}
    zh = CATALOG.get("bucc2018", data_dir=ROOT).source.load("dev", "zh")
    assert zh[0]["text"] == "该条约于2010年签署。"
    assert o.bucc_gold_pairs(zh) == {("zh-000000001", "en-000000001")}


def test_bucc_test_without_gold_file_is_unscored():
    records = o.bucc_files(ROOT).load("test", "de")
    assert [r["id"] for r in records] == ["de-000000101", "de-000000102", "en-000000101", "en-000000102"]
    assert all(r["gold"] is None for r in records if r["side"] == "src")
    assert o.bucc_gold_pairs(records) is None


def test_bucc_errors_name_file_and_line(copy):
    source = o.bucc_files(copy)
    gold = copy / "bucc2018/de-en.dev.gold"
    gold.write_text("de-000000001\ten-000000003\nde-000000002\ten-000000009\n", encoding="utf-8")
    assert _error(source.load, "dev", "de").endswith("de-en.dev.gold:2: 'en-000000009' is not an id of de-en.dev.en")
    gold.write_text("de-000000001 en-000000003\n", encoding="utf-8")
    assert _error(source.load, "dev", "de").endswith("de-en.dev.gold:1: expected '<de id><TAB><en id>'")
    (copy / "bucc2018/de-en.dev.de").write_text("de-000000001\tEins.\nde-000000002 Zwei.\n", encoding="utf-8")
    assert _error(source.load, "dev", "de").endswith("de-en.dev.de:2: expected '<id><TAB><sentence>'")
    assert "bucc2018/fr-en.dev.fr: missing data file" in _error(source.load, "dev", "fr")


# ---------------------------------------------------------------- lareqa


def test_lareqa_queries_relevant_across_languages_and_pool():
    source = o.lareqa_files(ROOT, ("de", "el", "zh"))
    queries = source.load("test", "el")
    assert queries[0] == {
        "id": f"{Q1}_el",
        "kind": "query",
        "lang": "el",
        "text": "Πόσους πόντους δέχτηκε η άμυνα των Panthers;",
        "relevant": ["de_1_0", "el_1_0", "zh_1_0"],
    }
    assert [(q["id"], q["relevant"]) for q in queries[1:]] == [
        (f"{Q2}_el", ["de_1_1", "el_1_1", "zh_1_1"]),
        (f"{Q3}_el", ["de_2_0", "el_2_0", "zh_2_0"]),
    ]
    pool = source.candidates("test")
    assert [c["id"] for c in pool] == [
        f"{lang}_{p}_{s}" for lang in ("de", "el", "zh") for p, s in ((1, 0), (1, 1), (2, 0))
    ]
    _ids_unique(pool)
    assert pool[7] == {
        "id": "zh_1_1",
        "kind": "candidate",
        "lang": "zh",
        "text": "Kawann Short以11次擒杀领跑全队。",
        "context": "黑豹队的防守只丢了308分。Kawann Short以11次擒杀领跑全队。",
    }


def test_lareqa_drops_a_question_outside_every_sentence(copy):
    path = copy / "lareqa/xquad-r/zh.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    doc["data"][1]["paragraphs"][0]["sentence_breaks"] = [[0, 5]]  # Lady Gaga's answer starts at 0: kept
    doc["data"][1]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = 9  # now outside [0, 5)
    path.write_text(json.dumps(doc), encoding="utf-8")
    source = o.lareqa_files(copy, ("de", "el", "zh"))
    assert [q["id"] for q in source.load("test", "zh")] == [f"{Q1}_zh", f"{Q2}_zh"]
    assert source.load("test", "de")[2]["relevant"] == ["de_2_0", "el_2_0"]
    assert "zh_2_0" not in {c["id"] for c in source.candidates("test")}


def test_lareqa_needs_all_eleven_files_and_valid_json(copy):
    assert "lareqa/xquad-r/ar.json: missing data file" in _error(
        CATALOG.get("lareqa", data_dir=ROOT).source.load, "test", "de"
    )
    (copy / "lareqa/xquad-r/el.json").write_text('{"data": [\n{"paragraphs": ]}', encoding="utf-8")
    assert "el.json:2: invalid JSON" in _error(o.lareqa_files(copy, ("de", "el", "zh")).load, "test", "de")


# ---------------------------------------------------------------- mewslix


def test_mewslix_queries_per_language_and_entity_pool():
    source = CATALOG.get("mewslix", data_dir=ROOT).source
    assert source.load("test", "de") == [
        {
            "id": "de-000230-0",
            "kind": "query",
            "lang": "de",
            "text": "Paris: Die Delegation reiste am Montag nach { Paris } .",
            "relevant": ["Q90"],
        },
        {
            "id": "de-000230-1",
            "kind": "query",
            "lang": "de",
            "text": "Deutschland: Dort traf sie Vertreter aus { Deutschland } (und Frankreich).",
            "relevant": ["Q183"],
        },
    ]
    assert source.load("test", "ar")[0]["text"] == "برلين: وصل الوفد إلى { برلين } يوم الاثنين."
    assert source.load("test", "ja")[0]["text"] == "東京: 2020年7月1日 { 東京 } 都は新たに67人の感染を確認した。"
    assert [q["id"] for q in source.load("dev", "de")] == ["de-000007-0"]
    pool = source.candidates("test")
    assert [(c["id"], c["lang"]) for c in pool] == [("Q64", "de"), ("Q90", "en"), ("Q183", "ar"), ("Q1490", "ja")]
    assert pool[3] == {
        "id": "Q1490",
        "kind": "candidate",
        "lang": "ja",
        "text": "東京都は、日本の首都である。 関東地方に位置する。",
    }


def test_mewslix_errors_name_file_and_line(copy):
    source = o.mewslix_files(copy)
    assert "no mentions in language 'fa'" in _error(source.load, "test", "fa")
    path = copy / "mewslix/wikinews_mentions-test.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    doc = json.loads(lines[1])
    doc["mentions"][0]["mention_span"]["start"] += 1
    path.write_text("\n".join([lines[0], json.dumps(doc), lines[2]]) + "\n", encoding="utf-8")
    assert "wikinews_mentions-test.jsonl:2: mention 'Paris' is not the text at" in _error(source.load, "test", "de")
    doc["context"]["text"] = ""
    path.write_text("\n".join([lines[0], json.dumps(doc)]) + "\n", encoding="utf-8")
    assert "wikinews_mentions-test.jsonl:2: the article text is empty" in _error(source.load, "test", "de")
    path.write_text(lines[0] + "\n{not json\n", encoding="utf-8")
    assert "wikinews_mentions-test.jsonl:2: invalid JSON" in _error(source.load, "test", "de")
    path.write_bytes(lines[0].encode() + b"\n\xff\n")
    assert "wikinews_mentions-test.jsonl:2: not UTF-8" in _error(source.load, "test", "de")
    (copy / "mewslix/candidate_set_entities.jsonl").unlink()
    assert "mewslix/candidate_set_entities.jsonl: missing data file" in _error(source.candidates, "test")


# ---------------------------------------------------------------- xcopa, copa, siqa


def test_xcopa_reads_xtreme_and_clone_layouts():
    task = CATALOG.get("xcopa", data_dir=ROOT)
    assert task.source.load("dev", "zh") == [
        {
            "id": "zh-0",
            "question": "那人打开水龙头。 What was the effect?",
            "choices": ["厕所里满是水。", "水从水龙头喷口流出。"],
            "label": 1,
            ITEM: "0",
        },
        {
            "id": "zh-4",
            "question": "汉堡肉变成焦褐色了。 What was the cause?",
            "choices": ["厨师把它冷冻了。", "厨师把它烤了。"],
            "label": 1,
            ITEM: "4",
        },
    ]
    assert task.source.load("test", "th") == [
        {
            "id": "th-7",
            "question": "ดวงตาของฉันแดงและบวม What was the cause?",
            "choices": ["ฉันร้องไห้", "ฉันหัวเราะ"],
            "label": 0,
            ITEM: "7",
        }
    ]
    assert (task.format.name, task.metric, task.fields, task.train_task) == (
        "multiple_choice",
        "accuracy",
        ("question", "choices"),
        "copa",
    )
    assert CATALOG.training_source(task, ROOT).load("dev", "en") == [
        {
            "id": "en-0",
            "question": "The man turned on the faucet. What was the effect?",
            "choices": ["The toilet filled with water.", "Water flowed from the spout."],
            "label": 1,
            ITEM: "0",
        }
    ]


def test_copa_and_siqa_english_training_data(copy):
    copa = CATALOG.get("copa", data_dir=ROOT)
    assert copa.kind == "intermediate"
    assert [r["id"] for r in copa.source.load("train", "en")] == ["en-0", "en-1"]
    siqa = CATALOG.get("siqa", data_dir=ROOT).source
    assert siqa.load("train", "en")[0] == {
        "id": "en-0",
        "question": "Cameron decided to have a barbecue and gathered her friends together. "
        "How would Others feel as a result?",
        "choices": ["like attending", "like staying home", "a good friend to have"],
        "label": 0,
    }
    assert [r["label"] for r in siqa.load("train", "en")] == [0, 1]
    assert siqa.load("dev", "en")[0]["label"] == 2
    assert "siqa has no language 'de' (it has en)" in _error(siqa.load, "dev", "de")
    # AI2's leaderboard layout: questions and a labels file
    shutil.rmtree(copy / "siqa")
    (copy / "socialiqa-train-dev").mkdir()
    rows = [l for l in (ROOT / "siqa/socialIQa_v1.4_trn.jsonl").read_text(encoding="utf-8").splitlines()]
    (copy / "socialiqa-train-dev/train.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (copy / "socialiqa-train-dev/train-labels.lst").write_text("1\n2\n", encoding="utf-8")
    assert o.siqa_files(copy).load("train", "en") == siqa.load("train", "en")
    (copy / "socialiqa-train-dev/train-labels.lst").write_text("1\n4\n", encoding="utf-8")
    assert _error(o.siqa_files(copy).load, "train", "en").endswith("train-labels.lst:2: label '4' is not 1, 2 or 3")


def test_copa_errors_name_file_and_line(copy):
    path = copy / "xcopa/test.zh.jsonl"
    rows = path.read_text(encoding="utf-8").splitlines()
    path.write_text(rows[0] + "\n" + rows[1].replace('"label": 0', '"label": 2') + "\n", encoding="utf-8")
    assert _error(o.xcopa_files(copy).load, "test", "zh").endswith("test.zh.jsonl:2: label is 2, not 0 or 1")
    path.write_text(rows[0] + "\n" + rows[0] + "\n", encoding="utf-8")
    assert _error(o.xcopa_files(copy).load, "test", "zh").endswith("test.zh.jsonl:2: idx 0 appears twice")
    path.write_text(rows[0].replace('"label": 0', '"label": false') + "\n", encoding="utf-8")
    assert _error(o.xcopa_files(copy).load, "test", "zh").endswith(
        "test.zh.jsonl:1: expected 'label' to be int, found bool"
    )
    path.write_text(rows[0].replace('"premise"', '"premiss"') + "\n", encoding="utf-8")
    assert _error(o.xcopa_files(copy).load, "test", "zh").endswith(
        "test.zh.jsonl:1: expected 'premise' to be str, found NoneType"
    )


# ---------------------------------------------------------------- hub naming (no network)


def test_hub_configs_splits_and_conversions():
    tatoeba = CATALOG.get("tatoeba").source
    assert (tatoeba.dataset, tatoeba.config("test", "zh"), tatoeba.split_name("test", "zh")) == (
        "google/xtreme",
        "tatoeba.cmn",
        "validation",
    )
    assert tatoeba.config("test", "fa") == "tatoeba.pes" and tatoeba.config("test", "sw") == "tatoeba.swh"
    assert tatoeba.convert(
        {
            "source_sentence": "Ich habe Hunger.\n",
            "target_sentence": "I'm hungry.\n",
            "source_lang": "deu",
            "target_lang": "eng",
        },
        "de",
    ) == {"source": "Ich habe Hunger.", "target": "I'm hungry.", ITEM: "I'm hungry."}
    xcopa = CATALOG.get("xcopa").source
    assert (xcopa.dataset, xcopa.config("dev", "qu")) == ("cambridgeltl/xcopa", "qu")
    assert (xcopa.split_name("dev", "qu"), xcopa.split_name("test", "qu")) == ("validation", "test")
    row = {
        "premise": "那人打开水龙头。",
        "choice1": "厕所里满是水。",
        "choice2": "水从水龙头喷口流出。",
        "question": "effect",
        "label": 1,
        "idx": 0,
        "changed": False,
    }
    assert xcopa.convert(row, "zh") == o.xcopa_files(ROOT).load("dev", "zh")[0]
    copa = CATALOG.get("copa").source
    assert (copa.dataset, copa.config("train", "en"), copa.split_name("dev", "en")) == (
        "aps/super_glue",
        "copa",
        "validation",
    )
    siqa = CATALOG.get("siqa").source
    assert (siqa.dataset, siqa.config("train", "en"), siqa.split_name("dev", "en")) == (
        "allenai/social_i_qa",
        None,
        "validation",
    )
    assert siqa.convert(
        {
            "context": "Cameron decided to have a barbecue and gathered her friends together.",
            "question": "How would Others feel as a result?",
            "answerA": "like attending",
            "answerB": "like staying home",
            "answerC": "a good friend to have",
            "label": "1",
        },
        "en",
    ) == {k: v for k, v in o.siqa_files(ROOT).load("train", "en")[0].items() if k != "id"}
    assert "xcopa has no train split" in _error(xcopa.split_name, "train", "zh")


def test_numbered_hub_gives_row_ids(monkeypatch):
    import datasets

    rows = [
        {"source_sentence": "我饿了。\n", "target_sentence": "I'm hungry.\n"},
        {"source_sentence": "火车站在哪里？\n", "target_sentence": "Where is the train station?\n"},
    ]
    calls = []
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: calls.append((a, k)) or rows)
    records = CATALOG.get("tatoeba").source.load("test", "zh")
    assert calls == [(("google/xtreme", "tatoeba.cmn"), {"split": "validation", "revision": None})]
    assert records == o.tatoeba_files(ROOT).load("test", "zh")[:2]


def test_bucc_lareqa_mewslix_need_data_dir():
    for name in ("bucc2018", "lareqa", "mewslix"):
        source = CATALOG.get(name).source
        assert source.languages() == CATALOG.get(name, data_dir=ROOT).languages
        assert "set data_dir to the official files" in _error(source.load, "test", "de")
        assert name in _error(source.checksum, "test", "de")
    assert CATALOG.get("lareqa").metric == CATALOG.get("mewslix").metric == "map@20"
    assert CATALOG.get("bucc2018").format.name == "bucc" and CATALOG.get("mewslix").format.name == "answer_retrieval"
