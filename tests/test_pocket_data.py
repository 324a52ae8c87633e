"""The pocket suite built from the real chatterbot-corpus and Django packages."""

from __future__ import annotations

import itertools
import json
import re
import time
from collections import Counter
from importlib import metadata, resources

import pytest
import yaml

from xstilts.cache import sha256_file
from xstilts.data import pocket
from xstilts.data.files import read_jsonl
from xstilts.data.pocket import POCKET_TASKS, build_pocket, pocket_root, read_meta
from xstilts.errors import UserError

pytest.importorskip("chatterbot_corpus")
pytest.importorskip("django")
pytest.importorskip("polib")


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XSTILTS_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield build_pocket()


def _english_corpus() -> dict[str, list[list]]:
    """category file name -> conversations, read independently of the module under test."""
    root = resources.files("chatterbot_corpus") / "data" / "english"
    return {
        p.name[:-4]: yaml.safe_load(p.read_text(encoding="utf-8"))["conversations"]
        for p in root.iterdir()
        if p.name.endswith(".yml")
    }


def _norm(text: str) -> str:
    return " ".join(text.split())


def test_layout(dirs):
    assert tuple(dirs) == POCKET_TASKS
    for task, d in dirs.items():
        assert d == pocket_root() / task
        meta = read_meta(d)
        assert meta["name"] == task and meta["languages"] == sorted(meta["languages"], key=lambda x: (x != "en", x))


def test_topic_languages_and_labels(dirs):
    meta = read_meta(dirs["pocket-topic"])
    assert (meta["format"], meta["kind"]) == ("classification", "target")
    assert meta["labels"] == sorted(_english_corpus())
    others = [lang for lang in meta["languages"] if lang != "en"]
    assert len(others) >= 15 and {"de", "fa", "zh", "zh-Hant", "pt"} <= set(others)
    for lang in others:
        records = read_jsonl(dirs["pocket-topic"] / f"test-{lang}.jsonl")
        assert len(records) >= 100 and {r["label"] for r in records} <= set(meta["labels"])
    # italian/greetings.yml says "categories: [saluti]"; the label still comes from the file name
    italian = resources.files("chatterbot_corpus") / "data" / "italian" / "greetings.yml"
    assert yaml.safe_load(italian.read_text(encoding="utf-8"))["categories"] != ["greetings"]
    assert "greetings" in {r["label"] for r in read_jsonl(dirs["pocket-topic"] / "test-it.jsonl")}


def test_topic_english_splits_disjoint(dirs):
    texts = {
        s: [r["text"] for r in read_jsonl(dirs["pocket-topic"] / f"{s}-en.jsonl")] for s in ("train", "dev", "test")
    }
    sets = {s: set(t) for s, t in texts.items()}
    assert all(len(texts[s]) == len(sets[s]) for s in texts)
    assert not (sets["train"] & sets["dev"] or sets["train"] & sets["test"] or sets["dev"] & sets["test"])
    assert len(texts["train"]) > 6 * len(texts["test"]) > 0 and len(texts["dev"]) > 0


def test_retrieval(dirs):
    meta = read_meta(dirs["pocket-retrieval"])
    assert meta["source"]["package"] == "Django" and "labels" not in meta
    assert len(meta["languages"]) >= 50 and not any(lang.startswith("en") for lang in meta["languages"])
    assert {"pt-BR", "zh-Hant", "sr-Latn", "de"} <= set(meta["languages"])
    assert set(meta["sizes"]) == {f"test-{lang}" for lang in meta["languages"]}
    placeholder = re.compile(r"%\(\w+\)\w|%\w|\{\w*\}|<[^>]+>")
    for lang in meta["languages"]:
        records = read_jsonl(dirs["pocket-retrieval"] / f"test-{lang}.jsonl")
        assert len(records) >= 100
        assert len({r["target"] for r in records}) == len({r["source"] for r in records}) == len(records)
        for r in records:
            assert len(re.findall(r"[^\W\d_]+", placeholder.sub(" ", r["target"]))) >= 3, r
            assert r["source"] and r["source"] != r["target"]


def test_answer(dirs):
    meta = read_meta(dirs["pocket-answer"])
    assert (meta["format"], meta["kind"], meta["languages"]) == ("multiple_choice", "intermediate", ["en"])
    true_pairs = {
        (_norm(q), _norm(a))
        for convs in _english_corpus().values()
        for c in convs
        if isinstance(c, list)
        for q, a in itertools.pairwise(c)
        if isinstance(q, str) and isinstance(a, str)
    }
    splits = {s: read_jsonl(dirs["pocket-answer"] / f"{s}-en.jsonl") for s in ("train", "dev")}
    for records in splits.values():
        assert records
        for r in records:
            assert len(r["choices"]) == 4 == len(set(r["choices"])) and 0 <= r["label"] < 4
            assert (r["question"], r["choices"][r["label"]]) in true_pairs
    assert Counter(r["label"] for r in splits["train"]).keys() == {0, 1, 2, 3}
    assert not {r["question"] for r in splits["train"]} & {r["question"] for r in splits["dev"]}


def test_sametopic(dirs):
    meta = read_meta(dirs["pocket-sametopic"])
    assert meta["labels"] == ["different", "same"] and meta["languages"] == ["en"]
    category = {}
    for cat, convs in _english_corpus().items():
        for c in convs:
            for u in c if isinstance(c, list) else []:
                category.setdefault(_norm(u), set()).add(cat)
    used = {}
    for split in ("train", "dev"):
        records = read_jsonl(dirs["pocket-sametopic"] / f"{split}-en.jsonl")
        counts = Counter(r["label"] for r in records)
        assert counts["same"] == counts["different"] == len(records) // 2 > 0
        for r in records:
            a, b = category[r["text_a"]], category[r["text_b"]]
            assert len(a) == len(b) == 1 and r["label"] == ("same" if a == b else "different")
        used[split] = {r[k] for r in records for k in ("text_a", "text_b")}
    assert not used["train"] & used["dev"]
    assert meta["sizes"] == {"dev-en": 500, "train-en": 4000}
    topic_test = {r["text"] for s in ("dev", "test") for r in read_jsonl(dirs["pocket-topic"] / f"{s}-en.jsonl")}
    assert not (used["train"] | used["dev"]) & topic_test


def test_meta_matches_files(dirs):
    versions = {"chatterbot-corpus": metadata.version("chatterbot-corpus"), "Django": metadata.version("django")}
    for d in dirs.values():
        meta = read_meta(d)
        assert meta["source"]["version"] == versions[meta["source"]["package"]]
        assert meta["seed"] == 13 and meta["built_with"].startswith("xstilts ")
        files = sorted(p.name for p in d.glob("*.jsonl"))
        assert files == sorted(meta["sha256"]) == sorted(f"{k}.jsonl" for k in meta["sizes"])
        for key, n in meta["sizes"].items():
            split, lang = key.split("-", 1)
            records = read_jsonl(d / f"{split}-{lang}.jsonl")
            assert len(records) == n and len({r["id"] for r in records}) == n
            assert all(isinstance(r["id"], str) for r in records)
            assert sha256_file(d / f"{key}.jsonl") == meta["sha256"][f"{key}.jsonl"]


def test_second_build_is_fast_and_untouched(dirs):
    mtimes = {p: p.stat().st_mtime_ns for d in dirs.values() for p in d.iterdir()}
    start = time.perf_counter()
    assert build_pocket() == dirs
    assert time.perf_counter() - start < 1.0
    assert {p: p.stat().st_mtime_ns for d in dirs.values() for p in d.iterdir()} == mtimes


def test_force_rebuild_is_byte_identical(dirs):
    before = {t: read_meta(d) for t, d in dirs.items()}
    mtime = (dirs["pocket-topic"] / "meta.json").stat().st_mtime_ns
    build_pocket(force=True)
    assert (dirs["pocket-topic"] / "meta.json").stat().st_mtime_ns != mtime
    assert {t: read_meta(d) for t, d in dirs.items()} == before


def test_stale_meta_is_rebuilt(dirs):
    path = dirs["pocket-answer"] / "meta.json"
    meta = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(meta | {"source": {"package": "chatterbot-corpus", "version": "0"}}), encoding="utf-8")
    build_pocket()
    assert read_meta(dirs["pocket-answer"]) == meta


def test_bad_input_is_a_user_error(tmp_path):
    (tmp_path / "test-en.jsonl").write_text('{"id": "a"}\nnot json\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"test-en\.jsonl:2: invalid JSON"):
        read_jsonl(tmp_path / "test-en.jsonl")
    with pytest.raises(UserError, match="dev-en.jsonl"):
        read_jsonl(tmp_path / "dev-en.jsonl")
    with pytest.raises(UserError, match="meta.json"):
        read_meta(tmp_path)
    (tmp_path / "data" / "english").mkdir(parents=True)
    (tmp_path / "data" / "english" / "food.yml").write_text("conversations:\n- - a\n  - [b\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"food\.yml:\d+: invalid YAML"):
        pocket.read_conversations(tmp_path)
