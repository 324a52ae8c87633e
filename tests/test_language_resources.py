"""Language resource tiers re-derived from the verbatim lang2tax.txt of Joshi et al. (2020) (tests/fixtures/joshi2020,
the copy in distals 0.1.1's sdist), tier counts for the report, and the CC-100 size covariate (Conneau et al. 2020)."""

from __future__ import annotations

import csv
import hashlib
import io
import math
from collections import Counter
from importlib.resources import files
from pathlib import Path

import pytest
import scipy.stats as sps

from xstilts.analysis.resources import log_resource, resource_size
from xstilts.analysis.tiers import MIN_LANGUAGES, SOURCE, TIER_ORDER, language_tier, settle, tier_counts, tiers

LANG2TAX = Path(__file__).parent / "fixtures" / "joshi2020" / "lang2tax.txt"


def _lines() -> list[tuple[str, int]]:
    return [(name, int(c)) for name, c in (line.rsplit(",", 1) for line in LANG2TAX.read_text("utf-8").splitlines())]


def _csv(name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO((files("xstilts.analysis") / name).read_text(encoding="utf-8"))))


def test_the_vendored_file_is_the_cited_one():
    assert hashlib.sha256(LANG2TAX.read_bytes()).hexdigest() in SOURCE


def test_class_sizes_are_those_of_table_1():
    assert Counter(c for _, c in _lines()) == {0: 2191, 1: 222, 2: 19, 3: 28, 4: 18, 5: 7}


def test_every_tier_is_settled_by_the_rule_from_entries_of_the_file():
    lines = _lines()
    for row in _csv("language_tiers.csv"):
        entries = [entry.rsplit("=", 1) for entry in row["entries"].split("; ") if entry]
        names = {name for name, _ in entries}
        assert sorted((name, int(c)) for name, c in entries) == sorted(x for x in lines if x[0] in names), row
        assert row["tier"] == settle(int(c) for _, c in entries), row


@pytest.mark.parametrize(
    ("classes", "tier"),
    [
        ([3], "3"),
        ([0], "0"),
        ([3, 0], "3"),  # a class-0 alias gives way
        ([0, 2, 0], "2"),
        ([1, 1, 0], "1"),  # what remains agrees
        ([3, 1], "unknown"),  # two classes remain
        ([3, 1, 0], "unknown"),
        ([0, 0], "0"),
        ([], "unknown"),  # no entry
    ],
)
def test_the_rule_on_a_synthetic_alias_table(classes, tier):
    assert settle(classes) == tier


@pytest.mark.parametrize(
    ("code", "tier"),
    [
        ("be", "3"),  # belarusian,3 / belorussian,0
        ("gd", "1"),  # scottish gaelic,1 / gaelic,0
        ("ht", "2"),  # haitian,2 / haitian creole,0
        ("mn", "1"),  # mongolian,1 / khalkha,0
        ("os", "1"),  # ossetian,1 / ossetic,0
        ("ro", "3"),  # romanian,3 / moldavian,0
        ("sl", "3"),  # slovenian,3 / slovene,0
        ("hr", "4"),  # croatian,4; serbo-croatian,1 names a macrolanguage, not Croatian
        ("az", "1"),  # azerbaijani,1; southern azerbaijani is another language
        ("ar-DZ", "unknown"),  # no entry for Algerian Arabic
    ],
)
def test_the_rule_settles_the_aliases(code, tier):
    assert language_tier(code) == tier


def test_only_algerian_arabic_is_unknown():
    assert [code for code, tier in tiers().items() if tier == "unknown"] == ["ar-DZ"]


def test_tier_counts_gives_every_tier_and_flags_the_small_ones():
    table = tier_counts(["en", "de", "fr", "hi", "hi", "sw", "yo", "te", "ar-DZ"])
    assert list(table.index) == list(TIER_ORDER)
    assert table["n"].tolist() == [3, 1, 0, 2, 1, 0, 1]
    assert table.loc["5", "members"] == "en, de, fr"
    assert table.loc["2", "members"] == "sw, yo"
    assert table.loc["unknown", "members"] == "ar-DZ"
    assert table["too_small"].tolist() == [False, True, True, True, True, True, True]


def test_the_threshold_is_where_a_t_interval_narrows_to_a_few_standard_deviations():
    def half_width(n: int) -> float:  # in standard deviations of the languages
        return sps.t.ppf(0.975, n - 1) / math.sqrt(n)

    assert half_width(MIN_LANGUAGES - 1) > 8 and half_width(MIN_LANGUAGES) < 2.5


def test_every_tier_code_has_a_cc100_row():
    assert [row["language"] for row in _csv("cc100_sizes.csv")] == list(tiers())


def test_an_empty_cc100_row_says_why():
    for row in _csv("cc100_sizes.csv"):
        filled = [bool(row[key]) for key in ("size_gib", "tokens_m", "cc100_rows")]
        assert filled in ([True] * 3, [False] * 3), row
        assert filled[0] or row["note"], row


@pytest.mark.parametrize(
    ("code", "gib"),
    [
        ("en", 300.8),
        ("ru", 278.0),
        ("sw", 1.6),
        ("ro", 61.4),
        ("tl", 3.1),  # the table's Filipino row, code tl
        ("gd", 0.1),
        ("zh-Hans", 46.9),
        ("zh-Hant", 16.6),
        ("zh", 63.5),  # both scripts
        ("my", 2.0),  # 1.6 + 0.4, both Burmese rows
        ("es-AR", 53.3),  # Spanish: the table does not split regions
        ("sr-Latn", 9.1),
        ("sv", 85.0),  # as the authors corrected it (printed 12.1)
        ("uk", 84.6),
    ],
)
def test_resource_size_reads_table_6(code, gib):
    assert resource_size(code) == pytest.approx(gib)


@pytest.mark.parametrize("code", ["qu", "wo", "ht", "yo", "ig", "os", "tt", "nb", "nn", "ckb", "ar-DZ", "xx"])
def test_a_language_cc100_does_not_list_has_no_size(code):
    assert resource_size(code) is None and log_resource(code) is None


def test_log_resource_is_log10_gib():
    assert log_resource("en") == pytest.approx(math.log10(300.8))
    assert log_resource("gd") == pytest.approx(-1.0)
