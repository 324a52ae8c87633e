"""Scoring prediction folders in the official layout (fixtures: tests/fixtures/score, see make_fixtures.py).

Every task's predictions are perfect (100) except in one language; the numbers below are worked out by hand.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xstilts.errors import UserError
from xstilts.evaluate.scoring import score_suite

FIXTURES = Path(__file__).parent / "fixtures" / "score"
PRED, LABELS = FIXTURES / "predictions", FIXTURES / "labels"


def mean(*xs: float) -> float:
    return sum(xs) / len(xs)


# shared by both suites
XNLI = (14 * 100 + 50) / 15  # sw: 2 of 4 right
MLQA_EM = (6 * 100 + 50) / 7  # zh: q1 "北京" vs "北京大学" wrong, q2 right (de "Vertrag" = "der Vertrag")
MLQA_F1 = (6 * 100 + 100 * (2 / 3 + 1) / 2) / 7  # zh q1 by characters: P 2/2, R 2/4 -> 2/3
TYDIQA = (8 * 100 + 50) / 9  # fi: q2 unanswered scores 0 (EM and F1)
ZH_MLQA = 100 * (2 / 3 + 1) / 2
EN_XQUAD_F1 = 100 * (2 / 3 + 1) / 2  # "eiffel tower in paris" vs "eiffel tower": P 1/2, R 1 -> 2/3


@pytest.fixture(scope="module")
def xtreme() -> dict:
    return score_suite("xtreme", PRED, LABELS)


@pytest.fixture(scope="module")
def xtreme_r() -> dict:
    return score_suite("xtreme-r", PRED, LABELS)


def test_xtreme_report(xtreme):
    pawsx = (6 * 100 + 75) / 7  # de: 3 of 4
    panx = (39 * 100 + 200 / 3) / 40  # ar: PER span cut short, 2 of 3 chunks on both sides
    udpos = (32 * 100 + 1000 / 13) / 33  # en: "NOUN NOUN" merges into one chunk, F1 10/13
    bucc = (3 * 100 + 75) / 4  # ru: 3 of 4 pairs right, P = R = 3/4
    tatoeba = (35 * 100 + 75) / 36  # kk: 3 of 4
    xquad = mean((10 * 100 + 50) / 11, (10 * 100 + EN_XQUAD_F1) / 11)  # en: q1 EM 0
    tasks = {
        "pawsx": pawsx,
        "xnli": XNLI,
        "panx": panx,
        "udpos": udpos,
        "bucc2018": bucc,
        "tatoeba": tatoeba,
        "xquad": xquad,
        "mlqa": mean(MLQA_EM, MLQA_F1),
        "tydiqa": TYDIQA,
    }
    assert list(xtreme) == ["all_task", "classification", "tagging", "qa", "retrieval", *tasks]
    for task, score in tasks.items():
        assert xtreme[task]["avg_metric"] == pytest.approx(score), task
    assert xtreme["classification"] == pytest.approx(mean(pawsx, XNLI))
    assert xtreme["tagging"] == pytest.approx(mean(udpos, panx))
    assert xtreme["qa"] == pytest.approx(mean(xquad, mean(MLQA_EM, MLQA_F1), TYDIQA))
    assert xtreme["retrieval"] == pytest.approx(mean(bucc, tatoeba))
    assert xtreme["all_task"] == pytest.approx(mean(*tasks.values()))


def test_xtreme_task_blocks(xtreme):
    udpos = xtreme["udpos"]
    assert list(udpos) == ["f1", "precision", "recall", "avg_f1", "avg_precision", "avg_recall", "avg_metric"]
    assert len(udpos["f1"]) == 33 and "wo" not in udpos["f1"]
    # en: P = 5/6, R = 5/7 (see test_metrics); every other language 100
    assert udpos["precision"]["en"] == pytest.approx(500 / 6)
    assert udpos["avg_recall"] == pytest.approx((32 * 100 + 500 / 7) / 33)
    assert xtreme["mlqa"]["exact_match"]["de"] == 100.0
    assert xtreme["mlqa"]["f1"]["zh"] == pytest.approx(ZH_MLQA)
    assert xtreme["tydiqa"]["f1"]["fi"] == 50.0
    assert xtreme["xquad"]["f1"]["en"] == pytest.approx(EN_XQUAD_F1)
    assert list(xtreme["xquad"]["f1"]) == ["en", "es", "de", "el", "ru", "tr", "ar", "vi", "th", "zh", "hi"]
    assert xtreme["bucc2018"]["recall"]["ru"] == 75.0


def test_xtreme_r_report(xtreme_r):
    panx = (47 * 100 + 200 / 3) / 48
    udpos = (37 * 100 + 1000 / 13) / 38
    tatoeba = (40 * 100 + 75) / 41
    xcopa = (10 * 100 + 75) / 11  # qu: 3 of 4
    lareqa = (10 * 100 + 75) / 11  # th: q1 hits at ranks 2 and 4 -> (1/2 + 2/4) / 2 = 0.5, q2 1 -> 75
    mewslix = (10 * 100 + 25) / 11  # ja: m1 at rank 2 -> 0.5, m2 at rank 21 -> 0 -> 25
    xquad = mean((11 * 100 + 50) / 12, (11 * 100 + EN_XQUAD_F1) / 12)  # 12 languages with ro
    tasks = {
        "xnli": XNLI,
        "panx": panx,
        "udpos": udpos,
        "tatoeba": tatoeba,
        "xcopa": xcopa,
        "lareqa": lareqa,
        "mewslix": mewslix,
        "xquad": xquad,
        "mlqa": mean(MLQA_EM, MLQA_F1),
        "tydiqa": TYDIQA,
    }
    assert list(xtreme_r) == ["all_task", "classification", "tagging", "qa", "retrieval", "multi_choice", *tasks]
    for task, score in tasks.items():
        assert xtreme_r[task]["avg_metric"] == pytest.approx(score), task
    assert xtreme_r["classification"] == pytest.approx(mean(XNLI, xcopa))
    assert xtreme_r["multi_choice"] == pytest.approx(xcopa)
    assert xtreme_r["retrieval"] == pytest.approx(mean(tatoeba, mewslix, lareqa))
    assert xtreme_r["all_task"] == pytest.approx(mean(*tasks.values()))
    assert xtreme_r["mewslix"]["map@20"]["ja"] == 25.0


@pytest.fixture
def copy(tmp_path) -> Path:
    shutil.copytree(FIXTURES, tmp_path / "score", ignore=shutil.ignore_patterns("*.py"))
    return tmp_path / "score"


def _error(root: Path, suite: str = "xtreme") -> str:
    with pytest.raises(UserError) as e:
        score_suite(suite, root / "predictions", root / "labels")
    message = str(e.value)
    assert "\n" not in message
    return message


def test_missing_language_file(copy):
    (copy / "predictions" / "xnli" / "test-sw.tsv").unlink()
    message = _error(copy)
    assert "xnli/test-sw.tsv: missing prediction file" in message


def test_fewer_predictions_than_labels(copy):
    path = copy / "predictions" / "pawsx" / "test-de.tsv"
    path.write_text("1\n1\n1\n")
    message = _error(copy)
    assert message.startswith(f"{path}: 3 lines, but ") and message.endswith("pawsx/test-de.tsv has 4")


def test_malformed_json(copy):
    path = copy / "predictions" / "xquad" / "test-en.json"
    path.write_text('{\n  "q1": "Eiffel Tower",\n  "q2": 1889,,\n}\n')
    assert _error(copy).startswith(f"{path}:3: malformed JSON")


def test_tag_count_mismatch(copy):
    (copy / "predictions" / "udpos" / "test-fr.tsv").write_text("PRON\nAUX\nNOUN\n\nDET\nNOUN\nVERB\n")
    assert "udpos/test-fr.tsv: sentence 1 has 3 tags, but " in _error(copy)


def test_missing_label_folder(copy):
    shutil.rmtree(copy / "labels" / "lareqa")
    assert "lareqa: missing label folder" in _error(copy, "xtreme-r")


def test_partial_submission_scores_present_tasks(copy):
    for task in (
        "pawsx",
        "panx",
        "udpos",
        "bucc2018",
        "tatoeba",
        "xquad",
        "mlqa",
        "tydiqa",
        "xcopa",
        "lareqa",
        "mewslix",
    ):
        shutil.rmtree(copy / "predictions" / task)
    report = score_suite("xtreme", copy / "predictions", copy / "labels")
    assert list(report) == ["xnli"]  # no group is complete, so no group score and no all_task
    with pytest.raises(UserError, match="unknown suite"):
        score_suite("xtreme-x", copy / "predictions", copy / "labels")


def test_score_command_writes_the_report_and_fails_in_one_line(copy, xtreme, tmp_path):
    """``xstilts score`` prints and writes the same report; a bad folder is one line on stderr, exit 2."""
    out = tmp_path / "report.json"
    args = [
        sys.executable,
        "-m",
        "xstilts",
        "score",
        "--suite",
        "xtreme",
        "--predictions",
        str(PRED),
        "--labels",
        str(LABELS),
        "--output",
        str(out),
    ]
    proc = subprocess.run(args, check=False, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == json.loads(out.read_text()) == xtreme
    (copy / "predictions" / "xnli" / "test-sw.tsv").unlink()
    args[args.index(str(PRED))] = str(copy / "predictions")
    proc = subprocess.run(args, check=False, capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "test-sw.tsv: missing prediction" in proc.stderr
