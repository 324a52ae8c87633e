"""Raw multilingual text (one sentence per line, UTF-8) as the source of a masked-LM task."""

from __future__ import annotations

import hashlib
from pathlib import Path

from xstilts.cache import sha256_file
from xstilts.data.files import utf8_lines
from xstilts.errors import UserError


class RawTextSource:
    """``files`` maps language codes to text files; blank lines are skipped.

    Training mixes every language: ``load("train", lang)`` and ``load("dev", lang)`` return all languages'
    lines whatever ``lang`` is (the loop asks for the task's training language, "en", by convention). Dev is
    a fixed held-out share: every ``round(1 / dev_fraction)``-th line of each file (every 20th by default).
    Example ids are ``<lang>-<line number>``.
    """

    def __init__(self, files: dict[str, str | Path], dev_fraction: float = 0.05):
        if not files:
            raise UserError("a raw-text corpus needs at least one file")
        if not 0 < dev_fraction < 1:
            raise UserError(f"dev_fraction must lie in (0, 1), got {dev_fraction}")
        self.files = {lang: Path(path) for lang, path in sorted(files.items())}
        self.period = max(2, round(1 / dev_fraction))

    def _file(self, lang: str) -> Path:
        path = self.files[lang]
        if not path.is_file():
            raise UserError(f"{path}: missing text file (language {lang!r})")
        return path

    def _lines(self, lang: str) -> list[tuple[int, str]]:
        """(line number, text) of the file's non-blank lines."""
        return [(n, text) for n, line in utf8_lines(self._file(lang)) if (text := line.strip())]

    def languages(self) -> tuple[str, ...]:
        return tuple(sorted(self.files, key=lambda lang: lang != "en"))

    def labels(self) -> tuple[str, ...] | None:
        return None

    def load(self, split: str, language: str) -> list[dict]:
        if split not in ("train", "dev"):
            raise UserError(f"a raw-text corpus has only train and dev splits, not {split!r}")
        dev = split == "dev"
        return [
            {"id": f"{lang}-{n}", "text": text, "language": lang}
            for lang in self.files
            for k, (n, text) in enumerate(self._lines(lang))
            if ((k + 1) % self.period == 0) == dev
        ]

    def checksum(self, split: str, language: str) -> str:
        h = hashlib.sha256(f"period={self.period}\n".encode())
        for lang in self.files:
            h.update(f"{lang}:{sha256_file(self._file(lang))}\n".encode())
        return h.hexdigest()

    def describe(self) -> str:
        return "text:" + ",".join(f"{lang}={path}" for lang, path in self.files.items())
