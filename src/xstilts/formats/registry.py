"""The formats by name. Adding a format: one module with its class, and one line in ``BUILTIN``."""

from __future__ import annotations

from xstilts.errors import UserError
from xstilts.formats.base import Format
from xstilts.formats.classification import Classification
from xstilts.formats.mlm import MaskedLM
from xstilts.formats.multiple_choice import MultipleChoice
from xstilts.formats.retrieval import AnswerRetrieval, BitextMining, PairRetrieval
from xstilts.formats.span_qa import SpanQA
from xstilts.formats.tagging import Tagging

BUILTIN = (
    Classification(),
    MultipleChoice(),
    SpanQA(),
    Tagging(),
    MaskedLM(),
    PairRetrieval(),
    BitextMining(),
    AnswerRetrieval(),
)
_FORMATS: dict[str, Format] = {f.name: f for f in BUILTIN}


def register_format(fmt: Format) -> Format:
    """Make ``fmt`` known by its name (a format defined outside xstilts: a plug-in, a test)."""
    if _FORMATS.get(fmt.name, fmt) is not fmt:
        raise ValueError(f"format {fmt.name!r} is already registered")
    _FORMATS[fmt.name] = fmt
    return fmt


def get_format(name: str) -> Format:
    if name not in _FORMATS:
        raise UserError(f"unknown task format {name!r} (known: {', '.join(sorted(_FORMATS))})")
    return _FORMATS[name]


def format_names() -> list[str]:
    return sorted(_FORMATS)
