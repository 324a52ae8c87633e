"""The pocket suite: small real datasets built into the cache from installed PyPI packages.

* pocket-topic: chatterbot-corpus utterances labelled by their category file (food.yml -> "food");
  English train/dev/test, every other language with >= 100 utterances is a zero-shot test language.
* pocket-retrieval: Django's translation catalogs as X -> English parallel sentences (test only).
* pocket-answer: English conversation turns as 4-way multiple choice (question -> next utterance).
* pocket-sametopic: pairs of English utterances, "same" or "different" category file.

Choices: utterances with conflicting labels within a language and malformed conversations (a string
instead of a list) are dropped; plural and fuzzy catalog entries are skipped; pocket-sametopic uses only
the utterances of pocket-topic's English train split, so the topic dev/test labels stay unseen.
"""

from __future__ import annotations

import itertools
import json
import random
import re
from collections import defaultdict
from collections.abc import Iterator
from importlib import metadata, util
from pathlib import Path

import yaml

from xstilts import __version__
from xstilts.cache import atomic_dir, atomic_write_json, cache_dir, sha256_file
from xstilts.data.files import read_json
from xstilts.errors import UserError

POCKET_TASKS = ("pocket-topic", "pocket-retrieval", "pocket-answer", "pocket-sametopic")
SEED = 13
MIN_TEST = 100
BUILT_WITH = f"xstilts {__version__}"
CHATTER = ("chatterbot-corpus", "chatterbot_corpus")
DJANGO = ("Django", "django")

# chatterbot-corpus language folder -> BCP-47 code
CHATTER_LANGS = {
    "bengali": "bn",
    "chinese": "zh",
    "dutch": "nl",
    "english": "en",
    "french": "fr",
    "german": "de",
    "hebrew": "he",
    "hindi": "hi",
    "hinglish": "hi-Latn",
    "indonesian": "id",
    "italian": "it",
    "japanese": "ja",
    "korean": "ko",
    "marathi": "mr",
    "oriya": "or",
    "persian": "fa",
    "portuguese": "pt",
    "russian": "ru",
    "spanish": "es",
    "swedish": "sv",
    "tamil": "ta",
    "telugu": "te",
    "thai": "th",
    "traditionalchinese": "zh-Hant",
    "turkish": "tr",
    "ukrainian": "uk",
    "urdu": "ur",
    "yoruba": "yo",
}
_PLACEHOLDER = re.compile(r"%\(\w+\)[-#0 +]*\d*(?:\.\d+)?[a-zA-Z]|%[-#0 +]*\d*(?:\.\d+)?[sdifrxX]|\{\w*\}|<[^>]+>")
_WORD = re.compile(r"[^\W\d_]+")
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def pocket_root() -> Path:
    """Where the pocket datasets live: ``<cache>/data/pocket``."""
    return cache_dir() / "data" / "pocket"


def installed_package(dist: str, module: str) -> tuple[Path, str]:
    """(directory, installed version) of the source package ``dist``, imported as ``module``; a UserError when it
    is not installed."""
    spec = util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"the pocket suite needs the {dist} package: pip install 'xstilts[offline]'")
    return Path(next(iter(spec.submodule_search_locations))), metadata.version(dist)


def clean_text(text: object) -> str | None:
    """Whitespace-normalised text, or None for non-strings and empty strings."""
    if not isinstance(text, str):
        return None
    return " ".join(text.split()) or None


# --- chatterbot-corpus ---------------------------------------------------------------------------


def _read_yaml(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.load(f, Loader=_YAML_LOADER)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise UserError(f"{where}: invalid YAML: {getattr(e, 'problem', None) or e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: cannot read: {e}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping with 'conversations'")
    return data


def read_conversations(corpus: Path) -> dict[str, dict[str, list[list[str | None]]]]:
    """language -> category (file name) -> conversations of the chatterbot-corpus package at ``corpus``; bad
    utterances become None."""
    out: dict[str, dict[str, list[list[str | None]]]] = {}
    for lang_dir in sorted(p for p in (corpus / "data").iterdir() if p.name in CHATTER_LANGS):
        out[CHATTER_LANGS[lang_dir.name]] = {
            path.stem: [
                [clean_text(u) for u in conv]
                for conv in _read_yaml(path).get("conversations") or []
                if isinstance(conv, list)
            ]
            for path in sorted(lang_dir.glob("*.yml"))
        }
    return out


def _utterances(categories: dict[str, list[list[str | None]]], labels: list[str]) -> list[tuple[str, str]]:
    """Unique (text, label) pairs in the given labels, without texts that carry two labels."""
    seen: dict[str, set[str]] = defaultdict(set)
    for label in labels:
        for conv in categories.get(label, []):
            for text in filter(None, conv):
                seen[text].add(label)
    return sorted((text, next(iter(ls))) for text, ls in seen.items() if len(ls) == 1)


def _stratified(items: list[tuple[str, str]], rng: random.Random) -> dict[str, list[tuple[str, str]]]:
    """80/10/10 train/dev/test split within each label."""
    by_label: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for item in items:
        by_label[item[1]].append(item)
    out: dict[str, list[tuple[str, str]]] = {"train": [], "dev": [], "test": []}
    for label in sorted(by_label):
        group = by_label[label]
        rng.shuffle(group)
        k = round(0.1 * len(group))
        out["dev"] += group[:k]
        out["test"] += group[k : 2 * k]
        out["train"] += group[2 * k :]
    for split in out.values():
        rng.shuffle(split)
    return out


def _topic_splits(corpus: Path) -> tuple[list[str], dict[tuple[str, str], list[tuple[str, str]]]]:
    """Labels and (split, language) -> (text, label) for pocket-topic."""
    convs = read_conversations(corpus)
    labels = sorted(convs["en"])
    rng = random.Random(SEED)
    splits = {(split, "en"): items for split, items in _stratified(_utterances(convs["en"], labels), rng).items()}
    for lang in sorted(convs):
        items = _utterances(convs[lang], labels)
        if lang != "en" and len(items) >= MIN_TEST:
            rng.shuffle(items)
            splits["test", lang] = items
    return labels, splits


def _topic(corpus: Path) -> tuple[dict, list[str]]:
    labels, splits = _topic_splits(corpus)
    return {key: [{"text": t, "label": lab} for t, lab in items] for key, items in splits.items()}, labels


def _answer_items(convs: list[list[str | None]], rng: random.Random, banned: set[str]) -> list[dict]:
    """Question -> next-utterance items with 3 distractors from other conversations' answers."""
    answers_of: dict[str, set[str]] = defaultdict(set)
    for conv in convs:
        for q, a in itertools.pairwise(conv):
            if q and a:
                answers_of[q].add(a)
    pool = sorted({a for conv in convs for a in conv[1:] if a})
    items, seen = [], set()
    for conv in convs:
        for q, a in itertools.pairwise(conv):
            if not (q and a) or q == a or q in banned or (q, a) in seen:
                continue
            seen.add((q, a))
            bad = set(filter(None, conv)) | answers_of[q]
            choices = [a, *rng.sample([d for d in pool if d not in bad], 3)]
            rng.shuffle(choices)
            items.append({"question": q, "choices": choices, "label": choices.index(a)})
    return items


def _answer(corpus: Path) -> tuple[dict, None]:
    """90/10 train/dev by conversation; dev drops questions that also occur in train."""
    convs = [c for _, cs in sorted(read_conversations(corpus)["en"].items()) for c in cs if len(c) > 1]
    rng = random.Random(SEED)
    order = list(range(len(convs)))
    rng.shuffle(order)
    n_dev = round(0.1 * len(convs))
    dev = [convs[i] for i in sorted(order[:n_dev])]
    train = [convs[i] for i in sorted(order[n_dev:])]
    train_questions = {q for conv in train for q in conv[:-1] if q}
    return {
        ("train", "en"): _answer_items(train, rng, set()),
        ("dev", "en"): _answer_items(dev, rng, train_questions),
    }, None


def _pairs(items: list[tuple[str, str]], n: int, rng: random.Random) -> list[dict]:
    """n/2 same-label and n/2 different-label distinct pairs."""
    by_label: dict[str, list[str]] = defaultdict(list)
    for text, label in items:
        by_label[label].append(text)
    same = [
        (a, b) for label in sorted(by_label) for i, a in enumerate(by_label[label]) for b in by_label[label][i + 1 :]
    ]
    same = rng.sample(same, min(n // 2, len(same)))
    different: set[tuple[str, str]] = set()
    while len(different) < len(same):
        (a, la), (b, lb) = rng.sample(items, 2)
        if la != lb and (b, a) not in different:
            different.add((a, b))
    pairs = [(a, b, "same") for a, b in same] + [(a, b, "different") for a, b in sorted(different)]
    rng.shuffle(pairs)
    return [{"text_a": a, "text_b": b, "label": label} for a, b, label in pairs]


def _sametopic(corpus: Path) -> tuple[dict, list[str]]:
    """Pairs from pocket-topic's English train utterances, split 90/10 before pairing."""
    items = sorted(_topic_splits(corpus)[1]["train", "en"])
    rng = random.Random(SEED)
    rng.shuffle(items)
    n_dev = round(0.1 * len(items))
    return {("train", "en"): _pairs(items[n_dev:], 4000, rng), ("dev", "en"): _pairs(items[:n_dev], 500, rng)}, [
        "different",
        "same",
    ]


# --- Django catalogs -----------------------------------------------------------------------------


def _english_words(text: str) -> int:
    return len(_WORD.findall(_PLACEHOLDER.sub(" ", text)))


def _catalog_entries(path: Path) -> list[tuple[str, str, bool]]:
    """(English, translation, is_plural) for translated, non-fuzzy entries of a .po file; a plural entry
    gives one row per msgstr[n]."""
    import polib

    try:
        po = polib.pofile(str(path))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise UserError(f"{path}: cannot parse catalog: {e}") from None
    out = []
    for e in po.translated_entries():
        if e.msgid_plural:
            out += [(e.msgid, e.msgstr_plural[k], True) for k in sorted(e.msgstr_plural)]
        else:
            out.append((e.msgid, e.msgstr, False))
    return out


def _locale_catalogs(root: Path) -> dict[str, list[Path]]:
    """Non-English Django locale -> its .po files, sorted."""
    by_locale: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(root.glob("**/locale/*/LC_MESSAGES/*.po")):
        locale = path.parent.parent.name
        if not (locale == "en" or locale.startswith("en_")):
            by_locale[locale].append(path)
    return dict(sorted(by_locale.items()))


def _locale_rows(paths: list[Path]) -> list[tuple[str, str, bool]]:
    """(English, translation, kept) for one locale's entries (raw strings); kept: a retrieval pair, i.e. singular,
    both sides non-empty and different, >= 3 English words, neither side seen before in the locale."""
    rows, sources, targets = [], set(), set()
    for path in paths:
        for target, source, plural in _catalog_entries(path):
            s, t = clean_text(source), clean_text(target)
            kept = bool(
                not plural and s and t and s != t and s not in sources and t not in targets and _english_words(t) >= 3
            )
            if kept:
                sources.add(s)
                targets.add(t)
            rows.append((target, source, kept))
    return rows


def catalog_entries(root: Path) -> Iterator[tuple[str, str, str, bool]]:
    """(language, msgid, msgstr, used_by_retrieval) for every translated, non-fuzzy entry of every non-English
    Django catalog under ``root`` (plural entries once per msgstr[n]); used_by_retrieval: the pair is in
    pocket-retrieval's test split of that language. Language is pocket-retrieval's code (``pt-BR``)."""
    for locale, paths in _locale_catalogs(root).items():
        rows = _locale_rows(paths)
        in_test = sum(kept for *_, kept in rows) >= MIN_TEST
        for msgid, msgstr, kept in rows:
            yield locale.replace("_", "-"), msgid, msgstr, kept and in_test


def _retrieval(root: Path) -> tuple[dict, None]:
    """One test language per locale with >= 100 pairs of >= 3 English words, deduplicated both ways."""
    splits = {}
    for locale, paths in _locale_catalogs(root).items():
        records = [{"source": clean_text(s), "target": clean_text(t)} for t, s, kept in _locale_rows(paths) if kept]
        if len(records) >= MIN_TEST:
            splits["test", locale.replace("_", "-")] = records
    return splits, None


# --- building ------------------------------------------------------------------------------------

TASKS = {  # name -> (format, kind, (distribution, module), builder)
    "pocket-topic": ("classification", "target", CHATTER, _topic),
    "pocket-retrieval": ("retrieval", "target", DJANGO, _retrieval),
    "pocket-answer": ("multiple_choice", "intermediate", CHATTER, _answer),
    "pocket-sametopic": ("classification", "intermediate", CHATTER, _sametopic),
}


def _is_current(task_dir: Path, source: dict) -> bool:
    try:
        meta = json.loads((task_dir / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        meta.get("source") == source
        and meta.get("built_with") == BUILT_WITH
        and meta.get("seed") == SEED
        and all((task_dir / name).is_file() for name in meta.get("sha256", {}))
    )


def _write(task_dir: Path, name: str, source: dict, splits: dict, labels: list[str] | None) -> None:
    """Write one dataset directory atomically: jsonl files plus meta.json."""
    fmt, kind = TASKS[name][:2]
    prefix = name.removeprefix("pocket-")
    sizes, sha = {}, {}
    with atomic_dir(task_dir) as tmp:
        for (split, lang), records in sorted(splits.items()):
            key = f"{split}-{lang}"
            lines = [
                json.dumps({"id": f"{prefix}-{key}-{i:05d}", **r}, ensure_ascii=False) + "\n"
                for i, r in enumerate(records)
            ]
            (tmp / f"{key}.jsonl").write_text("".join(lines), encoding="utf-8", newline="\n")
            sizes[key] = len(records)
            sha[f"{key}.jsonl"] = sha256_file(tmp / f"{key}.jsonl")
        languages = sorted({lang for _, lang in splits}, key=lambda lang: (lang != "en", lang))
        meta = {"name": name, "format": fmt, "kind": kind, "languages": languages}
        if labels:
            meta["labels"] = labels
        meta |= {"sizes": sizes, "sha256": sha, "source": source, "seed": SEED, "built_with": BUILT_WITH}
        atomic_write_json(tmp / "meta.json", meta)


def build_pocket(force: bool = False) -> dict[str, Path]:
    """Build the pocket datasets that are missing or stale; returns task name -> dataset directory."""
    out = {}
    for name in POCKET_TASKS:
        _, _, (dist, module), builder = TASKS[name]
        root, version = installed_package(dist, module)
        source = {"package": dist, "version": version}
        out[name] = task_dir = pocket_root() / name
        if force or not _is_current(task_dir, source):
            _write(task_dir, name, source, *builder(root))
    return out


def read_meta(task_dir: Path) -> dict:
    """The dataset's meta.json."""
    return read_json(Path(task_dir) / "meta.json")
