"""The metrics of XTREME and XTREME-R, re-implemented from the official definitions.

Every score is a percentage (0-100), as xtreme's ``evaluate.py`` writes them in its JSON report.
Sources followed: SQuAD v1.1 ``evaluate-v1.1.py`` (XQuAD, TyDiQA-GoldP), MLQA ``mlqa_evaluation_v1.py``,
seqeval (UD-POS and WikiANN), xtreme's ``bucc_f1``/``bucc_optimize``/``mine_bitext`` (BUCC 2018),
LAReQA's ``average_precision_at_k`` and Mewsli-X's top-20 reciprocal rank (mAP@20).
"""

from __future__ import annotations

import re
import string
import unicodedata
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

# ---------------------------------------------------------------- classification, tagging, Tatoeba


def accuracy(pred: Sequence, gold: Sequence) -> float:
    """Share of positions where prediction equals gold, in percent."""
    if len(pred) != len(gold):
        raise ValueError(f"{len(pred)} predictions for {len(gold)} gold labels")
    if not gold:
        raise ValueError("no examples")
    return sum(p == g for p, g in zip(pred, gold)) / len(pred) * 100


def seqeval_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, float]:
    """Micro chunk F1, precision, recall of the ``seqeval`` library (default mode), in percent.

    XTREME applies it to NER and also to UD-POS tags: a POS tag such as ``NOUN`` is read as chunk
    type ``OUN`` with prefix ``N``, so runs of one tag merge into one chunk.
    """
    from seqeval.metrics import f1_score, precision_score, recall_score

    with warnings.catch_warnings():  # "NOUN seems not to be NE tag", zero-division notes
        warnings.simplefilter("ignore")
        gold, pred = [list(s) for s in gold], [list(s) for s in pred]
        return {
            "f1": float(f1_score(gold, pred)) * 100,
            "precision": float(precision_score(gold, pred)) * 100,
            "recall": float(recall_score(gold, pred)) * 100,
        }


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def tatoeba_accuracy(queries: np.ndarray, pool: np.ndarray) -> float:
    """Percent of rows i of ``queries`` whose cosine-nearest row of ``pool`` is row i.

    xtreme indexes the non-English side and queries it with the English sentences.
    """
    found = (_unit(queries) @ _unit(pool).T).argmax(axis=1)
    return accuracy(list(found), list(range(len(queries))))


# ---------------------------------------------------------------- extractive QA

_ASCII_PUNCT = frozenset(string.punctuation)
_EN_ARTICLES = re.compile(r"\b(a|an|the)\b")
_MLQA_ARTICLES = {  # per language, as mlqa_evaluation_v1.py
    "en": _EN_ARTICLES,
    "es": re.compile(r"\b(un|una|unos|unas|el|la|los|las)\b"),
    "vi": re.compile(r"\b(của|là|cái|chiếc|những)\b"),
    "de": re.compile(r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b"),
    "hi": None,
    "zh": None,
    "ar": None,  # handled in _drop_articles: every "ال" becomes a space
}
_CJK = re.compile(r"[\u4e00-\u9fa5]")


def normalize_squad(text: str) -> str:
    """SQuAD v1.1: lowercase, drop ASCII punctuation, drop a/an/the, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _ASCII_PUNCT)
    return " ".join(_EN_ARTICLES.sub(" ", text).split())


def _is_mlqa_punct(ch: str) -> bool:
    return ch in _ASCII_PUNCT or unicodedata.category(ch).startswith("P")


def _drop_articles(text: str, lang: str) -> str:
    if lang == "ar":
        # the official pattern '\sال^|ال': its first branch can never match, so it removes
        # every occurrence of the letters alef-lam, also inside words
        return text.replace("ال", " ")
    pattern = _MLQA_ARTICLES[lang]
    return pattern.sub(" ", text) if pattern else text


def _mixed_segmentation(text: str) -> list[str]:
    """Each CJK ideograph (U+4E00-U+9FA5) or punctuation mark alone; other runs split on whitespace."""
    tokens, run = [], ""
    for ch in text:
        if _CJK.match(ch) or _is_mlqa_punct(ch):
            tokens.extend(run.split())
            run = ""
            tokens.append(ch)
        else:
            run += ch
    return tokens + run.split()


def normalize_mlqa(text: str, lang: str) -> str:
    """MLQA: lowercase, drop Unicode punctuation, drop the language's articles, then tokenise
    (whitespace; mixed segmentation for zh) and join tokens by single spaces."""
    if lang not in _MLQA_ARTICLES:
        raise ValueError(f"MLQA has no normalisation for language {lang!r} (known: {', '.join(_MLQA_ARTICLES)})")
    text = _drop_articles("".join(ch for ch in text.lower() if not _is_mlqa_punct(ch)), lang)
    tokens = _mixed_segmentation(text) if lang == "zh" else text.split()
    return " ".join(t for t in tokens if t.strip())


def _token_f1(pred: str, gold: str) -> float:
    p, g = pred.split(), gold.split()
    same = sum((Counter(p) & Counter(g)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(p), same / len(g)
    return 2 * precision * recall / (precision + recall)


def _qa_scores(
    predictions: Mapping[str, str], golds: Mapping[str, Sequence[str]], normalize: Callable[[str], str]
) -> dict[str, float]:
    if not golds:
        raise ValueError("no gold questions")
    em = f1 = 0.0
    for qid, answers in golds.items():
        if qid not in predictions:  # the official scripts score an unanswered question 0
            continue
        if not answers:
            raise ValueError(f"question {qid!r} has no gold answer")
        pred = normalize(predictions[qid])
        refs = [normalize(a) for a in answers]
        em += max(float(pred == r) for r in refs)
        f1 += max(_token_f1(pred, r) for r in refs)
    return {"exact_match": 100.0 * em / len(golds), "f1": 100.0 * f1 / len(golds)}


def squad_scores(predictions: Mapping[str, str], golds: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """SQuAD v1.1 exact match and token F1 (max over gold answers, mean over gold questions), in percent."""
    return _qa_scores(predictions, golds, normalize_squad)


def mlqa_scores(predictions: Mapping[str, str], golds: Mapping[str, Sequence[str]], lang: str) -> dict[str, float]:
    """MLQA exact match and token F1 with the language's normalisation, in percent."""
    return _qa_scores(predictions, golds, lambda s: normalize_mlqa(s, lang))


# ---------------------------------------------------------------- ranked retrieval


def average_precision_at_k(relevant: Iterable[str], ranked: Sequence[str], k: int = 20) -> float:
    """AP@k as LAReQA defines it: precision at each first hit in the top k, divided by min(k, |relevant|)."""
    relevant = set(relevant)
    if not relevant:
        raise ValueError("no relevant items")
    top = list(ranked[:k])
    hits, total = 0, 0.0
    for i, item in enumerate(top):
        if item in relevant and item not in top[:i]:
            hits += 1
            total += hits / (i + 1)
    return total / min(len(relevant), k)


def map_at_k(golds: Mapping[str, Sequence[str]], predictions: Mapping[str, Sequence[str]], k: int = 20) -> float:
    """mAP@k over the gold queries, in percent; a query without prediction scores 0.

    With one gold item per query (Mewsli-X) this is the top-k mean reciprocal rank.
    """
    if not golds:
        return 0.0
    return sum(average_precision_at_k(rel, predictions.get(q, []), k) for q, rel in golds.items()) / len(golds) * 100


# ---------------------------------------------------------------- BUCC 2018


def _prf(ncorrect: int, npred: int, ngold: int) -> tuple[float, float, float]:
    """F1, precision, recall as fractions."""
    if ncorrect == 0:
        return 0.0, 0.0, 0.0
    p, r = ncorrect / npred, ncorrect / ngold
    return 2 * p * r / (p + r), p, r


def bucc_f1(pred_pairs: Iterable[tuple[str, ...]], gold_pairs: Iterable[tuple[str, ...]]) -> dict[str, float]:
    """F1, precision, recall of the set of mined pairs against the set of gold pairs, in percent."""
    pred, gold = set(map(tuple, pred_pairs)), set(map(tuple, gold_pairs))
    f1, p, r = _prf(len(pred & gold), len(pred), len(gold))
    return {"f1": f1 * 100, "precision": p * 100, "recall": r * 100}


def extract_pairs(scored_candidates: Mapping[tuple[str, str], float], threshold: float) -> set[tuple[str, str]]:
    """Candidate pairs scoring at least ``threshold``."""
    return {pair for pair, score in scored_candidates.items() if score >= threshold}


def best_threshold(
    scored_candidates: Mapping[tuple[str, str], float], gold_pairs: Iterable[tuple[str, str]]
) -> tuple[float, float]:
    """The dev-set threshold of xtreme's ``bucc_optimize`` and the F1 (percent) of the pairs it keeps.

    Candidates are sorted by falling score (ties keep their order) and swept; each time F1 of the
    top-i prefix beats the best so far, the threshold becomes the midpoint between the i-th and the
    next score. Where the best prefix is the whole list (the official code then fails on an index
    past the end) the last score itself is used. The threshold is 0 when no candidate is gold.
    """
    gold = set(map(tuple, gold_pairs))
    items = sorted(scored_candidates.items(), key=lambda kv: -kv[1])
    threshold, best, ncorrect = 0.0, 0.0, 0
    for i, (pair, score) in enumerate(items):
        ncorrect += pair in gold
        if ncorrect:
            f1 = _prf(ncorrect, i + 1, len(gold))[0]
            if f1 > best:
                best = f1
                threshold = (score + items[i + 1][1]) / 2 if i + 1 < len(items) else score
    return threshold, bucc_f1(extract_pairs(scored_candidates, threshold), gold)["f1"]


def knn(queries: np.ndarray, index_rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarities and indices of each query's ``k`` nearest rows (faiss, exact inner product)."""
    import faiss

    index = faiss.IndexFlatIP(index_rows.shape[1])
    index.add(np.ascontiguousarray(index_rows, dtype=np.float32))
    sims, found = index.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, len(index_rows)))
    return sims.astype(np.float64), found


def mine_candidates(x: np.ndarray, y: np.ndarray, k: int = 4) -> dict[tuple[int, int], float]:
    """xtreme's ``mine_bitext`` (ratio margin of Artetxe & Schwenk 2019: cos(x, y) over the mean of x's and y's
    mean k-NN cosines; 'max' retrieval, threshold 0): index pairs with their score.

    Each x takes its best-margin y among its k cosine neighbours, and each y its best x; all these
    candidates are visited by falling score (stable on ties) and kept when neither side is taken yet.
    Neighbours come from faiss, so memory grows with the corpora, not their product.
    """
    x, y = _unit(x), _unit(y)
    sim_xy, nn_xy = knn(x, y, k)
    sim_yx, nn_yx = knn(y, x, k)
    mean_x, mean_y = sim_xy.mean(axis=1), sim_yx.mean(axis=1)
    cands = []
    for sims, nns, mine, other, flip in ((sim_xy, nn_xy, mean_x, mean_y, False), (sim_yx, nn_yx, mean_y, mean_x, True)):
        for i, (row_sims, row) in enumerate(zip(sims, nns)):
            margins = row_sims / ((mine[i] + other[row]) / 2)
            best = int(np.argmax(margins))
            j = int(row[best])
            cands.append((float(margins[best]), (j, i) if flip else (i, j)))
    order = np.argsort([-c[0] for c in cands], kind="stable")
    seen_x, seen_y, out = set(), set(), {}
    for c in order:
        score, (i, j) = cands[c]
        if i not in seen_x and j not in seen_y:
            seen_x.add(i)
            seen_y.add(j)
            if score > 0:
                out[(int(i), int(j))] = score
    return out
