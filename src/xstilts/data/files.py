"""Reading data files with errors that name the file (and line)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from xstilts.errors import UserError


def read_text(path: Path) -> str:
    """A UTF-8 file's text; a missing or unreadable file is a UserError naming it."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: missing data file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read: {e}") from None


def jsonl_rows(path: Path, text: str | None = None) -> Iterator[tuple[int, dict]]:
    """(line number, object) of a JSON-lines file (or of its ``text``), blank lines skipped."""
    for n, line in enumerate((read_text(path) if text is None else text).split("\n"), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as e:
            raise UserError(f"{path}:{n}: invalid JSON: {e.msg}") from None
        if not isinstance(row, dict):
            raise UserError(f"{path}:{n}: expected a JSON object per line")
        yield n, row


def read_jsonl(path: Path) -> list[dict]:
    """The objects of a JSON-lines file; a record without an "id" gets ``<file stem>:<line>``."""
    path = Path(path)
    return [{"id": f"{path.stem}:{n}", **row} for n, row in jsonl_rows(path)]
