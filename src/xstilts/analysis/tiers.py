"""Resource tiers of languages: the classes 0 (left behind) to 5 (winners) of Joshi et al. (2020).

Source: Pratik Joshi, Sebastin Santy, Amar Budhiraja, Kalika Bali and Monojit Choudhury, "The State and Fate of
Linguistic Diversity and Inclusion in the NLP World", ACL 2020; the per-language taxonomy is the file
``lang2tax.txt`` of microsoft/linguisticdiversity (https://microsoft.github.io/linguisticdiversity/assets/lang2tax.txt),
one ``name,class`` line per language name. That file could not be reached from here, so its name/class pairs were read
from the copy in MaLA-LM/LangResourceAtlas, ``Joshi-et-al/Joshi-et-al-6-classes.json`` at commit
ea4606be8562575479f6a99d93f6d5a7b49d2e2e (2025-07-27), on 2026-11-28; only its names and classes are used, not its
codes. Its class sizes 2 to 5 (19, 28, 18, 7) are those of the paper's Table 1.

``language_tiers.csv`` maps each language code of XTREME, XTREME-R and the pocket suite to the file's name for it
(``source_name``). Regional and script variants (es-AR, pt-BR, sr-Latn, zh-Hans, zh-Hant) take their language's
entry, which the file does not split. A code is ``unknown`` where the file has no entry for it (ar-DZ, Algerian
Arabic) or lists its language under two of its names with different classes (``source_name`` gives both).
"""

from __future__ import annotations

import csv
import functools
import io
from importlib import resources

import pandas as pd

SOURCE = (
    "Joshi et al. 2020, The State and Fate of Linguistic Diversity and Inclusion in the NLP World (ACL 2020); "
    "lang2tax.txt of microsoft/linguisticdiversity, read from its copy in MaLA-LM/LangResourceAtlas "
    "Joshi-et-al/Joshi-et-al-6-classes.json at commit ea4606be8562575479f6a99d93f6d5a7b49d2e2e, 2026-11-28"
)
TIER_ORDER = ("5", "4", "3", "2", "1", "0", "unknown")  # high-resource first


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
