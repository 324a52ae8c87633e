"""Official XTREME / XTREME-R metrics and suites on hand-computed cases (all scores in percent)."""

from __future__ import annotations

import numpy as np
import pytest

from xstilts.metrics import official as m
from xstilts.metrics.suites import SUITES, aggregate


def test_accuracy():
    # 3 of 4 positions agree
    assert m.accuracy([1, 0, 1, 1], [1, 1, 1, 1]) == 75.0
    with pytest.raises(ValueError):
        m.accuracy([1], [1, 0])


def test_squad_normalisation_and_scores():
    # lowercase, ASCII punctuation removed before articles, so "Eiffel-Tower" becomes one word
    assert m.normalize_squad("The  Eiffel-Tower!") == "eiffeltower"
    assert m.normalize_squad("An apple.") == "apple"
    preds = {"q1": "Eiffel Tower in Paris", "q2": "1889", "q4": "An apple."}
    golds = {"q1": ["the Eiffel Tower", "Tower"], "q2": ["in 1889"], "q3": ["x"], "q4": ["apple"]}
    # q1: "eiffel tower in paris" vs "eiffel tower": P=2/4, R=1 -> F1 2/3 (vs "tower": 0.4), EM 0
    # q2: "1889" vs "in 1889": P=1, R=1/2 -> F1 2/3, EM 0
    # q3: unanswered -> 0, but it still counts in the mean; q4: exact -> EM 1, F1 1
    got = m.squad_scores(preds, golds)
    assert got["exact_match"] == pytest.approx(100 * 1 / 4)
    assert got["f1"] == pytest.approx(100 * (2 / 3 + 2 / 3 + 0 + 1) / 4)


def test_squad_treats_chinese_as_one_token():
    # XQuAD/TyDiQA use SQuAD normalisation for every language: "北京" vs "北京大学" share no token
    assert m.squad_scores({"q": "北京"}, {"q": ["北京大学"]}) == {"exact_match": 0.0, "f1": 0.0}


def test_mlqa_chinese_mixed_segmentation():
    # each CJK ideograph is a token; "in 2020" stays whitespace-split; 年 is its own token
    assert m.normalize_mlqa("北京大学 in 2020年", "zh") == "北 京 大 学 in 2020 年"
    # P = 2/2, R = 2/4 -> F1 = 2/3; EM 0
    assert m.mlqa_scores({"q": "北京"}, {"q": ["北京大学"]}, "zh") == pytest.approx(
        {"exact_match": 0.0, "f1": 100 * 2 / 3}
    )
    # spaces between ideographs do not matter: both sides become "北 京 大 学"
    assert m.mlqa_scores({"q": "北京 大学"}, {"q": ["北京大学"]}, "zh")["exact_match"] == 100.0


def test_mlqa_german_spanish_vietnamese_english_articles():
    assert m.normalize_mlqa("Der Vertrag von Rom", "de") == "vertrag von rom"
    assert m.normalize_mlqa("des Jahres", "de") == "jahres"
    got = m.mlqa_scores({"q": "Vertrag von Rom"}, {"q": ["Der Vertrag von Rom"]}, "de")
    assert got == {"exact_match": 100.0, "f1": 100.0}
    assert m.normalize_squad("Der Vertrag") == "der vertrag"  # SQuAD keeps German articles
    assert m.normalize_mlqa("«La casa»", "es") == "casa"  # Unicode quotes are punctuation, 'la' an article
    assert m.normalize_mlqa("của tôi", "vi") == "tôi"
    assert m.normalize_mlqa("The cat", "en") == "cat"
    with pytest.raises(ValueError):
        m.normalize_mlqa("x", "fr")


def test_mlqa_arabic_al_removed_everywhere():
    assert m.normalize_mlqa("الكتاب", "ar") == "كتاب"
    # the official pattern drops every alef-lam, also inside words: ا ل م ا ل -> " م " -> "م"
    assert m.normalize_mlqa("المال", "ar") == "م"
    # gold "الكتاب الجديد" -> "كتاب جديد": P = 1/1, R = 1/2 -> F1 2/3
    assert m.mlqa_scores({"q": "كتاب"}, {"q": ["الكتاب الجديد"]}, "ar")["f1"] == pytest.approx(100 * 2 / 3)


def test_mlqa_hindi_danda_is_punctuation():
    # '।' (U+0964) is Unicode punctuation (Po): MLQA drops it, SQuAD's ASCII set does not
    assert m.normalize_mlqa("भारत।", "hi") == "भारत"
    assert m.normalize_squad("भारत।") == "भारत।"
    assert m.mlqa_scores({"q": "भारत"}, {"q": ["भारत।"]}, "hi")["exact_match"] == 100.0


def test_seqeval_on_pos_tags_merges_runs():
    gold = [["PRON", "AUX", "NOUN", "PUNCT"], ["DET", "NOUN", "VERB"]]
    pred = [["PRON", "AUX", "NOUN", "PUNCT"], ["DET", "NOUN", "NOUN"]]
    # gold chunks: 4 + 3 = 7. In pred the run "NOUN NOUN" is ONE chunk (tokens 1-2), so pred has
    # 4 + 2 = 6 chunks, 5 of them right: P = 5/6, R = 5/7, F1 = 2*5/(6+7) = 10/13
    got = m.seqeval_scores(gold, pred)
    assert got == pytest.approx({"f1": 100 * 10 / 13, "precision": 100 * 5 / 6, "recall": 100 * 5 / 7})


def test_seqeval_ner():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG"]]
    pred = [["B-PER", "O", "O", "B-LOC"], ["O", "B-ORG"]]
    # gold PER(0-1) LOC ORG, pred PER(0) LOC ORG: 2 of 3 right on both sides
    assert m.seqeval_scores(gold, pred) == pytest.approx({"f1": 200 / 3, "precision": 200 / 3, "recall": 200 / 3})


def test_tatoeba_accuracy():
    queries = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    pool = np.array([[2.0, 0.0], [0.0, 3.0], [-1.0, 1.0]])
    # q0 -> p0 and q1 -> p1 (cosine 1); q2 is equally close to p0 and p1 (0.707), p2 is at 0: wrong
    assert m.tatoeba_accuracy(queries, pool) == pytest.approx(100 * 2 / 3)


def test_average_precision_at_k():
    # hits at ranks 2 and 4: (1/2 + 2/4) / min(20, 2) = 0.5
    assert m.average_precision_at_k({"a", "b"}, ["x", "a", "y", "b"]) == 0.5
    # a repeated item counts once: (1/1 + 2/3) / 2 = 5/6
    assert m.average_precision_at_k({"a", "b"}, ["a", "a", "b"]) == pytest.approx(5 / 6)
    # 25 relevant, the top 20 all relevant: 20 / min(20, 25) = 1
    relevant = [f"r{i}" for i in range(25)]
    assert m.average_precision_at_k(relevant, relevant) == 1.0
    # a hit at rank 21 is outside the top 20
    assert m.average_precision_at_k({"g"}, [f"n{i}" for i in range(20)] + ["g"]) == 0.0


def test_map_at_20_mewslix_style():
    golds = {"m1": ["Q1"], "m2": ["Q2"], "m3": ["Q3"]}
    preds = {"m1": ["Q9", "Q1"], "m2": [f"Q{10 + i}" for i in range(20)] + ["Q2"]}
    # m1: reciprocal rank 1/2; m2: gold at rank 21 -> 0; m3: no prediction -> 0. Mean = 1/6
    assert m.map_at_k(golds, preds) == pytest.approx(100 / 6)


def test_bucc_f1():
    pred = [("a", "1"), ("b", "2"), ("c", "9")]
    gold = [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")]
    # 2 right: P = 2/3, R = 2/4, F1 = 2PR/(P+R) = (2/3)/(7/6) = 4/7
    assert m.bucc_f1(pred, gold) == pytest.approx({"f1": 400 / 7, "precision": 200 / 3, "recall": 50.0})


def test_best_threshold_sweeps_sorted_candidates():
    scored = {("e", "8"): 1.1, ("a", "1"): 1.9, ("c", "9"): 1.5, ("b", "2"): 1.7, ("d", "4"): 1.3}
    gold = [("a", "1"), ("b", "2"), ("d", "4"), ("f", "5")]
    # by score: a1 (gold) b2 (gold) c9 d4 (gold) e8. Prefix F1 with 4 gold pairs:
    # 1: P1 R1/4 -> 0.4; 2: P1 R1/2 -> 0.667; 3: P2/3 R1/2 -> 0.571; 4: P3/4 R3/4 -> 0.75 (best); 5: 0.667
    # threshold = midpoint of the 4th and 5th scores = (1.3 + 1.1) / 2 = 1.2; keeps a1 b2 c9 d4 -> F1 75
    threshold, f1 = m.best_threshold(scored, gold)
    assert threshold == pytest.approx(1.2)
    assert f1 == pytest.approx(75.0)
    assert m.extract_pairs(scored, threshold) == {("a", "1"), ("b", "2"), ("c", "9"), ("d", "4")}


def test_best_threshold_edge_cases():
    # every candidate gold: the best prefix is the whole list, threshold = the last score
    assert m.best_threshold({("a", "1"): 2.0, ("b", "2"): 1.0}, [("a", "1"), ("b", "2")]) == (1.0, 100.0)
    # nothing right: threshold stays 0
    assert m.best_threshold({("a", "9"): 2.0}, [("a", "1")]) == (0.0, 0.0)


def test_margin_mining():
    x = np.array([[1.0, 0.0], [0.6, 0.8]])
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    # cosines: [[1, 0], [0.6, 0.8]]. k=2: x's neighbour means 0.5 and 0.7, y's 0.8 and 0.4
    # margin = cos / ((mean_x + mean_y) / 2): [[1/0.65, 0/0.45], [0.6/0.75, 0.8/0.55]]
    # each side's best is the diagonal, both pairs kept with their margins
    mined = m.mine_candidates(x, y, k=2)
    assert mined.keys() == {(0, 0), (1, 1)}
    assert mined[(0, 0)] == pytest.approx(1 / 0.65) and mined[(1, 1)] == pytest.approx(0.8 / 0.55)
    # k=1: means are the row/column maxima [1, 0.8] and [1, 0.8]: diagonal margins 1/1 and 0.8/0.8
    assert m.mine_candidates(x, y, k=1) == pytest.approx({(0, 0): 1.0, (1, 1): 1.0})


def test_suites_shape():
    xtreme, xtreme_r = SUITES["xtreme"], SUITES["xtreme-r"]
    assert len(xtreme.tasks) == 9 and len(xtreme.languages) == 40
    assert len(xtreme_r.tasks) == 10 and len(xtreme_r.languages) == 50
    counts = {t.name: len(t.languages) for t in xtreme.tasks.values()}
    assert counts == {
        "pawsx": 7,
        "xnli": 15,
        "panx": 40,
        "udpos": 33,
        "bucc2018": 4,
        "tatoeba": 36,
        "xquad": 11,
        "mlqa": 7,
        "tydiqa": 9,
    }
    counts_r = {t.name: len(t.languages) for t in xtreme_r.tasks.values()}
    assert counts_r == {
        "xnli": 15,
        "panx": 48,
        "udpos": 38,
        "tatoeba": 41,
        "xcopa": 11,
        "lareqa": 11,
        "mewslix": 11,
        "xquad": 12,
        "mlqa": 7,
        "tydiqa": 9,
    }
    assert xtreme.tasks["bucc2018"].languages == ("de", "fr", "ru", "zh")
    assert set(xtreme_r.languages) - set(xtreme.languages) == {
        "az",
        "gu",
        "ht",
        "lt",
        "pa",
        "pl",
        "qu",
        "ro",
        "uk",
        "wo",
    }
    assert {t.ext for t in xtreme_r.tasks.values()} == {"tsv", "json", "jsonl"}


def test_aggregate_partial_and_qa_metric():
    langs = SUITES["xtreme"].tasks["tydiqa"].languages
    per_lang = {lang: {"exact_match": 50.0, "f1": 80.0} for lang in langs}
    report = aggregate("xtreme", {"tydiqa": per_lang})
    # one task only: no all_task and no complete group; task score = (EM + F1) / 2 = 65
    assert list(report) == ["tydiqa"]
    assert report["tydiqa"]["avg_metric"] == 65.0
    assert list(report["tydiqa"]) == ["exact_match", "f1", "avg_exact_match", "avg_f1", "avg_metric"]
    with pytest.raises(ValueError):
        aggregate("xtreme", {"xcopa": {}})
