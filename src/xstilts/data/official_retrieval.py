"""Readers of the official files of the retrieval and multiple-choice tasks of XTREME and XTREME-R.

Paths are relative to ``data_dir``, laid out as xtreme's download scripts leave ``download/``.
Record schemas, per ``load(split, language)``:

tatoeba (format "retrieval"), split "test": ``{"id": "<lang>-<i>", "source", "target", "item"}``, the
    non-English sentence and the English one of line i, keyed as an item by the English one (each language
    has its own English sentences: two languages share an item where they translate the same one). Read from
    LASER's line-aligned ``tatoeba/v1/tatoeba.<xxx>-eng.<xxx>`` and ``.eng`` (ISO 639-3 codes as xtreme maps
    them); xtreme's preprocessed ``tatoeba/<xx>-en.en`` is sorted, so it has lost the alignment and is not read.
bucc2018 (format "bucc"), splits "dev" (BUCC 2018 sample) and "test" (BUCC 2018 training), xtreme's names:
    one record per sentence, the other language first, then English, in file order:
    ``{"id": "de-000000001", "side": "src", "text", "gold": [English ids] or None}`` and
    ``{"id": "en-000000001", "side": "en", "text"}``. Files ``bucc2018/<lang>-en.<split>.<lang>``, ``.en``
    (``id<TAB>sentence``) and ``.gold`` (``src_id<TAB>en_id``). xtreme's download deletes the test gold;
    without it every "gold" is None (test can be mined, not scored); BUCC's ``<lang>-en.training.gold``
    copied to ``<lang>-en.test.gold`` makes it scorable. ``bucc_gold_pairs(records)`` gives the pairs.
lareqa and mewslix (format "answer_retrieval"): ``load`` gives one language's queries
    ``{"id", "kind": "query", "lang", "text", "relevant": [candidate ids]}``; the source's
    ``candidates(split)`` gives the one pool every language searches,
    ``{"id", "kind": "candidate", "lang", "text"}`` (LAReQA adds "context").
    lareqa, split "test": ``lareqa/xquad-r/<lang>.json`` of all 11 languages, read as xtreme's
    ``utils_lareqa.load_data``: a candidate is a sentence (``sentence_breaks``) of a paragraph with a kept
    question, id ``<lang>_<paragraph no.>_<sentence no.>``; a question (id ``<qa id>_<lang>``) is dropped
    when its answer starts outside every sentence; its relevant candidates are the answer sentences of
    the same qa id in every language. The official candidate encoding is ``text + context``.
    mewslix, splits "dev" and "test": ``mewslix/wikinews_mentions-<split>.jsonl`` (article text restored by
    get-mewsli-x.sh), queries by ``context.language``, one per mention, id ``example_id``, text the
    official baseline ``preprocess_mention``; pool ``mewslix/candidate_set_entities.jsonl`` (1M entities,
    descriptions in 50 languages), text ``preprocess_entity_description``, id the WikiData QID.
xcopa, copa, siqa (format "multiple_choice"): ``{"id", "question", "choices", "label": index}``, XCOPA and
    COPA with "item", the COPA ``idx`` that XCOPA's translations keep;
    COPA-style question ``"<premise> What was the cause?"`` (or effect), SIQA ``"<context> <question>"``,
    as XTREME-R's ``run_xcopa.py``. xcopa "dev"/"test": ``xcopa/{val,test}.<lang>.jsonl`` (xtreme) or
    ``xcopa/data/<lang>/...`` (a clone of cambridgeltl/xcopa); copa "train"/"dev": ``xcopa/{train,val}.en.jsonl``
    (xtreme) or SuperGLUE's ``COPA/{train,val}.jsonl``; siqa "train"/"dev":
    ``siqa/socialIQa_v1.4_{trn,dev}.jsonl`` (xtreme, letter in "correct") or
    ``socialiqa-train-dev/{train,dev}.jsonl`` with ``{train,dev}-labels.lst`` (1-3).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xstilts.cache import sha256_file
from xstilts.data.files import jsonl_rows, read_lines
from xstilts.data.hub import HubSource
from xstilts.data.items import ITEM
from xstilts.data.local import LocalFiles
from xstilts.data.readers import get_field, squad_paragraphs
from xstilts.data.sources import splits
from xstilts.errors import UserError
from xstilts.metrics.suites import XTREME, XTREME_R

TATOEBA_LANGS = XTREME_R.tasks["tatoeba"].languages  # XTREME's 36 and XTREME-R's az, lt, pl, uk, ro
TATOEBA_HUB_LANGS = XTREME.tasks["tatoeba"].languages  # google/xtreme has no tatoeba config for the others
BUCC_LANGS = XTREME.tasks["bucc2018"].languages
LAREQA_LANGS = XTREME_R.tasks["lareqa"].languages
MEWSLIX_LANGS = XTREME_R.tasks["mewslix"].languages
XCOPA_LANGS = XTREME_R.tasks["xcopa"].languages

# xtreme's utils_preprocess.tatoeba_preprocess, reversed
ISO3 = {
    "af": "afr",
    "ar": "ara",
    "az": "aze",
    "bg": "bul",
    "bn": "ben",
    "de": "deu",
    "el": "ell",
    "es": "spa",
    "et": "est",
    "eu": "eus",
    "fa": "pes",
    "fi": "fin",
    "fr": "fra",
    "he": "heb",
    "hi": "hin",
    "hu": "hun",
    "id": "ind",
    "it": "ita",
    "ja": "jpn",
    "jv": "jav",
    "ka": "kat",
    "kk": "kaz",
    "ko": "kor",
    "lt": "lit",
    "ml": "mal",
    "mr": "mar",
    "nl": "nld",
    "pl": "pol",
    "pt": "por",
    "ro": "ron",
    "ru": "rus",
    "sw": "swh",
    "ta": "tam",
    "te": "tel",
    "th": "tha",
    "tl": "tgl",
    "tr": "tur",
    "uk": "ukr",
    "ur": "urd",
    "vi": "vie",
    "zh": "cmn",
}


# ---------------------------------------------------------------- sources


def _no_others(split: str, language: str) -> tuple[str, ...]:
    return ()


@dataclass(frozen=True)
class OfficialFiles(LocalFiles):
    """LocalFiles whose examples also come from ``others(split, lang)`` (paths under root, which the checksum
    covers; an absent one counts as absent) and, for answer retrieval, a shared ``pool(root, split)``."""

    others: Callable[[str, str], tuple[str, ...]] = _no_others
    pool: Callable[[Path, str], list[dict]] | None = None

    def checksum(self, split: str, language: str) -> str:
        parts = [f"{self.path(split, language)}:{sha256_file(self.file(split, language))}"]
        for rel in self.others(split, language):
            file = Path(self.root) / rel
            parts.append(f"{rel}:{sha256_file(file) if file.is_file() else 'absent'}")
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def candidates(self, split: str) -> list[dict]:
        """The candidate pool of ``split``, shared by every language."""
        if self.pool is None:
            raise UserError(f"{self.root}: this task has no candidate pool")
        return self.pool(Path(self.root), split)


@dataclass(frozen=True)
class LocalOnly:
    """A task whose hub copy cannot reproduce the official evaluation: every read asks for data_dir."""

    task: str
    langs: tuple[str, ...]
    reason: str

    def languages(self) -> tuple[str, ...]:
        return self.langs

    def labels(self) -> None:
        return None

    def _refuse(self):
        raise UserError(f"{self.task}: {self.reason}; set data_dir to the official files")

    def load(self, split: str, language: str) -> list[dict]:
        self._refuse()

    def checksum(self, split: str, language: str) -> str:
        self._refuse()

    def candidates(self, split: str) -> list[dict]:
        self._refuse()

    def describe(self) -> str:
        return f"local-only:{self.task}"


@dataclass(frozen=True)
class NumberedHub(HubSource):
    """A hub dataset whose rows carry no id: examples are numbered ``<language>-<row>`` in row order."""

    def load(self, split: str, language: str) -> list[dict]:
        return [{"id": f"{language}-{i}", **ex} for i, ex in enumerate(super().load(split, language))]


def iso3(language: str) -> str:
    """The Tatoeba (LASER) code of a language."""
    if language not in ISO3:
        raise UserError(f"tatoeba has no language {language!r}")
    return ISO3[language]


def _first(root: Path, *paths: str) -> str:
    """The first of ``paths`` present under root (the first when none is)."""
    return next((p for p in paths if (root / p).is_file()), paths[0])


# ---------------------------------------------------------------- Tatoeba


def read_tatoeba(file: Path, split: str, language: str) -> list[dict]:
    """``tatoeba.<xxx>-eng.<xxx>`` and its line-aligned ``.eng``; lines are stripped as xtreme does."""
    eng = file.with_suffix(".eng")
    src, tgt = read_lines(file), read_lines(eng)
    if len(src) != len(tgt):
        raise UserError(f"{eng}: {len(tgt)} lines, but {file.name} has {len(src)} (the files are line-aligned)")
    return [{"id": f"{language}-{i}", **_tatoeba_pair(s, t)} for i, (s, t) in enumerate(zip(src, tgt))]


def _tatoeba_pair(source: str, english: str) -> dict:
    return {"source": source.strip(), "target": english.strip(), ITEM: english.strip()}


def tatoeba_from_hub(row: dict, language: str) -> dict:
    """A ``google/xtreme`` ``tatoeba.<xxx>`` row (source_sentence, target_sentence, ...)."""
    return _tatoeba_pair(row["source_sentence"], row["target_sentence"])


def tatoeba_files(root: Path, langs: tuple[str, ...] = TATOEBA_LANGS) -> OfficialFiles:
    def path(split: str, language: str) -> str:
        splits("tatoeba", test="test")(split, language)
        return f"tatoeba/v1/tatoeba.{iso3(language)}-eng.{iso3(language)}"

    return OfficialFiles(
        Path(root), path, read_tatoeba, langs, others=lambda s, lang: (f"tatoeba/v1/tatoeba.{iso3(lang)}-eng.eng",)
    )


# ---------------------------------------------------------------- BUCC 2018


def _tsv(path: Path) -> dict[str, str]:
    """``id<TAB>sentence`` lines (the second field, as xtreme's ``cut -f2``), in order."""
    out: dict[str, str] = {}
    for n, line in enumerate(read_lines(path), 1):
        if not line:
            continue
        fields = line.split("\t")
        if len(fields) < 2 or not fields[0]:
            raise UserError(f"{path}:{n}: expected '<id><TAB><sentence>'")
        if fields[0] in out:
            raise UserError(f"{path}:{n}: id {fields[0]!r} appears twice")
        out[fields[0]] = fields[1].strip()
    return out


def read_bucc(file: Path, split: str, language: str) -> list[dict]:
    """``<lang>-en.<split>.<lang>``, ``.en`` and, when present, ``.gold``."""
    en_file, gold_file = file.with_suffix(".en"), file.with_suffix(".gold")
    src, en = _tsv(file), _tsv(en_file)
    if same := set(src) & set(en):
        raise UserError(f"{en_file}: id {min(same)!r} is also an id of {file.name}")
    gold: dict[str, list[str]] | None = None
    if gold_file.is_file():
        gold = {i: [] for i in src}
        for n, line in enumerate(read_lines(gold_file), 1):
            if not line:
                continue
            fields = line.split("\t")
            if len(fields) != 2:
                raise UserError(f"{gold_file}:{n}: expected '<{language} id><TAB><en id>'")
            for id_, corpus, name in ((fields[0], src, file.name), (fields[1], en, en_file.name)):
                if id_ not in corpus:
                    raise UserError(f"{gold_file}:{n}: {id_!r} is not an id of {name}")
            gold[fields[0]].append(fields[1])
    return [{"id": i, "side": "src", "text": t, "gold": None if gold is None else gold[i]} for i, t in src.items()] + [
        {"id": i, "side": "en", "text": t} for i, t in en.items()
    ]


def bucc_gold_pairs(records: list[dict]) -> set[tuple[str, str]] | None:
    """The gold (source id, English id) pairs of a BUCC split; None when the split has no gold file."""
    src = [r for r in records if r["side"] == "src"]
    if any(r["gold"] is None for r in src):
        return None
    return {(r["id"], en) for r in src for en in r["gold"]}


def bucc_files(root: Path, langs: tuple[str, ...] = BUCC_LANGS) -> OfficialFiles:
    def path(split: str, language: str) -> str:
        return f"bucc2018/{language}-en.{splits('bucc2018', dev='dev', test='test')(split, language)}.{language}"

    return OfficialFiles(
        Path(root),
        path,
        read_bucc,
        langs,
        others=lambda s, lang: (f"bucc2018/{lang}-en.{s}.en", f"bucc2018/{lang}-en.{s}.gold"),
    )


# ---------------------------------------------------------------- LAReQA (XQuAD-R)


def _xquad_r(path: Path, language: str) -> tuple[list[dict], list[dict], dict[str, list[str]]]:
    """Questions (with "xling", their qa id), candidates and qa id -> answer candidate ids of one file."""
    questions, candidates, answers = [], [], {}
    for n_par, par in enumerate(squad_paragraphs(path), 1):
        breaks = []
        for b in get_field(par.raw, "sentence_breaks", par.where, list):
            if not (isinstance(b, list) and len(b) == 2 and all(type(x) is int for x in b)):
                raise UserError(f"{par.where}: sentence_breaks holds {b!r}, not a [start, end] pair")
            breaks.append(tuple(b))
        sentences = [par.context[s:e] for s, e in breaks]
        ids = [f"{language}_{n_par}_{i}" for i in range(len(breaks))]
        kept = False
        for q in par.questions:
            start = q.starts[0]
            sentence = next((par.context[s:e] for s, e in breaks if s <= start < e), None)
            if sentence is None:  # the official loader skips it (a sentence-breaking error)
                continue
            kept = True
            questions.append(
                {"id": f"{q.id}_{language}", "kind": "query", "lang": language, "text": q.question, "xling": q.id}
            )
            answers.setdefault(q.id, []).extend(c for c, s in zip(ids, sentences) if s == sentence)
        if kept:  # the official loader adds a paragraph's sentences with its questions
            candidates += [
                {"id": c, "kind": "candidate", "lang": language, "text": s, "context": par.context}
                for c, s in zip(ids, sentences)
            ]
    return questions, candidates, answers


def _lareqa(root: Path, langs: tuple[str, ...]) -> tuple[dict[str, list[dict]], list[dict]]:
    """Queries per language and the pool, from every language's file."""
    queries, pool, answers = {}, [], {}
    for lang in langs:
        queries[lang], cands, ans = _xquad_r(root / "lareqa" / "xquad-r" / f"{lang}.json", lang)
        pool += cands
        for qa_id, ids in ans.items():
            answers.setdefault(qa_id, []).extend(ids)
    for qs in queries.values():
        for q in qs:
            q["relevant"] = list(answers[q.pop("xling")])
    return queries, pool


def lareqa_files(root: Path, langs: tuple[str, ...] = LAREQA_LANGS) -> OfficialFiles:
    """XQuAD-R of ``langs``: all their files make the pool, so each must be present."""
    root = Path(root)
    split = splits("lareqa", test="test")

    def path(s: str, language: str) -> str:
        split(s, language)
        return f"lareqa/xquad-r/{language}.json"

    def read(file: Path, s: str, language: str) -> list[dict]:
        if language not in langs:
            raise UserError(f"{file}: lareqa has no language {language!r} (it has: {', '.join(langs)})")
        return _lareqa(root, langs)[0][language]

    def pool(r: Path, s: str) -> list[dict]:
        split(s, "")
        return _lareqa(r, langs)[1]

    return OfficialFiles(
        root, path, read, langs, others=lambda s, lang: tuple(path(s, x) for x in langs if x != lang), pool=pool
    )


# ---------------------------------------------------------------- Mewsli-X

_MARKED = re.compile(r"\{(.*?)\}")


def _spans(obj: dict, text: str, where: str) -> list[tuple[int, int]]:
    """Mewsli-X ``sentence_spans`` ([{"start", "end"}]) inside ``text``."""
    out = []
    for span in get_field(obj, "sentence_spans", where, list):
        start, end = get_field(span, "start", where, int), get_field(span, "end", where, int)
        if not 0 <= start < end <= len(text):
            raise UserError(f"{where}: sentence span [{start}, {end}) outside a text of {len(text)} characters")
        out.append((start, end))
    return out


def _one_line(text: str) -> str:
    return " ".join(text.splitlines()).replace("  ", " ").strip()


def mewslix_query(text: str, spans: list[tuple[int, int]], start: int, end: int, mention: str, where: str) -> str:
    """Mewsli-X's baseline ``preprocess_mention``: ``"<mention>: <sentence with { mention } marked>"``."""
    sentence = next(((s, e) for s, e in spans if s <= start < e and s < end <= e), None)
    if sentence is None:
        raise UserError(f"{where}: mention {mention!r} is not inside one sentence")
    left = _MARKED.sub(r"(\1)", text[sentence[0] : start])
    right = _MARKED.sub(r"(\1)", text[end : sentence[1]])
    return _one_line(f"{mention}: {left} {{ {mention} }} {right}")


def read_mewslix(file: Path, split: str, language: str) -> list[dict]:
    """The mentions of ``language``'s articles in ``wikinews_mentions-<split>.jsonl``."""
    out, seen = [], set()
    for n, doc in jsonl_rows(file):
        where = f"{file}:{n}"
        context = get_field(doc, "context", where, dict)
        if get_field(context, "language", where) != language:
            continue
        text = get_field(context, "text", where)
        if not text:
            raise UserError(
                f"{where}: the article text is empty (the _no_text release file? "
                "get-mewsli-x.sh writes wikinews_mentions-<split>.jsonl with the text)"
            )
        spans = _spans(context, text, where)
        for m in get_field(doc, "mentions", where, list):
            span = get_field(m, "mention_span", where, dict)
            start, end = get_field(span, "start", where, int), get_field(span, "end", where, int)
            mention = get_field(span, "text", where)
            if not 0 <= start < end or text[start:end] != mention:
                raise UserError(f"{where}: mention {mention!r} is not the text at [{start}, {end})")
            example_id = get_field(m, "example_id", where)
            if example_id in seen:
                raise UserError(f"{where}: example_id {example_id!r} appears twice")
            seen.add(example_id)
            out.append(
                {
                    "id": example_id,
                    "kind": "query",
                    "lang": language,
                    "text": mewslix_query(text, spans, start, end, mention, where),
                    "relevant": [get_field(m, "entity_id", where)],
                }
            )
    if not out:
        raise UserError(f"{file}: no mentions in language {language!r}")
    return out


def read_mewslix_candidates(path: Path) -> list[dict]:
    """``candidate_set_entities.jsonl``; text as Mewsli-X's ``preprocess_entity_description``."""
    out, seen = [], set()
    for n, entity in jsonl_rows(path):
        where = f"{path}:{n}"
        entity_id, description = get_field(entity, "entity_id", where), get_field(entity, "description", where)
        if entity_id in seen:
            raise UserError(f"{where}: entity_id {entity_id!r} appears twice")
        seen.add(entity_id)
        text = " ".join(description[s:e] for s, e in _spans(entity, description, where))
        out.append(
            {
                "id": entity_id,
                "kind": "candidate",
                "lang": get_field(entity, "description_language", where),
                "text": _one_line(text),
            }
        )
    return out


def mewslix_files(root: Path, langs: tuple[str, ...] = MEWSLIX_LANGS) -> OfficialFiles:
    split = splits("mewslix", dev="dev", test="test")
    entities = "mewslix/candidate_set_entities.jsonl"

    def pool(r: Path, s: str) -> list[dict]:
        split(s, "")
        return read_mewslix_candidates(r / entities)

    return OfficialFiles(
        Path(root),
        lambda s, lang: f"mewslix/wikinews_mentions-{split(s, lang)}.jsonl",
        read_mewslix,
        langs,
        others=lambda s, lang: (entities,),
        pool=pool,
    )


# ---------------------------------------------------------------- XCOPA, COPA, SIQA


def _copa(row: dict, where: str, language: str) -> dict:
    kind = get_field(row, "question", where)
    if kind not in ("cause", "effect"):
        raise UserError(f"{where}: question is {kind!r}, not 'cause' or 'effect'")
    label = get_field(row, "label", where, int)
    if label not in (0, 1):
        raise UserError(f"{where}: label is {label}, not 0 or 1")
    idx = get_field(row, "idx", where, int)
    return {
        "id": f"{language}-{idx}",
        "question": f"{get_field(row, 'premise', where)} What was the {kind}?",
        "choices": [get_field(row, "choice1", where), get_field(row, "choice2", where)],
        "label": label,
        ITEM: str(idx),
    }


def read_copa(file: Path, split: str, language: str) -> list[dict]:
    """An XCOPA or (SuperGLUE) COPA JSON-lines file."""
    out, seen = [], set()
    for n, row in jsonl_rows(file):
        example = _copa(row, f"{file}:{n}", language)
        if example["id"] in seen:
            raise UserError(f"{file}:{n}: idx {row['idx']} appears twice")
        seen.add(example["id"])
        out.append(example)
    return out


def copa_from_hub(row: dict, language: str) -> dict:
    """A ``cambridgeltl/xcopa`` or super_glue ``copa`` row."""
    return _copa(row, f"hub row idx={row.get('idx')}", language)


def _siqa(row: dict, label: int, where: str, i: int) -> dict:
    if label not in (0, 1, 2):
        raise UserError(f"{where}: label {label + 1} is not 1, 2 or 3")
    return {
        "id": f"en-{i}",
        "question": f"{get_field(row, 'context', where)} {get_field(row, 'question', where)}",
        "choices": [get_field(row, f"answer{x}", where) for x in "ABC"],
        "label": label,
    }


def read_siqa(file: Path, split: str, language: str) -> list[dict]:
    """xtreme's ``socialIQa_v1.4_*.jsonl`` (answer letter in "correct") or AI2's ``<split>.jsonl`` with
    ``<split>-labels.lst`` (1, 2 or 3 a line)."""
    rows = list(jsonl_rows(file))
    if file.name.startswith("socialIQa_v1.4"):
        out = []
        for i, (n, row) in enumerate(rows):
            letter = get_field(row, "correct", f"{file}:{n}")
            if letter not in ("A", "B", "C"):
                raise UserError(f"{file}:{n}: correct is {letter!r}, not A, B or C")
            out.append(_siqa(row, "ABC".index(letter), f"{file}:{n}", i))
        return out
    label_file = file.with_name(f"{file.stem}-labels.lst")
    lines = [(n, line.strip()) for n, line in enumerate(read_lines(label_file), 1) if line.strip()]
    if len(lines) != len(rows):
        raise UserError(f"{label_file}: {len(lines)} labels for the {len(rows)} questions of {file.name}")
    for n, line in lines:
        if line not in ("1", "2", "3"):
            raise UserError(f"{label_file}:{n}: label {line!r} is not 1, 2 or 3")
    return [_siqa(row, int(line) - 1, f"{file}:{n}", i) for i, ((n, row), (_, line)) in enumerate(zip(rows, lines))]


def siqa_from_hub(row: dict, language: str) -> dict:
    """An ``allenai/social_i_qa`` row (label "1", "2" or "3"); NumberedHub adds the id."""
    example = _siqa(row, int(row["label"]) - 1, "hub row", 0)
    del example["id"]
    return example


def xcopa_files(root: Path, langs: tuple[str, ...] = XCOPA_LANGS) -> OfficialFiles:
    root, split = Path(root), splits("xcopa", dev="val", test="test")

    def path(s: str, language: str) -> str:
        s = split(s, language)
        return _first(root, f"xcopa/{s}.{language}.jsonl", f"xcopa/data/{language}/{s}.{language}.jsonl")

    return OfficialFiles(root, path, read_copa, langs)


def copa_files(root: Path) -> OfficialFiles:
    root, split = Path(root), splits("copa", ("en",), train="train", dev="val")

    def path(s: str, language: str) -> str:
        s = split(s, language)
        return _first(root, f"xcopa/{s}.en.jsonl", f"COPA/{s}.jsonl")

    return OfficialFiles(root, path, read_copa, ("en",))


def siqa_files(root: Path) -> OfficialFiles:
    root, split = Path(root), splits("siqa", ("en",), train="train", dev="dev")

    def path(s: str, language: str) -> str:
        s = split(s, language)
        return _first(
            root, f"siqa/socialIQa_v1.4_{'trn' if s == 'train' else 'dev'}.jsonl", f"socialiqa-train-dev/{s}.jsonl"
        )

    return OfficialFiles(
        root, path, read_siqa, ("en",), others=lambda s, lang: (f"socialiqa-train-dev/{split(s, lang)}-labels.lst",)
    )
