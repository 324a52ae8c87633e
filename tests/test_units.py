"""Unit tests of the pieces: sampling, batching, subsets, pooling, retrieval, report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from xstilts.analysis.report import target_table
from xstilts.evaluate.zero_shot import fixed_subset
from xstilts.formats.base import collate
from xstilts.formats.pooling import encode, pool
from xstilts.formats.retrieval import embed
from xstilts.metrics.official import tatoeba_accuracy
from xstilts.models.backbone import load_backbone
from xstilts.train.loop import length_grouped_batches
from xstilts.train.phase import seeded_subset
from xstilts.train.sampling import task_probabilities


def test_sampling_distributions():
    assert task_probabilities([100, 300], "proportional") == pytest.approx([0.25, 0.75])
    assert task_probabilities([100, 300, 5], "uniform") == pytest.approx([1 / 3] * 3)
    with pytest.raises(ValueError):
        task_probabilities([0, 3], "proportional")


def test_length_grouped_batches_cover_each_index_once():
    rng = np.random.default_rng(0)
    lengths = list(rng.integers(1, 100, size=1003))
    batches = length_grouped_batches(lengths, 16, np.random.default_rng(1))
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(1003))
    assert all(len(b) <= 16 for b in batches)
    # within a batch, lengths are close: far less spread than random batches
    spread = np.mean([max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches])
    assert spread < 20


def test_subsets_are_deterministic():
    examples = [{"id": f"x{i}"} for i in range(50)]
    a = fixed_subset(examples, 10)
    assert a == fixed_subset(list(examples), 10) and len(a) == 10
    assert [e["id"] for e in a] == sorted((e["id"] for e in a), key=lambda s: int(s[1:]))  # file order kept
    assert seeded_subset(examples, 10, 1) == seeded_subset(examples, 10, 1) != seeded_subset(examples, 10, 2)
    assert fixed_subset(examples, None) is examples


def test_collate_pads_and_masks():
    batch = collate([{"input_ids": [5, 6, 7], "label": 1}, {"input_ids": [5], "label": 0}], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [5, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    mc = collate([{"input_ids": [[1, 2], [1, 2, 3]], "label": 1}], pad_id=0)
    assert mc["input_ids"].shape == (1, 2, 3)


def test_mean_pooling_ignores_padding():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    assert pool(hidden, torch.tensor([[1, 1, 0]]), "mean").tolist() == [[2.0, 3.0]]
    assert pool(hidden, torch.tensor([[1, 1, 0]]), "cls").tolist() == [[1.0, 2.0]]


def test_truncated_encoding_equals_hidden_states(tiny_model):
    backbone, tok = load_backbone(tiny_model)
    backbone.eval()
    ids = torch.tensor(tok(["the pizza is good", "we play a game"], padding=True)["input_ids"])
    mask = (ids != tok.pad_token_id).long()
    with torch.no_grad():
        full = backbone(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        for layer in (1, 2):
            assert torch.allclose(
                encode(backbone, ids, mask, "mean", layer), pool(full[layer], mask, "mean"), atol=1e-6
            )
    assert len(backbone.encoder.layer) == 2  # restored


def test_retrieval_matches_numpy(tiny_model):
    backbone, tok = load_backbone(tiny_model)
    src = ["the pizza is good", "we play a game", "i like music", "where is the water", "they sing a song"]
    tgt = ["we play a game", "the pizza is good", "i like music", "where is the coffee", "they dance"]
    q, c = (embed(backbone, tok, t, layer=1, pooling="mean", max_length=32, batch_size=2) for t in (src, tgt))
    assert np.allclose(np.linalg.norm(q, axis=1), 1, atol=1e-5)
    by_numpy = (q @ c.T).argmax(1)
    assert tatoeba_accuracy(q, c) == pytest.approx(100 * np.mean(by_numpy == np.arange(5)))


def _report_rows() -> list[dict]:
    """Two settings x two seeds, and a seed-free probe, on languages en, de, fr (100 examples each)."""
    rows = []
    for setting, recipe, base, seeds in (
        ("none", "lp-ft", 50, (1, 2)),
        ("a", "lp-ft", 60, (1, 2)),
        ("none", "probe", 40, (None,)),
    ):
        for seed in seeds:
            for lang, delta in (("en", 30), ("de", 0), ("fr", 10)):
                rows.append(
                    {
                        "job_id": f"{setting}-{recipe}-{seed}",
                        "target": "t",
                        "task": "t",
                        "split": "test",
                        "metric": "accuracy",
                        "headline": True,
                        "seed": seed,
                        "intermediate": setting,
                        "recipe": recipe,
                        "language": lang,
                        "value": base + delta + 2 * (seed == 2),
                    }
                )
    return rows


def test_report_table_averages_and_gains():
    table = target_table(pd.DataFrame(_report_rows()), "t", ["none", "a"])
    assert list(table.index[:3]) == ["en", "de", "fr"] and list(table.columns) == ["none", "a", "probe (frozen)"]
    assert table.loc["de", "none"] == pytest.approx(51)
    assert table.loc["avg (all)", "a"] == pytest.approx(61 + 40 / 3)
    assert table.loc["avg (zero-shot)", "none"] == pytest.approx(56)
    assert table.loc["gain vs none (zero-shot)", "a"] == pytest.approx(10)
    assert table.loc["gain vs none (zero-shot)", "probe (frozen)"] == pytest.approx(-11)


def test_report_intervals_come_from_each_jobs_examples():
    """Per-example statistics that reproduce the rows' values give the two-level intervals and the paired gains; a
    10-point gain on 100 examples per language, the same on both seeds, is significant, also after Holm; a probe
    identical to the baseline's first seed is not."""
    from xstilts.analysis.report import language_table, summary_table, target_scores
    from xstilts.metrics import per_example

    rows = _report_rows()
    examples: dict[str, dict] = {}
    for r in rows:  # r["value"] correct answers out of 100, the first ones
        hits = (np.arange(100) < r["value"]).astype(float)[:, None]
        examples.setdefault(r["job_id"], {})[per_example.key("t", "test", r["language"], "accuracy")] = hits
    for r in rows:
        if r["recipe"] == "probe":
            r["value"] = 50 + (10 if r["language"] == "fr" else 0)
            examples[r["job_id"]] = examples["none-lp-ft-1"]
    scores = target_scores(pd.DataFrame(rows), "t", ["none", "a"], examples.get)
    summary, adjusted = summary_table(scores)
    assert list(summary.index) == ["none", "a", "probe (frozen)"] and list(summary.runs) == ["2", "2", "1"]
    assert summary.loc["none", "zero-shot avg"].startswith("56.0 [")
    assert scores.settings["a"].gain["avg"].seeds == "paired"
    assert scores.settings["probe (frozen)"].gain["avg"].seeds == "unpaired"
    assert summary.loc["a", "gain vs none"].startswith("+10.0 [") and summary.loc["a", "significant"] == "yes"
    assert summary.loc["probe (frozen)", "gain vs none"].startswith("-1.0 [")
    assert summary.loc["probe (frozen)", "significant"] == "no (within noise)"
    assert adjusted == {"a": True, "probe (frozen)": False}
    per_language, _ = language_table(scores)
    assert per_language.loc["de", "a"].startswith("+10.0 [") and per_language.loc["de", "a"].endswith("] *†")
    assert "items are resampled" not in scores.note and "no item keys" in scores.note


@pytest.mark.parametrize(
    "sampler,kwargs,expected",
    [
        ("uniform", {}, [1 / 3, 1 / 3, 1 / 3]),
        ("proportional", {}, [100 / 1600, 500 / 1600, 1000 / 1600]),
        ("temperature", {"temperature": 2.0}, np.sqrt([100, 500, 1000]) / np.sqrt([100, 500, 1000]).sum()),
        ("capped", {"cap": 400}, [100 / 900, 400 / 900, 400 / 900]),
    ],
)
def test_samplers_draw_their_stated_distribution(sampler, kwargs, expected):
    """Over 10,000 draws (as the training loop draws), each task's frequency is within 2 points of p_i."""
    probs = task_probabilities([100, 500, 1000], sampler, **kwargs)
    assert probs == pytest.approx(expected)
    rng = np.random.default_rng(0)
    draws = [int(rng.choice(3, p=probs)) for _ in range(10_000)]
    freq = np.bincount(draws, minlength=3) / 10_000
    assert np.abs(freq - probs).max() < 0.02


def test_budgets_in_updates():
    from xstilts.config.schema import TrainConfig
    from xstilts.train.loop import planned_updates

    assert planned_updates([100, 60], TrainConfig(batch_size=8, epochs=2)) == 40
    assert planned_updates([100, 60], TrainConfig(batch_size=8, grad_accum=2, epochs=2)) == 20
    assert planned_updates([100, 60], TrainConfig(batch_size=8, max_examples=100)) == 13
    assert planned_updates([100, 60], TrainConfig(batch_size=8, max_steps=7, epochs=9)) == 7


def test_a_holm_family_of_one_is_said_in_one_line():
    """One zero-shot language and one setting: the per-language table holds one test, and says so."""
    from xstilts.analysis.report import language_table, tables_blocks, target_scores
    from xstilts.metrics import per_example

    rows = [r for r in _report_rows() if r["language"] != "fr" and r["recipe"] != "probe"]
    examples: dict[str, dict] = {}
    for r in rows:
        hits = (np.arange(100) < r["value"]).astype(float)[:, None]
        examples.setdefault(r["job_id"], {})[per_example.key("t", "test", r["language"], "accuracy")] = hits
    scores = target_scores(pd.DataFrame(rows), "t", ["none", "a"], examples.get)
    table, adjusted = language_table(scores)
    assert table.shape == (1, 1) and list(adjusted.values()) == [True]
    texts = [b.text for b in tables_blocks(scores, pd.DataFrame(rows), ["none", "a"]) if hasattr(b, "text")]
    assert "This table holds 1 test: Holm's correction leaves it unchanged." in texts
