"""The pocket suite: offline tasks built from chatterbot-corpus and Django's translation catalogs."""

from xstilts.tasks.registry import PocketSource, TaskDef, register

register(TaskDef("pocket-topic", "classification", "target", "accuracy", PocketSource("pocket-topic")))
register(TaskDef("pocket-retrieval", "retrieval", "target", "accuracy", PocketSource("pocket-retrieval"),
                 fields=("source", "target")))
register(TaskDef("pocket-answer", "multiple_choice", "intermediate", "accuracy", PocketSource("pocket-answer"),
                 fields=("question", "choices")))
register(TaskDef("pocket-sametopic", "classification", "intermediate", "accuracy",
                 PocketSource("pocket-sametopic"), fields=("text_a", "text_b")))
