"""Machine-translated intermediate data: ``mnli@de`` read from ``<data_dir>/translated/de/MNLI/``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from rich.console import Console

from xstilts.config.schema import ExperimentConfig
from xstilts.errors import UserError
from xstilts.experiments.plan import plan
from xstilts.experiments.resolve import load_experiment
from xstilts.experiments.rundir import RunDir
from xstilts.experiments.runner import run_experiment
from xstilts.tasks.catalog import TaskCatalog

FIXTURES = Path(__file__).parent / "fixtures"
CATALOG = TaskCatalog.builtin()
TINY = {"batch_size": 4, "lr": 1e-3, "max_length": 32, "max_steps": 2}


@pytest.fixture
def data_dir(tmp_path) -> Path:
    """GLUE's MNLI/ and its German translation under translated/de/MNLI/."""
    root = tmp_path / "download"
    shutil.copytree(FIXTURES / "official" / "MNLI", root / "MNLI")
    shutil.copytree(FIXTURES / "translated", root / "translated")
    return root


def _config(model: str, settings: list[str], data_dir: Path | None) -> ExperimentConfig:
    return ExperimentConfig.model_validate(
        {
            "model": model,
            "seeds": [1],
            "data_dir": str(data_dir) if data_dir else None,
            "intermediate": {"settings": settings, "train": TINY},
            "targets": [{"task": "t-topic", "train": TINY, "probe_reference": False}],
        }
    )


def test_variant_reads_the_translated_files(data_dir):
    en, de = CATALOG.get("mnli", data_dir=data_dir), CATALOG.get("mnli@de", data_dir=data_dir)
    assert (de.name, de.train_language, de.languages) == ("mnli@de", "de", ("de",))
    assert (de.format, de.fields, de.metric, de.labels, de.head_name) == (
        en.format,
        en.fields,
        en.metric,
        en.labels,
        en.head_name,
    )
    train = de.source.load("train", "de")
    assert [ex["text_a"] for ex in train][1:3] == ["Das Museum öffnet um neun.", "Sie kaufte ein rotes Auto."]
    assert [ex["label"] for ex in train] == ["entailment", "contradiction", "neutral", "entailment"]
    assert train[0]["id"] == "train-en-0@de"
    assert [ex["id"] for ex in de.source.load("dev", "de")] == ["dev-en-0@de", "dev-en-1@de"]
    assert CATALOG.checksum(de, [("train", "de")], data_dir) != CATALOG.checksum(en, [("train", "en")], data_dir)
    with pytest.raises(UserError, match="has no language 'fr'"):
        de.source.load("train", "fr")


def test_names_are_checked_without_data_dir(tiny_model, tiny_catalog, tmp_path):
    cfg = _config(tiny_model, ["mnli@de", "mnli+mnli@de"], None)
    assert cfg.intermediate.settings == ["none", "mnli@de", "mnli+mnli@de"]
    for bad in ("nosuch@de", "mnli@DE1", "mnli@en", "xnli@de", "t-sametopic@de"):
        assert tiny_catalog.find(bad) is None  # t-sametopic has no official-file reader to translate
    yaml = tmp_path / "bad.yaml"
    yaml.write_text(
        f"model: {tiny_model}\nintermediate:\n  settings: [none, mnli, nosuch@de]\ntargets:\n  - task: t-topic\n",
        encoding="utf-8",
    )
    with pytest.raises(UserError) as e:
        load_experiment(yaml)
    assert (
        str(e.value) == f"{yaml}:3: intermediate.settings: unknown intermediate task 'nosuch@de' in setting 'nosuch@de'"
    )


def test_translations_need_their_files(tiny_model, tiny_catalog, data_dir):
    with pytest.raises(UserError, match=r"^mnli@de: translated data are read from files only: set data_dir") as e:
        plan(_config(tiny_model, ["mnli@de"], None), tiny_catalog)
    assert "\n" not in str(e.value)
    missing = data_dir / "translated" / "de" / "MNLI" / "dev_matched.tsv"
    missing.unlink()
    with pytest.raises(UserError) as e:
        plan(_config(tiny_model, ["mnli@de"], data_dir), tiny_catalog)
    assert str(e.value) == f"{missing}: missing data file (dev split, mnli translated into 'de')"


def test_translated_and_english_train_one_head(tiny_model, tiny_catalog, data_dir, tmp_path):
    from xstilts.config.schema import EvalConfig, TrainConfig
    from xstilts.models.backbone import load_backbone
    from xstilts.train.phase import PhaseTask, train_phase

    tasks = [CATALOG.get(n, data_dir=data_dir) for n in ("mnli", "mnli@de")]
    phase = [
        PhaseTask(t, t.source.load("train", t.train_language), t.source.load("dev", t.train_language)) for t in tasks
    ]
    backbone, tok = load_backbone(tiny_model)
    model, _ = train_phase(backbone, tok, phase, TrainConfig(**TINY), EvalConfig(), 1, "cls", lambda *a: None, "x")
    assert list(model.heads) == ["nli"] and model.head_of == {"mnli": "nli", "mnli@de": "nli"}

    cfg = _config(tiny_model, ["none", "mnli@de", "mnli+mnli@de"], data_dir)
    summary = run_experiment(cfg, tiny_catalog, "", tmp_path / "out", Console(quiet=True))
    assert summary["ran"] == 2 + 3
    results = {(r["kind"], r["intermediate"]): r for r in RunDir(tmp_path / "out").load_results()}
    alone, multi = results["intermediate", "mnli@de"], results["intermediate", "mnli+mnli@de"]
    assert set(alone["train"]["sampling_probabilities"]) == {"mnli@de"}
    assert set(multi["train"]["sampling_probabilities"]) == {"mnli", "mnli@de"}
    assert {(m["task"], m["split"], m["language"], m["n"]) for m in multi["metrics"]} == {
        ("mnli", "dev", "en", 2),
        ("mnli@de", "dev", "de", 2),
    }
    assert set(multi["spec"]["data"]) == {"mnli", "mnli@de"}
    assert results["target", "mnli+mnli@de"]["upstream"] == multi["job_id"]
