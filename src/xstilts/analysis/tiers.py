"""Resource tiers of languages: the classes 0 (left behind) to 5 (winners) of Joshi et al. (2020).

Source: Pratik Joshi, Sebastin Santy, Amar Budhiraja, Kalika Bali and Monojit Choudhury, "The State and Fate of
Linguistic Diversity and Inclusion in the NLP World", ACL 2020. The per-language taxonomy is the authors' file
``lang2tax.txt`` (https://microsoft.github.io/linguisticdiversity/assets/lang2tax.txt), one ``name,class`` line per
language name. It is read verbatim from the PyPI sdist ``distals-0.1.1.tar.gz`` (distals 0.1.1, whose
``scripts/0.update.sh`` downloads it from that address), path ``distals-0.1.1/data/lang2tax.txt``, sha256
2e182e8f4bd9adb0bc04af2f74852d770581ac0b5a3609224ced7b08266d6dd2 (2485 lines). Its class sizes (2191, 222, 19, 28,
18, 7 for classes 0-5) are those of the paper's Table 1; a copy is kept in tests/fixtures/joshi2020 for the tests.

``language_tiers.csv`` gives each language code of XTREME, XTREME-R and the pocket suite the file's entries for its
language (``entries``: every ``name=class`` line naming it) and the tier those entries settle. Regional and script
variants (es-AR, pt-BR, sr-Latn, zh-Hans, zh-Hant) take their language's entries, which the file does not split.
The file lists some languages under several names, the extra ones in class 0; one rule settles every code (see
``settle``): class-0 entries give way to entries in classes 1-5, and the tier is settled when one class remains. It
settled be 3 (belarusian / belorussian), gd 1 (scottish gaelic / gaelic), ht 2 (haitian / haitian creole), mn 1
(mongolian / khalkha), os 1 (ossetian / ossetic), ro 3 (romanian / moldavian) and sl 3 (slovenian / slovene). A code
is ``unknown`` where the file has no entry for its language (ar-DZ, Algerian Arabic) or the rule leaves two classes.
Entries for another language are not names of it: a member of a macrolanguage (egyptian arabic, southern
azerbaijani), an orthography (belarusian (taraškievica)) or a group (serbo-croatian, sorbian, kurdish).
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Iterable
from importlib import resources

import pandas as pd

SOURCE = (
    "Joshi et al. 2020, The State and Fate of Linguistic Diversity and Inclusion in the NLP World (ACL 2020): "
    "lang2tax.txt, verbatim from the PyPI sdist distals-0.1.1.tar.gz, distals-0.1.1/data/lang2tax.txt, "
    "sha256 2e182e8f4bd9adb0bc04af2f74852d770581ac0b5a3609224ced7b08266d6dd2"
)
TIER_ORDER = ("5", "4", "3", "2", "1", "0", "unknown")  # high-resource first
MIN_LANGUAGES = 3  # fewest languages for a tier mean to be reported as estimated (see tier_counts)


def settle(classes: Iterable[int]) -> str:
    """The tier that a language's entries settle: class-0 entries (aliases) give way to entries in classes 1-5, and
    the tier is the one class that remains; "unknown" for no entries or for two classes left."""
    classes = list(classes)
    kept = {c for c in classes if c > 0} or set(classes)
    return str(kept.pop()) if len(kept) == 1 else "unknown"


@functools.cache
def _table() -> dict[str, str]:
    text = (resources.files("xstilts.analysis") / "language_tiers.csv").read_text(encoding="utf-8")
    return {row["language"]: row["tier"] for row in csv.DictReader(io.StringIO(text))}


def tiers() -> dict[str, str]:
    """Language code -> tier ("0".."5" or "unknown") for every code the table holds."""
    return dict(_table())


def language_tier(code: str) -> str:
    """The tier of a language code; "unknown" for a code the table does not hold."""
    return _table().get(code, "unknown")


def by_tier(gains: pd.Series) -> pd.DataFrame:
    """Per tier (in TIER_ORDER, only those present) of a Series indexed by language code: how many languages, their
    mean value and the codes."""
    rows = {}
    for tier in TIER_ORDER:
        members = gains[[language_tier(code) == tier for code in gains.index]]
        if len(members):
            rows[tier] = {
                "languages": len(members),
                "mean_gain": members.mean(),
                "members": ", ".join(map(str, members.index)),
            }
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["languages", "mean_gain", "members"])
    return table.rename_axis("tier")


def tier_counts(codes: Iterable[str]) -> pd.DataFrame:
    """Every tier of TIER_ORDER with its number of (distinct) languages among codes, their codes and ``too_small``:
    fewer than MIN_LANGUAGES. A Student-t interval over n languages needs n >= 2, and at n = 2 (1 degree of freedom,
    t = 12.71) its half-width is 9.0 standard deviations of the languages, which says nothing; at n = 3 it is 2.5."""
    codes = list(dict.fromkeys(codes))
    rows = []
    for tier in TIER_ORDER:
        members = [code for code in codes if language_tier(code) == tier]
        rows.append({"tier": tier, "n": len(members), "members": ", ".join(members)})
    table = pd.DataFrame(rows).set_index("tier")
    table["too_small"] = table["n"] < MIN_LANGUAGES
    return table
