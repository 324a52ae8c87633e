"""The pocket suite: offline tasks built from chatterbot-corpus and Django's translation catalogs."""

from dataclasses import dataclass

from xstilts.data.items import ITEM
from xstilts.data.sources import PocketSource
from xstilts.tasks.definition import TaskDef


@dataclass(frozen=True)
class PocketPairs(PocketSource):
    """pocket-retrieval's pairs, each keyed as an item by its English side (the catalog's msgid): languages that
    translate the same message share the item."""

    def load(self, split: str, language: str) -> list[dict]:
        return [{**pair, ITEM: pair["target"]} for pair in super().load(split, language)]


TASKS = (
    TaskDef("pocket-topic", "classification", "target", "accuracy", PocketSource("pocket-topic")),
    TaskDef(
        "pocket-retrieval",
        "retrieval",
        "target",
        "accuracy",
        PocketPairs("pocket-retrieval"),
        fields=("source", "target"),
        parallel=True,
    ),
    TaskDef(
        "pocket-answer",
        "multiple_choice",
        "intermediate",
        "accuracy",
        PocketSource("pocket-answer"),
        fields=("question", "choices"),
    ),
    TaskDef(
        "pocket-sametopic",
        "classification",
        "intermediate",
        "accuracy",
        PocketSource("pocket-sametopic"),
        fields=("text_a", "text_b"),
    ),
)
