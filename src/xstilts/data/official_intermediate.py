"""Readers of the official files of the paper's English intermediate tasks, and ``ConcatSource``.

Paths are relative to ``data_dir``. Record schemas per ``load(split, "en")``:

anli_plus (classification, ``{"id", "text_a", "text_b", "label"}``): ANLI v1.0's
    ``anli_v1.0/R{1,2,3}/{train,dev}.jsonl`` (uid, context, hypothesis, label "e"/"n"/"c"), SNLI's
    ``snli_1.0/snli_1.0_train.jsonl`` (sentence1, sentence2, gold_label; "-" rows, which have no
    gold label, are skipped) and GLUE's ``MNLI/train.tsv`` (the mnli task's reader).
squad_v2 (span_qa): ``squad/{train,dev}-v2.0.json`` (``xstilts.data.readers.read_squad_v2``); an
    ``is_impossible`` question has empty answer lists.
hellaswag, commonsenseqa, cosmosqa (multiple_choice, ``{"id", "question", "choices", "label": index}``):
    ``hellaswag/hellaswag_{train,val}.jsonl`` (question ``ctx``, choices ``endings``, id ``ind``);
    ``commonsenseqa/{train,dev}_rand_split.jsonl`` (question ``question.stem``, choices
    ``question.choices`` in file order, label the index of ``answerKey``);
    ``cosmosqa/{train,valid}.csv`` (question ``context + " " + question`` as jiant, choices answer0..3).
ccg (tagging, ``{"id", "tokens", "tags"}``): jiant's ``ccg/ccg.{train,dev}`` as its
    ``scripts/ccg/ccg_proc.py`` writes them from CCGbank: one sentence a line, ``tokens<TAB>tags``, each
    space-separated. The tag set is the sorted tags of both files (``TagsFromData``): CCGbank's dev sections
    hold categories its train sections lack, and the tagging format refuses gold tags outside the set.
sst2, qqp (classification): GLUE's ``SST-2/{train,dev}.tsv`` (sentence, label 0/1) and
    ``QQP/{train,dev}.tsv`` (id, qid1, qid2, question1, question2, is_duplicate) of ``QQP-clean.zip``.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from xstilts.data.files import jsonl_rows, read_text
from xstilts.data.local import LocalFiles
from xstilts.data.readers import NLI_LABELS, check_label, get_field, read_tsv_pairs
from xstilts.data.sources import Source
from xstilts.errors import UserError

ANLI_LABELS = {"e": "entailment", "n": "neutral", "c": "contradiction"}
QQP_LABELS = ("not_duplicate", "duplicate")  # is_duplicate 0, 1
SST2_LABELS = ("negative", "positive")  # label 0, 1


# ---------------------------------------------------------------- sources


@dataclass(frozen=True)
class Part:
    """One source of a ConcatSource, named for its ids, holding ``splits``."""

    name: str
    source: Source
    splits: tuple[str, ...] = ("train", "dev")


@dataclass(frozen=True)
class ConcatSource:
    """Several sources read as one: a split is the concatenation of the parts that hold it, in order, ids
    prefixed ``<part>-``; the checksum combines the parts'."""

    parts: tuple[Part, ...]
    label_set: tuple[str, ...] | None = None
    langs: tuple[str, ...] = ("en",)

    def _parts(self, split: str) -> list[Part]:
        parts = [p for p in self.parts if split in p.splits]
        if not parts:
            have = sorted({s for p in self.parts for s in p.splits})
            raise UserError(f"{self.describe()} has no {split} split (it has {', '.join(have)})")
        return parts

    def languages(self) -> tuple[str, ...]:
        return self.langs

    def labels(self) -> tuple[str, ...] | None:
        return self.label_set

    def load(self, split: str, language: str) -> list[dict]:
        return [
            {**ex, "id": f"{p.name}-{ex['id']}"} for p in self._parts(split) for ex in p.source.load(split, language)
        ]

    def checksum(self, split: str, language: str) -> str:
        text = "\n".join(f"{p.name}:{p.source.checksum(split, language)}" for p in self._parts(split))
        return hashlib.sha256(text.encode()).hexdigest()

    def describe(self) -> str:
        return "concat(" + ", ".join(f"{p.name}={p.source.describe()}" for p in self.parts) + ")"


@dataclass(frozen=True)
class TagsFromData(LocalFiles):
    """LocalFiles whose label set is the sorted tags of the ``tag_splits`` files (train must exist; the others
    count when present), read once."""

    tag_splits: tuple[str, ...] = ("train", "dev")

    @cached_property
    def _tags(self) -> tuple[str, ...]:
        lang, tags = self.langs[0], set()
        for split in self.tag_splits:
            if split == "train" or (Path(self.root) / self.path(split, lang)).is_file():
                tags.update(t for ex in self.load(split, lang) for t in ex["tags"])
        return tuple(sorted(tags))

    def labels(self) -> tuple[str, ...]:
        return self._tags


# ---------------------------------------------------------------- helpers


def _unique(examples: list[dict], where: list[str]) -> list[dict]:
    seen: set[str] = set()
    for ex, at in zip(examples, where):
        if ex["id"] in seen:
            raise UserError(f"{at}: id {ex['id']!r} appears twice")
        seen.add(ex["id"])
    return examples


def jsonl_reader(convert: Callable[[dict, str], dict | None]) -> Callable[[Path, str, str], list[dict]]:
    """A reader of a JSON-lines file: ``convert(object, "<file>:<line>")`` per line (None skips it); ids must
    be unique, and an example whose id is None is numbered ``<split>-<language>-<i>``."""

    def read(path: Path, split: str, language: str) -> list[dict]:
        out, where = [], []
        for n, row in jsonl_rows(path):
            if (ex := convert(row, f"{path}:{n}")) is not None:
                ex["id"] = ex["id"] if ex["id"] is not None else f"{split}-{language}-{len(out)}"
                out.append(ex)
                where.append(f"{path}:{n}")
        return _unique(out, where)

    return read


def _choice(label, n: int, where: str) -> int:
    """An answer index 0..n-1 from an int or a digit string (the hub's HellaSwag labels)."""
    value = int(label) if isinstance(label, str) and label.isdigit() else label
    if type(value) is not int or not 0 <= value < n:
        raise UserError(f"{where}: label {label!r} is not an answer index 0..{n - 1}")
    return value


def _texts(row: dict, key: str, n: int, where: str) -> list[str]:
    value = row.get(key) if isinstance(row, dict) else None
    if not (isinstance(value, list) and len(value) == n and all(isinstance(x, str) for x in value)):
        raise UserError(f"{where}: expected {key!r} to be a list of {n} strings")
    return list(value)


# ---------------------------------------------------------------- NLI


def anli_record(row: dict, where: str) -> dict:
    label = get_field(row, "label", where)
    if label not in ANLI_LABELS:
        raise UserError(f"{where}: label {label!r} is not one of e, n, c")
    return {
        "id": get_field(row, "uid", where),
        "text_a": get_field(row, "context", where),
        "text_b": get_field(row, "hypothesis", where),
        "label": ANLI_LABELS[label],
    }


def snli_record(row: dict, where: str) -> dict | None:
    label = get_field(row, "gold_label", where)
    if label == "-":  # no majority among the annotators: no gold label
        return None
    if label not in NLI_LABELS:
        raise UserError(f"{where}: gold_label {label!r} is not one of {', '.join(NLI_LABELS)} or '-'")
    return {
        "id": None,
        "text_a": get_field(row, "sentence1", where),
        "text_b": get_field(row, "sentence2", where),
        "label": label,
    }  # numbered: pairID is not known to be unique


read_anli, read_snli = jsonl_reader(anli_record), jsonl_reader(snli_record)


# ---------------------------------------------------------------- GLUE QQP, SST-2


def read_qqp(path: Path, split: str, language: str) -> list[dict]:
    """GLUE ``QQP/<split>.tsv``. A row whose column count is off is an error: QQP-clean.zip (GLUE's current
    download, 363,846 train rows as the hub) has none; the older QQP.zip does."""
    try:
        rows = read_tsv_pairs(
            path,
            split,
            language,
            columns=("question1", "question2", "is_duplicate"),
            header=True,
            labels=("0", "1"),
            quoting=csv.QUOTE_NONE,
        )
    except UserError as e:
        raise UserError(f"{e} (GLUE's QQP-clean.zip has no such rows; the old QQP.zip has)") from None
    return [{**ex, "label": QQP_LABELS[int(ex["label"])]} for ex in rows]


def read_sst2(path: Path, split: str, language: str) -> list[dict]:
    """GLUE ``SST-2/<split>.tsv``: header ``sentence<TAB>label``, label 0 or 1, no quoting (as GLUE and the hub
    read it). Ids ``<split>-<language>-<row>``."""
    lines = read_text(path).split("\n")
    if lines[0].rstrip("\r").split("\t") != ["sentence", "label"]:
        raise UserError(f"{path}:1: expected the header 'sentence<TAB>label'")
    out = []
    for n, line in enumerate(lines[1:], 2):
        if not (line := line.rstrip("\r")):
            continue
        if len(row := line.split("\t")) != 2:
            raise UserError(f"{path}:{n}: {len(row)} tab-separated columns, expected 2 (sentence, label)")
        check_label(path, n, row[1], ("0", "1"))
        out.append({"id": f"{split}-{language}-{len(out)}", "text": row[0], "label": SST2_LABELS[int(row[1])]})
    return out


# ---------------------------------------------------------------- multiple choice


def hellaswag_record(row: dict, where: str) -> dict:
    """An official HellaSwag line (label an int) or a hub row (label a digit string)."""
    return {
        "id": str(get_field(row, "ind", where, int)),
        "question": get_field(row, "ctx", where),
        "choices": _texts(row, "endings", 4, where),
        "label": _choice(row.get("label"), 4, where),
    }


def commonsenseqa_record(row: dict, where: str) -> dict:
    """An official CommonsenseQA line: ``question: {stem, choices: [{label, text}]}``, ``answerKey``."""
    question = get_field(row, "question", where, dict)
    choices = get_field(question, "choices", where, list)
    keys = [get_field(c, "label", f"{where}: choices") for c in choices]
    texts = [get_field(c, "text", f"{where}: choices") for c in choices]
    return _commonsenseqa(
        get_field(row, "id", where),
        get_field(question, "stem", where),
        keys,
        texts,
        get_field(row, "answerKey", where),
        where,
    )


def _commonsenseqa(qid: str, stem: str, keys: list[str], texts: list[str], answer: str, where: str) -> dict:
    if len(keys) != 5 or len(set(keys)) != 5:
        raise UserError(f"{where}: expected 5 choices with distinct labels, found {keys}")
    if answer not in keys:
        raise UserError(f"{where}: answerKey {answer!r} is not one of the choice labels {', '.join(keys)}")
    return {"id": qid, "question": stem, "choices": texts, "label": keys.index(answer)}


def commonsenseqa_from_hub(row: dict, language: str) -> dict:
    """A ``tau/commonsense_qa`` row: question a string, ``choices: {label: [...], text: [...]}``."""
    where = f"hub row id={row.get('id')}"
    return _commonsenseqa(
        row["id"], row["question"], list(row["choices"]["label"]), list(row["choices"]["text"]), row["answerKey"], where
    )


COSMOSQA_COLUMNS = ("id", "context", "question", "answer0", "answer1", "answer2", "answer3", "label")


def cosmosqa_record(row: dict, where: str) -> dict:
    """A CosmosQA row (csv or hub): question ``context + " " + question``, as jiant."""
    question = f"{get_field(row, 'context', where)} {get_field(row, 'question', where)}"
    return {
        "id": get_field(row, "id", where),
        "question": question,
        "choices": [get_field(row, f"answer{x}", where) for x in range(4)],
        "label": _choice(row.get("label"), 4, where),
    }


def read_cosmosqa(path: Path, split: str, language: str) -> list[dict]:
    """CosmosQA's ``train.csv``/``valid.csv`` (comma-separated, a header, quoted fields)."""
    rows = csv.reader(io.StringIO(read_text(path), newline=""), strict=True)
    out, where = [], []
    try:
        header = next(rows, [])
        if missing := [c for c in COSMOSQA_COLUMNS if c not in header]:
            raise UserError(f"{path}:1: header lacks column(s) {', '.join(missing)}")
        line = rows.line_num + 1
        for row in rows:
            start, line = line, rows.line_num + 1
            if not row:
                continue
            if len(row) != len(header):
                raise UserError(
                    f"{path}:{start}: {len(row)} columns, expected {len(header)} ({', '.join(map(repr, header))})"
                )
            out.append(cosmosqa_record(dict(zip(header, row)), f"{path}:{start}"))
            where.append(f"{path}:{start}")
    except csv.Error as e:
        raise UserError(f"{path}:{rows.line_num}: malformed CSV: {e}") from None
    return _unique(out, where)


read_hellaswag, read_commonsenseqa = jsonl_reader(hellaswag_record), jsonl_reader(commonsenseqa_record)


# ---------------------------------------------------------------- CCG


def read_ccg(path: Path, split: str, language: str) -> list[dict]:
    """jiant's ``ccg.<split>``: ``tokens<TAB>tags`` a line, as many tags as tokens. Ids ``<split>-<sentence>``."""
    out = []
    for n, line in enumerate(read_text(path).split("\n"), 1):
        if not line.strip():
            continue
        parts = line.strip().split("\t")
        if len(parts) != 2:
            raise UserError(f"{path}:{n}: {len(parts)} tab-separated columns, expected 2 (tokens, tags)")
        tokens, tags = parts[0].split(), parts[1].split()
        if len(tokens) != len(tags) or not tokens:
            raise UserError(f"{path}:{n}: {len(tokens)} tokens but {len(tags)} tags")
        out.append({"id": f"{split}-{len(out)}", "tokens": tokens, "tags": tags})
    return out
