"""Reading data files with errors that name the file (and line)."""

from __future__ import annotations

import json
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


def read_jsonl(path: Path) -> list[dict]:
    """The objects of a JSON-lines file; a record without an "id" gets ``<file stem>:<line>``."""
    path = Path(path)
    lines = read_text(path).split("\n")
    records = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as e:
            raise UserError(f"{path}:{n}: invalid JSON: {e.msg}") from None
        if not isinstance(record, dict):
            raise UserError(f"{path}:{n}: expected a JSON object per line")
        record.setdefault("id", f"{path.stem}:{n}")
        records.append(record)
    return records
