"""Scoring prediction folders in the official layout (fixtures: tests/fixtures/score, see make_fixtures.py).

Every task's predictions are perfect (100) except in one language; the task scores below are worked out by hand.
The expected group and overall scores restate the official rules independently (``official_summaries``).
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
MLQA = mean(MLQA_EM, MLQA_F1)
TYDIQA = (8 * 100 + 50) / 9  # fi: q2 unanswered scores 0 (EM and F1)
ZH_MLQA = 100 * (2 / 3 + 1) / 2
EN_XQUAD_F1 = 100 * (2 / 3 + 1) / 2  # "eiffel tower in paris" vs "eiffel tower": P 1/2, R 1 -> 2/3

TASKS = {  # task scores (avg_metric) in the official task order
    "xtreme": {
        "pawsx": (6 * 100 + 75) / 7,  # de: 3 of 4
        "xnli": XNLI,
        "panx": (39 * 100 + 200 / 3) / 40,  # ar: PER span cut short, 2 of 3 chunks on both sides
        "udpos": (32 * 100 + 1000 / 13) / 33,  # en: "NOUN NOUN" merges into one chunk, F1 10/13
        "bucc2018": (3 * 100 + 75) / 4,  # ru: 3 of 4 pairs right, P = R = 3/4
        "tatoeba": (35 * 100 + 75) / 36,  # kk: 3 of 4
        "xquad": mean((10 * 100 + 50) / 11, (10 * 100 + EN_XQUAD_F1) / 11),  # en: q1 EM 0
        "mlqa": MLQA,
        "tydiqa": TYDIQA,
    },
    "xtreme-r": {
        "xnli": XNLI,
        "panx": (47 * 100 + 200 / 3) / 48,
        "udpos": (37 * 100 + 1000 / 13) / 38,
        "tatoeba": (40 * 100 + 75) / 41,
        "xcopa": (10 * 100 + 75) / 11,  # qu: 3 of 4
        "lareqa": (10 * 100 + 75) / 11,  # th: q1 hits at ranks 2 and 4 -> (1/2 + 2/4) / 2 = 0.5, q2 1 -> 75
        "mewslix": (10 * 100 + 25) / 11,  # ja: m1 at rank 2 -> 0.5, m2 at rank 21 -> 0 -> 25
        "xquad": mean((11 * 100 + 50) / 12, (11 * 100 + EN_XQUAD_F1) / 12),  # 12 languages with ro
        "mlqa": MLQA,
        "tydiqa": TYDIQA,
    },
}

# The official rules, read in google-research/xtreme's evaluate.py at commit
# 838c13b69daafb9328785d16caae2711e4012123 (XTREME_GROUP2TASK, XTREME_R_GROUP2TASK, XTREME_R_TASK2LANGS and the
# "Display logic" of evaluate()): a group when every one of its tasks has a score, all_task (first) when every
# listed task has one, each the plain mean of task scores. LAReQA is listed for XTREME-R with no language and in
# no group: it never has a score, so XTREME-R never gets all_task.
OFFICIAL_GROUPS = {
    "xtreme": {
        "classification": ["pawsx", "xnli"],
        "tagging": ["udpos", "panx"],
        "qa": ["xquad", "mlqa", "tydiqa"],
        "retrieval": ["bucc2018", "tatoeba"],
    },
    "xtreme-r": {
        "classification": ["xnli", "xcopa"],
        "tagging": ["udpos", "panx"],
        "qa": ["xquad", "mlqa", "tydiqa"],
        "retrieval": ["tatoeba", "mewslix"],
        "multi_choice": ["xcopa"],
    },
}


def official_summaries(suite: str, run: list[str]) -> dict[str, float]:
    """all_task and the groups the official script reports for the tasks run, in its order."""
    scores = {t: TASKS[suite][t] for t in run if t != "lareqa"}
    out = {"all_task": mean(*scores.values())} if set(scores) == set(TASKS[suite]) else {}
    for group, tasks in OFFICIAL_GROUPS[suite].items():
        if all(t in scores for t in tasks):
            out[group] = mean(*(scores[t] for t in tasks))
    return out


def expected_extras(suite: str, run: list[str]) -> dict[str, float]:
    """What xstilts adds apart from the official report: LAReQA's score, the XTREME-R paper's retrieval group
    (Tatoeba, Mewsli-X, LAReQA) and, without an official all_task, the mean of the tasks run."""
    scores = TASKS[suite]
    out = {"lareqa": scores["lareqa"]} if "lareqa" in run else {}
    if {"tatoeba", "mewslix", "lareqa"} <= set(run):
        out["retrieval (XTREME-R paper, with LAReQA)"] = mean(scores["tatoeba"], scores["mewslix"], scores["lareqa"])
    if "all_task" not in official_summaries(suite, run):
        out["mean of the tasks run"] = mean(*(scores[t] for t in run))
    return out


def check_report(report: dict, suite: str, dropped: tuple[str, ...] = ()) -> None:
    """``report`` (the printed JSON) holds the official numbers under official keys, the rest apart."""
    run = [t for t in TASKS[suite] if t not in dropped]
    official, extra = report["official (evaluate.py)"], report["not in evaluate.py"]
    summaries = {k: v for k, v in official.items() if k not in TASKS[suite]}
    assert summaries == pytest.approx(official_summaries(suite, run))
    assert list(summaries) == list(official_summaries(suite, run))
    assert list(official) == [*summaries, *run]  # then the task blocks, in the official order
    for task in run:
        block = extra[task] if task == "lareqa" else official[task]
        assert block["avg_metric"] == pytest.approx(TASKS[suite][task]), task
    assert official.get("lareqa", {}) == {}  # listed officially with no language: an empty block
    extras = {k: v["avg_metric"] if isinstance(v, dict) else v for k, v in extra.items()}
    assert extras == pytest.approx(expected_extras(suite, run))
    name = {"xtreme": "XTREME", "xtreme-r": "XTREME-R"}[suite]
    assert report["label"] == (f"partial {name} ({len(run)} of {len(TASKS[suite])} tasks)" if dropped else name)
    assert report["missing"] == [t for t in TASKS[suite] if t in dropped]


@pytest.fixture(scope="module")
def xtreme() -> dict:
    return score_suite("xtreme", PRED, LABELS).as_json()


@pytest.fixture(scope="module")
def xtreme_r() -> dict:
    return score_suite("xtreme-r", PRED, LABELS).as_json()


def test_xtreme_report(xtreme):
    check_report(xtreme, "xtreme")
    assert "all_task" in xtreme["official (evaluate.py)"] and xtreme["not in evaluate.py"] == {}


def test_xtreme_task_blocks(xtreme):
    official = xtreme["official (evaluate.py)"]
    udpos = official["udpos"]
    assert list(udpos) == ["f1", "precision", "recall", "avg_f1", "avg_precision", "avg_recall", "avg_metric"]
    assert len(udpos["f1"]) == 33 and "wo" not in udpos["f1"]
    # en: P = 5/6, R = 5/7 (see test_metrics); every other language 100
    assert udpos["precision"]["en"] == pytest.approx(500 / 6)
    assert udpos["avg_recall"] == pytest.approx((32 * 100 + 500 / 7) / 33)
    assert official["mlqa"]["exact_match"]["de"] == 100.0
    assert official["mlqa"]["f1"]["zh"] == pytest.approx(ZH_MLQA)
    assert official["tydiqa"]["f1"]["fi"] == 50.0
    assert official["xquad"]["f1"]["en"] == pytest.approx(EN_XQUAD_F1)
    assert list(official["xquad"]["f1"]) == ["en", "es", "de", "el", "ru", "tr", "ar", "vi", "th", "zh", "hi"]
    assert official["bucc2018"]["recall"]["ru"] == 75.0


def test_xtreme_r_report_with_every_task(xtreme_r):
    """Every task run: still no official all_task (the official script stops with a KeyError here); the official
    retrieval group is Tatoeba and Mewsli-X only, the paper's with LAReQA is an extra."""
    check_report(xtreme_r, "xtreme-r")
    official = xtreme_r["official (evaluate.py)"]
    assert "all_task" not in official
    assert official["retrieval"] == pytest.approx(mean(TASKS["xtreme-r"]["tatoeba"], TASKS["xtreme-r"]["mewslix"]))
    assert official["mewslix"]["map@20"]["ja"] == 25.0
    assert xtreme_r["not in evaluate.py"]["lareqa"]["map@20"]["th"] == 75.0


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
    dropped = tuple(t for t in TASKS["xtreme"] if t != "xnli")
    for task in dropped:
        shutil.rmtree(copy / "predictions" / task)
    report = score_suite("xtreme", copy / "predictions", copy / "labels").as_json()
    check_report(report, "xtreme", dropped)  # no group is complete: no group score and no all_task
    assert list(report["official (evaluate.py)"]) == ["xnli"] and report["label"] == "partial XTREME (1 of 9 tasks)"
    with pytest.raises(UserError, match="unknown suite"):
        score_suite("xtreme-x", copy / "predictions", copy / "labels")


def _score_command(root: Path, suite: str, output: Path) -> subprocess.CompletedProcess:
    args = ["score", "--suite", suite, "--predictions", str(root / "predictions"), "--labels", str(root / "labels")]
    return subprocess.run(
        [sys.executable, "-m", "xstilts", *args, "--output", str(output)], check=False, capture_output=True, text=True
    )


RUNS = {  # id -> (suite, prediction folders left out)
    "xtreme": ("xtreme", ()),
    "xtreme-r": ("xtreme-r", ()),
    "xtreme-r-without-lareqa": ("xtreme-r", ("lareqa",)),
    "xtreme-without-bucc-and-mlqa": ("xtreme", ("bucc2018", "mlqa")),
}


@pytest.mark.parametrize(("suite", "dropped"), RUNS.values(), ids=list(RUNS))
def test_score_command_prints_official_scores_and_labelled_extras(copy, tmp_path, suite, dropped):
    """``xstilts score`` prints (and writes) every official group and overall score equal to the official rules,
    under the official keys, with the run's label and, apart, the scores the official script does not report."""
    for task in dropped:
        shutil.rmtree(copy / "predictions" / task)
    out = tmp_path / "report.json"
    proc = _score_command(copy, suite, out)
    assert proc.returncode == 0, proc.stderr
    printed = json.loads(proc.stdout)
    assert printed == json.loads(out.read_text())
    check_report(printed, suite, dropped)


def test_score_command_fails_in_one_line(copy, tmp_path):
    """A bad folder is one line on stderr, exit 2."""
    (copy / "predictions" / "xnli" / "test-sw.tsv").unlink()
    proc = _score_command(copy, "xtreme", tmp_path / "report.json")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "test-sw.tsv: missing prediction" in proc.stderr
