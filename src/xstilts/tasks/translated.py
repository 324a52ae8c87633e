"""Machine-translated intermediate data: ``<task>@<lang>`` names the translation of an English task.

Convention: with a data_dir, the translation of task T into language L lies in ``<data_dir>/translated/<L>/``
in T's own official layout (``translated/de/MNLI/train.tsv`` and ``dev_matched.tsv`` for ``mnli@de``) and is
read by T's own reader. The variant keeps T's format, labels, fields, metric and head (so ``mnli+mnli@de``
trains one shared head), trains and is dev-scored in L, and its example ids end in ``@L``. Translations are
supplied by the user: without data_dir every read is refused. Only tasks that train on their own data and
have an official-file reader have variants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from xstilts.data.sources import Source
from xstilts.errors import UserError
from xstilts.tasks.definition import TaskDef

LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z]+)?")


@dataclass(frozen=True)
class Translated:
    """``inner`` (the task's reader of its English layout) serving its splits as language ``language``."""

    task: str
    language: str
    inner: Source
    inner_language: str = "en"

    def _en(self, split: str, language: str) -> str:
        if language != self.language:
            raise UserError(f"{self.task}@{self.language} has no language {language!r}")
        return self.inner_language

    def _call(self, fn, split: str, language: str):
        try:
            return fn(split, self._en(split, language))
        except UserError as e:  # the inner reader speaks of English: name the translation instead
            said, meant = f"language {self.inner_language!r}", f"{self.task} translated into {self.language!r}"
            raise UserError(str(e).replace(said, meant)) from None

    def languages(self) -> tuple[str, ...]:
        return (self.language,)

    def labels(self) -> tuple[str, ...] | None:
        return self.inner.labels()

    def load(self, split: str, language: str) -> list[dict]:
        return [{**ex, "id": f"{ex['id']}@{self.language}"} for ex in self._call(self.inner.load, split, language)]

    def checksum(self, split: str, language: str) -> str:
        return self._call(self.inner.checksum, split, language)

    def describe(self) -> str:
        return f"translated:{self.language}:{self.inner.describe()}"


@dataclass(frozen=True)
class NeedsFiles:
    """The source of a variant without data_dir: translations are never on the hub."""

    task: str
    language: str
    base: TaskDef

    def _refuse(self, *args):
        raise UserError(
            f"{self.task}@{self.language}: translated data are read from files only: set data_dir, "
            f"with {self.task}'s official files translated into {self.language} under "
            f"<data_dir>/translated/{self.language}/"
        )

    load = checksum = _refuse

    def languages(self) -> tuple[str, ...]:
        return (self.language,)

    def labels(self) -> tuple[str, ...] | None:
        return self.base.labels

    def describe(self) -> str:
        return f"translated:{self.language}:(no data_dir)"


def variant(base: TaskDef, lang: str) -> TaskDef | None:
    """The task ``<base>@<lang>``; None unless ``base`` trains on its own data, has an official-file reader, and
    ``lang`` looks like a language code other than its own."""
    if base.local is None or base.train_task or not LANGUAGE.fullmatch(lang) or lang == base.train_language:
        return None
    local = base.local
    return replace(
        base,
        name=f"{base.name}@{lang}",
        train_language=lang,
        head=base.head_name,
        source=NeedsFiles(base.name, lang, base),
        local=lambda root: Translated(base.name, lang, local(Path(root) / "translated" / lang), base.train_language),
    )
