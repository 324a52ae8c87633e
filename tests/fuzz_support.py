"""Shared pieces of the property-based fuzz tests (tests/test_fuzz_*.py): the contract check, reproducible
settings and strategies for random text, JSON values and documents."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from xstilts.errors import UserError

# 200 examples per reader, derandomized and without an example database: the same inputs on every CI run
FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def clean(call: Callable[[], object]) -> object:
    """``call()``'s result, or None when it raised a one-line UserError; any other exception propagates."""
    try:
        return call()
    except UserError as e:
        assert "\n" not in str(e) and "\r" not in str(e), f"multi-line UserError: {str(e)!r}"
        return None


@contextmanager
def folder() -> Iterator[Path]:
    """A fresh temporary folder for one example."""
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_bytes(data.encode("utf-8", "surrogatepass"))
    else:
        path.write_bytes(data)
    return path


# characters that break naive parsers: separators, quotes, line ends of every kind, a BOM, non-ASCII digits
TRICKY = list("ab0123 :_-.,;\"'\t\r\n{}[]#&*!|>%@`\\") + ["\ufeff", "\u2028", "\u0085", "\x00", "²", "é", "𝟘"]
tricky_text = st.text(alphabet=st.sampled_from(TRICKY) | st.characters(codec="utf-8"), max_size=8)
short_text = st.text(alphabet=st.sampled_from(TRICKY), max_size=6)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-3, 1000)
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | tricky_text
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(tricky_text, inner, max_size=4),
    max_leaves=8,
)
random_bytes = st.binary(max_size=300)


def json_line(value) -> str:
    return json.dumps(value, ensure_ascii=False)


def records(keys: dict[str, st.SearchStrategy]) -> st.SearchStrategy[dict]:
    """Dicts holding ``keys``, each mostly with a plausible value, sometimes a random JSON value or left out,
    sometimes with stray keys: deep enough into a format to reach its inner checks."""
    missing = object()
    fields = {k: st.one_of(v, v, v, v, json_values, st.just(missing)) for k, v in keys.items()}
    return st.builds(
        lambda known, extra: {**extra, **{k: v for k, v in known.items() if v is not missing}},
        st.fixed_dictionaries(fields),
        st.dictionaries(short_text, json_values, max_size=1),
    )


def jsonl_doc(rows: st.SearchStrategy) -> st.SearchStrategy[str]:
    """A JSON-lines text of ``rows``, with the odd blank, broken or non-object line."""
    line = rows.map(json_line) | st.sampled_from(["", "  ", "[]", "1", "{", '"x"', "null"])
    return st.lists(st.one_of(rows.map(json_line), line), max_size=6).map("\n".join)
