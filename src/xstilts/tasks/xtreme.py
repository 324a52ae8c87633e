"""XTREME and XTREME-R tasks with their English training tasks (MNLI, SQuAD v1.1).

Sources: the hub by default; with a data_dir, the files as xtreme's ``scripts/download_data.sh`` leaves them
under its ``download/`` folder (``xnli/ pawsx/ udpos/ panx/ squad/ xquad/ mlqa/ tydiqa/``) plus GLUE's
``MNLI/`` folder. Test files must keep their gold labels (the current download script strips them).
Languages are the union of the two suites' official lists (XTREME-R adds languages to UD-POS, PAN-X, XQuAD).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from xstilts.data.hub import HubSource
from xstilts.data.items import ITEM, row_key
from xstilts.data.local import LocalFiles
from xstilts.data.readers import NLI_LABELS, read_conll, read_squad_json, read_tsv_pairs
from xstilts.data.sources import splits
from xstilts.errors import UserError
from xstilts.metrics.suites import XTREME, XTREME_R
from xstilts.tasks import protocol
from xstilts.tasks.definition import TaskDef

NLI_HEAD = "nli"  # mnli and anli_plus train one shared 3-way NLI head
PAWSX_LABELS = ("0", "1")  # 1: paraphrase
UPOS_TAGS = (
    "ADJ",
    "ADP",
    "ADV",
    "AUX",
    "CCONJ",
    "DET",
    "INTJ",
    "NOUN",
    "NUM",
    "PART",
    "PRON",
    "PROPN",
    "PUNCT",
    "SCONJ",
    "SYM",
    "VERB",
    "X",
)  # google/xtreme udpos class ids
PANX_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")  # wikiann class ids
UDPOS_HUB_NAMES = {  # google/xtreme config ``udpos.<name>`` (UD v2.5); no XTREME-R additions there
    "af": "Afrikaans",
    "ar": "Arabic",
    "bg": "Bulgarian",
    "de": "German",
    "el": "Greek",
    "en": "English",
    "es": "Spanish",
    "et": "Estonian",
    "eu": "Basque",
    "fa": "Persian",
    "fi": "Finnish",
    "fr": "French",
    "he": "Hebrew",
    "hi": "Hindi",
    "hu": "Hungarian",
    "id": "Indonesian",
    "it": "Italian",
    "ja": "Japanese",
    "kk": "Kazakh",
    "ko": "Korean",
    "mr": "Marathi",
    "nl": "Dutch",
    "pt": "Portuguese",
    "ru": "Russian",
    "ta": "Tamil",
    "te": "Telugu",
    "th": "Thai",
    "tl": "Tagalog",
    "tr": "Turkish",
    "ur": "Urdu",
    "vi": "Vietnamese",
    "yo": "Yoruba",
    "zh": "Chinese",
}
TYDIQA_NAMES = {
    "ar": "arabic",
    "bn": "bengali",
    "en": "english",
    "fi": "finnish",
    "id": "indonesian",
    "ko": "korean",
    "ru": "russian",
    "sw": "swahili",
    "te": "telugu",
}  # TyDiQA id prefixes
PAIR, QA = ("text_a", "text_b"), ("question", "context")


def suite_languages(task: str) -> tuple[str, ...]:
    """XTREME's languages of ``task`` in official order, then the ones XTREME-R adds."""
    langs: list[str] = []
    for suite in (XTREME, XTREME_R):
        if task in suite.tasks:
            langs += [lang for lang in suite.tasks[task].languages if lang not in langs]
    return tuple(langs)


@dataclass(frozen=True)
class XtremeHub(HubSource):
    """A HubSource whose ``convert`` may drop a record (None: another language's) and leave "id" unset:
    such examples are numbered ``<split>-<language>-<i>`` in hub order. With ``aligned`` (every language lists
    the same items in the same order) each example also carries its row's item key."""

    aligned: bool = False

    def load(self, split: str, language: str) -> list[dict]:
        examples = [ex for ex in super().load(split, language) if ex is not None]
        for i, ex in enumerate(examples):
            ex["id"] = ex.get("id") or f"{split}-{language}-{i}"
            if self.aligned:
                ex[ITEM] = row_key(split, i)
        return examples


def hub_label(labels: tuple[str, ...], value: int) -> str:
    """The label of a hub record's class id ``value``; a UserError outside ``labels``."""
    if not 0 <= value < len(labels):
        raise UserError(f"hub record with label {value} outside {', '.join(labels)}")
    return labels[value]


def hub_pair(a: str, b: str, labels: tuple[str, ...], id_key: str | None = None):
    """A hub ``convert`` of sentence pairs: texts from columns ``a`` and ``b``, the label from the class id in
    "label", the id from column ``id_key`` (None: numbered by ``XtremeHub``)."""
    return lambda r, lang: {
        "id": str(r[id_key]) if id_key else None,
        "text_a": r[a],
        "text_b": r[b],
        "label": hub_label(labels, r["label"]),
    }


def _keyed_by_id(example: dict) -> dict:
    """``example`` keyed as an item by its id, which the item's translations share."""
    return {**example, ITEM: example["id"]}


def _shared_ids(convert):
    """A hub ``convert`` of data whose ids name an item alike in every language: the id is the item key too."""
    return lambda r, lang: _keyed_by_id(convert(r, lang))


def _tagged(key: str, tags: tuple[str, ...]):
    return lambda r, lang: {"id": None, "tokens": list(r["tokens"]), "tags": [hub_label(tags, t) for t in r[key]]}


def squad_record(r: dict, lang: str) -> dict:
    """A hub row of SQuAD, XQuAD, MLQA or TyDiQA-GoldP as an example."""
    return {
        "id": r["id"],
        "question": r["question"],
        "context": r["context"],
        "answers": {"text": list(r["answers"]["text"]), "answer_start": list(r["answers"]["answer_start"])},
    }


def _read_parallel_squad(file: Path, split: str, lang: str) -> list[dict]:
    """XQuAD, MLQA: questions keep their id in every language."""
    return [_keyed_by_id(ex) for ex in read_squad_json(file, split, lang)]


def _tydiqa_record(r: dict, lang: str) -> dict | None:
    return squad_record(r, lang) if r["id"].startswith(TYDIQA_NAMES[lang] + "-") else None


def _udpos_config(split: str, lang: str) -> str:
    if lang not in UDPOS_HUB_NAMES:
        raise UserError(
            f"udpos: google/xtreme has no {lang!r} (UD v2.5, XTREME languages only); "
            "set data_dir to the official files for XTREME-R's additions"
        )
    return f"udpos.{UDPOS_HUB_NAMES[lang]}"


def from_hub(
    task: str, dataset: str, config, convert, langs, labels=None, *, aligned: bool = False, **names: str
) -> XtremeHub:
    """An XtremeHub of ``dataset``: ``config`` a name (str.format field ``lang``) or ``(split, lang) -> name``,
    ``names`` the hub split of each of the task's splits."""
    config = config if callable(config) else (lambda s, lang, c=config: c.format(lang=lang))
    return XtremeHub(dataset, config, splits(task, langs, **names), convert, langs, labels, aligned=aligned)


def from_files(task: str, folder: str, read, langs, labels=None, **paths: str):
    """``TaskDef.local``: ``paths`` name each split's file under ``<data_dir>/<folder>`` (str.format field
    ``lang``)."""
    return lambda root: LocalFiles(Path(root) / folder, splits(task, langs, **paths), read, langs, labels)


def _read_tydiqa(file: Path, split: str, lang: str) -> list[dict]:
    """TyDiQA-GoldP: one language of the combined train file (by id prefix), or a per-language dev file."""
    return read_squad_json(file, split, lang, id_prefix=TYDIQA_NAMES[lang] + "-" if split == "train" else None)


HUB = {"train": "train", "dev": "validation", "test": "test"}
XTREME_TSV = {s: s + "-{lang}.tsv" for s in ("train", "dev", "test")}  # xtreme's <split>-<lang>.tsv files
EN = ("en",)
_pairs = partial(read_tsv_pairs, columns=("text_a", "text_b", "label"))
_nli = hub_pair("premise", "hypothesis", NLI_LABELS)
_paws = _shared_ids(hub_pair("sentence1", "sentence2", PAWSX_LABELS, "id"))  # PAWS-Wiki's id, in every language
_tydiqa_dev = "tydiqa-goldp-v1.1-dev/tydiqa.goldp.{lang}.dev.json"
_L = {t: suite_languages(t) for t in ("xnli", "pawsx", "udpos", "panx", "xquad", "mlqa", "tydiqa")}
_TAGGING = XTREME.tasks["udpos"].metric  # seqeval, as the official scorer

MNLI_FILES = from_files(
    "mnli",
    "MNLI",
    partial(
        read_tsv_pairs,
        columns=("sentence1", "sentence2", "gold_label"),
        header=True,
        quoting=csv.QUOTE_NONE,
        labels=NLI_LABELS,
    ),
    EN,
    NLI_LABELS,
    train="train.tsv",
    dev="dev_matched.tsv",
)  # GLUE's MNLI/ folder

TASKS = (
    TaskDef(
        "xnli",
        "classification",
        "target",
        "accuracy",
        fields=PAIR,
        train_task="mnli",
        protocol=protocol.CLASSIFICATION,
        parallel=True,  # the languages' files and hub configs list the same pairs in the same order
        source=from_hub("xnli", "facebook/xnli", "{lang}", _nli, _L["xnli"], NLI_LABELS, aligned=True, **HUB),
        local=from_files(
            "xnli",
            "xnli",
            partial(_pairs, labels=NLI_LABELS, aligned=True),
            _L["xnli"],
            NLI_LABELS,
            dev="dev-{lang}.tsv",
            test="test-{lang}.tsv",
        ),
    ),
    TaskDef(
        "mnli",
        "classification",
        "intermediate",
        "accuracy",
        fields=PAIR,
        head=NLI_HEAD,
        source=from_hub(
            "mnli",
            "nyu-mll/glue",
            "mnli",
            hub_pair("premise", "hypothesis", NLI_LABELS, "idx"),
            EN,
            NLI_LABELS,
            train="train",
            dev="validation_matched",
        ),
        local=MNLI_FILES,
    ),
    TaskDef(
        "pawsx",
        "classification",
        "target",
        "accuracy",
        fields=PAIR,
        protocol=protocol.PAWSX,
        parallel=True,  # xtreme's files drop the hub's shared ids but keep the rows aligned
        source=from_hub("pawsx", "google-research-datasets/paws-x", "{lang}", _paws, _L["pawsx"], PAWSX_LABELS, **HUB),
        local=from_files(
            "pawsx",
            "pawsx",
            partial(_pairs, labels=PAWSX_LABELS, aligned=True),
            _L["pawsx"],
            PAWSX_LABELS,
            **XTREME_TSV,
        ),
    ),
    TaskDef(
        "udpos",
        "tagging",
        "target",
        _TAGGING,
        fields=("tokens",),
        protocol=protocol.TAGGING,
        source=from_hub(
            "udpos",
            "google/xtreme",
            _udpos_config,
            _tagged("pos_tags", UPOS_TAGS),
            tuple(lang for lang in _L["udpos"] if lang in UDPOS_HUB_NAMES),
            UPOS_TAGS,
            **HUB,
        ),
        local=from_files("udpos", "udpos", partial(read_conll, tags=UPOS_TAGS), _L["udpos"], UPOS_TAGS, **XTREME_TSV),
    ),
    TaskDef(
        "panx",
        "tagging",
        "target",
        _TAGGING,
        fields=("tokens",),
        protocol=protocol.TAGGING,
        source=from_hub(
            "panx", "unimelb-nlp/wikiann", "{lang}", _tagged("ner_tags", PANX_TAGS), _L["panx"], PANX_TAGS, **HUB
        ),
        local=from_files(
            "panx", "panx", partial(read_conll, tags=PANX_TAGS, lang_prefix=True), _L["panx"], PANX_TAGS, **XTREME_TSV
        ),
    ),
    TaskDef(
        "squad_v1",
        "span_qa",
        "intermediate",
        "squad",
        fields=QA,
        source=from_hub("squad_v1", "rajpurkar/squad", "plain_text", squad_record, EN, train="train", dev="validation"),
        local=from_files("squad_v1", "squad", read_squad_json, EN, train="train-v1.1.json", dev="dev-v1.1.json"),
    ),
    TaskDef(
        "xquad",
        "span_qa",
        "target",
        "squad",
        fields=QA,
        train_task="squad_v1",
        protocol=protocol.QA,
        parallel=True,  # SQuAD v1.1 dev questions, translated with their ids
        source=from_hub(
            "xquad", "google/xquad", "xquad.{lang}", _shared_ids(squad_record), _L["xquad"], test="validation"
        ),
        local=from_files("xquad", "xquad", _read_parallel_squad, _L["xquad"], test="xquad.{lang}.json"),
    ),
    TaskDef(
        "mlqa",
        "span_qa",
        "target",
        "mlqa",
        fields=QA,
        train_task="squad_v1",
        protocol=protocol.QA,
        parallel=True,  # an instance keeps its id in each language it was translated into
        source=from_hub(
            "mlqa",
            "google/xtreme",
            "MLQA.{lang}.{lang}",
            _shared_ids(squad_record),
            _L["mlqa"],
            dev="validation",
            test="test",
        ),
        local=from_files(
            "mlqa",
            "mlqa",
            _read_parallel_squad,
            _L["mlqa"],
            dev="MLQA_V1/dev/dev-context-{lang}-question-{lang}.json",
            test="MLQA_V1/test/test-context-{lang}-question-{lang}.json",
        ),
    ),
    TaskDef(  # TyDiQA-GoldP has no English dev set but the test one: dev is the English GoldP dev file
        "tydiqa",
        "span_qa",
        "target",
        "squad",
        fields=QA,
        protocol=protocol.QA,
        source=from_hub(
            "tydiqa",
            "google/xtreme",
            "tydiqa",
            _tydiqa_record,
            _L["tydiqa"],
            train="train",
            dev="validation",
            test="validation",
        ),
        local=from_files(
            "tydiqa",
            "tydiqa",
            _read_tydiqa,
            _L["tydiqa"],
            train="tydiqa-goldp-v1.1-train/tydiqa-goldp-v1.1-train.json",
            dev=_tydiqa_dev,
            test=_tydiqa_dev,
        ),
    ),
)
