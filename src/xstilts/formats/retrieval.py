"""The formats evaluated on the encoder alone (no head, no training): pooled hidden states of one layer.

Parallel-pair retrieval (Tatoeba, pocket-retrieval), bitext mining (BUCC 2018) and answer retrieval
(LAReQA, Mewsli-X). Each reads ``encode(texts, contexts=None) -> L2-normalised rows``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from xstilts.data.official_retrieval import bucc_gold_pairs
from xstilts.formats.base import CostHint, Encode, EncoderFormat, Evaluation, TaskInfo, lines
from xstilts.metrics import official, per_example

if TYPE_CHECKING:
    from torch import nn


def default_layer(backbone: nn.Module) -> int:
    """About 14/24 of the model's depth, as XTREME reads XLM-R large at layer 14."""
    from xstilts.formats.pooling import num_layers

    return max(1, round(num_layers(backbone) * 14 / 24))


def embed(
    backbone: nn.Module,
    tokenizer: Any,
    texts: list[str],
    layer: int,
    pooling: str,
    max_length: int,
    batch_size: int,
    contexts: list[str] | None = None,
) -> np.ndarray:
    """L2-normalised pooled embeddings, one row per text (encoded with its context when given), in input order."""
    import torch

    from xstilts.formats.base import padded
    from xstilts.formats.pooling import encode

    with torch.inference_mode():
        backbone.eval()
        args = (texts, contexts) if contexts is not None else (texts,)
        ids = tokenizer(*args, truncation=True, max_length=max_length)["input_ids"]
        order = np.argsort([len(x) for x in ids], kind="stable")
        out = np.zeros((len(texts), backbone.config.hidden_size), dtype=np.float32)
        pad = tokenizer.pad_token_id
        device = next(backbone.parameters()).device
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch, mask = padded([ids[i] for i in idx], pad)
            pooled = encode(backbone, batch.to(device), mask.to(device), pooling, layer)
            out[idx] = torch.nn.functional.normalize(pooled.float(), dim=-1).cpu().numpy()
    return out


def encode_unique(encode: Encode, texts: list[str]) -> dict[str, np.ndarray]:
    """Each distinct text encoded once."""
    unique = sorted(set(texts))
    return dict(zip(unique, encode(unique)))


class PairRetrieval(EncoderFormat):
    """Examples {"id", <query field>, <candidate field>}: query i's nearest candidate should be candidate i.
    Scored by accuracy; the task's train language (English) is the other side, never a test language."""

    name = "retrieval"
    cost = CostHint(20, sequences=2)
    subset_key = "target"  # a fixed subset keeps whole pairs, keyed by their English side

    def test_languages(self, task: TaskInfo) -> tuple[str, ...]:
        return tuple(lang for lang in task.languages if lang != task.train_language)

    def evaluate(
        self,
        encode: Encode,
        task: TaskInfo,
        examples: dict[str, list[dict]],
        dev: Callable[[str], list],
        candidates: Callable[[], list[dict]],
    ) -> dict[str, Evaluation]:
        query_field, candidate_field = task.fields
        # every distinct sentence once: the English sides repeat across languages
        vectors = encode_unique(encode, [ex[f] for exs in examples.values() for ex in exs for f in task.fields])
        out = {}
        for lang, pairs in examples.items():
            queries = np.stack([vectors[p[query_field]] for p in pairs])
            targets = np.stack([vectors[p[candidate_field]] for p in pairs])
            found = (queries @ targets.T).argmax(axis=1)
            scores = {"accuracy": official.tatoeba_accuracy(queries, targets)}
            hits = np.array([[float(j == i)] for i, j in enumerate(found)])
            out[lang] = Evaluation(scores, [int(j) for j in found], per_example.reproducing({"accuracy": hits}, scores))
        return out

    def official_files(self, predictions: list, examples: list[dict], ext: str) -> tuple[str, str]:
        """The index of each query's nearest candidate; the gold index is the query's own."""
        return lines(predictions), lines(range(len(examples)))


def _mine(encode: Encode, records: list[dict]) -> dict[tuple[str, str], float]:
    src = [r for r in records if r["side"] == "src"]
    en = [r for r in records if r["side"] == "en"]
    mined = official.mine_candidates(encode([r["text"] for r in src]), encode([r["text"] for r in en]))
    return {(src[i]["id"], en[j]["id"]): score for (i, j), score in mined.items()}


class BitextMining(EncoderFormat):
    """BUCC 2018: sentences {"id", "side" (src | en), "text", "gold"}; margin-mined pairs above the threshold
    that maximises F1 on the language's dev corpus."""

    name = "bucc"
    metrics = ("bucc_f1",)
    cost = CostHint(30, sequences=2)
    eval_splits = ("test", "dev")  # the mining threshold is chosen on dev
    subset_key = None  # mining needs whole corpora

    def headline(self, metric: str) -> str:
        return "f1"

    def evaluate(
        self,
        encode: Encode,
        task: TaskInfo,
        examples: dict[str, list[dict]],
        dev: Callable[[str], list],
        candidates: Callable[[], list[dict]],
    ) -> dict[str, Evaluation]:
        out = {}
        for lang, test in examples.items():
            dev_records = dev(lang)
            threshold, dev_f1 = official.best_threshold(
                _mine(encode, dev_records), bucc_gold_pairs(dev_records) or set()
            )
            pairs = sorted(official.extract_pairs(_mine(encode, test), threshold))
            scores = {"threshold": threshold, "dev_f1": dev_f1}
            gold = bucc_gold_pairs(test)
            if gold is not None:
                scores = {**official.bucc_f1(pairs, gold), **scores}
            out[lang] = Evaluation(scores, pairs, {})  # F1 over pairs: no per-example statistic reproduces it
        return out

    def official_files(self, predictions: list, examples: list[dict], ext: str) -> tuple[str, str]:
        """Mined and gold pairs as ``src-id<TAB>en-id`` lines."""
        gold = sorted((ex["id"], en) for ex in examples if ex.get("side") == "src" for en in ex.get("gold") or [])
        return lines(f"{a}\t{b}" for a, b in sorted(predictions)), lines(f"{a}\t{b}" for a, b in gold)


class AnswerRetrieval(EncoderFormat):
    """LAReQA, Mewsli-X: queries {"id", "text", "relevant"} ranked against one candidate pool shared by every
    language ({"id", "text"[, "context"]}); mAP@20."""

    name = "answer_retrieval"
    metrics = ("map@20",)
    cost = CostHint(60, sequences=2)
    subset_key = None  # mAP over the whole query set

    def headline(self, metric: str) -> str:
        return "map@20"

    def evaluate(
        self,
        encode: Encode,
        task: TaskInfo,
        examples: dict[str, list[dict]],
        dev: Callable[[str], list],
        candidates: Callable[[], list[dict]],
        k: int = 20,
    ) -> dict[str, Evaluation]:
        pool = candidates()
        pool_vectors = encode([c["text"] for c in pool], [c["context"] for c in pool] if "context" in pool[0] else None)
        pool_ids = [c["id"] for c in pool]
        out = {}
        for lang, queries in examples.items():
            _, found = official.knn(encode([q["text"] for q in queries]), pool_vectors, k)
            ranked = {q["id"]: [pool_ids[j] for j in row if j >= 0] for q, row in zip(queries, found)}
            scores = {"map@20": official.map_at_k({q["id"]: q["relevant"] for q in queries}, ranked, k)}
            out[lang] = Evaluation(scores, ranked, {})  # mAP is a mean, but over ranks the file does not keep
        return out

    def official_files(self, predictions: Any, examples: list[dict], ext: str) -> tuple[str, str]:
        """Each query's ranked candidate ids, and its relevant ones, as JSON objects."""
        return (
            json.dumps(predictions, ensure_ascii=False),
            json.dumps({ex["id"]: ex["relevant"] for ex in examples}, ensure_ascii=False),
        )
