"""Resource tiers of languages (Joshi et al. 2020) and suite scores over the tasks present."""

from __future__ import annotations

import pandas as pd
import pytest

from xstilts.analysis.scores import score_rows, suite_tables
from xstilts.analysis.tiers import SOURCE, TIER_ORDER, by_tier, language_tier, tiers
from xstilts.experiments.export import ROW_COLUMNS
from xstilts.metrics.suites import PAPER_RETRIEVAL, SUITES, TASK_MEAN, suite_scores


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
        ("ro", "3"),  # romanian,3 and its class-0 alias moldavian,0
        ("sl", "3"),  # slovenian,3 and slovene,0
        ("ht", "2"),  # haitian,2 and haitian creole,0
        ("ar-DZ", "unknown"),  # no entry for Algerian Arabic
        ("xx", "unknown"),  # not in the table
    ],
)
def test_tiers_read_from_the_source_file(code, tier):
    assert language_tier(code) == tier


def test_by_tier_groups_in_tier_order():
    gains = pd.Series({"en": 1.0, "hi": 2.0, "de": 3.0, "sw": 4.0, "te": -1.0, "yo": 6.0, "ar-DZ": 0.5, "xx": 1.5})
    table = by_tier(gains)
    assert list(table.index) == ["5", "4", "2", "1", "unknown"]
    assert table.index.name == "tier"
    assert table["languages"].tolist() == [2, 1, 2, 1, 2]
    assert table["mean_gain"].tolist() == pytest.approx([2.0, 2.0, 5.0, -1.0, 1.0])
    assert table["members"].tolist() == ["en, de", "hi", "sw, yo", "te", "ar-DZ, xx"]
    assert by_tier(pd.Series(dtype=float)).empty


def _same(task: str, suite: str = "xtreme", **scores: float) -> dict[str, dict[str, float]]:
    return {lang: dict(scores) for lang in SUITES[suite].tasks[task].languages}


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


def _xtreme_r() -> dict[str, dict[str, dict[str, float]]]:
    """Every XTREME-R task, with task scores xnli 70, panx 65, udpos 75, tatoeba 60, xcopa 80, lareqa 40, mewslix 30,
    xquad 60, mlqa 50, tydiqa 55 (585 in all)."""
    per_task = {
        "xnli": {"accuracy": 70.0},
        "panx": {"f1": 65.0},
        "udpos": {"f1": 75.0},
        "tatoeba": {"accuracy": 60.0},
        "xcopa": {"accuracy": 80.0},
        "lareqa": {"map@20": 40.0},
        "mewslix": {"map@20": 30.0},
        "xquad": {"exact_match": 50.0, "f1": 70.0},
        "mlqa": {"exact_match": 40.0, "f1": 60.0},
        "tydiqa": {"exact_match": 45.0, "f1": 65.0},
    }
    return {task: _same(task, "xtreme-r", **scores) for task, scores in per_task.items()}


def test_full_suite_scores_are_the_official_report():
    scores = suite_scores("xtreme", _xtreme())
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
    summaries = {k: v for k, v in scores.official.items() if k not in scores.tasks}
    expected = {"all_task": 614 / 9, "classification": 78, "tagging": 70, "qa": 55, "retrieval": 76.5}
    assert summaries == pytest.approx(expected) and list(summaries) == list(expected)
    assert scores.label == "XTREME" and scores.missing == () and scores.extra == {}


def test_missing_task_is_a_partial_run_without_its_group():
    per_task = _xtreme()
    del per_task["mlqa"]
    scores = suite_scores("xtreme", per_task)
    assert "qa" not in scores.official and "all_task" not in scores.official  # as the official report
    assert scores.official["retrieval"] == pytest.approx(76.5)
    assert scores.label == "partial XTREME (8 of 9 tasks)" and scores.missing == ("mlqa",)
    assert scores.extra == pytest.approx({TASK_MEAN: (614 - 50) / 8})


def test_xtreme_r_retrieval_is_the_official_one_and_the_papers_is_named_apart():
    """The official retrieval group is Tatoeba and Mewsli-X; LAReQA, which the official script scores on no
    language, is reported apart, with the XTREME-R paper's retrieval group; XTREME-R never has an official
    all_task."""
    scores = suite_scores("xtreme-r", _xtreme_r())
    summaries = {k: v for k, v in scores.official.items() if k not in scores.tasks}
    expected = {"classification": 75, "tagging": 70, "qa": 55, "retrieval": 45, "multi_choice": 80}
    assert summaries == pytest.approx(expected) and list(summaries) == list(expected)
    assert scores.official["lareqa"] == {} and scores.extra["lareqa"]["avg_metric"] == 40
    assert {k: v for k, v in scores.extra.items() if k != "lareqa"} == pytest.approx(
        {PAPER_RETRIEVAL: (60 + 30 + 40) / 3, TASK_MEAN: 58.5}
    )
    assert scores.label == "XTREME-R" and scores.tasks["lareqa"] == 40
    without = suite_scores("xtreme-r", {t: v for t, v in _xtreme_r().items() if t != "lareqa"})
    assert without.official == {k: v for k, v in scores.official.items() if k != "lareqa"}
    assert without.extra == pytest.approx({TASK_MEAN: (585 - 40) / 9})
    assert without.label == "partial XTREME-R (9 of 10 tasks)" and without.missing == ("lareqa",)
    empty = suite_scores("xtreme", {})
    assert empty.official == {} and empty.extra == {} and empty.missing == tuple(SUITES["xtreme"].tasks)


def test_only_the_official_metrics_count():
    per_task = _xtreme()
    for scores in per_task["tatoeba"].values():
        scores["f1"] = 1.0  # would outrank accuracy in the official key order
    for scores in per_task["udpos"].values():
        scores.update(precision=0.0, recall=0.0)
    extended, plain = (
        score_rows(pd.DataFrame(_rows(p, "none", "full", 1), columns=ROW_COLUMNS), "xtreme")
        for p in (per_task, _xtreme())
    )
    pd.testing.assert_frame_equal(extended, plain)
    assert plain.loc[0, "tatoeba"] == 60 and plain.loc[0, "udpos"] == 75


def test_a_task_lacking_languages_or_outside_the_suite_is_an_error():
    per_task = _xtreme()
    del per_task["xnli"]["sw"]
    with pytest.raises(ValueError, match="xnli: no results for sw"):
        suite_scores("xtreme", per_task)
    with pytest.raises(ValueError, match="xcopa"):
        suite_scores("xtreme", {"xcopa": {}})


def _rows(per_task: dict, intermediate: str, recipe: str | None, seed: int | None, shift: float = 0.0) -> list[dict]:
    job = {
        "job_id": "job",
        "kind": "target",
        "model": "m",
        "intermediate": intermediate,
        "recipe": recipe,
        "seed": seed,
    }
    return [
        dict.fromkeys(ROW_COLUMNS)
        | job
        | {"target": task, "task": task, "split": "test", "language": lang, "metric": metric, "value": value + shift}
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
    summaries = ["all_task", *SUITES["xtreme"].groups, TASK_MEAN]
    assert list(table.columns) == ["model", "recipe", "label", "missing", *summaries, *SUITES["xtreme"].tasks]
    assert table.loc["none", "label"] == "XTREME" and table.loc["none", "missing"] == ""
    assert table.loc["none", "all_task"] == pytest.approx(614 / 9) and pd.isna(table.loc["none", TASK_MEAN])
    assert table.loc["mnli", "recipe"] == "full"
    assert table.loc["mnli", "label"] == "partial XTREME (7 of 9 tasks)"
    assert table.loc["mnli", "missing"] == "xnli (no sw), mlqa"
    assert table.loc["mnli", TASK_MEAN] == pytest.approx((86 + 65 + 75 + 93 + 60 + 60 + 55) / 7)
    for missing in ("all_task", "classification", "qa", "xnli"):  # no group over the tasks present only
        assert pd.isna(table.loc["mnli", missing]), missing
    assert table.loc["mnli", "tagging"] == pytest.approx(70)
    assert pd.isna(table.loc["squad", "recipe"])  # retrieval alone: the setting has no trained run
    assert table.loc["squad", "retrieval"] == pytest.approx(76.5)
    assert table.loc["squad", "label"] == "partial XTREME (2 of 9 tasks)"
    assert len(table) == 3


def test_suite_tables_name_the_suite_only_for_complete_runs():
    rows = [
        *_rows(_xtreme(), "none", "full", 1),
        *_rows({t: v for t, v in _xtreme().items() if t != "mlqa"}, "mnli", "full", 1),
        *[dict(r, model="r") for r in _rows(_xtreme_r(), "none", "full", 1)],
    ]
    tables = {
        heading: (table, caption) for heading, table, caption in suite_tables(pd.DataFrame(rows, columns=ROW_COLUMNS))
    }
    table, caption = tables["XTREME scores"]
    assert list(table.index) == ["m, none, full"] and table.index.name == "model, setting, recipe"
    assert list(table.columns) == ["all_task", *SUITES["xtreme"].groups, *SUITES["xtreme"].tasks]
    assert "Not run" not in caption and "Not from evaluate.py" not in caption
    table, caption = tables["partial XTREME (8 of 9 tasks) scores"]
    assert list(table.index) == ["m, mnli, full"]
    assert (
        "all_task" not in table
        and "qa" not in table
        and table.loc["m, mnli, full", TASK_MEAN] == pytest.approx((614 - 50) / 8)
    )
    assert "Not run: mlqa." in caption and f"Not from evaluate.py: {TASK_MEAN}:" in caption
    table, caption = tables["XTREME-R scores"]
    assert list(table.index) == ["r, none, full"] and "all_task" not in table
    assert list(table.columns[-12:-10]) == [PAPER_RETRIEVAL, TASK_MEAN] and table.loc["r, none, full", "lareqa"] == 40
    assert "no all_task for XTREME-R" in caption and "lareqa: scored by xstilts" in caption
    assert f"{PAPER_RETRIEVAL}: mean of tatoeba, mewslix, lareqa" in caption
    partial_r = [h for h in tables if h.startswith("partial XTREME-R")]  # the XTREME runs lack XTREME-R languages
    assert sorted(partial_r) == ["partial XTREME-R (2 of 10 tasks) scores", "partial XTREME-R (3 of 10 tasks) scores"]
    assert "Not run: panx (no qu, pl, uk, az, lt, pa, gu, ro)" in tables["partial XTREME-R (3 of 10 tasks) scores"][1]
