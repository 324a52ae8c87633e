"""Readers of the official file formats of XTREME's tasks: tab-separated sentence pairs, token/tag columns
(CoNLL style) and SQuAD JSON. Each returns xstilts examples; every error is one line naming the file and the
line (or, in JSON, the record)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

from xstilts.data.files import read_text
from xstilts.errors import UserError

_NO_GOLD = "xtreme's download_data.sh strips test labels; use files that keep them"


def _check_label(path: Path, line: int, label: str, labels: Sequence[str] | None, what: str = "label") -> None:
    if labels is not None and label not in labels:
        raise UserError(f"{path}:{line}: {what} {label!r} is not one of {', '.join(labels)}")


def read_tsv_pairs(path: Path, split: str, language: str, *, columns: Sequence[str] = ("text_a", "text_b", "label"),
                   header: bool = False, labels: Sequence[str] | None = None,
                   quoting: int = csv.QUOTE_MINIMAL) -> list[dict]:
    """Sentence pairs ``{"id", "text_a", "text_b", "label"}`` from a tab-separated file.

    Without ``header`` the file has exactly ``len(columns)`` columns: first text, second text, label (xtreme's
    ``xnli/`` and ``pawsx/`` files, written by ``csv.writer``: CRLF, quotes doubled). With ``header``,
    ``columns`` name the header's columns holding the two texts and the label, and every row has as many
    columns as the header (GLUE's ``MNLI/*.tsv``, read with ``quoting=csv.QUOTE_NONE``). Ids are
    ``<split>-<language>-<row>``, counting rows from 0 as xtreme does.
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
                raise UserError(f"{path}:{start}: {len(row)} tab-separated columns, expected {len(names)} "
                                f"({', '.join(names)}){hint}")
            a, b, label = (row[i] for i in index)
            _check_label(path, start, label, labels)
            examples.append({"id": f"{split}-{language}-{len(examples)}", "text_a": a, "text_b": b, "label": label})
    except csv.Error as e:
        raise UserError(f"{path}:{rows.line_num}: malformed TSV: {e}") from None
    return examples


def read_conll(path: Path, split: str, language: str, *, tags: Sequence[str] | None = None,
               lang_prefix: bool = False) -> list[dict]:
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
                token = token[len(prefix):]
        _check_label(path, n, tag, tags, "tag")
        tokens.append(token)
        labels.append(tag)
    flush()
    return examples


def _get(obj, key: str, kind: type, where: str, path: Path):
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise UserError(f"{path}: {where}: expected {key!r} to be {kind.__name__}, found {type(value).__name__}")
    return value


def read_squad_json(path: Path, split: str, language: str, *, id_prefix: str | None = None) -> list[dict]:
    """Questions ``{"id", "question", "context", "answers": {"text", "answer_start"}}`` from a SQuAD v1.1 JSON
    file (SQuAD, XQuAD, MLQA, TyDiQA-GoldP). With ``id_prefix``, only the questions whose id starts with it
    (one language of TyDiQA-GoldP's combined train file). Ids must be unique; answers must not be empty."""
    text = read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None
    examples: list[dict] = []
    seen: set[str] = set()
    for i, article in enumerate(_get(data, "data", list, "top level", path)):
        for j, par in enumerate(_get(article, "paragraphs", list, f"data[{i}]", path)):
            where = f"data[{i}].paragraphs[{j}]"
            context = _get(par, "context", str, where, path)
            for k, qa in enumerate(_get(par, "qas", list, where, path)):
                where = f"data[{i}].paragraphs[{j}].qas[{k}]"
                qid = _get(qa, "id", str, where, path)
                if id_prefix is not None and not qid.startswith(id_prefix):
                    continue
                question = _get(qa, "question", str, where, path)
                answers = _get(qa, "answers", list, where, path)
                if not answers:
                    raise UserError(f"{path}: {where} (id {qid}): no answers")
                texts, starts = [], []
                for a, ans in enumerate(answers):
                    texts.append(_get(ans, "text", str, f"{where}.answers[{a}]", path))
                    starts.append(_get(ans, "answer_start", int, f"{where}.answers[{a}]", path))
                    if not texts[-1] or starts[-1] < 0:
                        raise UserError(f"{path}: {where}.answers[{a}] (id {qid}): empty answer text or negative "
                                        f"start; {_NO_GOLD}")
                if qid in seen:
                    raise UserError(f"{path}: {where}: duplicate id {qid!r}")
                seen.add(qid)
                examples.append({"id": qid, "question": question, "context": context,
                                 "answers": {"text": texts, "answer_start": starts}})
    if id_prefix is not None and not examples:
        raise UserError(f"{path}: no question id starts with {id_prefix!r}")
    return examples
