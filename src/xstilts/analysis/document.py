"""One report as a list of blocks, rendered three ways: Markdown, one self-contained HTML file, LaTeX tables.

Table cells are formatted once by the table's ``cell`` function, so every rendering shows the same strings.
Text may hold `code` spans.
"""

from __future__ import annotations

import base64
import html as _html
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from xstilts.cache import atomic_write_text

FILES = {"md": "report.md", "html": "report.html", "latex": "tables.tex"}
_NEUTRAL = {"", "n/a", "nan", "-", "—"}  # cells that say nothing about a column's alignment
_NUMERIC = re.compile(r"^[\[(]?[-+−±]?\.?\d")
_LATEX_SPECIAL = re.compile(r"[\\%&_#${}~^]")
_LATEX_ESCAPES = {"\\": r"\textbackslash{}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


@dataclass(frozen=True)
class Heading:
    """A section heading of level 1..6."""

    text: str
    level: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.level <= 6:
            raise ValueError(f"heading level must be 1..6, got {self.level}")


@dataclass(frozen=True)
class Paragraph:
    """Plain text; `code` spans allowed."""

    text: str


@dataclass(frozen=True)
class Table:
    """A frame whose every value ``cell`` formats; its index is the first column, headed ``index_name``."""

    frame: pd.DataFrame
    index_name: str
    cell: Callable[[object], str]
    caption: str = ""

    def cells(self) -> tuple[list[str], list[list[str]]]:
        """(header, rows): the strings every rendering shows; each row starts with its index entry."""
        header = [self.index_name, *map(str, self.frame.columns)]
        rows = [[str(idx), *(self.cell(v) for v in row)] for idx, row in self.frame.iterrows()]
        return header, rows


@dataclass(frozen=True)
class Figure:
    """A PNG file under the report's figures/ folder."""

    path: Path
    caption: str


@dataclass(frozen=True)
class Details:
    """Blocks a reader opens on demand: collapsed under ``summary`` in HTML; in Markdown and LaTeX they follow
    in place, after a line saying what they are."""

    summary: str
    blocks: tuple[Block, ...]


Block = Heading | Paragraph | Table | Figure | Details


def _relative(path: Path, root: Path) -> str:
    return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()


def _numeric(header: list[str], rows: list[list[str]]) -> list[bool]:
    """Per data column: whether all its informative cells read as numbers (they are right-aligned)."""
    columns = [[row[j] for row in rows] for j in range(1, len(header))]
    return [all(_NUMERIC.match(c) for c in col if c.strip() not in _NEUTRAL) for col in columns]


def _markdown_table(table: Table) -> str:
    header, rows = table.cells()
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def markdown(blocks: Iterable[Block], root: Path) -> str:
    """The report as Markdown; figures are linked relative to ``root``."""
    parts = []
    for block in blocks:
        match block:
            case Details():
                parts += [f"**{block.summary}**", markdown(block.blocks, root).rstrip("\n")]
            case Heading():
                parts.append("#" * block.level + " " + block.text)
            case Paragraph():
                parts.append(block.text)
            case Table():
                parts += [block.caption] if block.caption else []
                parts.append(_markdown_table(block))
            case Figure():
                parts += [f"![{block.caption}]({_relative(block.path, root)})", block.caption]
    return "\n\n".join(parts) + "\n"


def _spans(text: str) -> list[tuple[bool, str]]:
    """(is code, text) pieces of ``text``'s `code` spans and the text around them; an unpaired backtick stays."""
    parts = text.split("`")
    if len(parts) % 2 == 0:
        parts[-2:] = [parts[-2] + "`" + parts[-1]]
    return [(i % 2 == 1, p) for i, p in enumerate(parts)]


def _inline_html(text: str) -> str:
    return "".join(f"<code>{_html.escape(p)}</code>" if code else _html.escape(p) for code, p in _spans(text))


def _html_table(table: Table) -> str:
    header, rows = table.cells()
    align = ["", *(' class="num"' if n else "" for n in _numeric(header, rows))]
    out = ['<div class="table"><table>']
    if table.caption:
        out.append(f"<caption>{_inline_html(table.caption)}</caption>")
    out.append(
        "<thead><tr>" + "".join(f"<th{a}>{_html.escape(h)}</th>" for a, h in zip(align, header)) + "</tr></thead>"
    )
    out.append("<tbody>")
    for row in rows:
        index, *values = row
        tds = "".join(f"<td{a}>{_html.escape(v)}</td>" for a, v in zip(align[1:], values))
        out.append(f'<tr><th scope="row">{_html.escape(index)}</th>{tds}</tr>')
    out.append("</tbody></table></div>")
    return "\n".join(out)


def _html_figure(figure: Figure, root: Path) -> str:
    name = _html.escape(_relative(figure.path, root))
    data = base64.b64encode(Path(figure.path).read_bytes()).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{name}" data-file="{name}">'
        f"<figcaption>{_inline_html(figure.caption)}</figcaption></figure>"
    )


_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; line-height: 1.5; color: #222;
       max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
h1, h2, h3, h4, h5, h6 { line-height: 1.25; margin-top: 2rem; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.9em;
       background: #f2f2f2; padding: 0.1em 0.3em; border-radius: 3px; }
div.table { overflow-x: auto; margin: 1rem 0; }
table { border-collapse: collapse; font-size: 0.9rem; }
caption { caption-side: top; text-align: left; font-style: italic; padding-bottom: 0.4rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; }
thead th { background: #e8e8e8; }
tbody tr:nth-child(even) { background: #f7f7f7; }
tbody th { text-align: left; font-weight: normal; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1.5rem 0; }
figure img { max-width: 100%; height: auto; }
figcaption { font-size: 0.9rem; color: #444; }
details { margin: 1rem 0; }
summary { cursor: pointer; font-weight: 600; }
"""


def html(blocks: Iterable[Block], root: Path, title: str, page: bool = True) -> str:
    """The report as one self-contained HTML page (only its body's elements when not ``page``); figures are
    embedded as base64 PNG data."""
    body = []
    for block in blocks:
        match block:
            case Details():
                inner = html(block.blocks, root, title, page=False)
                body.append(f"<details><summary>{_inline_html(block.summary)}</summary>\n{inner}</details>")
            case Heading():
                body.append(f"<h{block.level}>{_inline_html(block.text)}</h{block.level}>")
            case Paragraph():
                body.append(f"<p>{_inline_html(block.text)}</p>")
            case Table():
                body.append(_html_table(block))
            case Figure():
                body.append(_html_figure(block, root))
    if not page:
        return "\n".join(body) + "\n"
    head = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">']
    head += [f"<title>{_html.escape(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>"]
    return "\n".join([*head, *body, "</body>", "</html>"]) + "\n"


def latex_escape(text: str) -> str:
    """``text`` with LaTeX's special characters escaped."""
    return _LATEX_SPECIAL.sub(lambda m: _LATEX_ESCAPES.get(m[0], "\\" + m[0]), text)


def _inline_latex(text: str) -> str:
    return "".join(rf"\texttt{{{latex_escape(p)}}}" if code else latex_escape(p) for code, p in _spans(text))


def _latex_row(cells: list[str]) -> str:
    """One tabular row; a leading "[" is braced so that the previous \\\\ or rule does not read it as an option."""
    row = " & ".join(map(latex_escape, cells))
    return ("{}" if row.startswith("[") else "") + row + r" \\"


def _latex_table(table: Table) -> str:
    header, rows = table.cells()
    spec = "l" + "".join("r" if n else "l" for n in _numeric(header, rows))
    lines = [r"\begin{table}[htbp]", r"\centering"]
    if table.caption:
        lines.append(rf"\caption{{{_inline_latex(table.caption)}}}")
    lines += [rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    lines += [_latex_row(header), r"\midrule", *map(_latex_row, rows)]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)


def _tables(blocks: Iterable[Block]) -> Iterable[Table]:
    for block in blocks:
        if isinstance(block, Details):
            yield from _tables(block.blocks)
        elif isinstance(block, Table):
            yield block


def latex(blocks: Iterable[Block]) -> str:
    """The report's tables (collapsed ones too) as LaTeX ``table`` environments (booktabs); other blocks are left
    out."""
    tables = [_latex_table(b) for b in _tables(blocks)]
    return "\n\n".join([r"% tables of the report; the preamble needs \usepackage{booktabs}", *tables]) + "\n"


def write(blocks: Iterable[Block], root: Path, title: str, formats: set[str]) -> list[Path]:
    """Write report.md, report.html and/or tables.tex (formats "md", "html", "latex") into ``root``, atomically."""
    unknown = set(formats) - FILES.keys()
    if unknown:
        raise ValueError(f"unknown report format(s) {sorted(unknown)}; choose from {sorted(FILES)}")
    blocks = list(blocks)
    render = {
        "md": lambda: markdown(blocks, root),
        "html": lambda: html(blocks, root, title),
        "latex": lambda: latex(blocks),
    }
    written = []
    for fmt in sorted(formats, key=list(FILES).index):
        path = Path(root) / FILES[fmt]
        atomic_write_text(path, render[fmt]())
        written.append(path)
    return written
