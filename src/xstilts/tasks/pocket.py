"""The pocket suite: offline tasks built from chatterbot-corpus and Django's translation catalogs."""

from xstilts.data.sources import PocketSource
from xstilts.tasks.definition import TaskDef

TASKS = (
    TaskDef("pocket-topic", "classification", "target", "accuracy", PocketSource("pocket-topic")),
    TaskDef(
        "pocket-retrieval",
        "retrieval",
        "target",
        "accuracy",
        PocketSource("pocket-retrieval"),
        fields=("source", "target"),
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
