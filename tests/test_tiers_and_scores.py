"""Resource tiers of languages (Joshi et al. 2020) and suite scores over the tasks present."""

from __future__ import annotations

import pandas as pd
import pytest

from xstilts.analysis.scores import score_rows, suite_scores
from xstilts.analysis.tiers import SOURCE, TIER_ORDER, by_tier, language_tier, tiers
from xstilts.experiments.export import ROW_COLUMNS
from xstilts.metrics.suites import SUITES, aggregate


def test_every_suite_language_has_a_tier():
    table = tiers()
    for suite in ("xtreme", "xtreme-r"):
        assert set(SUITES[suite].languages) <= set(table)
    assert set(table.values()) <= set(TIER_ORDER)
    assert "lang2tax.txt" in SOURCE


def test_every_pocket_language_has_a_tier():
    for module in ("chatterbot_corpus", "django", "polib"):
        pytest.importorskip(module)
    from xstilts.tasks.catalog import TaskCatalog

    catalog = TaskCatalog.builtin()
    for task in ("pocket-topic", "pocket-retrieval"):
        assert set(catalog.get(task).languages) <= set(tiers())


@pytest.mark.parametrize(
    ("code", "tier"),
    [
        ("en", "5"),  # english,5
        ("zh", "5"),  # mandarin,5
        ("ar", "5"),  # arabic,5
        ("hi", "4"),  # hindi,4
        ("fa", "4"),  # persian,4
        ("id", "3"),  # indonesian,3
        ("uk", "3"),  # ukrainian,3
        ("sw", "2"),  # swahili,2
        ("yo", "2"),  # yoruba,2
        ("pa", "2"),  # eastern punjabi,2
        ("te", "1"),  # telugu,1
        ("jv", "1"),  # javanese,1
        ("gu", "1"),  # gujarati,1
        ("zh-Hant", "5"),  # a script variant takes its language's entry
        ("es-MX", "5"),  # a regional variant likewise
        ("ro", "unknown"),  # romanian,3 and moldavian,0
        ("sl", "unknown"),  # slovenian,3 and slovene,0
        ("ht", "unknown"),  # haitian,2 and haitian creole,0
        ("ar-DZ", "unknown"),  # no entry for Algerian Arabic
        ("xx", "unknown"),  # not in the table
    ],
)
def test_tiers_read_from_the_source_file(code, tier):
    assert language_tier(code) == tier


def test_by_tier_groups_in_tier_order():
    gains = pd.Series({"en": 1.0, "hi": 2.0, "de": 3.0, "sw": 4.0, "te": -1.0, "yo": 6.0, "ro": 0.5, "xx": 1.5})
    table = by_tier(gains)
    assert list(table.index) == ["5", "4", "2", "1", "unknown"]
    assert table.index.name == "tier"
    assert table["languages"].tolist() == [2, 1, 2, 1, 2]
    assert table["mean_gain"].tolist() == pytest.approx([2.0, 2.0, 5.0, -1.0, 1.0])
    assert table["members"].tolist() == ["en, de", "hi", "sw, yo", "te", "ro, xx"]
    assert by_tier(pd.Series(dtype=float)).empty


def _same(task: str, **scores: float) -> dict[str, dict[str, float]]:
    return {lang: dict(scores) for lang in SUITES["xtreme"].tasks[task].languages}


def _xtreme() -> dict[str, dict[str, dict[str, float]]]:
    """Every XTREME task, with task scores pawsx 86, xnli 70, panx 65, udpos 75, bucc2018 93, tatoeba 60,
    xquad (50 + 70) / 2 = 60, mlqa (40 + 60) / 2 = 50, tydiqa (45 + 65) / 2 = 55."""
    pawsx = {lang: {"accuracy": 80.0 + 2 * i} for i, lang in enumerate(SUITES["xtreme"].tasks["pawsx"].languages)}
    bucc = {lang: {"f1": 90.0 + 2 * i} for i, lang in enumerate(SUITES["xtreme"].tasks["bucc2018"].languages)}
    return {
        "pawsx": pawsx,
        "xnli": _same("xnli", accuracy=70.0),
        "panx": _same("panx", f1=65.0),
        "udpos": _same("udpos", f1=75.0),
        "bucc2018": bucc,
        "tatoeba": _same("tatoeba", accuracy=60.0),
        "xquad": _same("xquad", exact_match=50.0, f1=70.0),
        "mlqa": _same("mlqa", exact_match=40.0, f1=60.0),
        "tydiqa": _same("tydiqa", exact_match=45.0, f1=65.0),
    }


def test_full_suite_matches_the_official_aggregate():
    scores = suite_scores(_xtreme(), "xtreme")
    assert scores.tasks == pytest.approx(
        {
            "pawsx": 86,
            "xnli": 70,
            "panx": 65,
            "udpos": 75,
            "bucc2018": 93,
            "tatoeba": 60,
            "xquad": 60,
            "mlqa": 50,
            "tydiqa": 55,
        }
    )
    assert scores.groups == pytest.approx({"classification": 78, "tagging": 70, "qa": 55, "retrieval": 76.5})
    assert scores.score == pytest.approx(614 / 9)
    assert not scores.partial and scores.missing == {}
    official = aggregate("xtreme", _xtreme())
    assert scores.score == pytest.approx(official["all_task"])
    assert scores.groups == pytest.approx({g: official[g] for g in SUITES["xtreme"].groups})


def test_missing_task_gives_a_partial_group_and_names_it():
    per_task = _xtreme()
    del per_task["mlqa"]
    scores = suite_scores(per_task, "xtreme")
    assert scores.groups["qa"] == pytest.approx((60 + 55) / 2)
    assert scores.score == pytest.approx((614 - 50) / 8)
    assert scores.partial
    assert scores.missing == {"qa": ["mlqa"], "all": ["mlqa"]}
    official = aggregate("xtreme", per_task)  # the official report leaves out the group and the overall score
    assert "qa" not in official and "all_task" not in official


def test_group_with_no_task_is_only_missing():
    per_task = {t: v for t, v in _xtreme().items() if t not in ("bucc2018", "tatoeba")}
    scores = suite_scores(per_task, "xtreme")
    assert "retrieval" not in scores.groups
    assert scores.missing == {"retrieval": ["bucc2018", "tatoeba"], "all": ["bucc2018", "tatoeba"]}
    assert scores.score == pytest.approx((614 - 93 - 60) / 7)
    xnli_only = suite_scores({"xnli": _same("xnli", accuracy=70.0)}, "xtreme-r")
    assert xnli_only.groups == {"classification": 70.0}
    assert xnli_only.missing["multi_choice"] == ["xcopa"]
    empty = suite_scores({}, "xtreme")
    assert empty.score is None and empty.tasks == {} and empty.missing["all"] == list(SUITES["xtreme"].tasks)


def test_only_the_official_metrics_count():
    per_task = _xtreme()
    for scores in per_task["tatoeba"].values():
        scores["f1"] = 1.0  # would outrank accuracy in the official key order
    for scores in per_task["udpos"].values():
        scores.update(precision=0.0, recall=0.0)
    assert suite_scores(per_task, "xtreme").tasks == suite_scores(_xtreme(), "xtreme").tasks


def test_a_task_lacking_languages_or_outside_the_suite_is_an_error():
    per_task = _xtreme()
    del per_task["xnli"]["sw"]
    with pytest.raises(ValueError, match="xnli: no results for sw"):
        suite_scores(per_task, "xtreme")
    with pytest.raises(ValueError, match="xcopa"):
        suite_scores({"xcopa": {}}, "xtreme")


def _rows(per_task: dict, intermediate: str, recipe: str | None, seed: int | None, shift: float = 0.0) -> list[dict]:
    return [
        dict(
            zip(
                ROW_COLUMNS,
                ("job", "target", "m", intermediate, recipe, task, task, "test", lang, metric, value + shift, 10, True)
                + (seed,),
            )
        )
        for task, langs in per_task.items()
        for lang, scores in langs.items()
        for metric, value in scores.items()
    ]


def test_score_rows_per_run_over_seeds_with_shared_retrieval():
    trained, retrieval = (
        {t: v for t, v in _xtreme().items() if (t in ("bucc2018", "tatoeba")) == shared} for shared in (False, True)
    )
    partial = {t: v for t, v in trained.items() if t != "mlqa"}
    partial["xnli"] = {lang: v for lang, v in partial["xnli"].items() if lang != "sw"}
    rows = [
        *_rows(trained, "none", "full", 1, -1.0),
        *_rows(trained, "none", "full", 2, +1.0),
        *_rows(retrieval, "none", None, None),
        *_rows(partial, "mnli", "full", 1),
        *_rows(retrieval, "mnli", None, 1),
        *_rows(retrieval, "squad", None, 1),
        *_rows({"xnli": {"en": {"accuracy": 0.0}}}, "none", "full", 1)[:1],
    ]
    rows[-1].update(split="dev")
    rows.append(dict(rows[0], kind="intermediate", target="", value=0.0))  # not a job's own task
    table = score_rows(pd.DataFrame(rows, columns=ROW_COLUMNS), "xtreme").set_index("intermediate")
    assert list(table.columns) == [
        "model",
        "recipe",
        "score",
        *SUITES["xtreme"].groups,
        *SUITES["xtreme"].tasks,
        "missing",
    ]
    assert table.loc["none", "score"] == pytest.approx(614 / 9)
    assert table.loc["none", "missing"] == ""
    assert table.loc["mnli", "recipe"] == "full"
    assert table.loc["mnli", "score"] == pytest.approx((86 + 65 + 75 + 93 + 60 + 60 + 55) / 7)
    assert table.loc["mnli", "classification"] == pytest.approx(86)
    assert pd.isna(table.loc["mnli", "xnli"])
    assert table.loc["mnli", "missing"] == "xnli (no sw), mlqa"
    assert pd.isna(table.loc["squad", "recipe"])  # retrieval alone: the setting has no trained run
    assert table.loc["squad", "retrieval"] == pytest.approx(76.5)
    assert len(table) == 3
