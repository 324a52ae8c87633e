"""The paper's English intermediate tasks (Phang et al. 2020) besides mnli and squad_v1 (tasks/xtreme.py):
anli_plus, qqp, squad_v2, hellaswag, commonsenseqa, cosmosqa, ccg, sst2.

Each has train and dev splits in English: the hub by default, with a data_dir the official files
(layouts and record schemas: ``xstilts.data.official_intermediate``). anli_plus trains on ANLI R1-R3, SNLI
and MNLI together and is scored on the three ANLI dev rounds; it and mnli (which xnli trains on) classify
the same three NLI labels and share one head (``NLI_HEAD``). CCGbank is licensed: ccg reads
data_dir only, and its tag set is the one of its files.
"""

from __future__ import annotations

from pathlib import Path

from xstilts.data import official_intermediate as files
from xstilts.data.official_intermediate import ConcatSource, Part, TagsFromData
from xstilts.data.official_retrieval import LocalOnly
from xstilts.data.readers import NLI_LABELS, read_squad_v2
from xstilts.data.sources import splits
from xstilts.tasks.definition import TaskDef
from xstilts.tasks.xtreme import (
    EN,
    MNLI_FILES,
    NLI_HEAD,
    PAIR,
    QA,
    from_files,
    from_hub,
    hub_label,
    hub_pair,
    squad_record,
)

MC = ("question", "choices")
TRAIN_DEV = {"train": "train", "dev": "validation"}


def _none(split: str, lang: str) -> None:
    """The config of a hub dataset with a single, unnamed one."""
    return


def _anli_round(r: int):
    """(hub part, local part factory) of ANLI round r."""
    hub = from_hub(
        "anli_plus",
        "facebook/anli",
        "plain_text",
        hub_pair("premise", "hypothesis", NLI_LABELS, "uid"),
        EN,
        NLI_LABELS,
        train=f"train_r{r}",
        dev=f"dev_r{r}",
    )
    local = from_files(
        "anli_plus", f"anli_v1.0/R{r}", files.read_anli, EN, NLI_LABELS, train="train.jsonl", dev="dev.jsonl"
    )
    return hub, local


def _snli_from_hub(r: dict, lang: str) -> dict | None:
    """A ``stanfordnlp/snli`` row; label -1 (no gold label) is dropped."""
    if r["label"] == -1:
        return None
    return {"id": None, "text_a": r["premise"], "text_b": r["hypothesis"], "label": hub_label(NLI_LABELS, r["label"])}


_ANLI = [_anli_round(r) for r in (1, 2, 3)]
_SNLI_LOCAL = from_files("anli_plus", "snli_1.0", files.read_snli, EN, NLI_LABELS, train="snli_1.0_train.jsonl")
_ANLI_PLUS_HUB = ConcatSource(
    (
        *(Part(f"anli_r{r}", hub) for r, (hub, _) in enumerate(_ANLI, 1)),
        Part(
            "snli",
            from_hub("anli_plus", "stanfordnlp/snli", "plain_text", _snli_from_hub, EN, NLI_LABELS, train="train"),
            ("train",),
        ),
        Part(
            "mnli",
            from_hub(
                "anli_plus",
                "nyu-mll/glue",
                "mnli",
                hub_pair("premise", "hypothesis", NLI_LABELS, "idx"),
                EN,
                NLI_LABELS,
                train="train",
            ),
            ("train",),
        ),
    ),
    NLI_LABELS,
)


def _anli_plus_files(root: Path) -> ConcatSource:
    """ANLI R1-R3 train and dev, SNLI train, and MNLI train read as the mnli task reads ``MNLI/``."""
    return ConcatSource(
        (
            *(Part(f"anli_r{r}", local(root)) for r, (_, local) in enumerate(_ANLI, 1)),
            Part("snli", _SNLI_LOCAL(root), ("train",)),
            Part("mnli", MNLI_FILES(root), ("train",)),
        ),
        NLI_LABELS,
    )


def _ccg_files(root: Path) -> TagsFromData:
    return TagsFromData(Path(root) / "ccg", splits("ccg", EN, train="ccg.train", dev="ccg.dev"), files.read_ccg, EN)


TASKS = (
    TaskDef(
        "anli_plus",
        "classification",
        "intermediate",
        "accuracy",
        _ANLI_PLUS_HUB,
        fields=PAIR,
        head=NLI_HEAD,
        local=_anli_plus_files,
    ),
    TaskDef(
        "qqp",
        "classification",
        "intermediate",
        "accuracy",
        fields=PAIR,
        source=from_hub(
            "qqp",
            "nyu-mll/glue",
            "qqp",
            hub_pair("question1", "question2", files.QQP_LABELS, "idx"),
            EN,
            files.QQP_LABELS,
            **TRAIN_DEV,
        ),
        local=from_files("qqp", "QQP", files.read_qqp, EN, files.QQP_LABELS, train="train.tsv", dev="dev.tsv"),
    ),
    TaskDef(
        "sst2",
        "classification",
        "intermediate",
        "accuracy",
        fields=("text",),
        source=from_hub(
            "sst2",
            "nyu-mll/glue",
            "sst2",
            lambda r, lang: {
                "id": str(r["idx"]),
                "text": r["sentence"],
                "label": hub_label(files.SST2_LABELS, r["label"]),
            },
            EN,
            files.SST2_LABELS,
            **TRAIN_DEV,
        ),
        local=from_files("sst2", "SST-2", files.read_sst2, EN, files.SST2_LABELS, train="train.tsv", dev="dev.tsv"),
    ),
    TaskDef(
        "squad_v2",
        "span_qa",
        "intermediate",
        "squad_v2",
        fields=QA,
        source=from_hub("squad_v2", "rajpurkar/squad_v2", "squad_v2", squad_record, EN, **TRAIN_DEV),
        local=from_files("squad_v2", "squad", read_squad_v2, EN, train="train-v2.0.json", dev="dev-v2.0.json"),
    ),
    TaskDef(
        "hellaswag",
        "multiple_choice",
        "intermediate",
        "accuracy",
        fields=MC,
        source=from_hub(
            "hellaswag", "Rowan/hellaswag", _none, lambda r, lang: files.hellaswag_record(r, "hub row"), EN, **TRAIN_DEV
        ),
        local=from_files(
            "hellaswag", "hellaswag", files.read_hellaswag, EN, train="hellaswag_train.jsonl", dev="hellaswag_val.jsonl"
        ),
    ),
    TaskDef(
        "commonsenseqa",
        "multiple_choice",
        "intermediate",
        "accuracy",
        fields=MC,
        source=from_hub("commonsenseqa", "tau/commonsense_qa", _none, files.commonsenseqa_from_hub, EN, **TRAIN_DEV),
        local=from_files(
            "commonsenseqa",
            "commonsenseqa",
            files.read_commonsenseqa,
            EN,
            train="train_rand_split.jsonl",
            dev="dev_rand_split.jsonl",
        ),
    ),
    TaskDef(
        "cosmosqa",
        "multiple_choice",
        "intermediate",
        "accuracy",
        fields=MC,
        source=from_hub(
            "cosmosqa",
            "allenai/cosmos_qa",
            _none,
            lambda r, lang: files.cosmosqa_record(r, f"hub row id={r.get('id')}"),
            EN,
            **TRAIN_DEV,
        ),
        local=from_files("cosmosqa", "cosmosqa", files.read_cosmosqa, EN, train="train.csv", dev="valid.csv"),
    ),
    TaskDef(  # scored by tag accuracy, as jiant's CCG task
        "ccg",
        "tagging",
        "intermediate",
        "accuracy",
        fields=("tokens",),
        source=LocalOnly(
            "ccg",
            EN,
            "CCGbank (LDC2005T13) is licensed and not on the hub; jiant's "
            "scripts/ccg/ccg_proc.py writes ccg/ccg.train and ccg/ccg.dev from it",
        ),
        local=_ccg_files,
    ),
)
