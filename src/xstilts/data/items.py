"""Item identity: which test item an example is, across the languages of a test set.

The examples of a test set that is parallel across languages (the same items translated: ``TaskDef.parallel``)
carry ``ITEM``, a key that names the same item in every language: the id the data shares where it has one,
the row (``<split>-<row>``) in files whose rows are aligned, or for sentence-pair retrieval the English side.
Other examples are keyed by their id, which is unique within a language only.
"""

from __future__ import annotations

ITEM = "item"  # the example field holding a parallel test set's item key


def item_key(example: dict) -> str:
    """The key of the test item ``example`` is: its ``ITEM`` where the test set is parallel, else its id."""
    return str(example.get(ITEM, example["id"]))


def row_key(split: str, row: int) -> str:
    """The item key of row ``row`` (from 0) of ``split`` in files whose rows are aligned across languages."""
    return f"{split}-{row}"
