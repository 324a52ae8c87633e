"""Reading data files (text, lines, JSON, JSON lines) with errors that name the file (and line). The readers of
official layouts and JSONL folders open their files only through these functions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from xstilts.errors import UserError


def read_text(path: Path) -> str:
    """A UTF-8 file's text (universal newlines); a missing or unreadable file is a UserError naming it."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise UserError(f"{path}: missing data file") from None
    except UnicodeDecodeError as e:  # the whole file is decoded at once: e.start is its byte offset
        line = Path(path).read_bytes()[: e.start].count(b"\n") + 1
        raise UserError(f"{path}:{line}: not UTF-8 ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e}") from None


def read_lines(path: Path) -> list[str]:
    """The lines of a text file as ``open()`` iterates them (universal newlines), without line ends."""
    lines = read_text(path).split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def read_json(path: Path) -> Any:
    """The value of a JSON file; invalid JSON is a UserError naming the file and line."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None


def utf8_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text with its line end) of a UTF-8 file, read a line at a time (lines end at "\\n" only);
    an undecodable line is a UserError naming file and line."""
    try:
        with open(path, "rb") as f:
            for n, raw in enumerate(f, 1):
                try:
                    yield n, raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise UserError(f"{path}:{n}: not UTF-8") from None
    except FileNotFoundError:
        raise UserError(f"{path}: missing data file") from None
    except OSError as e:
        raise UserError(f"{path}: cannot read: {e}") from None


def jsonl_rows(path: Path, text: str | None = None) -> Iterator[tuple[int, dict]]:
    """(line number, object) of a JSON-lines file, streamed (or of its ``text``), blank lines skipped."""
    lines = utf8_lines(path) if text is None else enumerate(text.split("\n"), 1)
    for n, line in lines:
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{n}: invalid JSON: {e.msg}") from None
        if not isinstance(row, dict):
            raise UserError(f"{path}:{n}: expected a JSON object per line")
        yield n, row


def read_jsonl(path: Path) -> list[dict]:
    """The objects of a JSON-lines file; a record without an "id" gets ``<file stem>:<line>``."""
    path = Path(path)
    return [{"id": f"{path.stem}:{n}", **row} for n, row in jsonl_rows(path)]
