"""Zero-shot retrieval evaluations on pooled encoder states: parallel pairs (Tatoeba, pocket), BUCC mining,
and answer retrieval (LAReQA, Mewsli-X). Each takes ``encode(texts, contexts=None) -> L2-normalised rows``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from xstilts.evaluate import metrics

Encode = Callable[..., np.ndarray]


def encode_unique(encode: Encode, texts: list[str]) -> dict[str, np.ndarray]:
    """Each distinct text encoded once."""
    unique = sorted(set(texts))
    return dict(zip(unique, encode(unique)))


def pair_retrieval(encode: Encode, pairs: list[dict], query_field: str, candidate_field: str,
                   vectors: dict[str, np.ndarray] | None = None) -> tuple[dict[str, float], list[int]]:
    """accuracy of query i's nearest candidate being candidate i; predictions are the nearest indices."""
    vectors = vectors or encode_unique(encode, [p[f] for p in pairs for f in (query_field, candidate_field)])
    queries = np.stack([vectors[p[query_field]] for p in pairs])
    candidates = np.stack([vectors[p[candidate_field]] for p in pairs])
    found = (queries @ candidates.T).argmax(axis=1)
    return {"accuracy": metrics.tatoeba_accuracy(queries, candidates)}, [int(i) for i in found]


def _mine(encode: Encode, records: list[dict]) -> dict[tuple[str, str], float]:
    src = [r for r in records if r["side"] == "src"]
    en = [r for r in records if r["side"] == "en"]
    mined = metrics.mine_candidates(encode([r["text"] for r in src]), encode([r["text"] for r in en]))
    return {(src[i]["id"], en[j]["id"]): score for (i, j), score in mined.items()}


def bucc(encode: Encode, dev: list[dict], test: list[dict]) -> tuple[dict[str, float], list[tuple[str, str]]]:
    """Margin-mined pairs of ``test`` above the threshold that maximises F1 on ``dev`` (BUCC 2018)."""
    from xstilts.data.official_retrieval import bucc_gold_pairs

    threshold, dev_f1 = metrics.best_threshold(_mine(encode, dev), bucc_gold_pairs(dev) or set())
    pairs = sorted(metrics.extract_pairs(_mine(encode, test), threshold))
    scores = {"threshold": threshold, "dev_f1": dev_f1}
    gold = bucc_gold_pairs(test)
    if gold is not None:
        scores = {**metrics.bucc_f1(pairs, gold), **scores}
    return scores, pairs


def answer_retrieval(encode: Encode, queries: list[dict], pool_ids: list[str], pool: np.ndarray,
                     k: int = 20) -> tuple[dict[str, float], dict[str, list[str]]]:
    """mAP@k of each query's k nearest pool entries against its relevant ids."""
    _, found = metrics.knn(encode([q["text"] for q in queries]), pool, k)
    ranked = {q["id"]: [pool_ids[j] for j in row if j >= 0] for q, row in zip(queries, found)}
    return {"map@20": metrics.map_at_k({q["id"]: q["relevant"] for q in queries}, ranked, k)}, ranked
