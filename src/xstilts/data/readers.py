"""Readers of official file formats: tab-separated sentence pairs, token/tag columns (CoNLL style) and SQuAD JSON
(v1.1 and 2.0), and the helpers every official-layout reader shares: ``get_field`` and ``check_label``. Each
reader returns xstilts examples; every error is one line naming the file and the line (or, in JSON, the record).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from xstilts.data.files import read_json, read_text
from xstilts.data.items import ITEM, row_key
from xstilts.errors import UserError

NLI_LABELS = ("entailment", "neutral", "contradiction")  # the hub's class ids 0, 1, 2 (MNLI, XNLI, SNLI, ANLI)
_NO_GOLD = "xtreme's download_data.sh strips test labels; use files that keep them"


def get_field(obj, key: str, where: str, kind: type = str):
    """``obj[key]`` of type ``kind`` (a bool is no int), or a UserError naming ``where`` (file and line or record)."""
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise UserError(f"{where}: expected {key!r} to be {kind.__name__}, found {type(value).__name__}")
    return value


def check_label(path: Path, line: int, label: str, labels: Sequence[str] | None, what: str = "label") -> None:
    """A UserError naming file and line unless ``label`` is one of ``labels`` (None: any label)."""
    if labels is not None and label not in labels:
        raise UserError(f"{path}:{line}: {what} {label!r} is not one of {', '.join(labels)}")


# ---------------------------------------------------------------- TSV and CoNLL


def read_tsv_pairs(
    path: Path,
    split: str,
    language: str,
    *,
    columns: Sequence[str] = ("text_a", "text_b", "label"),
    header: bool = False,
    labels: Sequence[str] | None = None,
    quoting: int = csv.QUOTE_MINIMAL,
    aligned: bool = False,
) -> list[dict]:
    """Sentence pairs ``{"id", "text_a", "text_b", "label"}`` from a tab-separated file.

    Without ``header`` the file has exactly ``len(columns)`` columns: first text, second text, label (xtreme's
    ``xnli/`` and ``pawsx/`` files, written by ``csv.writer``: CRLF, quotes doubled). With ``header``,
    ``columns`` name the header's columns holding the two texts and the label, and every row has as many
    columns as the header (GLUE's ``MNLI/*.tsv``, read with ``quoting=csv.QUOTE_NONE``). Ids are
    ``<split>-<language>-<row>``, counting rows from 0 as xtreme does. With ``aligned`` (every language's file
    lists the same items in the same order) each example also carries its row's item key (``items.row_key``).
    """
    rows = csv.reader(io.StringIO(read_text(path), newline=""), delimiter="\t", quoting=quoting, strict=True)
    names, index = list(columns), [0, 1, 2]
    examples: list[dict] = []
    try:
        if header:
            names = next(rows, [])
            missing = [c for c in columns if c not in names]
            if missing:
                raise UserError(f"{path}:1: header lacks column(s) {', '.join(missing)}")
            index = [names.index(c) for c in columns]
        line = rows.line_num + 1  # where the next row starts
        for row in rows:
            start, line = line, rows.line_num + 1
            if not row:
                continue
            if len(row) != len(names):
                hint = f"; {_NO_GOLD}" if len(row) == len(names) - 1 and split == "test" and not header else ""
                raise UserError(
                    f"{path}:{start}: {len(row)} tab-separated columns, expected {len(names)} "
                    f"({', '.join(names)}){hint}"
                )
            a, b, label = (row[i] for i in index)
            check_label(path, start, label, labels)
            row = len(examples)
            example = {"id": f"{split}-{language}-{row}", "text_a": a, "text_b": b, "label": label}
            examples.append(example | ({ITEM: row_key(split, row)} if aligned else {}))
    except csv.Error as e:
        raise UserError(f"{path}:{rows.line_num}: malformed TSV: {e}") from None
    return examples


def read_conll(
    path: Path, split: str, language: str, *, tags: Sequence[str] | None = None, lang_prefix: bool = False
) -> list[dict]:
    """Sentences ``{"id", "tokens", "tags"}`` from ``token<TAB>tag`` lines, a blank line between sentences
    (xtreme's ``udpos/`` and ``panx/`` files). With ``lang_prefix``, a file whose first token starts with
    ``<language>:`` is raw WikiANN: every token must carry that prefix, and it is removed. Ids are
    ``<split>-<language>-<sentence>``."""
    prefix = f"{language}:"
    examples: list[dict] = []
    tokens: list[str] = []
    labels: list[str] = []
    raw = None

    def flush() -> None:
        if tokens:
            examples.append({"id": f"{split}-{language}-{len(examples)}", "tokens": tokens[:], "tags": labels[:]})
            tokens.clear()
            labels.clear()

    for n, line in enumerate(read_text(path).split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            flush()
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            hint = f"; {_NO_GOLD}" if len(parts) == 1 and split == "test" else ""
            raise UserError(f"{path}:{n}: {len(parts)} tab-separated columns, expected 2 (token, tag){hint}")
        token, tag = parts
        if lang_prefix:
            if raw is None:
                raw = token.startswith(prefix)
            if raw:
                if not token.startswith(prefix):
                    raise UserError(f"{path}:{n}: token {token!r} lacks the {prefix!r} prefix of the other tokens")
                token = token[len(prefix) :]
        check_label(path, n, tag, tags, "tag")
        tokens.append(token)
        labels.append(tag)
    flush()
    return examples


# ---------------------------------------------------------------- SQuAD JSON


@dataclass(frozen=True)
class SquadQuestion:
    """A question of a SQuAD-format file with its answers' texts and starts (none: SQuAD 2.0's unanswerable);
    ``where`` is ``<file>: data[i].paragraphs[j].qas[k]``."""

    where: str
    id: str
    question: str
    context: str
    texts: tuple[str, ...]
    starts: tuple[int, ...]

    def example(self) -> dict:
        """The span-QA example ``{"id", "question", "context", "answers": {"text", "answer_start"}}``."""
        return {
            "id": self.id,
            "question": self.question,
            "context": self.context,
            "answers": {"text": list(self.texts), "answer_start": list(self.starts)},
        }


@dataclass(frozen=True)
class SquadParagraph:
    """A paragraph of a SQuAD-format file; ``raw`` is its JSON object, for keys beyond SQuAD's (XQuAD-R's
    ``sentence_breaks``), and ``where`` is ``<file>: data[i].paragraphs[j]``."""

    where: str
    context: str
    questions: tuple[SquadQuestion, ...]
    raw: dict


def squad_paragraphs(path: Path, *, unanswerable: bool = False) -> Iterator[SquadParagraph]:
    """The paragraphs of a SQuAD-format JSON file (``data > paragraphs > context, qas > id, question, answers >
    text, answer_start``) in file order. Question ids are unique in the file, and every question has answers
    but, with ``unanswerable`` (SQuAD 2.0), one marked ``is_impossible``, which has none."""
    seen: set[str] = set()
    for i, article in enumerate(get_field(read_json(path), "data", f"{path}: top level", list)):
        for j, par in enumerate(get_field(article, "paragraphs", f"{path}: data[{i}]", list)):
            where = f"{path}: data[{i}].paragraphs[{j}]"
            context = get_field(par, "context", where)
            questions = []
            for k, qa in enumerate(get_field(par, "qas", where, list)):
                at = f"{where}.qas[{k}]"
                qid = get_field(qa, "id", at)
                if qid in seen:
                    raise UserError(f"{at}: id {qid!r} appears twice")
                seen.add(qid)
                question = get_field(qa, "question", at)
                if unanswerable and "is_impossible" in qa and get_field(qa, "is_impossible", at, bool):
                    answers = []
                elif not (answers := get_field(qa, "answers", at, list)):
                    raise UserError(f"{at} (id {qid}): no answers")
                texts = tuple(get_field(a, "text", f"{at}.answers[{x}]") for x, a in enumerate(answers))
                starts = tuple(get_field(a, "answer_start", f"{at}.answers[{x}]", int) for x, a in enumerate(answers))
                questions.append(SquadQuestion(at, qid, question, context, texts, starts))
            yield SquadParagraph(where, context, tuple(questions), par)


def read_squad_json(path: Path, split: str, language: str, *, id_prefix: str | None = None) -> list[dict]:
    """Questions (``SquadQuestion.example``) of a SQuAD v1.1 JSON file (SQuAD, XQuAD, MLQA, TyDiQA-GoldP):
    every question has answers, none empty. With ``id_prefix``, only the questions whose id starts with it
    (one language of TyDiQA-GoldP's combined train file)."""
    examples: list[dict] = []
    for par in squad_paragraphs(path):
        for q in par.questions:
            if id_prefix is not None and not q.id.startswith(id_prefix):
                continue
            for a, (text, start) in enumerate(zip(q.texts, q.starts, strict=True)):
                if not text or start < 0:
                    raise UserError(
                        f"{q.where}.answers[{a}] (id {q.id}): empty answer text or negative start; {_NO_GOLD}"
                    )
            examples.append(q.example())
    if id_prefix is not None and not examples:
        raise UserError(f"{path}: no question id starts with {id_prefix!r}")
    return examples


def read_squad_v2(path: Path, split: str, language: str) -> list[dict]:
    """Questions (``SquadQuestion.example``) of a SQuAD 2.0 JSON file: an ``is_impossible`` one has empty answer
    lists (its ``plausible_answers`` are not gold)."""
    return [q.example() for par in squad_paragraphs(path, unanswerable=True) for q in par.questions]
