"""The study report rendered from stored results (tests/fixtures/study: the mini model-scale study's OUT, without
checkpoints): every analysis, its figures as valid PNGs, the HTML embedding each one, and LaTeX tables holding the
same numbers as report.md."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from cli_runs import XSTILTS

from xstilts.analysis.study import ANALYSES, write_report
from xstilts.config.load import load_config
from xstilts.config.schema import ReportConfig
from xstilts.experiments.rundir import RunDir
from xstilts.metrics import per_example

FIXTURE = Path(__file__).parent / "fixtures" / "study"
PNG = b"\x89PNG\r\n\x1a\n"
NUMBER = re.compile(r"[-+]?\d+\.\d+")


@pytest.fixture
def out(tmp_path) -> Path:
    shutil.copytree(FIXTURE, tmp_path / "out")
    return tmp_path / "out"


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG and data[12:16] == b"IHDR", path
    return struct.unpack(">II", data[16:24])


def test_every_analysis_renders_from_stored_results(out):
    cfg = load_config(out / "experiment.yaml").cfg
    cfg = cfg.model_copy(update={"report": ReportConfig(analyses=list(ANALYSES))})
    written = write_report(RunDir(out), cfg)
    assert sorted(p.name for p in written) == ["report.html", "report.md", "tables.tex"]
    md, html, tex = ((out / name).read_text(encoding="utf-8") for name in ("report.md", "report.html", "tables.tex"))

    figures = sorted((out / "figures").glob("*.png"))
    kinds = {p.name.split("-")[0] for p in figures}
    assert {"heatmap", "tiers", "scaling", "pareto", "throughput", "num"} <= kinds, kinds
    for path in figures:
        width, height = _png_size(path)
        assert 300 <= width <= 2000 and 200 <= height <= 3000
        assert f'data-file="figures/{path.name}"' in html and f"](figures/{path.name})" in md
    assert html.count("data:image/png;base64,") == len(figures)

    # the same numbers in the markdown tables and in the LaTeX tables
    md_tables = "\n".join(line for line in md.splitlines() if line.startswith("|"))
    assert Counter(NUMBER.findall(md_tables)) == Counter(NUMBER.findall(tex))
    separators = sum(line.startswith("|---|") for line in md.splitlines())  # one per markdown table
    assert tex.count("\\begin{table}") == tex.count("\\end{table}") == separators > 5
    assert "\\toprule" in tex and "\\bottomrule" in tex

    # the findings are said in words, with intervals, before the full tables (collapsed in HTML)
    assert "Least-squares fits against log10 parameters" in md and "R²" in md
    assert "mixed model, language random intercept" in md and "The front runs from" in md
    assert re.search(r"Spearman rho = -?\d\.\d\d \[-?\d\.\d\d, -?\d\.\d\d\]", md)
    section = md.split("\n## ")[1]
    first_finding = re.search(r"`support-intent`: [-+]\d+\.\d points \[[-+]\d+\.\d, [-+]\d+\.\d\] over none", section)
    assert first_finding and first_finding.start() < section.index("forest-") < section.index("**Full tables")
    assert "one seed" in section and "could have detected a gain of" in section  # one seed: nothing is marked
    assert html.count("<details><summary>Full tables: pocket-topic") == 3
    # three settings, three pairs per size, the baseline's included (later setting minus earlier)
    assert "None: no target is an XTREME or XTREME-R task." in md  # asked for, so it says why it is empty
    assert md.count("All 3 contrasts") == 3 and md.count("| support-intent - pocket-sametopic |") == 3
    assert html.index("forest-pocket-topic") < html.index("<details>")


def test_results_written_before_item_keys_still_report_with_a_caveat(out):
    """Stripping the item keys from every per_example.npz gives a folder as older versions wrote it: the report is
    written, with one line saying that languages were resampled independently."""
    cfg = load_config(out / "experiment.yaml").cfg.model_copy(update={"report": ReportConfig(analyses=["gains"])})
    write_report(RunDir(out), cfg, ["md"])
    assert "carry no item keys" not in (out / "report.md").read_text(encoding="utf-8")
    for path in (out / "jobs").glob("*/per_example.npz"):
        kept = {k: v for k, v in per_example.read(path).items() if not k.endswith(f"|{per_example.ITEMS}")}
        per_example.write(path, kept)
    write_report(RunDir(out), cfg, ["md"])
    md = (out / "report.md").read_text(encoding="utf-8")
    assert md.count("carry no item keys (written before xstilts recorded them)") == md.count("**Full tables") == 3


def test_report_command(out):
    proc = subprocess.run([XSTILTS, "report", str(out), "--format", "md"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(out / "report.md")
    assert not (out / "report.html").exists()
    bad = subprocess.run([XSTILTS, "report", str(out / "nowhere")], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        f"error: {out / 'nowhere' / 'experiment.yaml'}: no experiment here (run it first)"
    ]


@pytest.mark.parametrize("name", ["model-scale", "compute-budget", "num-tasks", "size-latency", "batch-lr"])
def test_each_study_plans_at_paper_scale_with_the_analyses_of_its_mini_version(name):
    from xstilts.experiments.cost import estimate
    from xstilts.experiments.plan import plan
    from xstilts.experiments.resolve import load_experiment

    root = Path(__file__).resolve().parents[1] / "configs" / "studies"
    paper, catalog = load_experiment(root / f"{name}.yaml")
    jobs = plan(paper.cfg, catalog).jobs  # hub data is named, not fetched: this plans offline
    assert {j.kind for j in jobs} >= {"intermediate", "target"}
    assert estimate(jobs, catalog)["total_hours"] > 0
    mini, _ = load_experiment(root / "mini" / f"{name}.yaml")
    assert mini.cfg.report.analyses == paper.cfg.report.analyses
