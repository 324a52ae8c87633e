"""Masked-LM intermediate tasks: the built-in offline ``mlm-pocket`` corpus, and corpora of one's own.

``mlm-pocket`` is the non-English text of the pocket suite: the chatterbot utterances of every non-English
pocket-topic test language and the non-English sides of pocket-retrieval. Note that these are the very
sentences the pocket target tasks are tested on (unlabelled, but the same inputs). A corpus of your own:
``register_mlm_task("mlm-wiki", {"de": "de.txt", "sw": "sw.txt"})`` (one sentence per line); user task
YAML files will take such corpora once the config accepts new task types.
"""

from __future__ import annotations

import json
from collections import defaultdict
from functools import cached_property
from pathlib import Path

from xstilts.cache import atomic_dir, atomic_write_json, cache_dir
from xstilts.data.files import read_jsonl
from xstilts.data.raw_text import RawTextSource
from xstilts.tasks.registry import TaskDef, register

POCKET_FIELDS = {"pocket-topic": "text", "pocket-retrieval": "source"}  # dataset -> its non-English text field


def pocket_corpus() -> dict[str, Path]:
    """Language -> ``<cache>/data/mlm-pocket/<lang>.txt`` (unique lines in file order), rewritten atomically
    whenever the pocket datasets it comes from change."""
    from xstilts.data.pocket import build_pocket, read_meta

    dirs = build_pocket()
    metas = {name: read_meta(dirs[name]) for name in POCKET_FIELDS}
    stamp = {name: meta["sha256"] for name, meta in metas.items()}
    root = cache_dir() / "data" / "mlm-pocket"
    try:
        current = json.loads((root / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        current = {}
    if current.get("pocket") != stamp:
        lines: dict[str, dict[str, None]] = defaultdict(dict)  # ordered sets
        for name, field in POCKET_FIELDS.items():
            for lang in metas[name]["languages"]:
                if lang != "en" and f"test-{lang}" in metas[name]["sizes"]:
                    lines[lang].update((ex[field], None) for ex in read_jsonl(dirs[name] / f"test-{lang}.jsonl"))
        with atomic_dir(root) as tmp:
            for lang, texts in sorted(lines.items()):
                (tmp / f"{lang}.txt").write_text("".join(t + "\n" for t in texts), encoding="utf-8", newline="\n")
            current = {"pocket": stamp, "languages": sorted(lines)}
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


def register_mlm_task(name: str, files: dict[str, str | Path], dev_fraction: float = 0.05) -> TaskDef:
    """Register ``mlm_task(name, files)`` so experiment configs can name it in intermediate settings."""
    return register(mlm_task(name, files, dev_fraction))


register(TaskDef("mlm-pocket", "mlm", "intermediate", "accuracy", PocketTextSource()))
