"""Property-based fuzzing of every reader of official-format data files (TSV pairs, CoNLL, SQuAD JSON, the
intermediate tasks' JSONL/TSV/CSV, the retrieval and multiple-choice tasks' files, raw text, JSON lines):
random bytes and random structurally valid documents give examples or a one-line UserError, nothing else."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import pytest
from fuzz_support import (
    FUZZ,
    clean,
    folder,
    json_values,
    jsonl_doc,
    random_bytes,
    records,
    short_text,
    tricky_text,
    write,
)
from hypothesis import given
from hypothesis import strategies as st

from xstilts.data import official_intermediate as oi
from xstilts.data import official_retrieval as orr
from xstilts.data.files import read_json, read_jsonl, read_lines, read_text
from xstilts.data.raw_text import RawTextSource
from xstilts.data.readers import NLI_LABELS, read_conll, read_squad_json, read_squad_v2, read_tsv_pairs

# ---------------------------------------------------------------- the readers, each given a folder and its files

Reader = Callable[[Path, tuple], object]


def _one(name: str, read: Callable[[Path], object]) -> Reader:
    """A reader of one file called ``name``."""
    return lambda d, docs: read(write(d / name, docs[0]))


def _mewslix(d: Path, docs: tuple) -> object:
    return orr.read_mewslix(write(d / "wikinews_mentions-test.jsonl", docs[0]), "test", "de")


def _lareqa(d: Path, docs: tuple) -> object:
    for lang, doc in zip(("de", "en"), docs):
        write(d / "lareqa" / "xquad-r" / f"{lang}.json", doc)
    files = orr.lareqa_files(d, ("de", "en"))
    return files.load("test", "de"), files.candidates("test")


def _bucc(d: Path, docs: tuple) -> object:
    for ext, doc in zip(("de", "en", "gold"), docs):
        write(d / f"de-en.test.{ext}", doc)
    return orr.read_bucc(d / "de-en.test.de", "test", "de")


def _tatoeba(d: Path, docs: tuple) -> object:
    write(d / "tatoeba.deu-eng.eng", docs[1])
    return orr.read_tatoeba(write(d / "tatoeba.deu-eng.deu", docs[0]), "test", "de")


def _siqa_labels(d: Path, docs: tuple) -> object:
    write(d / "dev-labels.lst", docs[1])
    return orr.read_siqa(write(d / "dev.jsonl", docs[0]), "dev", "en")


def _raw_text(d: Path, docs: tuple) -> object:
    src = RawTextSource({"en": write(d / "en.txt", docs[0]), "de": write(d / "de.txt", docs[1])}, dev_fraction=0.3)
    return src.load("train", "en"), src.load("dev", "en"), src.checksum("train", "en")


def _ccg_tags(d: Path, docs: tuple) -> object:
    write(d / "ccg.train", docs[0])
    write(d / "ccg.dev", docs[1])
    return oi.TagsFromData(d, lambda s, lang: f"ccg.{s}", oi.read_ccg, ("en",)).labels()


READERS: dict[str, Reader] = {
    "read_text": _one("f.txt", read_text),
    "read_lines": _one("f.txt", read_lines),
    "read_json": _one("f.json", read_json),
    "read_jsonl": _one("f.jsonl", read_jsonl),
    "tsv_pairs": _one("dev-de.tsv", lambda p: read_tsv_pairs(p, "test", "de", labels=NLI_LABELS)),
    "tsv_pairs_header": _one(
        "dev.tsv",
        lambda p: read_tsv_pairs(
            p, "dev", "en", columns=("sentence1", "sentence2", "gold_label"), header=True, quoting=csv.QUOTE_NONE
        ),
    ),
    "conll": _one("test-de.tsv", lambda p: read_conll(p, "test", "de", tags=("O", "B-PER", "I-PER"), lang_prefix=True)),
    "conll_any_tag": _one("dev-de.tsv", lambda p: read_conll(p, "dev", "de")),
    "squad_json": _one("squad.json", lambda p: read_squad_json(p, "train", "en")),
    "squad_json_prefix": _one("tydiqa.json", lambda p: read_squad_json(p, "train", "en", id_prefix="english")),
    "squad_v2": _one("dev-v2.0.json", lambda p: read_squad_v2(p, "dev", "en")),
    "anli": _one("train.jsonl", lambda p: oi.read_anli(p, "train", "en")),
    "snli": _one("snli.jsonl", lambda p: oi.read_snli(p, "train", "en")),
    "qqp": _one("train.tsv", lambda p: oi.read_qqp(p, "train", "en")),
    "sst2": _one("train.tsv", lambda p: oi.read_sst2(p, "train", "en")),
    "hellaswag": _one("hellaswag.jsonl", lambda p: oi.read_hellaswag(p, "train", "en")),
    "commonsenseqa": _one("train_rand_split.jsonl", lambda p: oi.read_commonsenseqa(p, "train", "en")),
    "cosmosqa": _one("train.csv", lambda p: oi.read_cosmosqa(p, "train", "en")),
    "ccg": _one("ccg.train", lambda p: oi.read_ccg(p, "train", "en")),
    "ccg_tags": _ccg_tags,
    "tatoeba": _tatoeba,
    "bucc": _bucc,
    "lareqa": _lareqa,
    "mewslix": _mewslix,
    "mewslix_candidates": _one("candidate_set_entities.jsonl", orr.read_mewslix_candidates),
    "copa": _one("val.de.jsonl", lambda p: orr.read_copa(p, "dev", "de")),
    "siqa_letters": _one("socialIQa_v1.4_dev.jsonl", lambda p: orr.read_siqa(p, "dev", "en")),
    "siqa_labels": _siqa_labels,
    "raw_text": _raw_text,
}
FILES = {"lareqa": 2, "bucc": 3, "tatoeba": 2, "siqa_labels": 2, "raw_text": 2, "ccg_tags": 2}  # others: 1


def _run(name: str, docs: tuple) -> None:
    with folder() as d:
        clean(lambda: READERS[name](d, docs))


@pytest.mark.parametrize("name", sorted(READERS))
@FUZZ
@given(data=st.data())
def test_reader_random_bytes(name, data):
    _run(name, data.draw(st.tuples(*[random_bytes] * FILES.get(name, 1))))


# ---------------------------------------------------------------- structurally valid documents per format

line_end = st.sampled_from(["\n", "\r\n", "\r"])


def lines(line: st.SearchStrategy[str], max_size: int = 6) -> st.SearchStrategy[str]:
    return st.builds(
        lambda ls, nl, end: nl.join(ls) + end, st.lists(line, max_size=max_size), line_end, st.sampled_from(["", "\n"])
    )


def cell(*words: str) -> st.SearchStrategy[str]:
    return st.sampled_from(words) | short_text if words else short_text


def tsv(columns: tuple[str, ...], values: st.SearchStrategy[str], *, quoted: bool, delimiter: str = "\t"):
    """A table: a header (the columns in some order, maybe one missing or extra) then rows, mostly as wide."""
    header = st.permutations(columns).flatmap(
        lambda cols: st.lists(st.sampled_from(cols) | short_text, max_size=2).map(lambda extra: [*cols, *extra])
    ) | st.lists(cell(*columns), max_size=len(columns) + 1)

    def table(head, draw_rows):
        rows = [head, *draw_rows]
        if quoted:
            out = io.StringIO()
            csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
            return out.getvalue()
        return "\n".join(delimiter.join(r) for r in rows)

    return header.flatmap(
        lambda head: st.lists(
            st.lists(values, min_size=len(head), max_size=len(head)) | st.lists(values, max_size=len(head) + 1),
            max_size=5,
        ).map(lambda rows: table(head, rows))
    )


def without_header(doc: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return doc.map(lambda text: text.split("\n", 1)[1] if "\n" in text else "")


nli = cell(*NLI_LABELS)
ints = st.integers(-2, 6) | st.sampled_from(["0", "1", "3", "²", " 1"])
spans = st.lists(records({"start": st.integers(-1, 12), "end": st.integers(-1, 14)}), max_size=3)
answers = st.lists(records({"text": cell("a", "b c", ""), "answer_start": st.integers(-1, 10)}), max_size=2)
qas = st.lists(
    records(
        {
            "id": cell("q1", "q2", "english-1", "english-2"),
            "question": tricky_text,
            "answers": answers,
            "is_impossible": st.booleans(),
        }
    ),
    max_size=3,
)
paragraphs = st.lists(
    records(
        {
            "context": cell("a b c. d e.", "b c a", ""),
            "qas": qas,
            "sentence_breaks": st.lists(
                st.lists(st.integers(-1, 12), min_size=2, max_size=2) | json_values, max_size=3
            ),
        }
    ),
    max_size=3,
)
squad = records({"data": st.lists(records({"paragraphs": paragraphs, "title": tricky_text}), max_size=3)}).map(
    lambda d: __import__("json").dumps(d, ensure_ascii=False)
)
conll_line = st.builds(
    lambda tok, tag, sep: f"{tok}{sep}{tag}",
    cell("de:Berlin", "de:", "Berlin", "en:x", ""),
    cell("O", "B-PER", "I-PER", "NOUN"),
    st.sampled_from(["\t", "\t", " ", "\t\t"]),
)
ccg_line = (
    st.builds(
        lambda toks, tags: " ".join(toks) + "\t" + " ".join(tags),
        st.lists(cell("a", "b"), max_size=4),
        st.lists(cell("N", "S\\NP", "(S/NP)"), max_size=4),
    )
    | short_text
)
bucc_line = st.builds(lambda i, s: f"{i}\t{s}", cell("de-1", "de-2", "en-1", "en-2", ""), short_text) | short_text
gold_line = st.builds(lambda a, b: f"{a}\t{b}", cell("de-1", "de-2"), cell("en-1", "en-2")) | short_text
texts4 = st.lists(tricky_text, min_size=3, max_size=5)
siqa = records(
    {
        "context": tricky_text,
        "question": tricky_text,
        "answerA": tricky_text,
        "answerB": tricky_text,
        "answerC": tricky_text,
        "correct": cell("A", "B", "C", "D"),
    }
)
mention = records(
    {
        "mention_span": records({"start": st.integers(-1, 12), "end": st.integers(-1, 14), "text": cell("a", "b c")}),
        "example_id": cell("m1", "m2"),
        "entity_id": cell("Q1", "Q2"),
    }
)
mewslix_doc = records(
    {
        "context": records(
            {"language": cell("de", "en"), "text": cell("a b c. a {x}.", "", "b c"), "sentence_spans": spans}
        ),
        "mentions": st.lists(mention, max_size=3),
    }
)

DOCS: dict[str, st.SearchStrategy[tuple]] = {
    "read_text": st.tuples(tricky_text),
    "read_lines": st.tuples(lines(tricky_text)),
    "read_json": st.tuples(json_values.map(__import__("json").dumps)),
    "read_jsonl": st.tuples(jsonl_doc(records({"id": json_values, "text": tricky_text}))),
    "tsv_pairs": st.tuples(without_header(tsv(("text_a", "text_b", "label"), nli, quoted=True))),
    "tsv_pairs_header": st.tuples(tsv(("sentence1", "sentence2", "gold_label"), nli, quoted=False)),
    "conll": st.tuples(lines(conll_line | st.just("") | short_text, 8)),
    "conll_any_tag": st.tuples(lines(conll_line | st.just(""), 8)),
    "squad_json": st.tuples(squad),
    "squad_json_prefix": st.tuples(squad),
    "squad_v2": st.tuples(squad),
    "anli": st.tuples(
        jsonl_doc(
            records(
                {
                    "uid": cell("u1", "u2"),
                    "context": tricky_text,
                    "hypothesis": tricky_text,
                    "label": cell("e", "n", "c"),
                }
            )
        )
    ),
    "snli": st.tuples(
        jsonl_doc(records({"sentence1": tricky_text, "sentence2": tricky_text, "gold_label": cell(*NLI_LABELS, "-")}))
    ),
    "qqp": st.tuples(
        tsv(("id", "qid1", "qid2", "question1", "question2", "is_duplicate"), cell("0", "1", "2"), quoted=False)
    ),
    "sst2": st.tuples(tsv(("sentence", "label"), cell("0", "1", "²"), quoted=False)),
    "hellaswag": st.tuples(
        jsonl_doc(
            records({"ind": st.integers(-1, 3) | cell("1"), "ctx": tricky_text, "endings": texts4, "label": ints})
        )
    ),
    "commonsenseqa": st.tuples(
        jsonl_doc(
            records(
                {
                    "id": cell("c1", "c2"),
                    "answerKey": cell("A", "B", "E", "F"),
                    "question": records(
                        {
                            "stem": tricky_text,
                            "choices": st.lists(
                                records({"label": cell("A", "B", "C", "D", "E"), "text": tricky_text}),
                                min_size=4,
                                max_size=6,
                            ),
                        }
                    ),
                }
            )
        )
    ),
    "cosmosqa": st.tuples(tsv(oi.COSMOSQA_COLUMNS, cell("0", "1", "3", "4", "x1"), quoted=True, delimiter=",")),
    "ccg": st.tuples(lines(ccg_line)),
    "ccg_tags": st.tuples(lines(ccg_line), lines(ccg_line)),
    "tatoeba": st.tuples(lines(tricky_text), lines(tricky_text)),
    "bucc": st.tuples(lines(bucc_line), lines(bucc_line), lines(gold_line)),
    "lareqa": st.tuples(squad, squad),
    "mewslix": st.tuples(jsonl_doc(mewslix_doc)),
    "mewslix_candidates": st.tuples(
        jsonl_doc(
            records(
                {
                    "entity_id": cell("Q1", "Q2"),
                    "description": cell("a b c. d.", "", "x"),
                    "description_language": cell("en"),
                    "sentence_spans": spans,
                }
            )
        )
    ),
    "copa": st.tuples(
        jsonl_doc(
            records(
                {
                    "premise": tricky_text,
                    "choice1": tricky_text,
                    "choice2": tricky_text,
                    "question": cell("cause", "effect"),
                    "label": st.integers(-1, 2),
                    "idx": st.integers(0, 3),
                }
            )
        )
    ),
    "siqa_letters": st.tuples(jsonl_doc(siqa)),
    "siqa_labels": st.tuples(jsonl_doc(siqa), lines(cell("1", "2", "3", "4", "", "²"))),
    "raw_text": st.tuples(lines(tricky_text), lines(tricky_text)),
}


def test_every_reader_has_documents():
    assert set(DOCS) == set(READERS)


@pytest.mark.parametrize("name", sorted(READERS))
@FUZZ
@given(data=st.data())
def test_reader_structured(name, data):
    _run(name, data.draw(DOCS[name]))
