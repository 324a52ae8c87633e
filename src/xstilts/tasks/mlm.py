"""Masked-LM intermediate tasks: the built-in offline ``mlm-pocket`` corpus, and corpora of one's own.

``mlm-pocket`` is the non-English text the pocket builders leave out, so it is disjoint from every pocket
test set: the translations (msgstr) of the Django catalog entries that pocket-retrieval does not use (fewer
than 3 English words, duplicates, plural forms, locales below its 100-pair threshold; English locales and
translations identical to their English are skipped), plus the chatterbot-corpus utterances of the
languages that are not pocket-topic test languages (below its 100-utterance threshold). Any line equal,
after whitespace normalisation, to a text of a pocket test split (topic test texts, retrieval test sources
and targets) is then dropped. A corpus of your own: ``catalog.with_tasks(mlm_task("mlm-wiki", {"de": "de.txt",
"sw": "sw.txt"}))`` (one sentence per line); user task YAML files will take such corpora once the config
accepts new task types.
"""

from __future__ import annotations

import json
from collections import defaultdict
from functools import cached_property
from pathlib import Path

from xstilts.cache import atomic_dir, atomic_write_json, cache_dir
from xstilts.data.files import read_jsonl
from xstilts.data.raw_text import RawTextSource
from xstilts.tasks.definition import TaskDef

RECIPE = 2  # bump when the corpus recipe changes, so cached corpora are rebuilt
TEST_FIELDS = {"pocket-topic": ("text",), "pocket-retrieval": ("source", "target")}  # texts to keep out


def _norm(text: str) -> str:
    return " ".join(text.split())


def pocket_test_texts(dirs: dict[str, Path], metas: dict[str, dict]) -> set[str]:
    """Every text of every pocket test split, whitespace-normalised."""
    out = set()
    for name, fields in TEST_FIELDS.items():
        for key in metas[name]["sizes"]:
            if key.startswith("test-"):
                out.update(_norm(ex[f]) for ex in read_jsonl(dirs[name] / f"{key}.jsonl") for f in fields)
    return out


def _leftover_text(topic_languages: set[str]) -> dict[str, dict[str, None]]:
    """Language -> ordered set of the non-English text the pocket builders leave out."""
    from xstilts.data import pocket

    lines: dict[str, dict[str, None]] = defaultdict(dict)
    django, _ = pocket.installed_package(*pocket.DJANGO)
    for lang, msgid, msgstr, used in pocket.catalog_entries(django):
        text = pocket.clean_text(msgstr)
        if not used and text and text != pocket.clean_text(msgid):
            lines[lang][text] = None
    chatter, _ = pocket.installed_package(*pocket.CHATTER)
    for lang, categories in pocket.read_conversations(chatter).items():
        if lang != "en" and lang not in topic_languages:
            lines[lang].update((u, None) for convs in categories.values() for conv in convs for u in conv if u)
    return lines


def pocket_corpus() -> dict[str, Path]:
    """Language -> ``<cache>/data/mlm-pocket/<lang>.txt`` (unique lines in file order), rewritten atomically
    whenever the pocket datasets or the packages it comes from change."""
    from xstilts.data.pocket import POCKET_TASKS, build_pocket, read_meta

    dirs = build_pocket()
    metas = {name: read_meta(dirs[name]) for name in POCKET_TASKS}
    stamp = {"recipe": RECIPE, **{name: [meta["sha256"], meta.get("source")] for name, meta in metas.items()}}
    root = cache_dir() / "data" / "mlm-pocket"
    try:
        current = json.loads((root / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        current = {}
    if current.get("pocket") != stamp:
        banned = pocket_test_texts(dirs, metas)
        lines = _leftover_text(set(metas["pocket-topic"]["languages"]))
        kept = {lang: [t for t in texts if t not in banned] for lang, texts in sorted(lines.items())}
        kept = {lang: texts for lang, texts in kept.items() if texts}
        with atomic_dir(root) as tmp:
            for lang, texts in kept.items():
                (tmp / f"{lang}.txt").write_text("".join(t + "\n" for t in texts), encoding="utf-8", newline="\n")
            current = {"pocket": stamp, "languages": sorted(kept), "lines": {k: len(v) for k, v in kept.items()}}
            atomic_write_json(tmp / "meta.json", current)
    return {lang: root / f"{lang}.txt" for lang in current["languages"]}


class PocketTextSource:
    """A RawTextSource over ``pocket_corpus()``, built on first use."""

    @cached_property
    def raw(self) -> RawTextSource:
        return RawTextSource(pocket_corpus())

    def languages(self) -> tuple[str, ...]:
        return self.raw.languages()

    def labels(self) -> tuple[str, ...] | None:
        return None

    def load(self, split: str, language: str) -> list[dict]:
        return self.raw.load(split, language)

    def checksum(self, split: str, language: str) -> str:
        return self.raw.checksum(split, language)

    def describe(self) -> str:
        return "pocket:mlm"


def mlm_task(name: str, files: dict[str, str | Path], dev_fraction: float = 0.05) -> TaskDef:
    """An intermediate masked-LM task over raw text files (language -> path), scored by masked-token accuracy."""
    return TaskDef(name, "mlm", "intermediate", "accuracy", RawTextSource(files, dev_fraction))


TASKS = (TaskDef("mlm-pocket", "mlm", "intermediate", "accuracy", PocketTextSource()),)
