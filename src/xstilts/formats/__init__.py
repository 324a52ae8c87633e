"""Task formats: each owns featurize -> head -> decode -> metric for its kind of task."""

from xstilts.formats.classification import Classification
from xstilts.formats.mlm import MaskedLM
from xstilts.formats.multiple_choice import MultipleChoice
from xstilts.formats.span_qa import SpanQA
from xstilts.formats.tagging import Tagging

RETRIEVAL = ("retrieval", "bucc", "answer_retrieval")  # evaluated on the encoder alone, no head, no training
TRAINABLE = {f.name: f for f in (Classification(), MultipleChoice(), SpanQA(), Tagging(), MaskedLM())}


def trainable_format(name: str):
    """The format object of a task that has a head; retrieval has none."""
    return TRAINABLE[name]
