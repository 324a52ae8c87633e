"""Habits of the source tree that no linter checks: no module reaches into another module's private names."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "xstilts"


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def private_uses(path: Path) -> list[str]:
    """``module.name`` for every private name of another xstilts module that ``path`` imports or reads."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules: dict[str, str] = {}  # local alias -> xstilts module
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("xstilts"):
            for alias in node.names:
                if _private(alias.name):
                    found.append(f"{node.module}.{alias.name}")
                else:  # ``from xstilts.data import pocket`` binds a module
                    modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("xstilts"):
                    modules[alias.asname or alias.name.split(".")[0]] = alias.name
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and _private(node.attr)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
        ):
            found.append(f"{modules[node.value.id]}.{node.attr}")
    return found


def test_no_module_imports_another_modules_private_names():
    offenders = {str(p.relative_to(SRC)): uses for p in sorted(SRC.rglob("*.py")) if (uses := private_uses(p))}
    assert offenders == {}


def test_the_check_sees_both_ways_of_reaching_in(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from xstilts.tasks.xtreme import _hub\nfrom xstilts.data import pocket\npocket._clean('x')\n")
    assert private_uses(bad) == ["xstilts.tasks.xtreme._hub", "xstilts.data.pocket._clean"]
