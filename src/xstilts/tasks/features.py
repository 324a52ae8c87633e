"""A task's examples featurized through the tokenization cache: the one way every job featurizes."""

from __future__ import annotations

import inspect
from typing import Any

import xstilts
from xstilts.cache import sha256_file
from xstilts.data.token_cache import cached, checksum, tokenizer_fingerprint
from xstilts.tasks.definition import TaskDef


def task_features(task: TaskDef, split: str, examples: list[dict], tokenizer: Any, max_length: int) -> list[dict]:
    """``task.format.featurize(...)`` of ``examples`` (of ``split``, e.g. "train" or "test:de"), from the cache
    when the same task, split, tokenizer, maximum length, data and featurizing code were featurized before."""
    fmt = task.format
    key = {
        "task": task.name,
        "split": split,
        "fields": list(task.fields),
        "labels": list(task.labels or ()),
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "max_length": max_length,
        "data": checksum(examples),
        "format": fmt.name,
        "code": [xstilts.__version__, sha256_file(inspect.getsourcefile(type(fmt)))],
    }
    return cached(key, lambda: fmt.featurize(task, examples, tokenizer, max_length))
