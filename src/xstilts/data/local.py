"""Tasks read from local files in their official layout (as the benchmarks' download scripts leave them)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xstilts.cache import sha256_file
from xstilts.errors import UserError


@dataclass(frozen=True)
class LocalFiles:
    """``path(split, lang)`` names a file under ``root``; ``read(file, split, lang)`` parses it into examples."""

    root: Path
    path: Callable[[str, str], str]
    read: Callable[[Path, str, str], list[dict]]
    langs: tuple[str, ...]
    label_set: tuple[str, ...] | None = None

    def file(self, split: str, language: str) -> Path:
        """The file of ``split`` and ``language``; a UserError naming it when it is missing."""
        file = Path(self.root) / self.path(split, language)
        if not file.is_file():
            raise UserError(f"{file}: missing data file ({split} split, language {language!r})")
        return file

    def languages(self) -> tuple[str, ...]:
        return self.langs

    def labels(self) -> tuple[str, ...] | None:
        return self.label_set

    def load(self, split: str, language: str) -> list[dict]:
        return self.read(self.file(split, language), split, language)

    def checksum(self, split: str, language: str) -> str:
        return sha256_file(self.file(split, language))

    def describe(self) -> str:
        return f"local:{self.root}"
