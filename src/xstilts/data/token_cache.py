"""The tokenization cache: featurized examples as memory-mapped Arrow files, shared by every job (and process)
that reads the same data. A file's key covers everything that decides its rows: task, split, tokenizer, maximum
length, the examples' checksum and the featurizing code."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xstilts.cache import atomic_write_bytes, cache_dir

_FINGERPRINTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def features_dir() -> Path:
    """``$XSTILTS_FEATURE_CACHE``, else ``<cache>/features``."""
    root = os.environ.get("XSTILTS_FEATURE_CACHE")
    return Path(root).expanduser() if root else cache_dir() / "features"


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """SHA-256 of what decides a tokenizer's output (its serialised pipeline and vocabulary, special tokens, class),
    computed once per tokenizer object."""
    if tokenizer in _FINGERPRINTS:
        return _FINGERPRINTS[tokenizer]
    backend = getattr(tokenizer, "backend_tokenizer", None)
    body = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    h = hashlib.sha256(type(tokenizer).__name__.encode())
    h.update(body.encode("utf-8"))
    h.update(json.dumps(tokenizer.special_tokens_map, sort_keys=True, default=str).encode())
    _FINGERPRINTS[tokenizer] = h.hexdigest()
    return _FINGERPRINTS[tokenizer]


def checksum(examples: list[dict]) -> str:
    """SHA-256 of the examples' pickle (2-3x faster than JSON; data read alike pickles alike, and a miss only
    costs a re-tokenization)."""
    return hashlib.sha256(pickle.dumps(examples, protocol=5)).hexdigest()


def cached(key: dict[str, Any], compute: Callable[[], list[dict]]) -> list[dict]:
    """The rows stored under ``key`` (a JSON-able mapping), else ``compute()``'s rows, stored first.

    Rows always come back as Arrow returns them (tuples as lists), so a cold and a warm cache give equal rows.
    Rows Arrow cannot hold in one table (mixed types in a column) are returned uncached.
    """
    import pyarrow as pa

    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
    path = features_dir() / f"{digest}.arrow"
    if path.is_file():
        with pa.memory_map(str(path)) as source:
            return pa.ipc.open_file(source).read_all().to_pylist()
    rows = compute()
    if not rows:
        return rows
    try:
        table = pa.Table.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return rows
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    atomic_write_bytes(path, sink.getvalue().to_pybytes())
    return table.to_pylist()
