"""A continuous resource covariate per language: the size of its text in CC-100, XLM-R's pretraining corpus.

Source: Alexis Conneau, Kartikay Khandelwal, Naman Goyal, Vishrav Chaudhary, Guillaume Wenzek, Francisco Guzmán,
Edouard Grave, Myle Ott, Luke Zettlemoyer and Veselin Stoyanov, "Unsupervised Cross-lingual Representation Learning
at Scale", ACL 2020 (arXiv:1911.02116), Appendix A, Table 6: tokens (millions) and size (GiB) of each of the 100
languages. Read from the transcription ``cc-100/cc-100.csv`` of github.com/mayhewsw/multilingual-data-stats at commit
7397902dcce0fb12a6725f356295344ca6f1e378 (sha256 of the file
785a61cb3a45a2ab0fef2c0694e4cfc2e52c7b63879ea02371efc1f893549e1d). That commit replaced two rows printed wrongly in the
paper with the values the authors confirmed to the copy's author (its README): sv 12950 M tokens / 85 GiB (printed
77.8 / 12.1) and uk 6960 M tokens (printed 6.5); the first commit, fcaa8d5d1e3fe916e9a10a385b5b3cb4a463d017, has the
rows as printed.

``cc100_sizes.csv`` gives each code of ``language_tiers.csv`` the rows of its language (``cc100_rows``) and their
total size and tokens; codes not in the table are empty, with a note why. Regional and script variants the table does
not split take their language's row (es-AR: es, sr-Latn: sr); zh-Hans and zh-Hant take their script's row and zh the
sum of both; my sums the two Burmese rows (Unicode and Zawgyi encodings). Romanized rows (hi_rom, ...) are left out.
Not in the table: ckb (its ku row is Kurmanji), nb and nn (only Norwegian as a whole), ar-DZ (Algerian Arabic), and
dsb, hsb, ht, ia, ig, io, os, qu, tg, tk, tt, wo, yo. Sizes are the covariate: the token counts split on whitespace, so
they are not comparable for zh, ja and th.
"""

from __future__ import annotations

import csv
import functools
import io
import math
from importlib.resources import files

SOURCE = (
    "Conneau et al. 2020, Unsupervised Cross-lingual Representation Learning at Scale (ACL 2020), Appendix A Table 6; "
    "transcribed in mayhewsw/multilingual-data-stats cc-100/cc-100.csv at commit 7397902dcce0fb12a6725f356295344ca6f1e378"
)


@functools.cache
def _sizes() -> dict[str, float]:
    text = (files("xstilts.analysis") / "cc100_sizes.csv").read_text(encoding="utf-8")
    return {row["language"]: float(row["size_gib"]) for row in csv.DictReader(io.StringIO(text)) if row["size_gib"]}


def resource_size(code: str) -> float | None:
    """The CC-100 size of a language code's text in GiB; None where CC-100 does not list its language."""
    return _sizes().get(code)


def log_resource(code: str) -> float | None:
    """log10 of resource_size (GiB); None where that is None."""
    size = resource_size(code)
    return None if size is None else math.log10(size)
