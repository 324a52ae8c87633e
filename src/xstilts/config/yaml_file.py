"""Reading a YAML file, and one-line errors that name the file, the line and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from xstilts.errors import UserError


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at ``loc`` (or of its deepest existing parent)."""
    line = None
    for key in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            node = None
    if node is not None:
        line = node.start_mark.line + 1
    return line


def fmt_loc(loc: tuple[Any, ...]) -> str:
    """``a.b[0].c``: a field location as the error messages write it."""
    out = ""
    for k in loc:
        k = k if not isinstance(k, str) or k.isprintable() else repr(k)  # a line break in a key stays on the line
        out += f"[{k}]" if isinstance(k, int) else (f".{k}" if out else str(k))
    return out or "(top level)"


def read_yaml_mapping(path: Path, what: str) -> tuple[dict, yaml.Node]:
    """(data, composed node tree) of a YAML file holding a mapping of ``what`` fields; one-line UserErrors."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise UserError(f"{path}: cannot read {what} ({e.strerror})") from None
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.reader.ReaderError as e:  # its str() spans two lines
        line = text.count("\n", 0, e.position) + 1
        raise UserError(f"{path}:{line}: invalid YAML (character {e.character!r}: {e.reason})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise UserError(f"{path}{where}: invalid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of {what} fields at the top level")
    if dup := _duplicate_key(root):
        raise UserError(f"{path}:{dup.start_mark.line + 1}: {dup.value!r} is set twice in one mapping")
    return data, root


def _duplicate_key(node: yaml.Node | None, visited: set[int] | None = None) -> yaml.ScalarNode | None:
    """The first key node repeating an earlier key of its mapping (safe_load silently keeps the last)."""
    visited = set() if visited is None else visited
    if id(node) in visited:  # an alias of a node already checked
        return None
    visited.add(id(node))
    if isinstance(node, yaml.MappingNode):
        keys = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in keys:
                    return key
                keys.add(key.value)
            if dup := _duplicate_key(value, visited):
                return dup
    elif isinstance(node, yaml.SequenceNode):
        return next((d for d in (_duplicate_key(v, visited) for v in node.value) if d), None)
    return None


def field_error(path: Path, root: yaml.Node | None, loc: tuple[Any, ...], msg: str) -> UserError:
    """``path:line: field.path: msg``, the line looked up in the composed YAML."""
    line = _line_of(root, loc)
    return UserError(f"{path}{f':{line}' if line else ''}: {fmt_loc(loc)}: {msg}")


def first_error(e: ValidationError) -> tuple[tuple[Any, ...], str]:
    """(field location, one-line message) of the first pydantic error."""
    err = e.errors()[0]
    loc = tuple(
        x for x in err["loc"] if not (isinstance(x, str) and (x.startswith(("function-", "tag:")) or x == "[key]"))
    )
    msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
    got = err.get("input")
    if err["type"] not in ("missing", "extra_forbidden") and not isinstance(got, (dict, list)):
        msg += f" (got {got!r})"
    return loc, msg


def validation_error(path: Path, root: yaml.Node | None, e: ValidationError) -> UserError:
    """The first pydantic error of a YAML file as one line naming its field and line."""
    return field_error(path, root, *first_error(e))
