"""Task formats: each owns featurize -> head -> decode -> metric for its kind of task."""

from xstilts.formats.classification import Classification
from xstilts.formats.multiple_choice import MultipleChoice

TRAINABLE = {f.name: f for f in (Classification(), MultipleChoice())}


def trainable_format(name: str):
    """The format object of a task that has a head; retrieval has none."""
    return TRAINABLE[name]
