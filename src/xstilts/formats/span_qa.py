"""Extractive question answering (SQuAD, XQuAD, MLQA, TyDiQA-GoldP): start/end logits over sliding windows."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np

from xstilts.errors import UserError
from xstilts.formats.base import CostHint, HeadFormat, Row, TaskInfo
from xstilts.metrics.official import mlqa_scores, normalize_squad, squad_scores

if TYPE_CHECKING:
    import torch
    from torch import nn
    from transformers import PretrainedConfig

DOC_STRIDE = 128  # tokens shared by consecutive windows of a long context (at most half of a window)
MAX_QUERY_LENGTH = 64  # question tokens kept (capped at half of max_length)
MAX_ANSWER_LENGTH = 30  # longest predicted answer, in tokens
N_BEST = 20  # start and end candidates per window


def _answer_tokens(offsets: list, start_char: int, end_char: int) -> tuple[int, int]:
    """Token positions of the answer's first and last token; (0, 0) when this window does not hold it all."""
    ctx = [i for i, o in enumerate(offsets) if o is not None]
    if not ctx or offsets[ctx[0]][0] > start_char or offsets[ctx[-1]][1] < end_char:
        return 0, 0
    start = next(i for i in ctx if offsets[i][1] > start_char)
    end = next(i for i in reversed(ctx) if offsets[i][0] < end_char)
    return start, end


def _best_span(logits: np.ndarray, offsets: list) -> tuple[float, int, int] | None:
    """(score, start, end) of the best valid span among the top start and end tokens of one window."""
    starts, ends = logits[: len(offsets), 0], logits[: len(offsets), 1]
    in_ctx = np.array([o is not None for o in offsets])
    s = np.argsort(-starts, kind="stable")[:N_BEST]
    e = np.argsort(-ends, kind="stable")[:N_BEST]
    s, e = s[in_ctx[s]], e[in_ctx[e]]
    length = e[None, :] - s[:, None]
    score = np.where((length >= 0) & (length < MAX_ANSWER_LENGTH), starts[s][:, None] + ends[e][None, :], -np.inf)
    if not score.size or score.max() == -np.inf:
        return None
    i, j = np.unravel_index(score.argmax(), score.shape)
    return float(score[i, j]), int(s[i]), int(e[j])


def _squad_json(examples: list[dict]) -> dict:
    """Examples in SQuAD v1.1's JSON layout, one paragraph per question."""
    return {
        "data": [
            {
                "paragraphs": [
                    {
                        "context": ex["context"],
                        "qas": [
                            {
                                "id": ex["id"],
                                "question": ex["question"],
                                "answers": [
                                    {"text": t, "answer_start": s}
                                    for t, s in zip(ex["answers"]["text"], ex["answers"]["answer_start"])
                                ],
                            }
                        ],
                    }
                ]
            }
            for ex in examples
        ]
    }


class SpanQA(HeadFormat):
    """Examples {"id", "question", "context", "answers": {"text": [...], "answer_start": [...]}}."""

    name = "span_qa"
    metrics = ("squad", "squad_v2", "mlqa")
    cost = CostHint(180)
    user_fields = ("question", "context", "answer", "answer_start")
    file_ext = "json"

    def headline(self, metric: str) -> str:
        return "f1"

    def user_inputs(self, columns: dict[str, Any]) -> tuple[str, ...]:
        return ("question", "context")

    def user_example(self, row: Row, columns: dict[str, Any], labels: list[str] | None, metric: str) -> dict:
        context, answer, start = (
            row.text(columns["context"]),
            row.raw(columns["answer"]),
            row.raw(columns["answer_start"]),
        )
        answers = [answer] if isinstance(answer, str) else answer
        starts = [start] if not isinstance(start, list) else start
        if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
            raise UserError(f"{row.at}: field {columns['answer']!r} must be a string or a list of strings")
        answers = [a for a in answers if a]
        starts = [row.integer(columns["answer_start"], s) for s in starts if s != ""]
        if len(starts) != len(answers):
            raise UserError(f"{row.at}: {len(answers)} answers but {len(starts)} answer_start values")
        if not answers and metric != "squad_v2":
            raise UserError(f"{row.at}: no answer (only metric squad_v2 allows unanswerable questions)")
        for a, s in zip(answers, starts):
            if context[s : s + len(a)] != a:
                raise UserError(f"{row.at}: answer {a!r} is not at answer_start {s} of the context")
        return {
            "question": row.text(columns["question"]),
            "context": context,
            "answers": {"text": answers, "answer_start": starts},
        }

    def official_files(self, predictions: list, examples: list[dict], ext: str) -> tuple[str, str]:
        """Predictions as {id: answer text}; labels as a SQuAD JSON file."""
        return (
            json.dumps(dict(zip((ex["id"] for ex in examples), predictions)), ensure_ascii=False),
            json.dumps(_squad_json(examples), ensure_ascii=False),
        )

    def featurize(self, task: TaskInfo, examples: list[dict], tokenizer: Any, max_length: int) -> list[dict]:
        query_length = min(MAX_QUERY_LENGTH, max_length // 2)
        questions = [ex["question"].lstrip() for ex in examples]
        q_offsets = tokenizer(
            questions, add_special_tokens=False, truncation=True, max_length=query_length, return_offsets_mapping=True
        )["offset_mapping"]
        questions = [q[: o[-1][1]] if len(o) == query_length else q for q, o in zip(questions, q_offsets)]
        # context tokens per window; the stride must stay below it (half of it leaves room for re-tokenisation)
        room = max_length - tokenizer.num_special_tokens_to_add(pair=True) - max(map(len, q_offsets), default=0)
        if room < 2:
            raise UserError(f"{task.name}: max_length {max_length} leaves no room for the context")
        enc = tokenizer(
            questions,
            [ex["context"] for ex in examples],
            truncation="only_second",
            max_length=max_length,
            stride=min(DOC_STRIDE, room // 2),
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
        )
        feats = []
        for k, (ids, n) in enumerate(zip(enc["input_ids"], enc["overflow_to_sample_mapping"])):
            offsets = [o if seq == 1 else None for o, seq in zip(enc["offset_mapping"][k], enc.sequence_ids(k))]
            answers = examples[n]["answers"]
            start = end = 0
            if answers["text"]:
                first = answers["answer_start"][0]
                start, end = _answer_tokens(offsets, first, first + len(answers["text"][0]))
            feats.append({"input_ids": ids, "start": start, "end": end, "_example": n, "_offsets": offsets})
        return feats

    def make_head(self, task: TaskInfo, config: PretrainedConfig, kind: str = "linear") -> nn.Module:
        from torch import nn

        return nn.Linear(config.hidden_size, 2)

    def represent(self, backbone: nn.Module, batch: dict, pooling: str) -> torch.Tensor:
        return backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state

    def head_logits(self, head: nn.Module, reps: torch.Tensor, batch: dict) -> torch.Tensor:
        import torch

        logits = head(reps)
        return logits.masked_fill(~batch["attention_mask"].bool().unsqueeze(-1), torch.finfo(logits.dtype).min)

    def loss(self, logits: torch.Tensor, batch: dict) -> torch.Tensor:
        import torch.nn.functional as F

        return (F.cross_entropy(logits[..., 0], batch["start"]) + F.cross_entropy(logits[..., 1], batch["end"])) / 2

    def predict(self, outputs: list[np.ndarray], features: list[dict], examples: list[dict], task: TaskInfo) -> list:
        """The best span over an example's windows; "" (no answer) for squad_v2 when the null score wins."""
        best: list[tuple[float, str]] = [(-np.inf, "")] * len(examples)
        null = [np.inf] * len(examples)
        for out, feat in zip(outputs, features):
            n = feat["_example"]
            null[n] = min(null[n], float(out[0, 0] + out[0, 1]))
            span = _best_span(out, feat["_offsets"])
            if span and span[0] > best[n][0]:
                score, s, e = span
                best[n] = (score, examples[n]["context"][feat["_offsets"][s][0] : feat["_offsets"][e][1]].strip())
        allow_null = task.metric == "squad_v2"
        return ["" if allow_null and null[n] > score else text for n, (score, text) in enumerate(best)]

    def score(self, predictions: list, examples: list[dict], task: TaskInfo, language: str) -> dict[str, float]:
        """SQuAD v1.1 or MLQA exact match and F1; squad_v2 as its official script (no-answer gold is [""])."""
        golds = {i: ex["answers"]["text"] for i, ex in enumerate(examples)}
        preds = dict(enumerate(predictions))
        if task.metric == "mlqa":
            return mlqa_scores(preds, golds, language)
        if task.metric != "squad_v2":
            return squad_scores(preds, golds)
        golds = {i: [a for a in g if normalize_squad(a)] or [""] for i, g in golds.items()}
        scores = squad_scores(preds, golds)
        # the v2 script scores F1 = 1 when prediction and gold both normalise to nothing; v1.1's token F1 gives 0
        both_empty = sum(not normalize_squad(preds[i]) and golds[i] == [""] for i in golds)
        scores["f1"] += 100.0 * both_empty / len(golds)
        return scores
